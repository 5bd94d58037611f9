//! Anchors: a position (or range) in a document that follows the edits made after it.
//!
//! An anchor stores its file (by identity: renames keep it), the document version its offsets
//! refer to, and the offsets. Resolving moves it to the current version with the engine: the
//! positional ops `Document::transform(anchor version, now)` (which include edits concurrent
//! with the anchor's version, transformed) shift it (`engine::shift_pos`); the result is
//! stored, so the next resolve only replays what happened since. Text inserted exactly at a
//! position anchor goes before it with `bias: "right"` (default) and after it with `"left"`;
//! a range anchor does not grow with text inserted at its ends, and collapses when its text
//! is deleted.

use std::collections::HashMap;

use engine::{Bias, Frontier, RemoteVersion};
use serde::Deserialize;
use serde_json::{json, Value};
use vfs::pos::{self, LspPosition};
use vfs::{FileId, Workspace};

use crate::error::*;
use crate::read::text_file;
use crate::types::{encoding_of, pos_json, Position};

/// Most anchors alive at once (per daemon).
pub const MAX_ANCHORS: usize = 100_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateParams {
    pub path: String,
    /// The version the position refers to (as returned by `fs.read` / `fs.edit`).
    pub version: RemoteVersion,
    /// Exactly one of `position` (line/character in `encoding`) or `offset` (chars).
    #[serde(default)]
    pub position: Option<Position>,
    #[serde(default)]
    pub offset: Option<i64>,
    /// For a range anchor: its end, as `endPosition` or `endOffset`.
    #[serde(default)]
    pub end_position: Option<Position>,
    #[serde(default)]
    pub end_offset: Option<i64>,
    /// `"right"` (default) or `"left"`; position anchors only.
    #[serde(default)]
    pub bias: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdParams {
    pub id: u64,
    /// Unit of the returned `character`s (resolve only; default utf-16).
    #[serde(default)]
    pub encoding: Option<String>,
}

#[derive(Clone, Debug)]
pub enum AnchorRequest {
    Create(CreateParams),
    Resolve(IdParams),
    Delete(IdParams),
}

struct Anchor {
    file: FileId,
    version: Frontier,
    start: usize,
    end: Option<usize>,
    bias: Bias,
}

#[derive(Default)]
pub struct Anchors {
    next: u64,
    map: HashMap<u64, Anchor>,
}

impl Anchors {
    /// Every anchor's version (kept from compaction until the anchor is resolved again).
    pub(crate) fn retained(&self, out: &mut HashMap<FileId, Vec<Frontier>>) {
        for a in self.map.values() {
            out.entry(a.file).or_default().push(a.version.clone());
        }
    }

    pub fn handle(&mut self, ws: &mut Workspace, r: AnchorRequest) -> Result<Value, ApiError> {
        match r {
            AnchorRequest::Create(p) => self.create(ws, p),
            AnchorRequest::Resolve(p) => self.resolve(ws, p),
            AnchorRequest::Delete(p) => match self.map.remove(&p.id) {
                Some(_) => Ok(json!({"id": p.id, "deleted": true})),
                None => Err(unknown(p.id)),
            },
        }
    }

    fn create(&mut self, ws: &mut Workspace, p: CreateParams) -> Result<Value, ApiError> {
        let enc = encoding_of(p.encoding.as_deref())?;
        let bias = match p.bias.as_deref() {
            None | Some("right") => Bias::Right,
            Some("left") => Bias::Left,
            Some(b) => {
                return Err(ApiError::new(
                    INVALID_PARAMS,
                    format!("unknown bias `{b}` (use left or right)"),
                ))
            }
        };
        if self.map.len() >= MAX_ANCHORS {
            return Err(ApiError::new(
                LIMIT,
                format!("{MAX_ANCHORS} anchors exist: delete some first"),
            ));
        }
        let (rel, f) = text_file(ws, &p.path)?;
        let doc = &ws.text_file(f).expect("checked").doc;
        let version = doc.frontier_of(&p.version).map_err(|e| {
            let what = format!("`{rel}` has no version {:?}: {e}", p.version);
            ApiError::version(ws, f, &rel, &e, what)
        })?;
        let text = if version == *doc.version() {
            doc.to_rope()
        } else {
            doc.checkout(&version)
                .map_err(|e| ApiError::version(ws, f, &rel, &e, format!("`{rel}`: {e}")))?
        };
        let len = text.len_chars() as i64;
        let to_char = |what: &str,
                       position: Option<Position>,
                       offset: Option<i64>|
         -> Result<Option<usize>, ApiError> {
            match (position, offset) {
                (None, None) => Ok(None),
                (Some(q), None) => {
                    let lp = LspPosition::from_signed(q.line, q.character)
                        .map_err(|e| ApiError::new(BAD_POSITION, format!("{what}: {e}")))?;
                    pos::position_to_char(&text, lp, enc)
                        .map(Some)
                        .map_err(|e| ApiError::new(BAD_POSITION, format!("{what}: {e}")))
                }
                (None, Some(o)) if (0..=len).contains(&o) => Ok(Some(o as usize)),
                (None, Some(o)) => Err(ApiError::new(
                    BAD_POSITION,
                    format!("{what}: offset {o} is not in the document (0..={len})"),
                )),
                (Some(_), Some(_)) => Err(ApiError::new(
                    INVALID_PARAMS,
                    format!("{what}: give a position or an offset, not both"),
                )),
            }
        };
        let start = to_char("start", p.position, p.offset)?.ok_or_else(|| {
            ApiError::new(INVALID_PARAMS, "give `position` or `offset`".to_string())
        })?;
        let end = to_char("end", p.end_position, p.end_offset)?;
        if end.is_some_and(|e| e < start) {
            return Err(ApiError::new(
                BAD_POSITION,
                "the range's end is before its start",
            ));
        }
        let bias = if end.is_some() { Bias::Right } else { bias };
        let id = self.next;
        self.next += 1;
        self.map.insert(
            id,
            Anchor {
                file: f,
                version,
                start,
                end,
                bias,
            },
        );
        Ok(json!({"id": id, "path": rel}))
    }

    fn resolve(&mut self, ws: &mut Workspace, p: IdParams) -> Result<Value, ApiError> {
        let enc = encoding_of(p.encoding.as_deref())?;
        let a = self.map.get_mut(&p.id).ok_or_else(|| unknown(p.id))?;
        let path = ws.path(a.file).map(str::to_string);
        let (Some(path), Some(tf)) = (path, ws.text_file(a.file)) else {
            return Err(ApiError::new(
                ANCHOR_GONE,
                format!("anchor {}: its file was deleted", p.id),
            ));
        };
        let doc = &tf.doc;
        let now = doc.version().clone();
        if a.version != now {
            let ops = doc.transform(&a.version, &now).map_err(|e| {
                ApiError::version(ws, a.file, &path, &e, format!("anchor {}: {e}", p.id))
            })?;
            a.start = engine::shift_pos(a.start, &ops, a.bias);
            if let Some(e) = a.end.as_mut() {
                // The start moves after text inserted at it, the end stays before.
                *e = engine::shift_pos(*e, &ops, Bias::Left).max(a.start);
            }
            a.version = now.clone();
        }
        let text = doc.to_rope();
        let len = text.len_chars();
        let (start, end) = (a.start.min(len), a.end.map(|e| e.min(len)));
        let at = |c: usize| pos::char_to_position(&text, c, enc).ok().map(pos_json);
        let mut out = json!({
            "id": p.id,
            "path": path,
            "version": doc.remote_version(&now),
            "encoding": enc.lsp_name(),
            "offset": start,
            "position": at(start),
        });
        if let Some(e) = end {
            out["endOffset"] = json!(e);
            out["endPosition"] = json!(at(e));
        }
        Ok(out)
    }
}

fn unknown(id: u64) -> ApiError {
    ApiError::new(UNKNOWN_ANCHOR, format!("no anchor {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vfs::diff::TextEdit;

    fn edit(
        ws: &mut Workspace,
        agent: &str,
        base: Option<&Frontier>,
        at: std::ops::Range<usize>,
        text: &str,
    ) {
        let f = ws.lookup("f.txt").unwrap();
        ws.edit(
            f,
            agent,
            base,
            &[TextEdit {
                range: at,
                text: text.into(),
            }],
        )
        .unwrap();
    }

    /// Anchors resolved in steps (the cached path) land where the engine moves the original
    /// position in one go, over concurrent inserts and deletes around them.
    #[test]
    fn anchors_match_the_engine_over_concurrent_edits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.txt"), "abcdefghij").unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let mut ws = Workspace::load(&root, vfs::WorkspaceOptions::default(), &mut |_| {}).unwrap();
        let f = ws.lookup("f.txt").unwrap();
        let v0 = ws.text_file(f).unwrap().doc.version().clone();
        let mut an = Anchors::default();
        let mut made = Vec::new();
        for off in 0..=10i64 {
            for bias in ["left", "right"] {
                let p: CreateParams = serde_json::from_value(json!({
                    "path": "f.txt", "version": {}, "offset": off, "bias": bias}))
                .unwrap();
                let id = an.handle(&mut ws, AnchorRequest::Create(p)).unwrap()["id"].clone();
                made.push((id, off as usize, None, bias));
            }
            if off <= 7 {
                let p: CreateParams = serde_json::from_value(json!({
                    "path": "f.txt", "version": {}, "offset": off, "endOffset": off + 3}))
                .unwrap();
                let id = an.handle(&mut ws, AnchorRequest::Create(p)).unwrap()["id"].clone();
                made.push((id, off as usize, Some(off as usize + 3), "right"));
            }
        }
        let resolve = |an: &mut Anchors, ws: &mut Workspace, id: &Value| {
            let p: IdParams =
                serde_json::from_value(json!({"id": id, "encoding": "utf-32"})).unwrap();
            an.handle(ws, AnchorRequest::Resolve(p)).unwrap()
        };
        // Concurrent edits at v0 by two agents, then half the anchors resolved (and cached).
        edit(&mut ws, "p", Some(&v0), 5..5, "XY");
        edit(&mut ws, "q", Some(&v0), 4..7, "");
        edit(&mut ws, "q", None, 2..2, "--");
        for (id, ..) in made.iter().step_by(2) {
            resolve(&mut an, &mut ws, id);
        }
        // More edits, one of them concurrent with everything since v0.
        edit(&mut ws, "r", Some(&v0), 9..10, "J");
        edit(&mut ws, "p", None, 0..1, "");
        for (id, start, end, bias) in &made {
            let got = resolve(&mut an, &mut ws, id);
            let doc = ws.text_file(f).unwrap().doc.built().unwrap();
            let now = doc.version().clone();
            let b = if *bias == "left" {
                Bias::Left
            } else {
                Bias::Right
            };
            let want = doc.transform_pos(*start, &v0, &now, b).unwrap();
            assert_eq!(got["offset"], json!(want), "anchor {start} {bias}");
            if let Some(e) = end {
                let we = doc
                    .transform_pos(*e, &v0, &now, Bias::Left)
                    .unwrap()
                    .max(want);
                assert_eq!(got["endOffset"], json!(we), "range {start}..{e}");
            }
        }
        // A deleted file: the anchors say so.
        ws.delete_seen_now("f.txt").unwrap();
        let p: IdParams = serde_json::from_value(json!({"id": made[0].0})).unwrap();
        let e = an.handle(&mut ws, AnchorRequest::Resolve(p)).unwrap_err();
        assert_eq!(e.code, ANCHOR_GONE);
    }
}
