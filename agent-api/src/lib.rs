//! Agent API: AI agents read and edit the live workspace over JSON-RPC.
//!
//! * [`server`]: the jsonrpsee server (WebSocket + HTTP, 127.0.0.1, limits); [`auth`]: its
//!   bearer token; `methods`: the method registration; `subscriptions`: `changes` and
//!   `presence` over WebSocket;
//!   `rpc_errors`: JSON-RPC errors that name what is wrong (also for requests jsonrpsee
//!   cannot read);
//! * [`types`], [`request`]: positions, params and the requests handed to the writer;
//! * [`state`]: how the daemon's single writer answers them ([`state::AgentState::handle`],
//!   called from the writer thread with its `Workspace`); [`read`]: `fs.list`, `fs.read`;
//!   `edit`: `fs.edit`; [`feed`]: the `changes` feed;
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
pub mod auth;
pub mod branches;
mod connections;
mod edit;
mod edits;
pub mod error;
pub mod feed;
pub mod files;
mod methods;
pub mod path;
pub mod presence;
pub mod read;
pub mod request;
mod retention;
mod rpc_errors;
pub mod search;
pub mod server;
pub mod snapshot;
pub mod state;
mod subscriptions;
pub mod types;

pub use connections::Connections;
pub use error::ApiError;
pub use feed::ChangeFeed;
pub use presence::PresenceEntry;
pub use request::{Call, Context, Outcome, Participant, Request};
pub use server::{start, Limits, Running, Submit};
pub use state::AgentState;
