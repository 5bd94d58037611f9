//! A document: its event log plus the live text at the newest version. This is what the rest
//! of dist-space holds per file.

use std::collections::BTreeMap;
use std::ops::Range;

use ropey::Rope;
use smallvec::SmallVec;

use crate::branch::Branch;
use crate::error::{EditError, RemoteError, VersionError};
use crate::frontier::{Frontier, LV};
use crate::oplog::{AgentId, NewOp, OpKind, OpLog};
use crate::walker::{self, BadEvent, Emit};

/// Wire form of a version: agent name -> highest seq included. An absent agent: none of its
/// events. Every agent's events are causally chained, so this names a causally closed set.
pub type RemoteVersion = BTreeMap<String, u64>;

/// Wire id of one event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteId {
    pub agent: String,
    pub seq: u64,
}

/// The op of a run of events. Positions are chars at the version of the run's parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteOp {
    /// Inserts `text` at `pos` (one event per char).
    Insert { pos: usize, text: String },
    /// Deletes `pos..pos+len` (one event per char); `backwards`: last char first (backspace).
    Delete {
        pos: usize,
        len: usize,
        backwards: bool,
    },
}

/// A run of consecutive events by one agent: seq, seq+1, ... The first has `parents`; each
/// later one has its predecessor as only parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEvent {
    pub agent: String,
    pub seq: u64,
    pub parents: Vec<RemoteId>,
    pub op: RemoteOp,
}

impl RemoteEvent {
    /// Number of events in the run.
    pub fn len(&self) -> usize {
        match &self.op {
            RemoteOp::Insert { text, .. } => text.chars().count(),
            RemoteOp::Delete { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The run without its first `k` events.
    fn skip(&self, k: usize) -> RemoteEvent {
        let op = match &self.op {
            RemoteOp::Insert { pos, text } => {
                let b = ropey::str_utils::char_to_byte_idx(text, k);
                RemoteOp::Insert {
                    pos: pos + k,
                    text: text[b..].to_string(),
                }
            }
            RemoteOp::Delete {
                pos,
                len,
                backwards,
            } => RemoteOp::Delete {
                pos: *pos,
                len: len - k,
                backwards: *backwards,
            },
        };
        RemoteEvent {
            agent: self.agent.clone(),
            seq: self.seq + k as u64,
            parents: vec![RemoteId {
                agent: self.agent.clone(),
                seq: self.seq + k as u64 - 1,
            }],
            op,
        }
    }
}

/// A positional edit in chars, valid in sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XfOp {
    Insert { pos: usize, text: String },
    Delete { pos: usize, len: usize },
}

impl XfOp {
    fn from_emit(e: &Emit) -> XfOp {
        match e {
            Emit::Ins { pos, text, .. } => XfOp::Insert {
                pos: *pos,
                text: (*text).to_string(),
            },
            Emit::Del { pos, len, .. } => XfOp::Delete {
                pos: *pos,
                len: *len,
            },
        }
    }

    /// Applies the op to a rope (positions must be in range).
    pub fn apply(&self, rope: &mut Rope) {
        match self {
            XfOp::Insert { pos, text } => rope.insert(*pos, text),
            XfOp::Delete { pos, len } => rope.remove(*pos..*pos + *len),
        }
    }
}

/// Replace `range` with `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

impl Edit {
    /// Turns edits that all refer to one document (LSP style: non-overlapping, any order) into
    /// the equivalent edits in sequence.
    pub fn sequence(mut edits: Vec<Edit>) -> Result<Vec<Edit>, EditError> {
        for e in &edits {
            if e.range.end < e.range.start {
                return Err(EditError::BadRange);
            }
        }
        edits.sort_by_key(|e| (e.range.start, e.range.end));
        for w in edits.windows(2) {
            if w[1].range.start < w[0].range.end
                || (w[1].range.start == w[0].range.start
                    && w[0].range.is_empty()
                    && w[1].range.is_empty())
            {
                return Err(EditError::InvalidEdit(format!(
                    "edits at {:?} and {:?} overlap",
                    w[0].range, w[1].range
                )));
            }
        }
        // Applying from the last to the first keeps earlier positions valid.
        edits.reverse();
        Ok(edits)
    }
}

/// Which way a position moves when text is inserted exactly at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bias {
    /// Stays before the inserted text.
    Left,
    /// Moves after the inserted text.
    Right,
}

/// Result of [`Document::edit_at`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditOutcome {
    /// The document's version after the edits.
    pub version: Frontier,
    /// The edits as applied to the live text (transformed), in order.
    pub applied: Vec<XfOp>,
}

/// Result of [`Document::apply_remote`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Events added to the log.
    pub new_events: usize,
    /// Events that were already known (ignored).
    pub duplicate_events: usize,
    /// Events waiting for parents that have not arrived.
    pub pending_events: usize,
    /// What changed in the live text, in order.
    pub applied: Vec<XfOp>,
}

/// Most events that may wait for their parents.
pub const MAX_PENDING_EVENTS: usize = 1 << 20;

/// A document: event log + live text at the newest version.
#[derive(Clone, Debug, Default)]
pub struct Document {
    pub(crate) oplog: OpLog,
    pub(crate) branch: Branch,
    pub(crate) pending: Vec<RemoteEvent>,
}

impl Document {
    pub fn new() -> Self {
        Self::default()
    }

    /// A document whose root version holds `text` (no events). Cheap: the rope is shared
    /// between the log's base and the live text until edits touch it.
    pub fn from_text(text: Rope) -> Self {
        let oplog = OpLog::with_base(text);
        let branch = Branch::at_root(&oplog);
        Document {
            oplog,
            branch,
            pending: Vec::new(),
        }
    }

    /// Materialises an event log (validating every event).
    pub fn from_oplog(oplog: OpLog) -> Result<Self, VersionError> {
        let mut branch = Branch::at_root(&oplog);
        let v = oplog.version.clone();
        branch
            .merge_with(&oplog, v.as_slice(), |_| {})
            .map_err(|BadEvent(lv)| VersionError::InvalidEvent(lv))?;
        Ok(Document {
            oplog,
            branch,
            pending: Vec::new(),
        })
    }

    pub fn oplog(&self) -> &OpLog {
        &self.oplog
    }

    pub fn agent(&mut self, name: &str) -> AgentId {
        self.oplog.agent(name)
    }

    pub fn try_agent(&mut self, name: &str) -> Result<AgentId, EditError> {
        self.oplog.try_agent(name)
    }

    pub fn agent_name(&self, id: AgentId) -> &str {
        self.oplog.agent_name(id)
    }

    pub fn len_chars(&self) -> usize {
        self.branch.len_chars()
    }

    pub fn text(&mut self) -> &Rope {
        self.branch.text()
    }

    /// The current text as an immutable rope (O(1) after the first call following edits).
    pub fn snapshot(&mut self) -> Rope {
        self.branch.text().clone()
    }

    /// The current text without `&mut` (copies a pending typing run if there is one).
    pub fn to_rope(&self) -> Rope {
        self.branch.to_rope()
    }

    /// The newest version (the horizon when no event is kept after it).
    pub fn version(&self) -> &Frontier {
        self.oplog.version()
    }

    // ------------------------------------------------------------ local edits

    fn check_local(&self, agent: AgentId) -> Result<(), EditError> {
        self.oplog.agent_ok(agent)
    }

    /// Inserts `text` at char `pos` of the current version.
    pub fn insert(
        &mut self,
        agent: AgentId,
        pos: usize,
        text: &str,
    ) -> Result<Frontier, EditError> {
        self.check_local(agent)?;
        let len = self.len_chars();
        if pos > len {
            return Err(EditError::OutOfRange {
                pos,
                len: 0,
                doc_len: len,
            });
        }
        let n = ropey::str_utils::byte_to_char_idx(text, text.len());
        if n > 0 {
            let r = self.oplog.push_run(
                agent,
                self.branch.version.as_slice(),
                NewOp {
                    kind: OpKind::Ins,
                    pos,
                    len: n,
                    fwd: true,
                    content: text,
                },
            );
            self.branch.insert(pos, text);
            self.branch.version.replace_with_single(r.end - 1);
        }
        Ok(self.version().clone())
    }

    /// Deletes the char range `range` of the current version.
    pub fn delete(&mut self, agent: AgentId, range: Range<usize>) -> Result<Frontier, EditError> {
        self.check_local(agent)?;
        let len = self.len_chars();
        if range.end < range.start {
            return Err(EditError::BadRange);
        }
        if range.end > len {
            return Err(EditError::OutOfRange {
                pos: range.start,
                len: range.len(),
                doc_len: len,
            });
        }
        if !range.is_empty() {
            let r = self.oplog.push_run(
                agent,
                self.branch.version.as_slice(),
                NewOp {
                    kind: OpKind::Del,
                    pos: range.start,
                    len: range.len(),
                    fwd: true,
                    content: "",
                },
            );
            self.branch.delete(range.start, range.len());
            self.branch.version.replace_with_single(r.end - 1);
        }
        Ok(self.version().clone())
    }

    /// Replaces `range` with `text` (a delete then an insert).
    pub fn replace(
        &mut self,
        agent: AgentId,
        range: Range<usize>,
        text: &str,
    ) -> Result<Frontier, EditError> {
        self.check_local(agent)?;
        if range.end < range.start {
            return Err(EditError::BadRange);
        }
        if range.end > self.len_chars() {
            return Err(EditError::OutOfRange {
                pos: range.start,
                len: range.len(),
                doc_len: self.len_chars(),
            });
        }
        self.delete(agent, range.clone())?;
        self.insert(agent, range.start, text)
    }

    /// Applies `edits`, made in sequence at the older version `base`, transforming them over
    /// everything that happened since. Atomic: on error nothing changes.
    pub fn edit_at(
        &mut self,
        agent: AgentId,
        base: &Frontier,
        edits: &[Edit],
    ) -> Result<EditOutcome, EditError> {
        self.check_local(agent)?;
        let base = self.oplog.internal_for_edit(base.as_slice())?;
        let base = self.oplog.reduce(base.as_slice());
        let next = self.oplog.next_seq(agent);
        // (A compacted previous edit is in every version that includes the horizon.)
        if let Some(last) = next
            .checked_sub(1)
            .and_then(|s| self.oplog.id_to_lv(agent, s))
        {
            if !self.oplog.version_contains(base.as_slice(), last) {
                return Err(EditError::AgentNotInBase);
            }
        }
        for e in edits {
            if e.range.end < e.range.start {
                return Err(EditError::BadRange);
            }
        }
        let start_len = self.oplog.len();
        let mut parents: SmallVec<[LV; 2]> = base.0.clone();
        for e in edits {
            if !e.range.is_empty() {
                let r = self.oplog.push_run(
                    agent,
                    &parents,
                    NewOp {
                        kind: OpKind::Del,
                        pos: e.range.start,
                        len: e.range.len(),
                        fwd: true,
                        content: "",
                    },
                );
                parents = SmallVec::from_slice(&[r.end - 1]);
            }
            let n = e.text.chars().count();
            if n > 0 {
                let r = self.oplog.push_run(
                    agent,
                    &parents,
                    NewOp {
                        kind: OpKind::Ins,
                        pos: e.range.start,
                        len: n,
                        fwd: true,
                        content: &e.text,
                    },
                );
                parents = SmallVec::from_slice(&[r.end - 1]);
            }
        }
        let mut applied = Vec::new();
        let to = self.oplog.version.clone();
        match self.branch.merge_with(&self.oplog, to.as_slice(), |e| {
            applied.push(XfOp::from_emit(e))
        }) {
            Ok(()) => Ok(EditOutcome {
                version: self.version().clone(),
                applied,
            }),
            Err(BadEvent(lv)) => {
                // Which edit was out of range, for the message.
                let off = lv - start_len;
                self.oplog.truncate(start_len);
                self.branch.clear_cache();
                Err(EditError::InvalidEdit(format!(
                    "edit event {off} of the batch is out of range at its version"
                )))
            }
        }
    }

    // ------------------------------------------------------------ remote events

    /// Adds events from another replica, in any order, any number of times. Known events are
    /// ignored; events whose parents are unknown wait (see [`Document::pending_events`]).
    /// Atomic: when any event is invalid, the error names it and nothing changes.
    pub fn apply_remote(&mut self, events: &[RemoteEvent]) -> Result<ApplyReport, RemoteError> {
        let start_len = self.oplog.len();
        let saved_pending = self.pending.clone();
        let mut report = ApplyReport::default();
        let res = self.add_remote_events(events, &mut report);
        let res = res.and_then(|()| {
            let to = self.oplog.version.clone();
            let mut applied = Vec::new();
            self.branch
                .merge_with(&self.oplog, to.as_slice(), |e| {
                    applied.push(XfOp::from_emit(e))
                })
                .map_err(|BadEvent(lv)| {
                    let (a, seq) = self.oplog.lv_to_id(lv);
                    RemoteError::OutOfRange {
                        agent: self.oplog.agent_name(a).to_string(),
                        seq,
                    }
                })?;
            report.applied = applied;
            Ok(())
        });
        match res {
            Ok(()) => {
                report.pending_events = self.pending.iter().map(|e| e.len()).sum();
                Ok(report)
            }
            Err(e) => {
                self.oplog.truncate(start_len);
                self.branch.clear_cache();
                self.pending = saved_pending;
                Err(e)
            }
        }
    }

    /// Number of events waiting for unknown parents.
    pub fn pending_events(&self) -> usize {
        self.pending.iter().map(|e| e.len()).sum()
    }

    /// Gives up on events still waiting for parents, returning why each was rejected.
    pub fn reject_pending(&mut self) -> Vec<RemoteError> {
        let pending = std::mem::take(&mut self.pending);
        pending
            .into_iter()
            .map(|e| {
                let missing = e
                    .parents
                    .iter()
                    .filter(|p| self.resolve(p).is_none())
                    .map(|p| (p.agent.clone(), p.seq))
                    .collect();
                RemoteError::MissingParents {
                    agent: e.agent,
                    seq: e.seq,
                    missing,
                }
            })
            .collect()
    }

    fn resolve(&self, id: &RemoteId) -> Option<LV> {
        let a = self.oplog.find_agent(&id.agent)?;
        self.oplog.id_to_lv(a, id.seq)
    }

    fn add_remote_events(
        &mut self,
        events: &[RemoteEvent],
        report: &mut ApplyReport,
    ) -> Result<(), RemoteError> {
        let mut queue: Vec<RemoteEvent> = std::mem::take(&mut self.pending);
        queue.extend(events.iter().cloned());
        loop {
            let mut progress = false;
            let mut waiting = Vec::new();
            for ev in queue {
                if self.add_one(&ev, report)? {
                    progress = true;
                } else {
                    waiting.push(ev);
                }
            }
            queue = waiting;
            if !progress || queue.is_empty() {
                break;
            }
        }
        let pending: usize = queue.iter().map(|e| e.len()).sum();
        if pending > MAX_PENDING_EVENTS {
            return Err(RemoteError::Malformed(format!(
                "{pending} events wait for unknown parents (limit {MAX_PENDING_EVENTS})"
            )));
        }
        self.pending = queue;
        Ok(())
    }

    /// Adds one run. Ok(false): its parents are not known yet.
    fn add_one(&mut self, ev: &RemoteEvent, report: &mut ApplyReport) -> Result<bool, RemoteError> {
        let n = ev.len();
        if n == 0 {
            return Err(RemoteError::Malformed(format!(
                "empty event {}:{}",
                ev.agent, ev.seq
            )));
        }
        if ev.agent.is_empty() || ev.agent.len() > crate::oplog::MAX_AGENT_NAME {
            return Err(RemoteError::Malformed(
                "agent name must be 1 to 256 bytes".into(),
            ));
        }
        if ev.seq.checked_add(n as u64).is_none() {
            return Err(RemoteError::Malformed("seq overflow".into()));
        }
        let known_agent = self.oplog.find_agent(&ev.agent);
        let floor = known_agent.map_or(0, |a| self.oplog.agents[a.0 as usize].floor);
        let next = known_agent.map_or(0, |a| self.oplog.next_seq(a));
        // Compacted events: known by id only (their content is gone), so duplicates.
        let trimmed;
        let ev = if ev.seq < floor {
            let c = ((floor - ev.seq) as usize).min(n);
            report.duplicate_events += c;
            if c == n {
                return Ok(true);
            }
            trimmed = ev.skip(c);
            &trimmed
        } else {
            ev
        };
        let n = ev.len();
        let ev = if ev.seq < next {
            let known = ((next - ev.seq) as usize).min(n);
            if !self.matches_known(ev, known) {
                return Err(RemoteError::Conflict {
                    agent: ev.agent.clone(),
                    seq: ev.seq,
                });
            }
            report.duplicate_events += known;
            if known == n {
                return Ok(true);
            }
            ev.skip(known)
        } else {
            ev.clone()
        };
        let mut parents: SmallVec<[LV; 2]> = SmallVec::new();
        let mut compacted: Vec<(AgentId, u64)> = Vec::new();
        for p in &ev.parents {
            match self.resolve(p) {
                Some(lv) => parents.push(lv),
                None => match self.oplog.find_agent(&p.agent) {
                    Some(a) if self.oplog.is_compacted_id(a, p.seq) => compacted.push((a, p.seq)),
                    _ => return Ok(false),
                },
            }
        }
        // Compacted parents are ancestors of every kept event; with no kept parent they must
        // name the whole horizon (which the root stands for), else the event was made
        // concurrently with compacted history.
        if parents.is_empty()
            && self.oplog.is_compacted()
            && !self.oplog.horizon_ids.iter().all(|h| compacted.contains(h))
        {
            return Err(RemoteError::BeforeHorizon {
                agent: ev.agent.clone(),
                seq: ev.seq,
                horizon: self.oplog.horizon_version(),
            });
        }
        if ev.seq > next {
            return Err(RemoteError::SeqGap {
                agent: ev.agent.clone(),
                expected: next,
                got: ev.seq,
            });
        }
        let parents = self.oplog.reduce(&parents);
        let agent = self.oplog.agent(&ev.agent);
        // (A compacted previous event is in the history of every event accepted here.)
        if let Some(prev) = ev
            .seq
            .checked_sub(1)
            .and_then(|s| self.oplog.id_to_lv(agent, s))
        {
            if !self.oplog.version_contains(parents.as_slice(), prev) {
                return Err(RemoteError::NotAfterOwnPrevious {
                    agent: ev.agent.clone(),
                    seq: ev.seq,
                });
            }
        }
        match &ev.op {
            RemoteOp::Insert { pos, text } => {
                self.oplog.push_run(
                    agent,
                    parents.as_slice(),
                    NewOp {
                        kind: OpKind::Ins,
                        pos: *pos,
                        len: ev.len(),
                        fwd: true,
                        content: text,
                    },
                );
            }
            RemoteOp::Delete {
                pos,
                len,
                backwards,
            } => {
                if pos.checked_add(*len).is_none() {
                    return Err(RemoteError::OutOfRange {
                        agent: ev.agent.clone(),
                        seq: ev.seq,
                    });
                }
                self.oplog.push_run(
                    agent,
                    parents.as_slice(),
                    NewOp {
                        kind: OpKind::Del,
                        pos: *pos,
                        len: *len,
                        fwd: !backwards,
                        content: "",
                    },
                );
            }
        }
        report.new_events += ev.len();
        Ok(true)
    }

    /// Whether the first `k` events of `ev` equal the known events with those ids.
    fn matches_known(&self, ev: &RemoteEvent, k: usize) -> bool {
        let Some(agent) = self.oplog.find_agent(&ev.agent) else {
            return false;
        };
        let mut want = expand(ev).take(k);
        let mut seq = ev.seq;
        let mut first = true;
        while seq < ev.seq + k as u64 {
            let Some(lv) = self.oplog.id_to_lv(agent, seq) else {
                return false;
            };
            let entry_end = self.oplog.graph_entry(lv).end;
            let run = self
                .oplog
                .agent_run_len(lv, (ev.seq + k as u64 - seq) as usize)
                .min(entry_end - lv);
            // Parents of the first event of each stored piece.
            let stored_parents = self.ids_of(&self.oplog.parents_slice_of(lv));
            let want_parents: Vec<RemoteId> = if first {
                let mut p = ev.parents.clone();
                p.sort();
                p
            } else {
                vec![RemoteId {
                    agent: ev.agent.clone(),
                    seq: seq - 1,
                }]
            };
            if stored_parents != want_parents {
                return false;
            }
            for piece in self.oplog.ops_in(lv..lv + run) {
                let mut chars = piece.content.chars();
                for i in 0..piece.len {
                    let got = match (piece.kind, piece.fwd) {
                        (OpKind::Ins, _) => (true, piece.pos + i, chars.next()),
                        (OpKind::Del, true) => (false, piece.pos, None),
                        (OpKind::Del, false) => (false, piece.pos + piece.len - 1 - i, None),
                    };
                    if want.next() != Some(got) {
                        return false;
                    }
                }
            }
            seq += run as u64;
            first = false;
        }
        true
    }

    /// Wire ids of an internal frontier (the root of a compacted log: the horizon's ids).
    pub(crate) fn ids_of(&self, lvs: &[LV]) -> Vec<RemoteId> {
        if lvs.is_empty() && self.oplog.is_compacted() {
            let mut v: Vec<RemoteId> = self
                .oplog
                .horizon_ids
                .iter()
                .map(|(a, seq)| RemoteId {
                    agent: self.oplog.agent_name(*a).to_string(),
                    seq: *seq,
                })
                .collect();
            v.sort();
            return v;
        }
        let mut v: Vec<RemoteId> = lvs
            .iter()
            .map(|lv| {
                let (a, seq) = self.oplog.lv_to_id(*lv);
                RemoteId {
                    agent: self.oplog.agent_name(a).to_string(),
                    seq,
                }
            })
            .collect();
        v.sort();
        v
    }

    /// Every event not in `have`, in causal order, as runs. On a compacted document, a `have`
    /// that lacks the horizon gets only the kept events (whose parents it lacks);
    /// [`Document::try_events_since`] refuses it instead.
    pub fn events_since(&self, have: &RemoteVersion) -> Vec<RemoteEvent> {
        let mut ranges: Vec<Range<LV>> = Vec::new();
        for ad in &self.oplog.agents {
            let from = have.get(&*ad.name).map_or(0, |s| s + 1);
            let first = ad.runs.partition_point(|r| r.seq + r.len as u64 <= from);
            for r in &ad.runs[first..] {
                let end = r.seq + r.len as u64;
                if end > from {
                    let skip = from.saturating_sub(r.seq) as usize;
                    ranges.push(r.lv + skip..r.lv + r.len);
                }
            }
        }
        ranges.sort_by_key(|r| r.start);
        let mut out = Vec::new();
        for r in ranges {
            self.export(r, &mut out);
        }
        out
    }

    /// Every event in the log, in causal order, as runs.
    pub fn all_events(&self) -> Vec<RemoteEvent> {
        let mut out = Vec::new();
        self.export(self.oplog.first..self.oplog.len(), &mut out);
        out
    }

    fn export(&self, range: Range<LV>, out: &mut Vec<RemoteEvent>) {
        let oplog = &self.oplog;
        let mut at = range.start;
        while at < range.end {
            let e = oplog.graph_entry(at);
            let span = oplog.agent_span_at(at);
            let end = range.end.min(e.end).min(span.lv + span.len);
            let parents = self.ids_of(&oplog.parents_slice_of(at));
            let agent = oplog.agent_name(span.agent).to_string();
            let mut first = true;
            let mut seq = span.seq + (at - span.lv) as u64;
            for piece in oplog.ops_in(at..end) {
                let op = match piece.kind {
                    OpKind::Ins => RemoteOp::Insert {
                        pos: piece.pos,
                        text: piece.content.to_string(),
                    },
                    OpKind::Del => RemoteOp::Delete {
                        pos: piece.pos,
                        len: piece.len,
                        backwards: !piece.fwd,
                    },
                };
                let parents = if first {
                    parents.clone()
                } else {
                    vec![RemoteId {
                        agent: agent.clone(),
                        seq: seq - 1,
                    }]
                };
                out.push(RemoteEvent {
                    agent: agent.clone(),
                    seq,
                    parents,
                    op,
                });
                seq += piece.len as u64;
                first = false;
            }
            at = end;
        }
    }

    // ------------------------------------------------------------ versions

    /// The wire form (agent -> highest seq) of a version. On a compacted document, a frontier
    /// that does not include the horizon (stale local versions from before the compaction) is
    /// answered as the horizon; check with [`Document::includes_horizon`].
    pub fn remote_version(&self, v: &Frontier) -> RemoteVersion {
        let mut out = self.oplog.horizon_version();
        if v == self.oplog.version() {
            for ad in &self.oplog.agents {
                let n = ad.next_seq();
                if n > 0 {
                    out.insert(ad.name.to_string(), n - 1);
                }
            }
            return out;
        }
        let v = self.oplog.internal(v.as_slice()).unwrap_or_default();
        let (_, hist) = self.oplog.diff(&[], v.as_slice());
        for r in hist {
            let mut at = r.start;
            while at < r.end {
                let s = self.oplog.agent_span_at(at);
                let end = r.end.min(s.lv + s.len);
                let last_seq = s.seq + (end - 1 - s.lv) as u64;
                let e = out
                    .entry(self.oplog.agent_name(s.agent).to_string())
                    .or_insert(0);
                *e = (*e).max(last_seq);
                at = end;
            }
        }
        out
    }

    /// The version named by a wire version. `BeforeHorizon` when it lacks a compacted horizon.
    pub fn frontier_of(&self, rv: &RemoteVersion) -> Result<Frontier, VersionError> {
        let mut lvs = Vec::with_capacity(rv.len());
        for (name, seq) in rv {
            let lv = self.resolve(&RemoteId {
                agent: name.clone(),
                seq: *seq,
            });
            let compacted = || {
                self.oplog
                    .find_agent(name)
                    .is_some_and(|a| self.oplog.is_compacted_id(a, *seq))
            };
            match lv {
                Some(lv) => lvs.push(lv),
                None if compacted() => {}
                None => {
                    return Err(VersionError::UnknownRemote {
                        agent: name.clone(),
                        seq: *seq,
                    })
                }
            }
        }
        if !self.remote_includes_horizon(rv) {
            return Err(self.oplog.before_horizon());
        }
        // Including the horizon means including every compacted event.
        for ad in &self.oplog.agents {
            if ad.floor > 0 && rv.get(&*ad.name).is_none_or(|s| *s + 1 < ad.floor) {
                return Err(VersionError::NotClosed);
            }
        }
        let f = self.oplog.reduce(&lvs);
        // Agents are causally chained, so the version is closed unless some agent's next event
        // after the one named (or its first event, when it is not named) is in the history.
        for (i, ad) in self.oplog.agents.iter().enumerate() {
            let next = rv.get(&*ad.name).map_or(0, |s| s + 1);
            if let Some(lv) = self.oplog.id_to_lv(AgentId(i as u32), next) {
                if self.oplog.version_contains(f.as_slice(), lv) {
                    return Err(VersionError::NotClosed);
                }
            }
        }
        Ok(self.oplog.external(f))
    }

    /// The wire ids of a frontier. On a compacted document a frontier that does not include
    /// the horizon is answered as the horizon (see [`Document::includes_horizon`]).
    pub fn frontier_ids(&self, v: &Frontier) -> Vec<RemoteId> {
        let v = self.oplog.internal(v.as_slice()).unwrap_or_default();
        self.ids_of(v.as_slice())
    }

    /// The frontier named by wire ids. `BeforeHorizon` when they name a version that lacks a
    /// compacted horizon.
    pub fn frontier_from_ids(&self, ids: &[RemoteId]) -> Result<Frontier, VersionError> {
        let mut lvs = Vec::with_capacity(ids.len());
        let mut compacted = Vec::new();
        for id in ids {
            match self.resolve(id) {
                Some(lv) => lvs.push(lv),
                None => match self.oplog.find_agent(&id.agent) {
                    Some(a) if self.oplog.is_compacted_id(a, id.seq) => compacted.push((a, id.seq)),
                    _ => {
                        return Err(VersionError::UnknownRemote {
                            agent: id.agent.clone(),
                            seq: id.seq,
                        })
                    }
                },
            }
        }
        if lvs.is_empty() && !self.oplog.horizon_ids.iter().all(|h| compacted.contains(h)) {
            return Err(self.oplog.before_horizon());
        }
        Ok(self.oplog.external(self.oplog.reduce(&lvs)))
    }

    // ------------------------------------------------------------ time travel and transform

    /// The text at any version of the log (`BeforeHorizon` for one older than a compaction
    /// horizon).
    pub fn checkout(&self, v: &Frontier) -> Result<Rope, VersionError> {
        self.oplog.checkout(v)
    }

    /// The positional edits that take a document at `from` to `from ∪ to`, in order.
    pub fn transform(&self, from: &Frontier, to: &Frontier) -> Result<Vec<XfOp>, VersionError> {
        self.oplog.transform(from, to)
    }

    /// Where char position `pos` at version `from` is at version `from ∪ to`.
    pub fn transform_pos(
        &self,
        pos: usize,
        from: &Frontier,
        to: &Frontier,
        bias: Bias,
    ) -> Result<usize, VersionError> {
        let ops = self.transform(from, to)?;
        Ok(shift_pos(pos, &ops, bias))
    }
}

/// Moves a position through a list of edits in sequence.
pub fn shift_pos(mut pos: usize, ops: &[XfOp], bias: Bias) -> usize {
    for op in ops {
        match op {
            XfOp::Insert { pos: p, text } => {
                if *p < pos || (*p == pos && bias == Bias::Right) {
                    pos += text.chars().count();
                }
            }
            XfOp::Delete { pos: p, len } => {
                if p + len <= pos {
                    pos -= len;
                } else if *p < pos {
                    pos = *p;
                }
            }
        }
    }
    pos
}

/// The events of a run one by one: (is insert, position, inserted char).
fn expand(ev: &RemoteEvent) -> Box<dyn Iterator<Item = (bool, usize, Option<char>)> + '_> {
    match &ev.op {
        RemoteOp::Insert { pos, text } => Box::new(
            text.chars()
                .enumerate()
                .map(move |(i, c)| (true, pos + i, Some(c))),
        ),
        RemoteOp::Delete {
            pos,
            len,
            backwards,
        } => {
            let (pos, len, backwards) = (*pos, *len, *backwards);
            Box::new(
                (0..len)
                    .map(move |i| (false, if backwards { pos + len - 1 - i } else { pos }, None)),
            )
        }
    }
}

impl OpLog {
    /// The text at version `v`.
    pub fn checkout(&self, v: &Frontier) -> Result<Rope, VersionError> {
        let v = self.internal(v.as_slice())?;
        let mut b = Branch::at_root(self);
        b.merge_with(self, v.as_slice(), |_| {})
            .map_err(|BadEvent(lv)| VersionError::InvalidEvent(lv))?;
        Ok(b.text().clone())
    }

    /// The text at the newest version.
    pub fn checkout_tip(&self) -> Result<Rope, VersionError> {
        self.checkout(&self.version().clone())
    }

    /// The positional edits that take a document at `from` to `from ∪ to`.
    pub fn transform(&self, from: &Frontier, to: &Frontier) -> Result<Vec<XfOp>, VersionError> {
        let from = self.internal(from.as_slice())?;
        let to = self.internal(to.as_slice())?;
        let mut out = Vec::new();
        walker::transform(self, &from, None, to.as_slice(), &mut |e| {
            out.push(XfOp::from_emit(&e))
        })
        .map_err(|BadEvent(lv)| VersionError::InvalidEvent(lv))?;
        Ok(out)
    }
}
