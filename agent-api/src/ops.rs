//! The agent API's requests and how the daemon's single writer answers them.
//!
//! The server ([`crate::server`]) parses params into a [`Request`] and hands it, with a reply
//! channel, to the writer ([`Call`]). The writer calls [`AgentState::handle`] with its
//! `Workspace`: every request is answered against the one current state, in the order of the
//! writer's queue, and an edit is applied with `Workspace::edit` at the version the agent
//! read, exactly like an editor's change. A request that fails changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use engine::{Bias, Edit, Frontier, RemoteVersion, Rope, XfOp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};
use vfs::diff::TextEdit;
use vfs::pos::{self, LspPosition, PositionEncoding};
use vfs::{FileId, SnapContent, VfsError, Workspace};

use crate::error::*;

/// A JSON-RPC connection of the agent server.
pub type AgentConn = u64;

/// `{ "line": 0, "character": 4 }` (0-based; `character` in the request's encoding).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    pub line: i64,
    pub character: i64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// Char offsets (Unicode scalar values), `start..end`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Offsets {
    pub start: i64,
    pub end: i64,
}

/// One replacement: exactly one of `range` (line/character) or `offsets` (chars).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EditSpec {
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub offsets: Option<Offsets>,
    pub text: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeParams {
    /// Only documents whose path matches (e.g. `src/**/*.rs`); all when absent.
    #[serde(default)]
    pub glob: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    pub glob: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadParams {
    pub path: String,
    /// First line (0-based) to return.
    #[serde(default)]
    pub start_line: Option<u64>,
    /// Line after the last one to return (exclusive).
    #[serde(default)]
    pub end_line: Option<u64>,
    /// Read the file as it was at this version (one returned by an earlier call) instead of now.
    #[serde(default)]
    pub version: Option<RemoteVersion>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditParams {
    pub path: String,
    /// The version the agent read (`fs.read`'s `version`); the edits refer to its text.
    pub version: RemoteVersion,
    /// `"utf-8"`, `"utf-16"` (default, as in LSP) or `"utf-32"`: the unit of `character`.
    #[serde(default)]
    pub encoding: Option<String>,
    pub edits: Vec<EditSpec>,
}

/// A parsed request.
#[derive(Clone, Debug)]
pub enum Request {
    Info,
    List(ListParams),
    Read(ReadParams),
    Edit(EditParams),
    Branch(crate::branches::BranchRequest),
    Snapshot(crate::snapshot::SnapshotParams),
    Since(crate::snapshot::SinceParams),
    Create(crate::files::CreateParams),
    Delete(crate::files::DeleteParams),
    Rename(crate::files::RenameParams),
    Search(crate::search::SearchParams),
    Anchor(crate::anchors::AnchorRequest),
    Presence(crate::presence::PresenceRequest),
}

/// A request on its way to the writer, with where to send the answer.
#[derive(Debug)]
pub struct Call {
    pub conn: AgentConn,
    pub request: Request,
    pub reply: oneshot::Sender<Result<Value, ApiError>>,
}

/// Someone in the workspace, as `workspace.info` lists them.
#[derive(Clone, Debug, Serialize)]
pub struct Participant {
    pub id: u64,
    pub kind: &'static str,
    pub name: String,
    /// The file their cursor is in.
    pub file: Option<String>,
}

/// What the writer knows beyond the workspace (editor connections).
#[derive(Default)]
pub struct Context {
    pub participants: Vec<Participant>,
    /// Files some editor has open.
    pub open: HashSet<FileId>,
}

/// The answer to one call, and the documents it changed (the writer broadcasts them).
pub struct Outcome {
    pub result: Result<Value, ApiError>,
    pub changed: Vec<FileId>,
    /// Work on an immutable snapshot that the writer runs on another thread (the answer is
    /// what it returns; `result` is then unused).
    pub deferred: Option<Deferred>,
}

/// See [`Outcome::deferred`].
pub type Deferred = Box<dyn FnOnce() -> Result<Value, ApiError> + Send>;

/// One document change as pushed to `changes` subscribers: the edits (sequential, char
/// offsets) that take the document from version `from` to version `to`.
#[derive(Debug)]
pub struct ChangeNotice {
    pub path: String,
    /// The serialized notification (shared by every subscriber).
    pub json: Box<serde_json::value::RawValue>,
}

/// The channel from the writer to `changes` subscriptions. Publishing never waits: a
/// subscriber that falls `capacity` notices behind is closed with a reason.
/// The second channel carries `presence` notices.
#[derive(Clone, Debug)]
pub struct ChangeFeed(
    pub(crate) broadcast::Sender<Arc<ChangeNotice>>,
    pub(crate) broadcast::Sender<Arc<crate::presence::PresenceEntry>>,
);

impl ChangeFeed {
    pub fn new(capacity: usize) -> ChangeFeed {
        ChangeFeed(
            broadcast::channel(capacity.max(1)).0,
            broadcast::channel(capacity.max(1)).0,
        )
    }
}

/// The agent API's state inside the writer.
pub struct AgentState {
    run_id: String,
    /// Per connection: engine agent generation (bumped when a base lacks its own last edit).
    gens: HashMap<AgentConn, u32>,
    feed: ChangeFeed,
    /// Per document changed since load: the version last published to the feed (a document
    /// not in here is still at its root version).
    published: HashMap<FileId, Frontier>,
    branches: crate::branches::Branches,
    anchors: crate::anchors::Anchors,
    pub(crate) presence: crate::presence::PresenceState,
    held: crate::retention::Held,
    /// The texts of the versions most recently handed out per document (newest last; ropes
    /// share their nodes with the live text), so that an edit at a version an agent read a
    /// moment ago needs no replay of the history.
    recent: HashMap<FileId, std::collections::VecDeque<(Frontier, Rope)>>,
}

/// Versions per document whose text [`AgentState`] keeps for edits at them.
const RECENT_TEXTS: usize = 16;

pub(crate) fn lang_id(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" => "typescript",
        "tsx" => "typescriptreact",
        "jsx" => "javascriptreact",
        "go" => "go",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "cpp",
        "java" => "java",
        "lua" => "lua",
        "md" => "markdown",
        "json" => "json",
        "toml" => "toml",
        "yaml" | "yml" => "yaml",
        "sh" | "bash" => "shellscript",
        "html" | "htm" => "html",
        "css" => "css",
        "txt" => "plaintext",
        _ => "plaintext",
    }
}

pub(crate) fn encoding_of(name: Option<&str>) -> Result<PositionEncoding, ApiError> {
    match name {
        None => Ok(PositionEncoding::Utf16),
        Some(n) => PositionEncoding::from_lsp_name(n).ok_or_else(|| {
            ApiError::new(
                INVALID_PARAMS,
                format!("unknown encoding `{n}` (use utf-8, utf-16 or utf-32)"),
            )
        }),
    }
}

pub(crate) fn pos_json(p: LspPosition) -> Value {
    json!({"line": p.line, "character": p.character})
}

impl AgentState {
    /// `run_id` makes the engine agent names of this daemon run unique.
    pub fn new(run_id: &str, feed: ChangeFeed) -> AgentState {
        AgentState {
            run_id: run_id.to_string(),
            gens: HashMap::new(),
            presence: crate::presence::PresenceState::new(feed.1.clone()),
            feed,
            published: HashMap::new(),
            branches: crate::branches::Branches::new(run_id),
            anchors: crate::anchors::Anchors::default(),
            held: Default::default(),
            recent: HashMap::new(),
        }
    }

    fn remember_text(&mut self, f: FileId, v: Frontier, text: Rope) {
        let q = self.recent.entry(f).or_default();
        if q.back().is_some_and(|(w, _)| *w == v) {
            return;
        }
        q.push_back((v, text));
        if q.len() > RECENT_TEXTS {
            q.pop_front();
        }
    }

    /// Per document, the versions agents may still refer to (compaction keeps them; see
    /// `retention.rs`).
    pub fn retained(&mut self, ws: &Workspace) -> HashMap<FileId, Vec<Frontier>> {
        let mut out: HashMap<FileId, Vec<Frontier>> = HashMap::new();
        for (f, v) in &self.published {
            out.entry(*f).or_default().push(v.clone());
        }
        self.anchors.retained(&mut out);
        self.branches.retained(ws, &mut out);
        self.held.retained(&mut out);
        out
    }

    /// Push what happened to `changed` documents since the last publication to `changes`
    /// subscribers. Called by the writer once per batch, before editors are updated.
    pub fn publish(&mut self, ws: &Workspace, changed: impl IntoIterator<Item = FileId>) {
        let listening = self.feed.0.receiver_count() > 0;
        for f in changed {
            let Some(tf) = ws.text_file(f) else { continue };
            let Some(doc) = tf.doc.built() else { continue };
            let to = doc.version().clone();
            let from = self
                .published
                .get(&f)
                .cloned()
                .unwrap_or_else(Frontier::root);
            if from == to {
                continue;
            }
            self.published.insert(f, to.clone());
            if !listening {
                continue;
            }
            let Ok(ops) = doc.transform(&from, &to) else {
                continue;
            };
            let path = ws.path(f).unwrap_or_default().to_string();
            let edits: Vec<Value> = ops
                .iter()
                .map(|op| match op {
                    XfOp::Insert { pos, text } => {
                        json!({"offsets": {"start": pos, "end": pos}, "text": text})
                    }
                    XfOp::Delete { pos, len } => {
                        json!({"offsets": {"start": pos, "end": pos + len}, "text": ""})
                    }
                })
                .collect();
            let v = json!({
                "path": path,
                "from": doc.remote_version(&from),
                "to": doc.remote_version(&to),
                "edits": edits,
            });
            if let Ok(json) = serde_json::value::to_raw_value(&v) {
                let _ = self.feed.0.send(Arc::new(ChangeNotice { path, json }));
            }
        }
    }

    fn agent_name(&self, conn: AgentConn) -> String {
        let g = self.gens.get(&conn).copied().unwrap_or(0);
        format!("agent#{}-{conn}.{g}", self.run_id)
    }

    /// Answer one call against the workspace.
    pub fn handle(
        &mut self,
        ws: &mut Workspace,
        ctx: &Context,
        conn: AgentConn,
        req: Request,
    ) -> Outcome {
        let mut changed = Vec::new();
        let mut deferred = None;
        self.presence.seen(conn, &self.agent_name(conn));
        let result = match req {
            Request::Info => Ok(json!({
                "root": ws.root(),
                "version": ws.version(),
                "participants": self.presence.participants(&ctx.participants),
                "files": ws.len(),
            })),
            Request::List(p) => list(ws, ctx, p),
            Request::Read(p) => {
                let current = p.version.is_none();
                let r = read(ws, p);
                if let (true, Ok(v)) = (current, &r) {
                    // The version read: the next edit will most likely be made at it.
                    let f = v
                        .get("path")
                        .and_then(Value::as_str)
                        .and_then(|p| ws.lookup(p));
                    if let Some((f, doc)) = f.and_then(|f| Some((f, ws.text_file(f)?.doc.built()?)))
                    {
                        let (v, t) = (doc.version().clone(), doc.to_rope());
                        self.remember_text(f, v, t);
                    }
                }
                r
            }
            Request::Edit(p) => self.edit(ws, conn, p, &mut changed),
            Request::Branch(r) => {
                let out = self.branches.handle(ws, conn, r);
                changed = out.changed;
                out.result
            }
            Request::Snapshot(p) => crate::snapshot::snapshot(ws, p, &mut deferred),
            Request::Since(p) => crate::snapshot::since(ws, p),
            Request::Create(p) => crate::files::create(ws, p, &mut changed),
            Request::Delete(p) => crate::files::delete(ws, p),
            Request::Rename(p) => crate::files::rename(ws, p),
            Request::Search(p) => crate::search::search(ws, p, &mut deferred),
            Request::Anchor(r) => self.anchors.handle(ws, r),
            Request::Presence(r) => self.presence.request(conn, r),
        };
        if let Ok(v) = &result {
            self.presence.after_call(ws, conn, v);
            self.held.record(ws, conn, v);
        }
        Outcome {
            result,
            changed,
            deferred,
        }
    }

    fn edit(
        &mut self,
        ws: &mut Workspace,
        conn: AgentConn,
        p: EditParams,
        changed: &mut Vec<FileId>,
    ) -> Result<Value, ApiError> {
        let enc = encoding_of(p.encoding.as_deref())?;
        let (rel, f) = text_file(ws, &p.path)?;
        let tf = ws.text_file(f).expect("checked");
        let doc = &tf.doc;
        let base = doc.frontier_of(&p.version).map_err(|e| {
            let what = format!("`{rel}` has no version {:?}: {e}", p.version);
            ApiError::version(ws, f, &rel, &e, what)
        })?;
        // At the current version (the common case) the live text is the base: no replay.
        let cached = self
            .recent
            .get(&f)
            .and_then(|q| q.iter().rev().find(|(v, _)| *v == base))
            .map(|(_, t)| t.clone());
        let base_text = if base == *doc.version() {
            doc.to_rope()
        } else if let Some(t) = cached {
            t // a version handed out a moment ago (e.g. by this agent's previous edit)
        } else {
            doc.checkout(&base)
                .map_err(|e| ApiError::version(ws, f, &rel, &e, format!("`{rel}`: {e}")))?
        };
        // Positions -> chars against the text the agent read, sequenced (as `branch.edit`).
        let prep = crate::edits::prepare(&base_text, &p.edits, enc)?;
        if prep.is_noop() {
            // Nothing to do: no new event.
            let tf = ws.text_file(f).expect("checked");
            let v = tf.doc.remote_version(tf.doc.version());
            return Ok(json!({"path": rel, "version": v, "edits": []}));
        }
        let text_edits: Vec<TextEdit> = prep
            .seq
            .iter()
            .map(|e| TextEdit {
                range: e.range.clone(),
                text: e.text.clone(),
            })
            .collect();
        let prev = ws.text_file(f).expect("checked").doc.version().clone();
        let (new_v, ops) = loop {
            let agent = self.agent_name(conn);
            match ws.edit_ops(f, &agent, Some(&base), &text_edits) {
                Ok(o) => break (o.version, o.applied),
                Err(VfsError::Edit(engine::EditError::AgentNotInBase)) => {
                    // This connection's previous edit is not in the version read: edit as a
                    // fresh engine agent (each agent's events must form a chain).
                    *self.gens.entry(conn).or_insert(0) += 1;
                }
                Err(e) => return Err(ApiError::new(EDIT_REJECTED, e.to_string())),
            }
        };
        changed.push(f);
        let tf = ws.text_file(f).expect("checked");
        let doc = &tf.doc;
        let new_text = doc.to_rope();
        // `ops`: the edit's events as applied to the live text at `prev`, from the merge itself.
        let landed = landed_ranges(doc, &prep.seq, &base, &prev, &ops);
        let out = crate::edits::landed_json(&prep, &new_text, landed, enc);
        let version = doc.remote_version(&new_v);
        self.remember_text(f, new_v.clone(), new_text);
        Ok(json!({
            "path": rel,
            "version": version,
            "encoding": enc.lsp_name(),
            "edits": out,
        }))
    }
}

/// Where each sequenced edit's new text is in the document at `new_v` (char ranges).
/// `ops` are the edit's own events as applied to the live text at `prev`, in order: per edit,
/// its deletes (possibly split or absent) then its inserts (exactly its text, contiguous).
/// An insert's place is exact: its op, moved through the ops of the later edits. A pure
/// deletion's place is its start moved through what the agent had not seen and then through
/// its own ops (`Bias::Right`: text inserted exactly there, by others or by the agent at the
/// same offset, was before the deleted range).
pub(crate) fn landed_ranges(
    doc: &engine::Document,
    seq: &[Edit],
    base: &Frontier,
    prev: &Frontier,
    ops: &[XfOp],
) -> Vec<std::ops::Range<usize>> {
    let unseen: Option<Vec<XfOp>> = seq
        .iter()
        .any(|e| e.text.is_empty())
        .then(|| doc.transform(base, prev).unwrap_or_default());
    let mut out = Vec::with_capacity(seq.len());
    let mut k = 0; // next op
    for e in seq {
        let n = e.text.chars().count();
        if n == 0 {
            out.push(0..0); // filled below
            continue;
        }
        while let Some(XfOp::Delete { .. }) = ops.get(k) {
            k += 1;
        }
        let mut got = 0;
        let mut start = None;
        while got < n {
            match ops.get(k) {
                Some(XfOp::Insert { pos, text }) => {
                    start.get_or_insert(*pos);
                    got += text.chars().count();
                    k += 1;
                }
                _ => break,
            }
        }
        let start = start.unwrap_or(0);
        let at = engine::shift_pos(start, &ops[k.min(ops.len())..], Bias::Right);
        out.push(at..at + n);
    }
    if let Some(unseen) = unseen {
        for (e, r) in seq.iter().zip(out.iter_mut()) {
            if e.text.is_empty() {
                let at = engine::shift_pos(e.range.start, &unseen, Bias::Right);
                let at = engine::shift_pos(at, ops, Bias::Right);
                *r = at..at;
            }
        }
    }
    out
}

/// The workspace path and file id of a text file, or the right error.
pub(crate) fn text_file(ws: &Workspace, input: &str) -> Result<(String, FileId), ApiError> {
    let rel = crate::path::resolve(ws.root(), input)?;
    let f = ws
        .lookup(&rel)
        .ok_or_else(|| ApiError::new(NOT_FOUND, format!("no such file: `{rel}`")))?;
    match ws.state(f) {
        Some(vfs::FileState::Text(_)) => Ok((rel, f)),
        Some(vfs::FileState::NotText { reason, .. }) => Err(ApiError::new(
            NOT_TEXT,
            format!("`{rel}` is not edited as text: {reason}"),
        )),
        _ => Err(ApiError::new(NOT_TEXT, format!("`{rel}` is a folder"))),
    }
}

/// A path matcher for a glob (`*` stays within a folder, `**` crosses folders).
pub fn glob_matcher(glob: Option<&str>) -> Result<Option<globset::GlobMatcher>, ApiError> {
    match glob {
        Some(g) => Ok(Some(
            globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| ApiError::new(INVALID_PARAMS, format!("bad glob `{g}`: {e}")))?
                .compile_matcher(),
        )),
        None => Ok(None),
    }
}

fn list(ws: &mut Workspace, ctx: &Context, p: ListParams) -> Result<Value, ApiError> {
    let matcher = glob_matcher(p.glob.as_deref())?;
    let snap = ws.snapshot();
    let mut files = Vec::new();
    for sf in snap.files().iter() {
        if matcher.as_ref().is_some_and(|m| !m.is_match(&*sf.path)) {
            continue;
        }
        let path: &str = &sf.path;
        match &sf.content {
            SnapContent::Dir => continue,
            SnapContent::Text { text, .. } => {
                let tf = ws.text_file(sf.id);
                // An unbuilt document is at its root version (no events): `{}`.
                let version = tf
                    .and_then(|t| t.doc.built())
                    .map(|d| d.remote_version(d.version()))
                    .unwrap_or_default();
                files.push(json!({
                    "path": path,
                    "text": true,
                    "size": text.len_bytes(),
                    "languageId": lang_id(path),
                    "version": version,
                    "dirty": tf.is_some_and(|t| t.is_dirty()),
                    "open": ctx.open.contains(&sf.id),
                }));
            }
            SnapContent::NotText { reason, len } => files.push(json!({
                "path": path,
                "text": false,
                "size": len,
                "languageId": lang_id(path),
                "notText": reason.to_string(),
                "version": Value::Null,
                "dirty": false,
                "open": ctx.open.contains(&sf.id),
            })),
        }
    }
    Ok(json!({"version": snap.version(), "files": files}))
}

fn read(ws: &mut Workspace, p: ReadParams) -> Result<Value, ApiError> {
    let (rel, f) = text_file(ws, &p.path)?;
    let (text, version): (Rope, RemoteVersion) = match &p.version {
        // Time travel: the text at a version the agent saw earlier.
        Some(rv) => {
            let doc = &ws.text_file(f).expect("checked").doc;
            let v = doc.frontier_of(rv).map_err(|e| {
                let what = format!("`{rel}` has no version {rv:?}: {e}");
                ApiError::version(ws, f, &rel, &e, what)
            })?;
            let text = doc
                .checkout(&v)
                .map_err(|e| ApiError::version(ws, f, &rel, &e, format!("`{rel}`: {e}")))?;
            (text, rv.clone())
        }
        None => {
            let text: Rope = ws.text(f).unwrap_or_default();
            let tf = ws.text_file(f).expect("checked");
            let version = match tf.doc.built() {
                Some(d) => d.remote_version(d.version()),
                None => BTreeMap::new(),
            };
            (text, version)
        }
    };
    let tf = ws.text_file(f).expect("checked");
    let mut out = json!({"path": rel, "version": version, "dirty": tf.is_dirty()});
    line_slice(&text, p.start_line, p.end_line, &mut out)?;
    Ok(out)
}

/// Sets `totalLines` and `text` in `out`: the whole text, or (with `startLine` / `endLine`)
/// the lines `start_line..end_line`, clamped to the text, with `startLine` / `endLine` set.
/// `fs.read` and `branch.read`.
pub(crate) fn line_slice(
    text: &Rope,
    start_line: Option<u64>,
    end_line: Option<u64>,
    out: &mut Value,
) -> Result<(), ApiError> {
    let total = pos::line_count(text) as u64;
    out["totalLines"] = json!(total);
    if start_line.is_none() && end_line.is_none() {
        out["text"] = json!(text.to_string());
        return Ok(());
    }
    let start = start_line.unwrap_or(0).min(total);
    let end = end_line.unwrap_or(total).min(total);
    if end < start {
        return Err(ApiError::new(
            BAD_POSITION,
            format!("endLine {end} is before startLine {start}"),
        ));
    }
    let char_of = |line: u64| -> usize {
        if line >= total {
            text.len_chars()
        } else {
            pos::position_to_char(
                text,
                LspPosition::new(line as u32, 0),
                PositionEncoding::Utf32,
            )
            .unwrap_or(text.len_chars())
        }
    };
    let (a, b) = (char_of(start), char_of(end));
    out["text"] = json!(text.slice(a..b).to_string());
    out["startLine"] = json!(start);
    out["endLine"] = json!(end);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws_with(text: &str) -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.txt"), text).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let ws = Workspace::load(&root, vfs::WorkspaceOptions::default(), &mut |_| {}).unwrap();
        (dir, ws)
    }

    fn call(st: &mut AgentState, ws: &mut Workspace, req: Value) -> Result<Value, ApiError> {
        let p: EditParams = serde_json::from_value(req).unwrap();
        st.handle(ws, &Context::default(), 1, Request::Edit(p))
            .result
    }

    fn read(ws: &mut Workspace) -> Value {
        let p = ReadParams {
            path: "f.txt".into(),
            start_line: None,
            end_line: None,
            version: None,
        };
        super::read(ws, p).unwrap()
    }

    /// A read at an earlier version gives the text as it was then; an unknown version is an
    /// error that changes nothing.
    #[test]
    fn reads_at_past_versions() {
        let (_d, mut ws) = ws_with("abc def ghi");
        let mut st = AgentState::new("t", ChangeFeed::new(16));
        let v0 = read(&mut ws);
        let r = call(
            &mut st,
            &mut ws,
            json!({"path": "f.txt", "version": v0["version"], "edits": [{"offsets": [0, 3], "text": "XYZ"}]}),
        )
        .unwrap();
        let v1 = r["version"].clone();
        call(
            &mut st,
            &mut ws,
            json!({"path": "f.txt", "version": v1, "edits": [{"offsets": [4, 7], "text": "uvw"}]}),
        )
        .unwrap();
        let at = |ws: &mut Workspace, v: &Value| {
            super::read(
                ws,
                ReadParams {
                    path: "f.txt".into(),
                    start_line: None,
                    end_line: None,
                    version: Some(serde_json::from_value(v.clone()).unwrap()),
                },
            )
        };
        assert_eq!(at(&mut ws, &v0["version"]).unwrap()["text"], "abc def ghi");
        assert_eq!(at(&mut ws, &v1).unwrap()["text"], "XYZ def ghi");
        assert_eq!(read(&mut ws)["text"], "XYZ uvw ghi");
        let err = at(&mut ws, &json!({"nobody": 7})).unwrap_err();
        assert_eq!(err.code, UNKNOWN_VERSION);
        assert_eq!(read(&mut ws)["text"], "XYZ uvw ghi");
    }

    fn slice(text: &str, r: &Value) -> String {
        let s = r["start"].as_u64().unwrap() as usize;
        let e = r["end"].as_u64().unwrap() as usize;
        text.chars().skip(s).take(e - s).collect()
    }

    /// Edits made at an old version land where they were meant, whatever happened since:
    /// a replacement, an insert next to a pure deletion, and the pure deletion's place.
    #[test]
    fn edits_at_an_old_version_report_where_they_landed() {
        let (_d, mut ws) = ws_with("abc def ghi");
        let mut st = AgentState::new("t", ChangeFeed::new(4));
        let v0 = read(&mut ws)["version"].clone();
        // Someone else, meanwhile: "XX" at the start, "def" deleted.
        let f = ws.lookup("f.txt").unwrap();
        let base = ws.text_file(f).unwrap().doc.version().clone();
        ws.edit(
            f,
            "other",
            Some(&base),
            &[
                TextEdit {
                    range: 4..7,
                    text: String::new(),
                },
                TextEdit {
                    range: 0..0,
                    text: "XX".into(),
                },
            ],
        )
        .unwrap();
        assert_eq!(read(&mut ws)["text"], "XXabc  ghi");
        // The agent, at v0: "ghi" -> "G", "abc" deleted, "!" inserted right after it.
        let out = call(
            &mut st,
            &mut ws,
            json!({"path": "f.txt", "version": v0, "edits": [
                {"offsets": {"start": 8, "end": 11}, "text": "G"},
                {"offsets": {"start": 0, "end": 3}, "text": ""},
                {"offsets": {"start": 3, "end": 3}, "text": "!"},
            ]}),
        )
        .unwrap();
        let text = read(&mut ws)["text"].as_str().unwrap().to_string();
        assert_eq!(text, "XX!  G");
        let e = out["edits"].as_array().unwrap();
        assert_eq!(slice(&text, &e[0]["offsets"]), "G");
        assert_eq!(e[1]["offsets"], json!({"start": 2, "end": 2}));
        assert_eq!(slice(&text, &e[2]["offsets"]), "!");
        assert_eq!(e[2]["offsets"], json!({"start": 2, "end": 3}));
        // A second edit at v0 by the same connection: its first edit is not in v0, so it
        // edits as a fresh engine agent; the text is right all the same.
        let out2 = call(
            &mut st,
            &mut ws,
            json!({"path": "f.txt", "version": v0, "edits": [
                {"offsets": {"start": 11, "end": 11}, "text": "."}]}),
        )
        .unwrap();
        assert_eq!(read(&mut ws)["text"], "XX!  G.");
        assert_eq!(out2["edits"][0]["offsets"], json!({"start": 6, "end": 7}));
    }

    #[test]
    fn failed_edits_change_nothing() {
        let (_d, mut ws) = ws_with("héllo\nwörld\n");
        let mut st = AgentState::new("t", ChangeFeed::new(4));
        let before = read(&mut ws);
        let v = before["version"].clone();
        for (code, edits) in [
            (
                OVERLAPPING_EDITS,
                json!([{"offsets": {"start": 0, "end": 3}, "text": "a"}, {"offsets": {"start": 1, "end": 2}, "text": "b"}]),
            ),
            (
                BAD_POSITION,
                json!([{"offsets": {"start": 0, "end": 1}, "text": "a"}, {"offsets": {"start": 5, "end": 99}, "text": ""}]),
            ),
            (
                BAD_POSITION,
                json!([{"range": {"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": 3}}, "text": "x"}, {"range": {"start": {"line": 1, "character": -1}, "end": {"line": 1, "character": 0}}, "text": "x"}]),
            ),
            (
                INVALID_PARAMS,
                json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "offsets": {"start": 0, "end": 0}, "text": "x"}]),
            ),
        ] {
            let e = call(
                &mut st,
                &mut ws,
                json!({"path": "f.txt", "version": v, "edits": edits}),
            )
            .unwrap_err();
            assert_eq!(e.code, code, "{e}");
        }
        // UTF-8 position inside "é" (bytes 1..3).
        let e = call(
            &mut st,
            &mut ws,
            json!({"path": "f.txt", "version": v, "encoding": "utf-8", "edits": [
                {"range": {"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": 2}}, "text": "x"}]}),
        )
        .unwrap_err();
        assert_eq!(e.code, BAD_POSITION);
        assert_eq!(read(&mut ws), before);
        assert!(ws.dirty_files().next().is_none());
    }
}
