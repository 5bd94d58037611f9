//! The agent API's requests as the writer receives them: the params of the document methods,
//! [`Request`] (one variant per method family), [`Call`] (a request and its reply channel),
//! what the writer knows beyond the workspace ([`Context`]) and its answer ([`Outcome`]).

use std::collections::HashSet;

use engine::RemoteVersion;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use vfs::FileId;

use crate::error::ApiError;
use crate::types::EditSpec;

/// A JSON-RPC connection of the agent server.
pub type AgentConn = u64;

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
