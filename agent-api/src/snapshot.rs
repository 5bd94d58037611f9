//! `fs.snapshot` (many files at one workspace version) and `changes.since` (what changed in
//! each file since a workspace version, as positional edits and as a unified diff).
//!
//! A **workspace version** is the daemon's change counter (`vfs::WsVersion`): every tree event
//! and every document edit increments it, so one number names the state of every file at
//! once. `workspace.info`, `fs.list`, `fs.snapshot` and the tree operations return it; any
//! version of this daemon run is valid (history is in memory: a restart starts again at 1).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use engine::{RemoteVersion, XfOp};
use serde::Deserialize;
use serde_json::{json, Value};
use vfs::{FileId, SnapContent, SnapFile, SnapText, VfsError, Workspace, WorkspaceSnapshot};

use crate::error::*;
use crate::read::glob_matcher;
use crate::request::Deferred;

/// Largest total text one `fs.snapshot` answers with (the response limit is 64 MiB).
pub const MAX_SNAPSHOT_BYTES: u64 = 48 * 1024 * 1024;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotParams {
    /// Exactly these files (each must be a text file at that version).
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Only text files whose path matches.
    #[serde(default)]
    pub glob: Option<String>,
    /// A workspace version of this daemon run (default: now).
    #[serde(default)]
    pub version: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinceParams {
    /// A workspace version of this daemon run.
    pub version: u64,
    /// Only files whose path (now or then) matches.
    #[serde(default)]
    pub glob: Option<String>,
}

fn str_of(t: &SnapText) -> Cow<'_, str> {
    match t.as_str() {
        Some(s) => s.into(),
        None => t.to_string().into(),
    }
}

/// The snapshot at workspace version `v` (now when `None`).
fn snapshot_at(ws: &mut Workspace, v: Option<u64>) -> Result<WorkspaceSnapshot, ApiError> {
    match v {
        None => Ok(ws.snapshot()),
        Some(v) => ws.snapshot_at(v).map_err(|e| match e {
            VfsError::Version(e @ engine::VersionError::BeforeHorizon { .. }) => {
                ApiError::workspace_resync(v, &e)
            }
            e => ApiError::new(
                UNKNOWN_VERSION,
                format!(
                    "workspace version {v}: {e} (versions are counted from the daemon's start)"
                ),
            ),
        }),
    }
}

/// The wire form of a document version of file `f` (`{}` for a document never edited).
fn remote(ws: &Workspace, f: FileId, v: &engine::Frontier) -> RemoteVersion {
    ws.text_file(f)
        .and_then(|t| t.doc.built())
        .map(|d| d.remote_version(v))
        .unwrap_or_default()
}

pub fn snapshot(
    ws: &mut Workspace,
    p: SnapshotParams,
    deferred: &mut Option<Deferred>,
) -> Result<Value, ApiError> {
    let matcher = glob_matcher(p.glob.as_deref())?;
    let wanted: Option<Vec<String>> = match &p.paths {
        Some(ps) => Some(
            ps.iter()
                .map(|x| crate::path::resolve(ws.root(), x))
                .collect::<Result<_, _>>()?,
        ),
        None => None,
    };
    let snap = snapshot_at(ws, p.version)?;
    let mut picked: Vec<(Arc<str>, SnapText, RemoteVersion)> = Vec::new();
    let take = |sf: &SnapFile, picked: &mut Vec<_>| -> Result<(), ApiError> {
        match &sf.content {
            SnapContent::Text { text, version } => {
                picked.push((sf.path.clone(), text.clone(), remote(ws, sf.id, version)));
                Ok(())
            }
            SnapContent::NotText { reason, .. } => Err(ApiError::new(
                NOT_TEXT,
                format!("`{}` is not edited as text: {reason}", sf.path),
            )),
            SnapContent::Dir => Err(ApiError::new(
                NOT_TEXT,
                format!("`{}` is a folder", sf.path),
            )),
        }
    };
    match &wanted {
        Some(paths) => {
            for path in paths {
                let sf = snap.get(path).ok_or_else(|| {
                    ApiError::new(
                        NOT_FOUND,
                        format!(
                            "no such file at workspace version {}: `{path}`",
                            snap.version()
                        ),
                    )
                })?;
                if matcher.as_ref().is_none_or(|m| m.is_match(path)) {
                    take(sf, &mut picked)?;
                }
            }
        }
        None => {
            for sf in snap.files().iter() {
                let is_text = matches!(sf.content, SnapContent::Text { .. });
                if is_text && matcher.as_ref().is_none_or(|m| m.is_match(&*sf.path)) {
                    take(sf, &mut picked)?;
                }
            }
        }
    }
    let bytes: u64 = picked.iter().map(|(_, t, _)| t.len_bytes() as u64).sum();
    if bytes > MAX_SNAPSHOT_BYTES {
        return Err(ApiError::new(
            LIMIT,
            format!(
                "the selected files hold {bytes} bytes (at most {MAX_SNAPSHOT_BYTES} per snapshot): narrow it with `paths` or `glob`"
            ),
        ));
    }
    let version = snap.version();
    // Copying the texts out is the costly part: done off the writer thread.
    *deferred = Some(Box::new(move || {
        let files: Vec<Value> = picked
            .iter()
            .map(|(path, text, v)| json!({"path": &**path, "version": v, "text": str_of(text)}))
            .collect();
        Ok(json!({"version": version, "files": files}))
    }));
    Ok(Value::Null)
}

/// A unified diff (`--- a/old`, `+++ b/new`, hunks with 3 lines of context); empty when the
/// texts are equal.
pub fn unified_diff(old_label: &str, new_label: &str, old: &str, new: &str) -> String {
    use imara_diff::{Algorithm, BasicLineDiffPrinter, Diff, InternedInput, UnifiedDiffConfig};
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    let body = diff
        .unified_diff(
            &BasicLineDiffPrinter(&input.interner),
            UnifiedDiffConfig::default(),
            &input,
        )
        .to_string();
    if body.is_empty() {
        return body;
    }
    format!("--- {old_label}\n+++ {new_label}\n{body}")
}

fn ops_json(ops: &[XfOp]) -> Vec<Value> {
    ops.iter()
        .map(|op| match op {
            XfOp::Insert { pos, text } => {
                json!({"offsets": {"start": pos, "end": pos}, "text": text})
            }
            XfOp::Delete { pos, len } => {
                json!({"offsets": {"start": pos, "end": pos + len}, "text": ""})
            }
        })
        .collect()
}

pub fn since(ws: &mut Workspace, p: SinceParams) -> Result<Value, ApiError> {
    let matcher = glob_matcher(p.glob.as_deref())?;
    let then = snapshot_at(ws, Some(p.version))?;
    let now = ws.snapshot();
    let mut before: HashMap<FileId, &SnapFile> = then
        .files()
        .iter()
        .filter(|f| matches!(f.content, SnapContent::Text { .. }))
        .map(|f| (f.id, f))
        .collect();
    let matches = |path: &str| matcher.as_ref().is_none_or(|m| m.is_match(path));
    let mut out: Vec<(String, Value)> = Vec::new();
    for sf in now.files().iter() {
        let SnapContent::Text { text, version } = &sf.content else {
            continue;
        };
        let old = before.remove(&sf.id);
        if !matches(&sf.path) && !old.is_some_and(|o| matches(&o.path)) {
            continue;
        }
        let path: &str = &sf.path;
        let new_s = str_of(text);
        let entry = match old {
            Some(o) => {
                let SnapContent::Text {
                    text: otext,
                    version: ov,
                } = &o.content
                else {
                    continue;
                };
                if ov == version && o.path == sf.path {
                    continue;
                }
                let old_s = str_of(otext);
                let edits = if ov == version {
                    vec![]
                } else {
                    let doc = ws.text_file(sf.id).and_then(|t| t.doc.built());
                    match doc.map(|d| d.transform(ov, version)) {
                        Some(Ok(ops)) => ops_json(&ops),
                        // Not expected (versions only grow); a minimal diff says the same.
                        _ => vfs::diff::diff_edits(&old_s, &new_s)
                            .into_iter()
                            .map(|e| json!({"offsets": {"start": e.range.start, "end": e.range.end}, "text": e.text}))
                            .collect(),
                    }
                };
                let renamed = o.path != sf.path;
                let mut v = json!({
                    "path": path,
                    "status": if renamed { "renamed" } else { "modified" },
                    "from": remote(ws, sf.id, ov),
                    "to": remote(ws, sf.id, version),
                    "edits": edits,
                    "diff": unified_diff(&format!("a/{}", o.path), &format!("b/{path}"), &old_s, &new_s),
                });
                if renamed {
                    v["oldPath"] = json!(&*o.path);
                }
                v
            }
            None => json!({
                "path": path,
                "status": "created",
                "from": Value::Null,
                "to": remote(ws, sf.id, version),
                "edits": [{"offsets": {"start": 0, "end": 0}, "text": &*new_s}],
                "diff": unified_diff("/dev/null", &format!("b/{path}"), "", &new_s),
            }),
        };
        out.push((path.to_string(), entry));
    }
    for o in before.into_values() {
        if !matches(&o.path) {
            continue;
        }
        let SnapContent::Text { text, version } = &o.content else {
            continue;
        };
        let old_s = str_of(text);
        out.push((
            o.path.to_string(),
            json!({
                "path": &*o.path,
                "status": "deleted",
                "from": remote(ws, o.id, version),
                "to": Value::Null,
                "edits": [{"offsets": {"start": 0, "end": text.len_chars()}, "text": ""}],
                "diff": unified_diff(&format!("a/{}", o.path), "/dev/null", &old_s, ""),
            }),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(json!({
        "from": p.version,
        "to": now.version(),
        "files": out.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    }))
}
