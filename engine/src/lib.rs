//! # dist-space engine
//!
//! A pure (no IO, no async, no protocol types) implementation of the eg-walker collaborative
//! text algorithm (Gentle & Kleppmann, EuroSys 2025).
//!
//! - Every edit is a run of *events* (one per inserted or deleted char, stored run-length
//!   encoded) with an id (agent, seq) and causal parents. A version is a [`Frontier`].
//! - The event log ([`OpLog`]) stores each op at the position it had when it was made.
//!   Materialising a version replays events with the eg-walker: linear stretches are applied
//!   as they are; concurrent stretches go through a temporary CRDT ([`tracker`]) that is
//!   dropped again at every critical version.
//! - A [`Document`] is a log plus its live text (a `ropey` rope) at the newest version: local
//!   edits, edits against older versions, remote events in any order, sync, time travel,
//!   transforms and a compact binary encoding.
//!
//! Positions are Unicode scalar values (chars). Conversions to UTF-8/UTF-16 live elsewhere.

mod branch;
mod compact;
mod document;
pub mod encoding;
mod error;
mod frontier;
mod gapbuf;
mod oplog;
mod tracker;
mod walker;

pub use branch::Branch;
pub use document::{
    shift_pos, ApplyReport, Bias, Document, Edit, EditOutcome, RemoteEvent, RemoteId, RemoteOp,
    RemoteVersion, XfOp, MAX_PENDING_EVENTS,
};
pub use error::{DecodeError, EditError, Horizon, RemoteError, VersionError};
pub use frontier::{Frontier, LV};
pub use oplog::{AgentId, OpKind, OpLog, MAX_AGENT_NAME};
pub use ropey::Rope;
