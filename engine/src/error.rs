//! Typed errors. Every failing call leaves the document unchanged.

use std::collections::BTreeMap;
use std::fmt;

use crate::frontier::LV;

/// The horizon of a compacted document in wire form (agent -> highest compacted seq): the
/// version a peer must have before it can sync with this document again ("resync needed").
pub type Horizon = BTreeMap<String, u64>;

fn fmt_horizon(f: &mut fmt::Formatter<'_>, h: &Horizon) -> fmt::Result {
    write!(f, "history before the horizon {{")?;
    for (i, (a, s)) in h.iter().enumerate() {
        write!(f, "{}{a}:{s}", if i == 0 { "" } else { ", " })?;
    }
    write!(f, "}} was compacted; resync needed")
}

/// A local edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// A position or range is past the end of the document at the version it refers to.
    OutOfRange {
        pos: usize,
        len: usize,
        doc_len: usize,
    },
    /// A range whose end is before its start.
    BadRange,
    /// The agent id is not known to this document.
    UnknownAgent,
    /// An agent name is empty or too long.
    BadAgentName,
    /// A version names events this document does not have.
    UnknownVersion,
    /// Edits made at a version that lacks the agent's own previous event: the agent would be
    /// concurrent with itself, which the version vectors of the sync protocol cannot express.
    /// Use a fresh agent id for such edits.
    AgentNotInBase,
    /// Edits in one batch overlap or are not in sequence.
    InvalidEdit(String),
    /// The base version does not include the horizon of a compacted document.
    BeforeHorizon { horizon: Horizon },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::OutOfRange { pos, len, doc_len } => write!(
                f,
                "edit at {pos} (length {len}) is out of range for a document of {doc_len} chars"
            ),
            EditError::BadRange => write!(f, "range end is before its start"),
            EditError::UnknownAgent => write!(f, "unknown agent"),
            EditError::BadAgentName => write!(f, "agent name must be 1 to 256 bytes"),
            EditError::UnknownVersion => write!(f, "version names unknown events"),
            EditError::AgentNotInBase => write!(
                f,
                "the base version lacks this agent's own previous edit; use a fresh agent id"
            ),
            EditError::InvalidEdit(s) => write!(f, "invalid edit: {s}"),
            EditError::BeforeHorizon { horizon } => fmt_horizon(f, horizon),
        }
    }
}

impl std::error::Error for EditError {}

/// A version could not be resolved or reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionError {
    /// The version names events this document does not have.
    Unknown,
    /// A remote version (agent -> seq) names an agent or seq this document does not have.
    UnknownRemote { agent: String, seq: u64 },
    /// A remote version that is not a valid version (not closed under causality).
    NotClosed,
    /// An event in the log is invalid (its position is out of range at its parents' version).
    InvalidEvent(LV),
    /// The version does not include the horizon of a compacted document: the history it needs
    /// is gone ("resync needed": start again from the text at the horizon or later).
    BeforeHorizon { horizon: Horizon },
    /// Not a version the document can be compacted at: some later event does not descend from
    /// it (see [`crate::Document::horizon_candidate`]).
    NotCritical,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::Unknown => write!(f, "unknown version"),
            VersionError::UnknownRemote { agent, seq } => {
                write!(f, "unknown event {agent}:{seq}")
            }
            VersionError::NotClosed => write!(f, "not a valid version: it is not causally closed"),
            VersionError::InvalidEvent(lv) => {
                write!(f, "event {lv} is out of range at its parents' version")
            }
            VersionError::BeforeHorizon { horizon } => fmt_horizon(f, horizon),
            VersionError::NotCritical => write!(
                f,
                "not a critical version: some later event does not descend from it"
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// A remote event was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteError {
    /// Position out of range at its parents' version.
    OutOfRange { agent: String, seq: u64 },
    /// The event's seq is not the next one for its agent.
    SeqGap {
        agent: String,
        expected: u64,
        got: u64,
    },
    /// The agent's previous event is not in the event's history.
    NotAfterOwnPrevious { agent: String, seq: u64 },
    /// A parent that is not known (reported when pending events are given up on).
    MissingParents {
        agent: String,
        seq: u64,
        missing: Vec<(String, u64)>,
    },
    /// An event with a known id but different content or parents.
    Conflict { agent: String, seq: u64 },
    /// Malformed event (empty run, bad agent name, too many pending events...).
    Malformed(String),
    /// The event's parents do not include the horizon of this compacted document (it was made
    /// concurrently with compacted history): the sender must resync.
    BeforeHorizon {
        agent: String,
        seq: u64,
        horizon: Horizon,
    },
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::OutOfRange { agent, seq } => {
                write!(
                    f,
                    "event {agent}:{seq} is out of range at its parents' version"
                )
            }
            RemoteError::SeqGap {
                agent,
                expected,
                got,
            } => {
                write!(f, "event {agent}:{got} skips seqs (expected {expected})")
            }
            RemoteError::NotAfterOwnPrevious { agent, seq } => write!(
                f,
                "event {agent}:{seq} does not descend from {agent}:{}",
                seq.saturating_sub(1)
            ),
            RemoteError::MissingParents {
                agent,
                seq,
                missing,
            } => {
                write!(f, "event {agent}:{seq} has unknown parents:")?;
                for (a, s) in missing {
                    write!(f, " {a}:{s}")?;
                }
                Ok(())
            }
            RemoteError::Conflict { agent, seq } => {
                write!(
                    f,
                    "event {agent}:{seq} conflicts with the known event of that id"
                )
            }
            RemoteError::Malformed(s) => write!(f, "malformed event: {s}"),
            RemoteError::BeforeHorizon {
                agent,
                seq,
                horizon,
            } => {
                write!(f, "event {agent}:{seq}: ")?;
                fmt_horizon(f, horizon)
            }
        }
    }
}

impl std::error::Error for RemoteError {}

/// Encoded bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    BadMagic,
    UnsupportedVersion(u32),
    Truncated,
    ChecksumMismatch,
    Corrupt(&'static str),
    InvalidEvents(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadMagic => write!(f, "not a dist-space log (bad magic bytes)"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported encoding version {v}"),
            DecodeError::Truncated => write!(f, "data is truncated"),
            DecodeError::ChecksumMismatch => write!(f, "checksum mismatch"),
            DecodeError::Corrupt(s) => write!(f, "corrupt data: {s}"),
            DecodeError::InvalidEvents(s) => write!(f, "invalid events: {s}"),
        }
    }
}

impl std::error::Error for DecodeError {}
