//! JSON-RPC errors of the agent API. The codes are stable (part of the API, see README.md).

use jsonrpsee::types::ErrorObjectOwned;

/// Params are missing, of the wrong type, or contradict each other (JSON-RPC standard code).
pub const INVALID_PARAMS: i32 = -32602;
/// A path that is empty, not UTF-8, or otherwise malformed.
pub const BAD_PATH: i32 = -32010;
/// A path outside the workspace root (`..`, an absolute path elsewhere, a symlink that leaves
/// the root) or into the daemon's state folder `.dist-space/` or a `.git/` folder.
pub const PATH_OUTSIDE_ROOT: i32 = -32011;
/// No such file in the workspace.
pub const NOT_FOUND: i32 = -32012;
/// The file exists but is not edited as text (binary, not UTF-8, too large) or is a folder.
pub const NOT_TEXT: i32 = -32013;
/// The file or folder to create (or rename to) exists already.
pub const EXISTS: i32 = -32014;
/// A new name the file system cannot hold: a path component longer than its `NAME_MAX`
/// (255 bytes) or an absolute path longer than `PATH_MAX` (4095 bytes). Nothing was changed.
pub const NAME_TOO_LONG: i32 = -32015;
/// A new path the workspace ignores (`.gitignore`, `.ignore`, global excludes): it would be
/// written to disk but never be part of the workspace. Nothing was changed.
pub const IGNORED_PATH: i32 = -32016;
/// The version is not one of this document's versions (never existed, or from another file).
pub const UNKNOWN_VERSION: i32 = -32020;
/// Two edits of one request overlap.
pub const OVERLAPPING_EDITS: i32 = -32021;
/// A position or offset is invalid (negative, inside a character, past the end, end before start).
pub const BAD_POSITION: i32 = -32022;
/// The engine refused the edit (should not happen for validated input).
pub const EDIT_REJECTED: i32 = -32023;
/// The daemon is shutting down.
pub const UNAVAILABLE: i32 = -32030;
/// A disk operation failed (the message says which and why).
pub const IO: i32 = -32032;
/// A per-daemon limit was reached (e.g. the number of anchors).
pub const LIMIT: i32 = -32031;
/// No anchor with this id (never created, or deleted).
pub const UNKNOWN_ANCHOR: i32 = -32050;
/// The anchor's file was deleted: the anchor no longer resolves.
pub const ANCHOR_GONE: i32 = -32051;
/// Resync needed: the version is older than the document's horizon (its history was
/// compacted). `data` says which file, the horizon, the current version and how to get a
/// snapshot to start again from.
pub const RESYNC_NEEDED: i32 = -32060;

// Branches (`branch.*`, see `branches.rs`).
/// No open branch with that id (never forked, already merged or discarded, or the daemon
/// restarted: branches live in the daemon's memory only).
pub const UNKNOWN_BRANCH: i32 = -32040;
/// The version is not one of this file on this branch (e.g. a live version from `fs.read`
/// after the file changed, or a version of another branch).
pub const NOT_BRANCH_VERSION: i32 = -32041;
/// `branch.create` at a path that exists on the branch (or was deleted on it).
pub const FILE_EXISTS: i32 = -32042;
/// Too many branches are open.
pub const TOO_MANY_BRANCHES: i32 = -32043;
/// The branch cannot be merged as it is: a file it changed was deleted in the workspace, or a
/// file it created now exists there. Nothing was merged; the branch stays open.
pub const MERGE_CONFLICT: i32 = -32044;

/// An error for the agent: a stable code and a clear message. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: i32,
    pub message: String,
    /// Structured details (JSON-RPC `error.data`), e.g. for [`RESYNC_NEEDED`].
    pub data: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: i32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A version error about file `rel` (id `f`): "resync needed" (with the horizon and a
    /// snapshot to start again from) when the version is older than the horizon, else
    /// "unknown version" with `what` as the message.
    pub fn version(
        ws: &vfs::Workspace,
        f: vfs::FileId,
        rel: &str,
        e: &engine::VersionError,
        what: String,
    ) -> ApiError {
        match e {
            engine::VersionError::BeforeHorizon { horizon } => {
                let current = ws
                    .text_file(f)
                    .and_then(|t| t.doc.built())
                    .map(|d| d.remote_version(d.version()))
                    .unwrap_or_default();
                ApiError {
                    code: RESYNC_NEEDED,
                    message: format!(
                        "`{rel}`: {e}: read the file again (fs.read) and continue from its current version"
                    ),
                    data: Some(serde_json::json!({
                        "path": rel,
                        "horizon": horizon,
                        "current": current,
                        "snapshot": {"method": "fs.snapshot", "params": {"paths": [rel]}},
                    })),
                }
            }
            _ => ApiError::new(UNKNOWN_VERSION, what),
        }
    }

    /// "Resync needed" for a workspace version older than some file's horizon.
    pub fn workspace_resync(v: u64, e: &engine::VersionError) -> ApiError {
        ApiError {
            code: RESYNC_NEEDED,
            message: format!(
                "workspace version {v}: {e}: take a new snapshot (fs.snapshot without a version) and continue from its version"
            ),
            data: Some(serde_json::json!({
                "version": v,
                "snapshot": {"method": "fs.snapshot", "params": {}},
            })),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(e: ApiError) -> Self {
        // A message never carries a huge path (or other input) in full.
        let message = if e.message.len() > 1000 {
            vfs::names::shorten(&e.message, 600)
        } else {
            e.message
        };
        ErrorObjectOwned::owned(e.code, message, e.data)
    }
}
