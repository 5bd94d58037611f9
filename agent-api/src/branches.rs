//! Agent branches: a private, copy-on-write fork of the workspace that an agent edits without
//! anyone seeing it, then diffs against the live workspace and merges (or discards).
//!
//! * **Fork** is O(1): the branch keeps a [`WorkspaceSnapshot`] (a persistent listing: paths,
//!   texts, document versions at the fork) and nothing else. A 100k-file workspace costs the
//!   same as a 1-file one.
//! * **Copy-on-write per document**: the first branch edit of a file creates a private
//!   `engine::Document` whose *root* text is the file's text at the fork (shared with the
//!   snapshot, no copy), plus the file's fork version in the live document (`fork`).
//!   Branch edits are real engine events of a branch agent (`branch#<run>-<id>.<n>`) in that
//!   private document, so they are exactly the events the agent would have made on the live
//!   document at the fork version.
//! * **Merge** hands those events to the live document (`Workspace::apply_events` =
//!   `Document::apply_remote`) with the parents of the first ones rewritten from "the private
//!   root" to the fork version's ids. The engine merges them with everything that happened
//!   meanwhile: the result is by construction the engine's merge of the same events.
//! * **Versions** of a branch file are wire versions of that eventual live document: the
//!   file's fork version plus the branch agents' highest seqs. After a merge they are
//!   versions of the live file too.
//! * Branches live in the writer (one owner; no locks) and belong to the daemon: any
//!   authenticated connection may use a branch id; all are dropped when the daemon stops.
//!   Nothing of a branch is ever written to disk or shown to editors before its merge.
//! * A request that fails changes nothing, the merge included: every conflict (a file deleted
//!   live, a created path taken live) is found before anything is applied.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use engine::{Document, Frontier, RemoteVersion, Rope, XfOp};
use serde::Deserialize;
use serde_json::{json, Value};
use vfs::pos::PositionEncoding;
use vfs::{FileId, SnapContent, SnapText, VfsError, Workspace, WorkspaceSnapshot, WsVersion};

use crate::edits::{self, encoding_of};
use crate::error::*;
use crate::read::line_slice;
use crate::types::EditSpec;

/// Most branches open at once (each holds a snapshot and its private documents).
pub const MAX_BRANCHES: usize = 256;

/// The JSON-RPC methods of this module (registered by the server; see README.md).
pub const METHODS: &[&str] = &[
    "branch.fork",
    "branch.list",
    "branch.read",
    "branch.edit",
    "branch.create",
    "branch.delete",
    "branch.diff",
    "branch.merge",
    "branch.discard",
];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkParams {
    /// A label for people (`branch.list` shows it); the id is the daemon's.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchParams {
    pub branch: String,
    /// Encoding of the `range`s in the reply (`branch.merge`); utf-16 when absent.
    #[serde(default)]
    pub encoding: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchReadParams {
    pub branch: String,
    pub path: String,
    #[serde(default)]
    pub start_line: Option<u64>,
    #[serde(default)]
    pub end_line: Option<u64>,
    /// A version of this file on this branch (one returned by an earlier branch call).
    #[serde(default)]
    pub version: Option<RemoteVersion>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchEditParams {
    pub branch: String,
    pub path: String,
    pub version: RemoteVersion,
    #[serde(default)]
    pub encoding: Option<String>,
    pub edits: Vec<EditSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchCreateParams {
    pub branch: String,
    pub path: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchPathParams {
    pub branch: String,
    pub path: String,
}

/// A parsed `branch.*` request.
#[derive(Clone, Debug)]
pub enum BranchRequest {
    Fork(ForkParams),
    List,
    Read(BranchReadParams),
    Edit(BranchEditParams),
    Create(BranchCreateParams),
    Delete(BranchPathParams),
    Diff(BranchParams),
    Merge(BranchParams),
    Discard(BranchParams),
}

fn params<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    crate::types::params_by_name(raw)?;
    serde_json::from_str(raw.unwrap_or("null"))
        .map_err(|e| ApiError::new(INVALID_PARAMS, format!("invalid params: {e}")))
}

/// Parses the params (a JSON object, or absent) of one of [`METHODS`].
pub fn parse(method: &str, raw: Option<&str>) -> Result<BranchRequest, ApiError> {
    Ok(match method {
        "branch.fork" => BranchRequest::Fork(match raw {
            None => ForkParams::default(),
            r => params(r)?,
        }),
        "branch.list" => BranchRequest::List,
        "branch.read" => BranchRequest::Read(params(raw)?),
        "branch.edit" => BranchRequest::Edit(params(raw)?),
        "branch.create" => BranchRequest::Create(params(raw)?),
        "branch.delete" => BranchRequest::Delete(params(raw)?),
        "branch.diff" => BranchRequest::Diff(params(raw)?),
        "branch.merge" => BranchRequest::Merge(params(raw)?),
        "branch.discard" => BranchRequest::Discard(params(raw)?),
        _ => {
            return Err(ApiError::new(
                INVALID_PARAMS,
                format!("unknown method {method}"),
            ))
        }
    })
}

/// A file the branch has changed (edited, or created on the branch).
struct BranchFile {
    /// The live file it was forked from; `None` for a file created on the branch.
    live: Option<FileId>,
    /// The file's version in the live document at the fork (LVs of that document).
    fork: Frontier,
    /// The same as a wire version.
    fork_rv: RemoteVersion,
    /// Private document: root text = the file at the fork; events = the branch's edits.
    doc: Document,
    /// Branch agent generation (bumped when an edit's base lacks the agent's last edit).
    gen: u32,
}

struct AgentBranch {
    name: Option<String>,
    /// Who forked it (for `branch.list`; any connection may use it).
    forked_by: u64,
    /// The whole workspace at the fork (O(1), shared with the live listing).
    snap: WorkspaceSnapshot,
    /// Changed files by path (the path at the fork, or the path created).
    files: BTreeMap<String, BranchFile>,
    /// Files of the fork deleted on the branch.
    deleted: BTreeSet<String>,
}

/// Every open branch; owned by the writer (inside `AgentState`).
pub struct Branches {
    run_id: String,
    next: u64,
    open: BTreeMap<String, AgentBranch>,
}

impl Branches {
    /// The live versions open branches were forked at (compaction keeps them): each changed
    /// file's fork, and every snapshot file whose live document has history.
    pub(crate) fn retained(
        &self,
        ws: &Workspace,
        out: &mut std::collections::HashMap<FileId, Vec<Frontier>>,
    ) {
        for b in self.open.values() {
            for bf in b.files.values() {
                if let Some(f) = bf.live {
                    out.entry(f).or_default().push(bf.fork.clone());
                }
            }
            for sf in b.snap.files().iter() {
                if let SnapContent::Text { version, .. } = &sf.content {
                    if ws.text_file(sf.id).is_some_and(|t| t.doc.is_built()) {
                        out.entry(sf.id).or_default().push(version.clone());
                    }
                }
            }
        }
    }
}

/// What a branch request did to the live workspace (only `branch.merge` changes it).
pub struct BranchOutcome {
    pub result: Result<Value, ApiError>,
    pub changed: Vec<FileId>,
}

/// A file as the branch sees it.
enum View<'a> {
    /// Unchanged since the fork: the snapshot's text and the live document's fork version.
    Forked {
        id: FileId,
        text: &'a SnapText,
        version: &'a Frontier,
    },
    Changed(&'a BranchFile),
}

/// The live document's wire version of `v` (an LV frontier of file `f`'s document), or
/// `None` when `v` is not (any more) a version of it.
fn live_rv(ws: &Workspace, f: FileId, v: &Frontier) -> Option<RemoteVersion> {
    let tf = ws.text_file(f)?;
    match tf.doc.built() {
        None => v.is_root().then(RemoteVersion::new),
        Some(doc) => v
            .as_slice()
            .iter()
            .all(|lv| *lv < doc.oplog().len())
            .then(|| doc.remote_version(v)),
    }
}

fn with_prefix(prefix: &str, rv: &RemoteVersion) -> (RemoteVersion, RemoteVersion) {
    let mut own = RemoteVersion::new();
    let mut rest = RemoteVersion::new();
    for (k, v) in rv {
        if k.starts_with(prefix) {
            own.insert(k.clone(), *v);
        } else {
            rest.insert(k.clone(), *v);
        }
    }
    (own, rest)
}

impl BranchFile {
    fn version(&self) -> RemoteVersion {
        let mut v = self.fork_rv.clone();
        v.extend(self.doc.remote_version(self.doc.version()));
        v
    }
}

/// Final char ranges, in the text after `ops` (sequential), of the text `ops` inserted;
/// adjacent ranges are joined.
pub(crate) fn inserted_ranges(ops: &[XfOp]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for op in ops {
        match op {
            XfOp::Insert { pos, text } => {
                let n = text.chars().count();
                for r in out.iter_mut() {
                    if r.start >= *pos {
                        r.start += n;
                        r.end += n;
                    } else if r.end > *pos {
                        r.end += n; // inserted inside an inserted range: it grows
                    }
                }
                out.push(*pos..*pos + n);
            }
            XfOp::Delete { pos, len } => {
                let (a, b) = (*pos, *pos + *len);
                let clip = |x: usize| {
                    if x <= a {
                        x
                    } else if x >= b {
                        x - len
                    } else {
                        a
                    }
                };
                for r in out.iter_mut() {
                    *r = clip(r.start)..clip(r.end);
                }
                out.retain(|r| !r.is_empty());
            }
        }
    }
    out.sort_by_key(|r| r.start);
    let mut joined: Vec<Range<usize>> = Vec::with_capacity(out.len());
    for r in out {
        match joined.last_mut() {
            Some(l) if l.end >= r.start => l.end = l.end.max(r.end),
            _ => joined.push(r),
        }
    }
    joined
}

fn unknown_branch(id: &str) -> ApiError {
    ApiError::new(
        UNKNOWN_BRANCH,
        format!("no open branch `{id}` (never forked, merged, discarded, or the daemon restarted)"),
    )
}

impl AgentBranch {
    /// The file at workspace path `rel` as this branch sees it.
    fn view(&self, rel: &str) -> Result<View<'_>, ApiError> {
        if self.deleted.contains(rel) {
            return Err(ApiError::new(
                NOT_FOUND,
                format!("`{rel}` is deleted on this branch"),
            ));
        }
        if let Some(bf) = self.files.get(rel) {
            return Ok(View::Changed(bf));
        }
        match self.snap.get(rel).map(|sf| (sf.id, &sf.content)) {
            Some((id, SnapContent::Text { text, version })) => {
                Ok(View::Forked { id, text, version })
            }
            Some((_, SnapContent::NotText { reason, .. })) => Err(ApiError::new(
                NOT_TEXT,
                format!("`{rel}` is not edited as text: {reason}"),
            )),
            Some((_, SnapContent::Dir)) => {
                Err(ApiError::new(NOT_TEXT, format!("`{rel}` is a folder")))
            }
            None => Err(ApiError::new(
                NOT_FOUND,
                format!("no such file on this branch: `{rel}`"),
            )),
        }
    }
}

impl Branches {
    pub fn new(run_id: &str) -> Branches {
        Branches {
            run_id: run_id.to_string(),
            next: 1,
            open: BTreeMap::new(),
        }
    }

    /// Number of open branches.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn agent_prefix(&self, id: &str) -> String {
        format!("branch#{}-{id}.", self.run_id)
    }

    /// Answer one `branch.*` request (on the writer thread).
    pub fn handle(&mut self, ws: &mut Workspace, conn: u64, req: BranchRequest) -> BranchOutcome {
        let mut changed = Vec::new();
        let result = match req {
            BranchRequest::Fork(p) => self.fork(ws, conn, p),
            BranchRequest::List => Ok(self.list()),
            BranchRequest::Read(p) => self.read(ws, p),
            BranchRequest::Edit(p) => self.edit(ws, p),
            BranchRequest::Create(p) => self.create(ws, p),
            BranchRequest::Delete(p) => self.delete(ws, p),
            BranchRequest::Diff(p) => self.diff(ws, p),
            BranchRequest::Merge(p) => self.merge(ws, p, &mut changed),
            BranchRequest::Discard(p) => match self.open.remove(&p.branch) {
                Some(_) => Ok(json!({"branch": p.branch, "discarded": true})),
                None => Err(unknown_branch(&p.branch)),
            },
        };
        BranchOutcome { result, changed }
    }

    fn fork(&mut self, ws: &mut Workspace, conn: u64, p: ForkParams) -> Result<Value, ApiError> {
        if self.open.len() >= MAX_BRANCHES {
            return Err(ApiError::new(
                TOO_MANY_BRANCHES,
                format!("{MAX_BRANCHES} branches are open: merge or discard some first"),
            ));
        }
        let id = format!("b{}", self.next);
        self.next += 1;
        let snap = ws.snapshot();
        let version: WsVersion = snap.version();
        self.open.insert(
            id.clone(),
            AgentBranch {
                name: p.name.clone(),
                forked_by: conn,
                snap,
                files: BTreeMap::new(),
                deleted: BTreeSet::new(),
            },
        );
        Ok(json!({"branch": id, "name": p.name, "version": version}))
    }

    fn list(&self) -> Value {
        let branches: Vec<Value> = self
            .open
            .iter()
            .map(|(id, b)| {
                let created: Vec<&String> = b
                    .files
                    .iter()
                    .filter(|(_, f)| f.live.is_none())
                    .map(|(p, _)| p)
                    .collect();
                let modified: Vec<&String> = b
                    .files
                    .iter()
                    .filter(|(_, f)| f.live.is_some())
                    .map(|(p, _)| p)
                    .collect();
                json!({
                    "branch": id,
                    "name": b.name,
                    "version": b.snap.version(),
                    "forkedBy": b.forked_by,
                    "modified": modified,
                    "created": created,
                    "deleted": b.deleted,
                })
            })
            .collect();
        json!({ "branches": branches })
    }

    fn branch(&self, id: &str) -> Result<&AgentBranch, ApiError> {
        self.open.get(id).ok_or_else(|| unknown_branch(id))
    }

    fn read(&self, ws: &Workspace, p: BranchReadParams) -> Result<Value, ApiError> {
        let b = self.branch(&p.branch)?;
        let rel = crate::path::resolve(ws.root(), &p.path)?;
        let prefix = self.agent_prefix(&p.branch);
        let (text, version): (Rope, RemoteVersion) = match b.view(&rel)? {
            View::Forked { id, text, version } => {
                let rv = live_rv(ws, id, version).ok_or_else(|| gone(&rel))?;
                if let Some(asked) = &p.version {
                    if *asked != rv {
                        return Err(not_branch_version(&p.branch, &rel, asked));
                    }
                }
                (text.to_rope(), rv)
            }
            View::Changed(bf) => match &p.version {
                None => (bf.doc.to_rope(), bf.version()),
                Some(asked) => {
                    let v = branch_frontier(bf, &prefix, asked)
                        .ok_or_else(|| not_branch_version(&p.branch, &rel, asked))?;
                    let text = bf
                        .doc
                        .checkout(&v)
                        .map_err(|e| ApiError::new(NOT_BRANCH_VERSION, e.to_string()))?;
                    (text, asked.clone())
                }
            },
        };
        let mut out = json!({"branch": p.branch, "path": rel, "version": version});
        line_slice(&text, p.start_line, p.end_line, &mut out)?;
        Ok(out)
    }

    fn edit(&mut self, ws: &Workspace, p: BranchEditParams) -> Result<Value, ApiError> {
        let enc = encoding_of(p.encoding.as_deref())?;
        let prefix = self.agent_prefix(&p.branch);
        let b = self
            .open
            .get_mut(&p.branch)
            .ok_or_else(|| unknown_branch(&p.branch))?;
        let rel = crate::path::resolve(ws.root(), &p.path)?;
        // Copy-on-write: a file edited for the first time gets its private document now.
        let fresh: Option<BranchFile> = match b.view(&rel)? {
            View::Forked { id, text, version } => {
                let fork_rv = live_rv(ws, id, version).ok_or_else(|| gone(&rel))?;
                Some(BranchFile {
                    live: Some(id),
                    fork: version.clone(),
                    fork_rv,
                    doc: Document::from_text(text.to_rope()),
                    gen: 0,
                })
            }
            View::Changed(_) => None,
        };
        match fresh {
            Some(mut bf) => {
                let (out, made) = edit_file(&mut bf, &prefix, &p, &rel, enc)?;
                if made {
                    b.files.insert(rel, bf);
                }
                Ok(out)
            }
            None => {
                let bf = b.files.get_mut(&rel).expect("viewed as changed");
                edit_file(bf, &prefix, &p, &rel, enc).map(|(out, _)| out)
            }
        }
    }

    fn create(&mut self, ws: &mut Workspace, p: BranchCreateParams) -> Result<Value, ApiError> {
        let prefix = self.agent_prefix(&p.branch);
        let b = self
            .open
            .get_mut(&p.branch)
            .ok_or_else(|| unknown_branch(&p.branch))?;
        let rel = crate::path::resolve(ws.root(), &p.path)?;
        crate::path::check_new(ws, &rel, false)?;
        if b.deleted.contains(&rel) {
            return Err(ApiError::new(
                FILE_EXISTS,
                format!("`{rel}` was deleted on this branch; a new file cannot take its place before the merge"),
            ));
        }
        if b.files.contains_key(&rel) || b.snap.get(&rel).is_some() {
            return Err(ApiError::new(
                FILE_EXISTS,
                format!("`{rel}` already exists on this branch"),
            ));
        }
        // A folder of the fork cannot become a file, nor a file a folder.
        let mut dir = rel.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            dir = parent;
            if let Some(sf) = b.snap.get(dir) {
                if !matches!(sf.content, SnapContent::Dir) {
                    return Err(ApiError::new(
                        FILE_EXISTS,
                        format!("`{dir}` is a file, not a folder"),
                    ));
                }
            }
        }
        if b.files.keys().any(|k| k.starts_with(&format!("{rel}/"))) {
            return Err(ApiError::new(
                FILE_EXISTS,
                format!("`{rel}` is a folder on this branch"),
            ));
        }
        let mut doc = Document::new();
        let name = format!("{prefix}0");
        let agent = doc
            .try_agent(&name)
            .map_err(|e| ApiError::new(EDIT_REJECTED, e.to_string()))?;
        doc.insert(agent, 0, &p.text)
            .map_err(|e| ApiError::new(EDIT_REJECTED, e.to_string()))?;
        let bf = BranchFile {
            live: None,
            fork: Frontier::root(),
            fork_rv: RemoteVersion::new(),
            doc,
            gen: 0,
        };
        let version = bf.version();
        b.files.insert(rel.clone(), bf);
        Ok(json!({"branch": p.branch, "path": rel, "version": version}))
    }

    fn delete(&mut self, ws: &Workspace, p: BranchPathParams) -> Result<Value, ApiError> {
        let b = self
            .open
            .get_mut(&p.branch)
            .ok_or_else(|| unknown_branch(&p.branch))?;
        let rel = crate::path::resolve(ws.root(), &p.path)?;
        let created_here = match b.view(&rel)? {
            View::Changed(bf) => bf.live.is_none(),
            View::Forked { .. } => false,
        };
        b.files.remove(&rel);
        if !created_here {
            b.deleted.insert(rel.clone());
        }
        Ok(json!({"branch": p.branch, "path": rel, "deleted": true}))
    }

    fn diff(&self, ws: &mut Workspace, p: BranchParams) -> Result<Value, ApiError> {
        let b = self.branch(&p.branch)?;
        let mut files = Vec::new();
        for (rel, bf) in &b.files {
            let branch_text = bf.doc.to_rope().to_string();
            let branch_version = bf.version();
            let (status, live_path, live_text, live_version) = match bf.live {
                Some(id) => {
                    let path = ws.path(id).map(str::to_string);
                    let live = live_now(ws, id);
                    (
                        "modified",
                        path,
                        live.as_ref().map(|l| l.0.clone()),
                        live.map(|l| l.1),
                    )
                }
                None => {
                    // A file created on the branch; the live workspace may have one there now.
                    let id = ws.lookup(rel).filter(|f| ws.text_file(*f).is_some());
                    let live = id.and_then(|f| live_now(ws, f));
                    (
                        "created",
                        id.map(|_| rel.clone()),
                        live.as_ref().map(|l| l.0.clone()),
                        live.map(|l| l.1),
                    )
                }
            };
            let old_name = match &live_path {
                Some(lp) if live_text.is_some() => format!("a/{lp}"),
                _ => "/dev/null".to_string(),
            };
            let diff = vfs::diff::unified_diff(
                live_text.as_deref().unwrap_or(""),
                &branch_text,
                &old_name,
                &format!("b/{rel}"),
            );
            files.push(json!({
                "path": rel,
                "status": status,
                "livePath": live_path,
                "forkVersion": if bf.live.is_some() { json!(bf.fork_rv) } else { Value::Null },
                "branchVersion": branch_version,
                "liveVersion": live_version,
                "diff": diff,
            }));
        }
        for rel in &b.deleted {
            let Some(sf) = b.snap.get(rel) else { continue };
            let id = sf.id;
            let live_path = ws.path(id).map(str::to_string);
            let live = live_now(ws, id);
            let diff = match (&live_path, &live) {
                (Some(lp), Some((t, _))) => {
                    vfs::diff::unified_diff(t, "", &format!("a/{lp}"), "/dev/null")
                }
                _ => String::new(),
            };
            let fork_rv = match &sf.content {
                SnapContent::Text { version, .. } => live_rv(ws, id, version).map(|v| json!(v)),
                _ => None,
            };
            files.push(json!({
                "path": rel,
                "status": "deleted",
                "livePath": live_path,
                "forkVersion": fork_rv,
                "branchVersion": Value::Null,
                "liveVersion": live.map(|l| l.1),
                "diff": diff,
            }));
        }
        Ok(json!({"branch": p.branch, "version": ws.version(), "files": files}))
    }

    fn merge(
        &mut self,
        ws: &mut Workspace,
        p: BranchParams,
        changed: &mut Vec<FileId>,
    ) -> Result<Value, ApiError> {
        let enc = encoding_of(p.encoding.as_deref())?;
        let b = self.branch(&p.branch)?;
        // 1. Find every conflict before changing anything.
        for (rel, bf) in &b.files {
            match bf.live {
                Some(id) => {
                    if ws.path(id).is_none() || ws.text_file(id).is_none() {
                        return Err(ApiError::new(
                            MERGE_CONFLICT,
                            format!("`{rel}` was deleted in the workspace since the fork: read it from the branch, discard, and create it again"),
                        ));
                    }
                    if live_rv(ws, id, &bf.fork).is_none() {
                        return Err(gone(rel));
                    }
                }
                None => {
                    crate::path::resolve(ws.root(), rel)?;
                    if ws.lookup(rel).is_some() {
                        return Err(ApiError::new(
                            MERGE_CONFLICT,
                            format!("`{rel}` was created on the branch and in the workspace since the fork"),
                        ));
                    }
                    let mut dir = rel.as_str();
                    while let Some((parent, _)) = dir.rsplit_once('/') {
                        dir = parent;
                        let is_dir = ws
                            .lookup(dir)
                            .map(|d| matches!(ws.state(d), Some(vfs::FileState::Dir)));
                        if is_dir == Some(false) {
                            return Err(ApiError::new(
                                MERGE_CONFLICT,
                                format!("`{rel}` was created on the branch, but `{dir}` is a file in the workspace now"),
                            ));
                        }
                    }
                }
            }
        }
        // 2. Apply: each file's branch events, parented on its fork version.
        let b = self.open.remove(&p.branch).expect("checked");
        let mut files = Vec::new();
        for (rel, bf) in &b.files {
            let id = match bf.live {
                Some(id) => id,
                None => ws
                    .create_file(rel, "")
                    .map_err(|e| partial(&p.branch, rel, &e))?,
            };
            let fork_ids = match ws.text_file(id).and_then(|t| t.doc.built()) {
                Some(doc) => doc.frontier_ids(&bf.fork),
                None => Vec::new(), // an unbuilt document is at its root version
            };
            let events: Vec<engine::RemoteEvent> = bf
                .doc
                .all_events()
                .into_iter()
                .map(|mut e| {
                    if e.parents.is_empty() {
                        e.parents = fork_ids.clone();
                    }
                    e
                })
                .collect();
            let report = ws
                .apply_events(id, &events)
                .map_err(|e| partial(&p.branch, rel, &e))?;
            changed.push(id);
            let text = ws.text(id).unwrap_or_default();
            let doc = &ws.text_file(id).expect("text file").doc;
            let version = match doc.built() {
                Some(d) => d.remote_version(d.version()),
                None => RemoteVersion::new(),
            };
            let landed: Vec<Value> = inserted_ranges(&report.applied)
                .into_iter()
                .map(|r| edits::range_json(&text, r, enc))
                .collect();
            files.push(json!({
                "path": ws.path(id).unwrap_or(rel),
                "status": if bf.live.is_some() { "modified" } else { "created" },
                "version": version,
                "inserted": landed,
                "events": report.new_events,
            }));
        }
        for rel in &b.deleted {
            let Some(id) = b.snap.get(rel).map(|sf| sf.id) else {
                continue;
            };
            let Some(now) = ws.path(id).map(str::to_string) else {
                files.push(json!({"path": rel, "status": "deleted", "deleted": true}));
                continue;
            };
            ws.delete(&now).map_err(|e| partial(&p.branch, rel, &e))?;
            let kept = ws.path(id).is_some();
            changed.push(id);
            files.push(json!({"path": now, "status": "deleted", "deleted": !kept}));
        }
        Ok(json!({
            "branch": p.branch,
            "merged": true,
            "version": ws.version(),
            "encoding": enc.lsp_name(),
            "files": files,
        }))
    }
}

/// The live text and wire version of file `f` now.
fn live_now(ws: &mut Workspace, f: FileId) -> Option<(String, RemoteVersion)> {
    let text = ws.text_snap(f)?.to_string();
    let tf = ws.text_file(f)?;
    let v = match tf.doc.built() {
        Some(d) => d.remote_version(d.version()),
        None => RemoteVersion::new(),
    };
    Some((text, v))
}

/// A merge step that failed after the checks (should not happen): what was merged stays.
fn partial(branch: &str, rel: &str, e: &VfsError) -> ApiError {
    ApiError::new(
        EDIT_REJECTED,
        format!("merging branch `{branch}` failed at `{rel}` (files before it are merged, the branch is closed): {e}"),
    )
}

/// One `branch.edit` on a branch file (a fresh copy or one already changed). Returns the reply
/// and whether an event was made.
fn edit_file(
    bf: &mut BranchFile,
    prefix: &str,
    p: &BranchEditParams,
    rel: &str,
    enc: PositionEncoding,
) -> Result<(Value, bool), ApiError> {
    let base = branch_frontier(bf, prefix, &p.version)
        .ok_or_else(|| not_branch_version(&p.branch, rel, &p.version))?;
    let base_text = bf
        .doc
        .checkout(&base)
        .map_err(|e| ApiError::new(NOT_BRANCH_VERSION, e.to_string()))?;
    let prep = edits::prepare(&base_text, &p.edits, enc)?;
    if prep.is_noop() {
        let out = json!({"branch": p.branch, "path": rel, "version": bf.version(),
                         "encoding": enc.lsp_name(), "edits": []});
        return Ok((out, false));
    }
    let prev = bf.doc.version().clone();
    let out = loop {
        let name = format!("{prefix}{}", bf.gen);
        let agent = bf
            .doc
            .try_agent(&name)
            .map_err(|e| ApiError::new(EDIT_REJECTED, e.to_string()))?;
        match bf.doc.edit_at(agent, &base, &prep.seq) {
            Ok(out) => break out,
            // The agent's last edit is not in `base`: continue as a fresh agent (each
            // agent's events must form a chain).
            Err(engine::EditError::AgentNotInBase) => bf.gen += 1,
            Err(e) => return Err(ApiError::new(EDIT_REJECTED, e.to_string())),
        }
    };
    let new_text = bf.doc.to_rope();
    let landed = crate::edit::landed_ranges(&bf.doc, &prep.seq, &base, &prev, &out.applied);
    let edits_out = edits::landed_json(&prep, &new_text, landed, enc);
    let reply = json!({"branch": p.branch, "path": rel, "version": bf.version(),
                       "encoding": enc.lsp_name(), "edits": edits_out});
    Ok((reply, true))
}

fn gone(rel: &str) -> ApiError {
    ApiError::new(
        NOT_FOUND,
        format!("`{rel}` is no longer a text file of the workspace"),
    )
}

fn not_branch_version(branch: &str, rel: &str, v: &RemoteVersion) -> ApiError {
    ApiError::new(
        NOT_BRANCH_VERSION,
        format!(
            "{v:?} is not a version of `{rel}` on branch `{branch}` (use one read from this branch)"
        ),
    )
}

/// The private document's frontier for a branch version, or `None` when it is not one.
fn branch_frontier(bf: &BranchFile, prefix: &str, rv: &RemoteVersion) -> Option<Frontier> {
    let (own, rest) = with_prefix(prefix, rv);
    if rest != bf.fork_rv {
        return None;
    }
    bf.doc.frontier_of(&own).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(pos: usize, text: &str) -> XfOp {
        XfOp::Insert {
            pos,
            text: text.into(),
        }
    }

    #[test]
    fn inserted_ranges_follow_later_ops() {
        // "abc" at 0, "X" inside it, "yy" elsewhere, then part of "abc" deleted.
        let ops = [
            ins(0, "abc"),
            ins(1, "X"),
            ins(10, "yy"),
            XfOp::Delete { pos: 2, len: 2 },
        ];
        // a X b c -> delete "bc" (2..4) -> "aX" at 0..2; "yy" moved from 10 to 8.
        assert_eq!(inserted_ranges(&ops), vec![0..2, 8..10]);
        // Adjacent inserts are joined; a deletion before a range moves it.
        let ops = [ins(5, "ab"), ins(7, "cd"), XfOp::Delete { pos: 0, len: 3 }];
        assert_eq!(inserted_ranges(&ops), vec![2..6]);
        assert!(inserted_ranges(&[XfOp::Delete { pos: 0, len: 1 }]).is_empty());
    }

    fn ws_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        for (p, t) in files {
            std::fs::write(dir.path().join(p), t).unwrap();
        }
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let ws = Workspace::load(&root, vfs::WorkspaceOptions::default(), &mut |_| {}).unwrap();
        (dir, ws)
    }

    fn req(method: &str, params: Value) -> BranchRequest {
        parse(method, Some(&params.to_string())).unwrap()
    }

    /// A fork copies nothing; a file is copied on its first branch edit only; a no-op edit
    /// copies nothing; live edits after the fork do not show on the branch; the merge leaves
    /// both sides' edits and reports the new version.
    #[test]
    fn copy_on_write_and_merge_in_process() {
        let (_d, mut ws) = ws_with(&[("a.txt", "alpha\n"), ("b.txt", "beta\n")]);
        let mut br = Branches::new("t");
        let mut call = |ws: &mut Workspace, m: &str, p: Value| br.handle(ws, 1, req(m, p));
        let fork = call(&mut ws, "branch.fork", json!({})).result.unwrap();
        let b = fork["branch"].as_str().unwrap().to_string();
        let out = call(
            &mut ws,
            "branch.edit",
            json!({"branch": b, "path": "a.txt", "version": {}, "edits": []}),
        );
        assert_eq!(out.result.unwrap()["edits"], json!([]));
        let list = call(&mut ws, "branch.list", json!({})).result.unwrap();
        assert_eq!(list["branches"][0]["modified"], json!([]));
        // Live edit after the fork: not on the branch.
        let f = ws.lookup("a.txt").unwrap();
        ws.edit(
            f,
            "human",
            None,
            &[vfs::diff::TextEdit {
                range: 0..0,
                text: ">".into(),
            }],
        )
        .unwrap();
        let r = call(
            &mut ws,
            "branch.read",
            json!({"branch": b, "path": "a.txt"}),
        )
        .result
        .unwrap();
        assert_eq!(r["text"], "alpha\n");
        assert_eq!(r["version"], json!({}));
        let e = call(
            &mut ws,
            "branch.edit",
            json!({"branch": b, "path": "a.txt", "version": {},
                   "edits": [{"offsets": {"start": 5, "end": 5}, "text": "!"}]}),
        )
        .result
        .unwrap();
        assert_eq!(e["version"], json!({"branch#t-b1.0": 0}));
        let list = call(&mut ws, "branch.list", json!({})).result.unwrap();
        assert_eq!(list["branches"][0]["modified"], json!(["a.txt"]));
        assert_eq!(ws.text(f).unwrap(), ">alpha\n");
        let m = call(&mut ws, "branch.merge", json!({"branch": b}));
        assert_eq!(m.changed, vec![f]);
        let m = m.result.unwrap();
        assert_eq!(ws.text(f).unwrap(), ">alpha!\n");
        assert_eq!(
            m["files"][0]["inserted"][0]["offsets"],
            json!({"start": 6, "end": 7})
        );
        assert_eq!(
            m["files"][0]["version"],
            json!({"human": 0, "branch#t-b1.0": 0})
        );
        // Closed.
        let again = call(&mut ws, "branch.merge", json!({"branch": b}));
        assert_eq!(again.result.unwrap_err().code, UNKNOWN_BRANCH);
        assert!(again.changed.is_empty());
        // A file created on a branch under a folder that became a file live: a conflict,
        // nothing merged, the branch stays open.
        let b2 = call(&mut ws, "branch.fork", json!({})).result.unwrap()["branch"].clone();
        call(
            &mut ws,
            "branch.create",
            json!({"branch": b2, "path": "d/x.txt", "text": "x"}),
        )
        .result
        .unwrap();
        ws.create_file("d", "a file").unwrap();
        let v = ws.version();
        let m = call(&mut ws, "branch.merge", json!({"branch": b2}));
        assert_eq!(m.result.unwrap_err().code, MERGE_CONFLICT);
        assert!(m.changed.is_empty());
        assert_eq!(ws.version(), v);
        assert!(ws.lookup("d/x.txt").is_none());
        let list = call(&mut ws, "branch.list", json!({})).result.unwrap();
        assert_eq!(list["branches"][0]["created"], json!(["d/x.txt"]));
    }
}
