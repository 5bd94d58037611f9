//! The event graph of one document: agents, causal parents and positional ops, all run-length
//! encoded. No text is materialised here; see [`crate::Branch`] and the merge walker.

use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;

use smallvec::SmallVec;

use crate::error::{EditError, Horizon, VersionError};
use crate::frontier::{Frontier, LV};

/// A small interned id for an agent name, valid within one [`OpLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Ins,
    Del,
}

/// One run of seqs of one agent, stored at consecutive local versions.
#[derive(Clone, Debug)]
pub(crate) struct SeqRun {
    pub seq: u64,
    pub lv: LV,
    pub len: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct AgentData {
    pub name: Box<str>,
    /// Sorted by seq; seqs are contiguous from `floor` (no gaps), local versions need not be.
    pub runs: Vec<SeqRun>,
    /// Seqs below this were compacted away (0 unless the log was compacted).
    pub floor: u64,
}

impl AgentData {
    pub fn next_seq(&self) -> u64 {
        self.runs
            .last()
            .map_or(self.floor, |r| r.seq + r.len as u64)
    }
}

/// Local versions `lv..lv+len` were made by `agent` as seqs `seq..seq+len`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AgentSpan {
    pub lv: LV,
    pub len: usize,
    pub agent: AgentId,
    pub seq: u64,
}

/// Events `start..end`: the first has `parents`, each later one has its predecessor as parent.
#[derive(Clone, Debug)]
pub(crate) struct GraphEntry {
    pub start: LV,
    pub end: LV,
    pub parents: Frontier,
}

/// A run of ops of one kind at consecutive local versions.
/// - `Ins`, fwd: chars inserted one after another starting at `pos` (the first at `pos`).
/// - `Del`, fwd: `len` deletes all at `pos` (delete key), removing `pos..pos+len` of the version
///   before the first.
/// - `Del`, !fwd: backspaces; removing `pos..pos+len`, last char first.
#[derive(Clone, Debug)]
pub(crate) struct OpRun {
    pub lv: LV,
    pub len: usize,
    pub kind: OpKind,
    pub pos: usize,
    pub fwd: bool,
    /// Byte range in `ins_content` (inserts only).
    pub content: Range<usize>,
}

impl OpRun {
    /// Extends this run with the op of events `start..start+len` when it continues the same
    /// typing motion (the one place these rules live). `content` is the byte range the new
    /// text has (or will have) in `ins_content`. Returns false, changing nothing, otherwise.
    #[inline(always)]
    fn try_extend(&mut self, start: LV, new: &NewOp, content: Range<usize>) -> bool {
        let NewOp {
            kind,
            pos,
            len,
            fwd,
            ..
        } = *new;
        if self.lv + self.len != start || self.kind != kind {
            return false;
        }
        match kind {
            OpKind::Ins => {
                if !fwd || self.pos + self.len != pos || self.content.end != content.start {
                    return false;
                }
                self.content.end = content.end;
            }
            OpKind::Del => {
                // A run continues a forward run only if it is forward itself (a single delete
                // is both ways); a backspace continues a backwards run one char at a time.
                if self.pos == pos && (fwd || len == 1) && (self.fwd || self.len == 1) {
                    self.fwd = true;
                } else if len == 1 && pos + 1 == self.pos && (!self.fwd || self.len == 1) {
                    self.fwd = false;
                    self.pos = pos;
                } else {
                    return false;
                }
            }
        }
        self.len += len;
        true
    }
}

/// The op of a run of new events, as given to [`OpLog::push_run`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewOp<'a> {
    pub kind: OpKind,
    /// Char position at the run's parents (see [`OpRun`] for what it means per kind).
    pub pos: usize,
    /// Number of events.
    pub len: usize,
    /// Deletes: forward (delete key) or backwards (backspace). Inserts are always forward.
    pub fwd: bool,
    /// Inserted text (empty for deletes).
    pub content: &'a str,
}

/// One piece of an op run, trimmed to a requested range of local versions.
#[derive(Clone, Debug)]
pub struct OpPiece<'a> {
    pub lv: LV,
    pub len: usize,
    pub kind: OpKind,
    pub pos: usize,
    pub fwd: bool,
    pub content: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Flag {
    OnlyA,
    OnlyB,
    Shared,
}

impl Flag {
    fn merge(self, other: Flag) -> Flag {
        if self == other {
            self
        } else {
            Flag::Shared
        }
    }
}

/// The whole event graph of a document.
#[derive(Clone, Debug, Default)]
pub struct OpLog {
    pub(crate) agents: Vec<AgentData>,
    pub(crate) agent_index: HashMap<Box<str>, AgentId>,
    pub(crate) assignments: Vec<AgentSpan>,
    pub(crate) graph: Vec<GraphEntry>,
    pub(crate) ops: Vec<OpRun>,
    pub(crate) ins_content: String,
    pub(crate) version: Frontier,
    /// The text at the root version (empty unless the log starts from a base text).
    pub(crate) base: ropey::Rope,
    /// Compaction (see `compact.rs`): events `0..first` were compacted away; the internal root
    /// version (empty frontier) then stands for `horizon`, a frontier of compacted LVs, whose
    /// text is `base`. `first` is 0 and `horizon` root for a log never compacted.
    pub(crate) first: LV,
    pub(crate) horizon: Frontier,
    /// Wire ids of `horizon`'s events.
    pub(crate) horizon_ids: Vec<(AgentId, u64)>,
    /// Identity (length, crc) of the original base text, kept through compaction so encoded
    /// chunks from uncompacted replicas still match. None: that of `base`.
    pub(crate) origin_id: Option<(u64, u64)>,
}

/// Longest accepted agent name, in bytes.
pub const MAX_AGENT_NAME: usize = 256;

impl OpLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A log whose root version holds `text` (e.g. a file as loaded from disk, or the snapshot
    /// left by compaction). The text is kept once, shared with documents made from this log.
    pub fn with_base(text: ropey::Rope) -> Self {
        OpLog {
            base: text,
            ..Self::default()
        }
    }

    /// The text at the root version.
    pub fn base(&self) -> &ropey::Rope {
        &self.base
    }

    /// Number of events (one per inserted or deleted char), compacted ones included: the next
    /// local version. Kept events are `first_lv()..len()`.
    pub fn len(&self) -> usize {
        self.graph.last().map_or(self.first, |e| e.end)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest version: every event in the log (the horizon when no event is kept after it).
    pub fn version(&self) -> &Frontier {
        if self.version.is_empty() {
            &self.horizon
        } else {
            &self.version
        }
    }

    /// The first local version still in the log (0 unless compacted). Graph queries
    /// (`parents_of`, `version_contains`, `diff`, `reduce`, `lv_to_id`) need LVs from here on.
    pub fn first_lv(&self) -> LV {
        self.first
    }

    /// The compaction horizon as a frontier of (compacted) local versions: what the log's root
    /// stands for. Root when never compacted.
    pub fn horizon(&self) -> &Frontier {
        &self.horizon
    }

    /// Was history compacted away?
    pub fn is_compacted(&self) -> bool {
        self.first > 0
    }

    /// The horizon in wire form: agent -> highest compacted seq (empty when never compacted).
    pub fn horizon_version(&self) -> Horizon {
        self.agents
            .iter()
            .filter(|a| a.floor > 0)
            .map(|a| (a.name.to_string(), a.floor - 1))
            .collect()
    }

    /// Was event (agent, seq) compacted away?
    pub fn is_compacted_id(&self, agent: AgentId, seq: u64) -> bool {
        self.agents
            .get(agent.0 as usize)
            .is_some_and(|a| seq < a.floor)
    }

    pub(crate) fn before_horizon(&self) -> VersionError {
        VersionError::BeforeHorizon {
            horizon: self.horizon_version(),
        }
    }

    /// Turns a caller's version into the internal form: LVs below `first` are dropped (every
    /// kept event descends from all of them) and the horizon itself becomes the root.
    /// Errors: unknown LVs, or a version that does not include the horizon.
    pub(crate) fn internal(&self, f: &[LV]) -> Result<Frontier, VersionError> {
        if !self.check_known(f) {
            return Err(VersionError::Unknown);
        }
        if self.first == 0 {
            return Ok(Frontier::from_unsorted(f));
        }
        if f.iter().any(|v| *v >= self.first) {
            let kept: SmallVec<[LV; 2]> = f.iter().copied().filter(|v| *v >= self.first).collect();
            return Ok(Frontier::from_unsorted(&kept));
        }
        // A set of compacted events includes the horizon only if it names all of it (every
        // compacted event is in the horizon's history, so none is after a horizon event).
        if self.horizon.as_slice().iter().all(|h| f.contains(h)) {
            Ok(Frontier::root())
        } else {
            Err(self.before_horizon())
        }
    }

    /// The caller's form of an internal version (the root stands for the horizon).
    pub(crate) fn external(&self, f: Frontier) -> Frontier {
        if f.is_empty() {
            self.horizon.clone()
        } else {
            f
        }
    }

    /// Interns an agent name. Panics never; names longer than [`MAX_AGENT_NAME`] are truncated
    /// by callers at the protocol edge ([`OpLog::try_agent`] reports them).
    pub fn agent(&mut self, name: &str) -> AgentId {
        if let Some(id) = self.agent_index.get(name) {
            return *id;
        }
        let id = AgentId(self.agents.len() as u32);
        self.agents.push(AgentData {
            name: name.into(),
            runs: Vec::new(),
            floor: 0,
        });
        self.agent_index.insert(name.into(), id);
        id
    }

    pub fn try_agent(&mut self, name: &str) -> Result<AgentId, EditError> {
        if name.is_empty() || name.len() > MAX_AGENT_NAME {
            return Err(EditError::BadAgentName);
        }
        Ok(self.agent(name))
    }

    pub fn find_agent(&self, name: &str) -> Option<AgentId> {
        self.agent_index.get(name).copied()
    }

    pub fn agent_name(&self, id: AgentId) -> &str {
        &self.agents[id.0 as usize].name
    }

    pub fn num_agents(&self) -> usize {
        self.agents.len()
    }

    pub(crate) fn agent_ok(&self, id: AgentId) -> Result<(), EditError> {
        if (id.0 as usize) < self.agents.len() {
            Ok(())
        } else {
            Err(EditError::UnknownAgent)
        }
    }

    /// The next seq the agent will use.
    pub fn next_seq(&self, agent: AgentId) -> u64 {
        self.agents[agent.0 as usize].next_seq()
    }

    /// Number of run-length records (graph entries, agent spans, op runs): a measure of how
    /// compact the log is.
    pub fn num_runs(&self) -> (usize, usize, usize) {
        (self.graph.len(), self.assignments.len(), self.ops.len())
    }

    // ---------------------------------------------------------------- lookups

    fn graph_idx(&self, lv: LV) -> usize {
        debug_assert!(lv < self.len());
        self.graph.partition_point(|e| e.end <= lv)
    }

    pub(crate) fn graph_entry(&self, lv: LV) -> &GraphEntry {
        &self.graph[self.graph_idx(lv)]
    }

    fn assign_idx(&self, lv: LV) -> usize {
        self.assignments.partition_point(|s| s.lv + s.len <= lv)
    }

    pub(crate) fn agent_span_at(&self, lv: LV) -> AgentSpan {
        self.assignments[self.assign_idx(lv)]
    }

    /// (agent, seq) of an event (`lv` from [`OpLog::first_lv`] on: compacted events have no
    /// record any more).
    pub fn lv_to_id(&self, lv: LV) -> (AgentId, u64) {
        let s = self.agent_span_at(lv);
        (s.agent, s.seq + (lv - s.lv) as u64)
    }

    /// Local version of (agent, seq), if known.
    pub fn id_to_lv(&self, agent: AgentId, seq: u64) -> Option<LV> {
        let runs = &self.agents.get(agent.0 as usize)?.runs;
        let i = runs.partition_point(|r| r.seq + r.len as u64 <= seq);
        let r = runs.get(i)?;
        if seq >= r.seq {
            Some(r.lv + (seq - r.seq) as usize)
        } else {
            None
        }
    }

    /// How many consecutive local versions from `lv` share an agent run (capped at `max`).
    pub(crate) fn agent_run_len(&self, lv: LV, max: usize) -> usize {
        let s = self.agent_span_at(lv);
        (s.lv + s.len - lv).min(max)
    }

    /// Parents of one event (`lv` from [`OpLog::first_lv`] on; the root stands for the horizon).
    pub fn parents_of(&self, lv: LV) -> Frontier {
        let e = self.graph_entry(lv);
        if lv == e.start {
            e.parents.clone()
        } else {
            Frontier::single(lv - 1)
        }
    }

    pub(crate) fn parents_slice_of(&self, lv: LV) -> SmallVec<[LV; 2]> {
        let e = self.graph_entry(lv);
        if lv == e.start {
            e.parents.0.clone()
        } else {
            let mut v = SmallVec::new();
            v.push(lv - 1);
            v
        }
    }

    fn op_idx(&self, lv: LV) -> usize {
        self.ops.partition_point(|o| o.lv + o.len <= lv)
    }

    /// Iterates the ops of `range` as pieces, each within one op run.
    pub(crate) fn ops_in(&self, range: Range<LV>) -> impl Iterator<Item = OpPiece<'_>> + '_ {
        let mut i = if range.start < range.end {
            self.op_idx(range.start)
        } else {
            self.ops.len()
        };
        let mut at = range.start;
        std::iter::from_fn(move || {
            if at >= range.end || i >= self.ops.len() {
                return None;
            }
            let run = &self.ops[i];
            let off = at - run.lv;
            let len = (run.len - off).min(range.end - at);
            let piece = self.trim_run(run, off, len);
            at += len;
            i += 1;
            Some(piece)
        })
    }

    pub(crate) fn trim_run<'a>(&'a self, run: &'a OpRun, off: usize, len: usize) -> OpPiece<'a> {
        let (pos, content) = match (run.kind, run.fwd) {
            (OpKind::Ins, _) => {
                let s = &self.ins_content[run.content.clone()];
                let (a, b) = if s.len() == run.len {
                    (off, off + len)
                } else {
                    let a = ropey::str_utils::char_to_byte_idx(s, off);
                    let b = a + ropey::str_utils::char_to_byte_idx(&s[a..], len);
                    (a, b)
                };
                (run.pos + off, &s[a..b])
            }
            (OpKind::Del, true) => (run.pos, ""),
            (OpKind::Del, false) => (run.pos + run.len - off - len, ""),
        };
        OpPiece {
            lv: run.lv + off,
            len,
            kind: run.kind,
            pos,
            fwd: run.fwd,
            content,
        }
    }

    // ---------------------------------------------------------------- appending

    /// Appends a run of events by `agent` (seqs continue the agent's own sequence).
    /// `parents` must be a valid frontier of known events. Positions are not checked here.
    pub(crate) fn push_run(&mut self, agent: AgentId, parents: &[LV], op: NewOp) -> Range<LV> {
        let NewOp {
            kind,
            pos,
            len,
            fwd,
            content,
        } = op;
        debug_assert!(len > 0);
        let start = self.len();
        let end = start + len;
        if self.try_extend_last(agent, parents, &op) {
            return start..end;
        }
        let seq = self.agents[agent.0 as usize].next_seq();

        // Agent assignment.
        let ad = &mut self.agents[agent.0 as usize];
        match ad.runs.last_mut() {
            Some(r) if r.lv + r.len == start => r.len += len,
            _ => ad.runs.push(SeqRun {
                seq,
                lv: start,
                len,
            }),
        }
        match self.assignments.last_mut() {
            Some(s) if s.agent == agent && s.lv + s.len == start && s.seq + s.len as u64 == seq => {
                s.len += len
            }
            _ => self.assignments.push(AgentSpan {
                lv: start,
                len,
                agent,
                seq,
            }),
        }

        // Causal graph.
        let linear = parents.len() == 1 && parents[0] + 1 == start;
        match self.graph.last_mut() {
            Some(e) if linear && e.end == start => e.end = end,
            _ => self.graph.push(GraphEntry {
                start,
                end,
                parents: Frontier::from_unsorted(parents),
            }),
        }

        // Ops. A run extends the previous one when it continues the same typing motion.
        let cstart = self.ins_content.len();
        self.ins_content.push_str(content);
        let cend = self.ins_content.len();
        let mut merged = false;
        if linear {
            let span_lv = self.assignments.last().unwrap().lv;
            if let Some(last) = self.ops.last_mut() {
                // Only runs of the same agent (the last agent span covers `last`) merge.
                merged = span_lv <= last.lv && last.try_extend(start, &op, cstart..cend);
            }
        }
        if !merged {
            self.ops.push(OpRun {
                lv: start,
                len,
                kind,
                pos,
                fwd: fwd || len == 1 || kind == OpKind::Ins,
                content: cstart..cend,
            });
        }

        // Version.
        if self.version.as_slice() == parents {
            self.version.replace_with_single(end - 1);
        } else {
            for p in parents {
                self.version.remove(*p);
            }
            self.version.insert_sorted(end - 1);
        }
        start..end
    }

    /// The common case of typing: the new events continue the last run of the same agent in
    /// every record. Returns false (changing nothing) when they do not.
    #[inline]
    fn try_extend_last(&mut self, agent: AgentId, parents: &[LV], new: &NewOp) -> bool {
        let start = match self.graph.last() {
            Some(g) => g.end,
            None => return false,
        };
        if parents != [start - 1] || self.version.as_slice() != parents {
            return false;
        }
        let (Some(span), Some(op)) = (self.assignments.last_mut(), self.ops.last_mut()) else {
            return false;
        };
        if span.agent != agent || op.lv < span.lv {
            return false;
        }
        let cstart = self.ins_content.len();
        if !op.try_extend(start, new, cstart..cstart + new.content.len()) {
            return false;
        }
        self.ins_content.push_str(new.content);
        let len = new.len;
        span.len += len;
        self.graph.last_mut().unwrap().end += len;
        if let Some(r) = self.agents[agent.0 as usize].runs.last_mut() {
            r.len += len;
        }
        self.version.replace_with_single(start + len - 1);
        true
    }

    /// Removes every event at or after `len` (used to undo a rejected batch). Only valid for
    /// events appended since the log had that length.
    pub(crate) fn truncate(&mut self, len: LV) {
        if len >= self.len() {
            return;
        }
        while let Some(e) = self.graph.last_mut() {
            if e.start >= len {
                self.graph.pop();
            } else {
                e.end = e.end.min(len);
                break;
            }
        }
        while let Some(s) = self.assignments.last_mut() {
            if s.lv >= len {
                self.assignments.pop();
            } else {
                s.len = s.len.min(len - s.lv);
                break;
            }
        }
        for ad in &mut self.agents {
            while let Some(r) = ad.runs.last_mut() {
                if r.lv >= len {
                    ad.runs.pop();
                } else {
                    if r.lv + r.len > len {
                        r.len = len - r.lv;
                    }
                    break;
                }
            }
        }
        let mut cut_content = None;
        while let Some(o) = self.ops.last_mut() {
            if o.lv >= len {
                cut_content = Some(o.content.start);
                self.ops.pop();
            } else {
                if o.lv + o.len > len {
                    let keep = len - o.lv;
                    if o.kind == OpKind::Ins {
                        let s = &self.ins_content[o.content.clone()];
                        let b = ropey::str_utils::char_to_byte_idx(s, keep);
                        o.content.end = o.content.start + b;
                        cut_content = Some(o.content.end);
                    } else if !o.fwd {
                        o.pos += o.len - keep;
                    }
                    o.len = keep;
                }
                break;
            }
        }
        if let Some(c) = cut_content {
            self.ins_content.truncate(c);
        }
        // Recompute the version: the maximal events among the remaining ones.
        self.version = self.tips();
    }

    fn tips(&self) -> Frontier {
        // An event is a tip if no later event names it as a parent (or follows it in a run).
        if self.graph.is_empty() {
            return Frontier::root();
        }
        let mut has_child = HashMap::new();
        for e in &self.graph {
            for p in e.parents.as_slice() {
                has_child.insert(*p, ());
            }
        }
        let mut tips = Frontier::root();
        for e in &self.graph {
            let last = e.end - 1;
            if !has_child.contains_key(&last) {
                tips.insert_sorted(last);
            }
        }
        tips
    }

    // ---------------------------------------------------------------- graph queries

    /// Does the version `frontier` include event `target`? On a compacted log a version that
    /// includes the horizon includes every compacted event, and one that does not includes no
    /// kept event (whether it includes a given compacted event is not known any more: false).
    pub fn version_contains(&self, frontier: &[LV], target: LV) -> bool {
        if self.first == 0 {
            return self.contains_internal(frontier, target);
        }
        match self.internal(frontier) {
            Ok(f) => target < self.first || self.contains_internal(f.as_slice(), target),
            Err(_) => false,
        }
    }

    fn contains_internal(&self, frontier: &[LV], target: LV) -> bool {
        let mut heap: BinaryHeap<LV> = frontier.iter().copied().filter(|&v| v >= target).collect();
        while let Some(v) = heap.pop() {
            while heap.peek() == Some(&v) {
                heap.pop();
            }
            if v == target {
                return true;
            }
            let e = self.graph_entry(v);
            if e.start <= target {
                return true; // target lies in e.start..=v
            }
            for p in e.parents.as_slice() {
                if *p >= target {
                    heap.push(*p);
                }
            }
        }
        false
    }

    /// Is version `a` contained in version `b` (every event of a is in b)?
    pub fn frontier_contains(&self, b: &[LV], a: &[LV]) -> bool {
        a.iter().all(|x| self.version_contains(b, *x))
    }

    /// Removes from `lvs` every event that is an ancestor of another (so the set is a frontier).
    /// One walk back from all of them together, down to the lowest. On a compacted log, LVs from
    /// [`OpLog::first_lv`] on only.
    pub fn reduce(&self, lvs: &[LV]) -> Frontier {
        let f = Frontier::from_unsorted(lvs);
        if f.len() <= 1 {
            return f;
        }
        let inputs = f.as_slice();
        let lowest = inputs[0];
        let mut keep: SmallVec<[bool; 4]> = SmallVec::from_elem(true, inputs.len());
        let drop_in = |keep: &mut SmallVec<[bool; 4]>, range: Range<LV>| {
            let i = inputs.partition_point(|x| *x < range.start);
            for (j, x) in inputs.iter().enumerate().skip(i) {
                if *x >= range.end {
                    break;
                }
                keep[j] = false;
            }
        };
        // (lv, reached from an input below which everything is an ancestor of that input)
        let mut heap: BinaryHeap<LV> = inputs.iter().copied().collect();
        while let Some(lv) = heap.pop() {
            while heap.peek() == Some(&lv) {
                heap.pop();
            }
            let e = self.graph_entry(lv);
            // Everything in e.start..lv is an ancestor of lv, itself an input or an ancestor of one.
            drop_in(&mut keep, e.start..lv);
            // lv itself is dominated when it was reached from above (not only as an input).
            for p in e.parents.as_slice() {
                if *p >= lowest {
                    drop_in(&mut keep, *p..*p + 1);
                    heap.push(*p);
                }
            }
        }
        let mut out = Frontier::root();
        for (j, x) in inputs.iter().enumerate() {
            if keep[j] {
                out.insert_sorted(*x);
            }
        }
        out
    }

    /// The version after adding events `range` (whose parents are in `frontier`'s history) to
    /// `frontier`.
    pub(crate) fn advance_frontier(&self, frontier: &mut Frontier, range: Range<LV>) {
        let mut at = range.start;
        while at < range.end {
            let e = self.graph_entry(at);
            let end = e.end.min(range.end);
            if at == e.start {
                for p in e.parents.as_slice() {
                    frontier.remove(*p);
                }
            } else {
                frontier.remove(at - 1);
            }
            frontier.insert_sorted(end - 1);
            at = end;
        }
    }

    /// Walks back from `a` and `b` marking events as only in a, only in b or shared.
    /// `visit` gets ranges in descending order. In `conflict` mode the walk goes on until the
    /// remaining shared events collapse to a single common ancestor, which is returned (None for
    /// the root); otherwise it stops as soon as only shared events remain.
    pub(crate) fn walk_diff(
        &self,
        a: &[LV],
        b: &[LV],
        conflict: bool,
        mut visit: impl FnMut(Range<LV>, Flag),
    ) -> Option<LV> {
        let mut heap: BinaryHeap<(LV, Flag)> = BinaryHeap::new();
        let mut unshared = 0usize;
        for v in a {
            heap.push((*v, Flag::OnlyA));
            unshared += 1;
        }
        for v in b {
            heap.push((*v, Flag::OnlyB));
            unshared += 1;
        }
        // Once a path reaches the root, only the root is a common ancestor of everything walked.
        let mut reached_root = false;
        loop {
            let (lv, mut flag) = heap.pop()?;
            if flag != Flag::Shared {
                unshared -= 1;
            }
            while let Some(&(l2, f2)) = heap.peek() {
                if l2 != lv {
                    break;
                }
                heap.pop();
                if f2 != Flag::Shared {
                    unshared -= 1;
                }
                flag = flag.merge(f2);
            }
            if flag == Flag::Shared
                && unshared == 0
                && (!conflict || (heap.is_empty() && !reached_root))
            {
                return Some(lv);
            }
            let e = self.graph_entry(lv);
            match heap.peek() {
                Some(&(p, _)) if p >= e.start => {
                    // Another walker is inside this entry: mark down to it and merge there.
                    visit(p + 1..lv + 1, flag);
                    heap.push((p, flag));
                    if flag != Flag::Shared {
                        unshared += 1;
                    }
                }
                _ => {
                    visit(e.start..lv + 1, flag);
                    reached_root |= e.parents.is_empty();
                    for p in e.parents.as_slice() {
                        heap.push((*p, flag));
                        if flag != Flag::Shared {
                            unshared += 1;
                        }
                    }
                }
            }
        }
    }

    /// Events only in `a` and only in `b`, each as ascending ranges. On a compacted log the
    /// frontiers must be internal: LVs from [`OpLog::first_lv`] on (the root: the horizon).
    pub fn diff(&self, a: &[LV], b: &[LV]) -> (Vec<Range<LV>>, Vec<Range<LV>>) {
        let mut only_a = Vec::new();
        let mut only_b = Vec::new();
        self.walk_diff(a, b, false, |r, f| match f {
            Flag::OnlyA => push_range_desc(&mut only_a, r),
            Flag::OnlyB => push_range_desc(&mut only_b, r),
            Flag::Shared => {}
        });
        only_a.reverse();
        only_b.reverse();
        (only_a, only_b)
    }

    /// [`OpLog::internal`] with the errors of an edit.
    pub(crate) fn internal_for_edit(&self, f: &[LV]) -> Result<Frontier, EditError> {
        self.internal(f).map_err(|e| match e {
            VersionError::BeforeHorizon { horizon } => EditError::BeforeHorizon { horizon },
            _ => EditError::UnknownVersion,
        })
    }

    /// Checks that `lvs` are all known events.
    pub(crate) fn check_known(&self, lvs: &[LV]) -> bool {
        lvs.iter().all(|v| *v < self.len())
    }
}

/// Pushes a range visited in descending order, merging with the previous one when adjacent.
pub(crate) fn push_range_desc(v: &mut Vec<Range<LV>>, r: Range<LV>) {
    if let Some(last) = v.last_mut() {
        if r.end == last.start {
            last.start = r.start;
            return;
        }
    }
    v.push(r);
}

/// Public constructors for building histories directly (traces, imports, tests).
impl OpLog {
    /// Records an insert made by `agent` at the version `parents` (positions in chars at that
    /// version). Returns the range of new events. Positions are validated when the log is merged
    /// (e.g. [`OpLog::checkout`]); for untrusted input use [`crate::Document::apply_remote`].
    pub fn add_insert_at(
        &mut self,
        agent: AgentId,
        parents: &[LV],
        pos: usize,
        text: &str,
    ) -> Result<Range<LV>, EditError> {
        self.agent_ok(agent)?;
        let parents = self.internal_for_edit(parents)?;
        let n = text.chars().count();
        if n == 0 {
            return Ok(self.len()..self.len());
        }
        let parents = self.reduce(parents.as_slice());
        Ok(self.push_run(
            agent,
            parents.as_slice(),
            NewOp {
                kind: OpKind::Ins,
                pos,
                len: n,
                fwd: true,
                content: text,
            },
        ))
    }

    /// Records a delete of `range` (chars at the version `parents`) made by `agent`.
    pub fn add_delete_at(
        &mut self,
        agent: AgentId,
        parents: &[LV],
        range: Range<usize>,
    ) -> Result<Range<LV>, EditError> {
        self.agent_ok(agent)?;
        let parents = self.internal_for_edit(parents)?;
        if range.end < range.start {
            return Err(EditError::BadRange);
        }
        if range.is_empty() {
            return Ok(self.len()..self.len());
        }
        let parents = self.reduce(parents.as_slice());
        Ok(self.push_run(
            agent,
            parents.as_slice(),
            NewOp {
                kind: OpKind::Del,
                pos: range.start,
                len: range.len(),
                fwd: true,
                content: "",
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random event graph: each event picks 1-3 random earlier events as parents.
    fn random_log(seed: u64, n: usize) -> OpLog {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut log = OpLog::new();
        let a = log.agent("a");
        for i in 0..n {
            let mut parents: Vec<LV> = Vec::new();
            if i > 0 {
                for _ in 0..1 + next() % 3 {
                    parents.push((next() % i as u64) as usize);
                }
            }
            let parents = log.reduce(&parents);
            // Graph structure only: positions are never merged here.
            log.push_run(
                a,
                parents.as_slice(),
                NewOp {
                    kind: OpKind::Ins,
                    pos: 0,
                    len: 1 + (next() % 3) as usize,
                    fwd: true,
                    content: "xyz",
                },
            );
        }
        log
    }

    #[test]
    fn reduce_matches_pairwise_definition() {
        for seed in 0..200 {
            let log = random_log(seed, 40);
            let n = log.len();
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..20 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let k = 1 + (s % 5) as usize;
                let lvs: Vec<LV> = (0..k)
                    .map(|i| ((s >> (i * 8)) % n as u64) as usize)
                    .collect();
                let got = log.reduce(&lvs);
                let set = Frontier::from_unsorted(&lvs);
                let want: Vec<LV> = set
                    .as_slice()
                    .iter()
                    .copied()
                    .filter(|x| {
                        !set.as_slice()
                            .iter()
                            .any(|y| y != x && log.version_contains(&[*y], *x))
                    })
                    .collect();
                assert_eq!(got.as_slice(), want.as_slice(), "seed {seed} lvs {lvs:?}");
            }
        }
    }
}
