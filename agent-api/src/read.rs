//! `fs.list` and `fs.read`: the workspace's files and their texts (now or at an earlier
//! version), and the helpers other methods share (a text file by path, globs, line slices).

use std::collections::BTreeMap;

use engine::{RemoteVersion, Rope};
use serde_json::{json, Value};
use vfs::pos::{self, LspPosition, PositionEncoding};
use vfs::{FileId, SnapContent, Workspace};

use crate::error::*;
use crate::request::{Context, ListParams, ReadParams};

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

/// The workspace path and file id of a text file, or the right error.
pub(crate) fn text_file(ws: &Workspace, input: &str) -> Result<(String, FileId), ApiError> {
    let rel = crate::path::resolve(ws.root(), input)?;
    let f = ws.lookup(&rel).ok_or_else(|| {
        ApiError::new(
            NOT_FOUND,
            format!("no such file: `{}`", crate::path::short(&rel)),
        )
    })?;
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

pub(crate) fn list(ws: &mut Workspace, ctx: &Context, p: ListParams) -> Result<Value, ApiError> {
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

pub(crate) fn read(ws: &mut Workspace, p: ReadParams) -> Result<Value, ApiError> {
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
