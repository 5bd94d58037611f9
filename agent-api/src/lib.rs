//! Agent API: AI agents read and edit the live workspace over JSON-RPC (issue 5).
//!
//! * [`server`]: the jsonrpsee server (WebSocket + HTTP, 127.0.0.1, bearer token, limits);
//! * [`ops`]: the requests and how the daemon's single writer answers them
//!   ([`ops::AgentState::handle`], called from the writer thread with its `Workspace`);
//! * [`snapshot`]: `fs.snapshot` and `changes.since` (workspace versions, unified diffs);
//! * [`files`]: `fs.create`, `fs.delete`, `fs.rename` (file tree events);
//! * [`search`]: `search` (the `regex` crate over a snapshot, off the writer thread);
//! * [`anchors`]: positions and ranges that follow edits;
//! * [`presence`]: who is where (`presence` subscription, participants);
//! * [`path`]: confining paths to the workspace root;
//! * [`error`]: the stable error codes;
//! * [`branches`]: agents' private copy-on-write branches of the workspace (`branch.*`).
//!
//! The method reference is `agent-api/README.md`.

pub mod anchors;
pub mod branches;
mod connections;
mod edits;
pub mod error;
pub mod files;
pub mod ops;
pub mod path;
pub mod presence;
mod retention;
pub mod search;
pub mod server;
mod server_more;
pub mod snapshot;

pub use connections::Connections;
pub use error::ApiError;
pub use ops::{AgentState, Call, ChangeFeed, Context, Outcome, Participant, Request};
pub use presence::PresenceEntry;
pub use server::{start, Limits, Running, Submit};
