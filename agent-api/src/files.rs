//! `fs.create`, `fs.delete`, `fs.rename`: file tree events of the workspace (`vfs::tree`, LWW
//! with hybrid logical clocks), made by the daemon's replica. A created file is a new document
//! written to disk by the normal write-back; deletes and renames happen on disk at once. Every
//! check is made before the workspace is touched, so a refused request changes nothing.

use serde::Deserialize;
use serde_json::{json, Value};
use vfs::tree::TreeError;
use vfs::{FileId, NodeKind, VfsError, Workspace};

use crate::error::*;
use crate::path::short;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateParams {
    pub path: String,
    /// The new file's text (default empty).
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteParams {
    pub path: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameParams {
    pub from: String,
    pub to: String,
}

fn vfs_error(e: VfsError) -> ApiError {
    let code = match &e {
        VfsError::Tree(TreeError::Exists(_)) => EXISTS,
        VfsError::Tree(TreeError::NotFound(_)) | VfsError::NoFile(_) => NOT_FOUND,
        VfsError::Tree(_) => BAD_PATH,
        VfsError::Io { .. } => IO,
        _ => EDIT_REJECTED,
    };
    ApiError::new(code, e.to_string())
}

/// `rel` is free in the tree and on disk (an ignored file there would be overwritten), and
/// every folder on its way that exists is a folder.
fn check_free(ws: &Workspace, rel: &str) -> Result<(), ApiError> {
    if ws.lookup(rel).is_some() {
        return Err(ApiError::new(
            EXISTS,
            format!("`{}` already exists", short(rel)),
        ));
    }
    if std::fs::symlink_metadata(ws.root().join(rel)).is_ok() {
        return Err(ApiError::new(
            EXISTS,
            format!(
                "`{}` exists on disk (a file the workspace ignores)",
                short(rel)
            ),
        ));
    }
    let mut acc = String::new();
    for part in rel
        .split('/')
        .take(rel.split('/').count().saturating_sub(1))
    {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        if let Some(f) = ws.lookup(&acc) {
            if ws.tree().kind(f) != Some(NodeKind::Dir) {
                return Err(ApiError::new(
                    BAD_PATH,
                    format!(
                        "`{}` is a file, not a folder, in `{}`",
                        short(&acc),
                        short(rel)
                    ),
                ));
            }
        } else if std::fs::symlink_metadata(ws.root().join(&acc)).is_ok() {
            return Err(ApiError::new(
                EXISTS,
                format!(
                    "`{}` exists on disk (ignored by the workspace)",
                    short(&acc)
                ),
            ));
        }
    }
    Ok(())
}

fn doc_version(ws: &Workspace, f: FileId) -> Value {
    let v = ws
        .text_file(f)
        .and_then(|t| t.doc.built())
        .map(|d| d.remote_version(d.version()))
        .unwrap_or_default();
    json!(v)
}

pub fn create(
    ws: &mut Workspace,
    p: CreateParams,
    changed: &mut Vec<FileId>,
) -> Result<Value, ApiError> {
    let rel = crate::path::resolve(ws.root(), &p.path)?;
    crate::path::check_new(ws, &rel, false)?;
    check_free(ws, &rel)?;
    let f = ws.create_file(&rel, &p.text).map_err(vfs_error)?;
    changed.push(f);
    Ok(json!({
        "path": rel,
        "version": doc_version(ws, f),
        "workspaceVersion": ws.version(),
    }))
}

pub fn delete(ws: &mut Workspace, p: DeleteParams) -> Result<Value, ApiError> {
    let rel = crate::path::resolve(ws.root(), &p.path)?;
    let f = ws.lookup(&rel).ok_or_else(|| {
        ApiError::new(
            NOT_FOUND,
            format!("no such file or folder: `{}`", short(&rel)),
        )
    })?;
    let kind = match ws.tree().kind(f) {
        Some(NodeKind::Dir) => "folder",
        _ => "file",
    };
    ws.delete_seen_now(&rel).map_err(vfs_error)?;
    Ok(json!({
        "path": rel,
        "kind": kind,
        "workspaceVersion": ws.version(),
    }))
}

pub fn rename(ws: &mut Workspace, p: RenameParams) -> Result<Value, ApiError> {
    let from = crate::path::resolve(ws.root(), &p.from)?;
    let to = crate::path::resolve(ws.root(), &p.to)?;
    let f = ws.lookup(&from).ok_or_else(|| {
        ApiError::new(
            NOT_FOUND,
            format!("no such file or folder: `{}`", short(&from)),
        )
    })?;
    if to == from || to.starts_with(&format!("{from}/")) {
        return Err(ApiError::new(
            BAD_PATH,
            format!(
                "cannot move `{}` to `{}` (into itself)",
                short(&from),
                short(&to)
            ),
        ));
    }
    let is_dir = ws.tree().kind(f) == Some(NodeKind::Dir);
    crate::path::check_new(ws, &to, is_dir)?;
    check_free(ws, &to)?;
    ws.rename(&from, &to).map_err(vfs_error)?;
    Ok(json!({
        "from": from,
        "path": to,
        "version": doc_version(ws, f),
        "workspaceVersion": ws.version(),
    }))
}
