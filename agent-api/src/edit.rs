//! `fs.edit`: an agent's edits, made at the version it read and transformed over everything
//! since, and where each of them landed.

use engine::{Bias, Edit, Frontier, XfOp};
use serde_json::{json, Value};
use vfs::diff::TextEdit;
use vfs::{FileId, VfsError, Workspace};

use crate::error::*;
use crate::read::text_file;
use crate::request::{AgentConn, EditParams};
use crate::state::AgentState;
use crate::types::encoding_of;

impl AgentState {
    pub(crate) fn edit(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::ChangeFeed;
    use crate::read::read as read_at;
    use crate::request::{Context, ReadParams, Request};

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
        read_at(ws, p).unwrap()
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
            json!({"path": "f.txt", "version": v0["version"], "edits": [{"offsets": {"start": 0, "end": 3}, "text": "XYZ"}]}),
        )
        .unwrap();
        let v1 = r["version"].clone();
        call(
            &mut st,
            &mut ws,
            json!({"path": "f.txt", "version": v1, "edits": [{"offsets": {"start": 4, "end": 7}, "text": "uvw"}]}),
        )
        .unwrap();
        let at = |ws: &mut Workspace, v: &Value| {
            read_at(
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
