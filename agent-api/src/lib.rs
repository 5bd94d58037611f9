//! Agent API: AI agents read and edit the live workspace over JSON-RPC (issue 5).
//!
//! * [`server`]: the jsonrpsee server (WebSocket + HTTP, 127.0.0.1, bearer token, limits);
//! * [`ops`]: the requests and how the daemon's single writer answers them
//!   ([`ops::AgentState::handle`], called from the writer thread with its `Workspace`);
//! * [`path`]: confining paths to the workspace root;
//! * [`error`]: the stable error codes;
//! * [`branches`]: agents' private copy-on-write branches of the workspace (`branch.*`).
//!
//! The method reference is `agent-api/README.md`.

pub mod branches;
mod edits;
pub mod error;
pub mod ops;
pub mod path;
pub mod server;

pub use error::ApiError;
pub use ops::{AgentState, Call, ChangeFeed, Context, Outcome, Participant, Request};
pub use server::{start, Limits, Running, Submit};
