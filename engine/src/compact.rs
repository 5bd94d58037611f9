//! Bounded history: compacting a document's log at a *horizon*.
//!
//! A horizon is a critical version: every event after it descends from all of it. Because LV
//! order is topological, its history is then exactly the LV prefix `0..k`, and every later event
//! is in `k..len`. Compaction drops the prefix and keeps the text at the horizon as the log's
//! base text; it works **in place and keeps local versions as they are** (events `k..` keep
//! their LVs, agents keep their names and seqs), so frontiers and wire versions that include the
//! horizon keep working for everyone who holds them.
//!
//! After compaction (`first` = k):
//! - the internal root version (the empty frontier) stands for the horizon; callers still see the
//!   horizon's own LVs ([`OpLog::horizon`]) wherever they would have seen it;
//! - each agent has a seq *floor*: its seqs below it were compacted (each agent's events are
//!   causally chained, so its compacted events are a seq prefix). Duplicates of compacted events
//!   are recognised by id and ignored; an agent continues at its floor;
//! - anything that needs an event older than the horizon (a version not including it, a remote
//!   event concurrent with compacted history) fails with a `BeforeHorizon` error ("resync
//!   needed"), never with wrong data.
//!
//! Any critical version is accepted as a horizon (checked in one pass). The candidates the
//! finders return: the current version; `want` itself when it is critical; or a single event
//! `{k-1}` whose prefix `0..k` has `k-1` as its only tip and after which no event has a parent
//! below `k-1` (all such boundaries in one pass: `OpLog::critical_ranges`).

use std::collections::HashSet;
use std::ops::Range;

use ropey::Rope;
use smallvec::SmallVec;

use crate::branch::Branch;
use crate::document::{Document, RemoteEvent, RemoteId, RemoteVersion};
use crate::error::VersionError;
use crate::frontier::{Frontier, LV};
use crate::oplog::{AgentId, OpLog, OpRun};
use crate::walker::BadEvent;

impl OpLog {
    /// The boundaries `k` (`first < k <= len`, as ascending disjoint ranges) where events
    /// `..k` form a critical version with the single tip `k - 1`. One pass over the graph.
    pub(crate) fn critical_ranges(&self) -> Vec<Range<LV>> {
        let g = &self.graph;
        // Lowest parent of any entry after entry i (-1: an entry after i starts at the root).
        let mut min_after = vec![i64::MAX; g.len()];
        let mut m = i64::MAX;
        for i in (0..g.len()).rev() {
            min_after[i] = m;
            let lowest = g[i].parents.as_slice().first().map_or(-1, |p| *p as i64);
            m = m.min(lowest);
        }
        // Tips of the prefix: entry ends nothing names as a parent yet (a compacted log's root,
        // standing for the horizon, counts as one tip until an entry starts from it).
        let mut childed: HashSet<LV> = HashSet::new();
        let mut tips: usize = usize::from(self.first > 0);
        let mut root_used = false;
        let mut out: Vec<Range<LV>> = Vec::new();
        for (i, e) in g.iter().enumerate() {
            if e.parents.is_empty() && self.first > 0 && !root_used {
                root_used = true;
                tips -= 1;
            }
            for p in e.parents.as_slice() {
                if self.graph_entry(*p).end == p + 1 && childed.insert(*p) {
                    tips -= 1;
                }
            }
            tips += 1;
            if tips == 1 {
                // Inside the entry each event's only parent is its predecessor; later entries
                // must not reach below k - 1.
                let lo = e.start + 1;
                let hi = (e.end as i64).min(min_after[i].saturating_add(1));
                if hi >= lo as i64 {
                    let r = lo..hi as usize + 1;
                    match out.last_mut() {
                        Some(last) if last.end == r.start => last.end = r.end,
                        _ => out.push(r),
                    }
                }
            }
        }
        out
    }

    /// Is the internal, reduced, non-empty frontier `h` critical: is its history the prefix
    /// `..k` (k = max(h) + 1) and does every later event descend from all of it? One walk of its
    /// history and one pass over the later graph entries.
    pub(crate) fn is_critical(&self, h: &[LV]) -> bool {
        let Some(&last) = h.last() else {
            return false;
        };
        let k = last + 1;
        if k > self.len() {
            return false;
        }
        let (_, hist) = self.diff(&[], h);
        if hist.iter().map(|r| r.len()).sum::<usize>() != k - self.first {
            return false;
        }
        let from = self.graph.partition_point(|e| e.end <= k);
        self.graph[from..].iter().all(|e| {
            if e.start < k {
                // Event k continues k - 1 inside one entry.
                return h == [k - 1];
            }
            let below: SmallVec<[LV; 2]> = e
                .parents
                .as_slice()
                .iter()
                .copied()
                .filter(|p| *p < k)
                .collect();
            !e.parents.is_empty() && (below.is_empty() || below.as_slice() == h)
        })
    }

    /// The caller's frontier of the critical boundary `k`.
    fn boundary_frontier(&self, k: LV) -> Frontier {
        if k <= self.first {
            self.horizon.clone()
        } else if k >= self.len() {
            self.version().clone()
        } else {
            Frontier::single(k - 1)
        }
    }

    /// Drops events `..k` (a critical prefix whose frontier is `horizon`, with text `text` and
    /// wire ids `ids`), keeping every later event at its LV.
    fn compact_prefix(&mut self, k: LV, text: Rope, horizon: Frontier, ids: Vec<(AgentId, u64)>) {
        let origin = self
            .origin_id
            .unwrap_or_else(|| crate::encoding::base_id(&self.base));
        for ad in &mut self.agents {
            let drop = ad.runs.partition_point(|r| r.lv + r.len <= k);
            if drop > 0 {
                let r = &ad.runs[drop - 1];
                ad.floor = r.seq + r.len as u64;
                ad.runs.drain(..drop);
            }
            if let Some(r) = ad.runs.first_mut() {
                if r.lv < k {
                    let cut = k - r.lv;
                    r.seq += cut as u64;
                    r.lv = k;
                    r.len -= cut;
                    ad.floor = r.seq;
                }
            }
            ad.runs.shrink_to_fit();
        }

        let drop = self.assignments.partition_point(|s| s.lv + s.len <= k);
        self.assignments.drain(..drop);
        if let Some(s) = self.assignments.first_mut() {
            if s.lv < k {
                let cut = k - s.lv;
                s.seq += cut as u64;
                s.lv = k;
                s.len -= cut;
            }
        }
        self.assignments.shrink_to_fit();

        let drop = self.graph.partition_point(|e| e.end <= k);
        self.graph.drain(..drop);
        for e in &mut self.graph {
            if e.start < k {
                // Event k continues k - 1, the horizon.
                e.start = k;
                e.parents = Frontier::root();
            } else if e.parents.as_slice().first().is_some_and(|p| *p < k) {
                // Critical: parents below k are exactly the horizon, now the root.
                let kept: SmallVec<[LV; 2]> = e
                    .parents
                    .as_slice()
                    .iter()
                    .copied()
                    .filter(|p| *p >= k)
                    .collect();
                e.parents = Frontier(kept);
            }
        }
        self.graph.shrink_to_fit();

        let drop = self.ops.partition_point(|o| o.lv + o.len <= k);
        let mut ops = Vec::with_capacity(self.ops.len() - drop);
        let mut content = String::new();
        for o in &self.ops[drop..] {
            let p = if o.lv < k {
                self.trim_run(o, k - o.lv, o.len - (k - o.lv))
            } else {
                self.trim_run(o, 0, o.len)
            };
            let start = content.len();
            content.push_str(p.content);
            ops.push(OpRun {
                lv: p.lv,
                len: p.len,
                kind: o.kind,
                pos: p.pos,
                fwd: o.fwd,
                content: start..content.len(),
            });
        }
        self.ops = ops;
        self.ins_content = content;

        self.base = text;
        self.first = k;
        self.horizon = horizon;
        self.horizon_ids = ids;
        self.origin_id = Some(origin);
        if self.version.as_slice().iter().all(|v| *v < k) {
            self.version = Frontier::root();
        }
    }
}

impl Document {
    /// Compacts the history in place: events before `horizon` are dropped and the text at
    /// `horizon` becomes the base text. Every later event keeps its local version, agent and
    /// seq, so versions that include the horizon (local frontiers and wire versions alike) keep
    /// working, here and for peers. Returns the number of events dropped.
    ///
    /// `horizon` must be a critical version at or after the current horizon: the current
    /// version, or a version every later event descends from (find one with
    /// [`Document::horizon_candidate`] or [`Document::horizon_keeping_last`]). Compacting at
    /// the current horizon is a no-op.
    ///
    /// Errors (nothing changes): `Unknown`, `BeforeHorizon` (older than the current horizon),
    /// `NotCritical`.
    pub fn compact(&mut self, horizon: &Frontier) -> Result<usize, VersionError> {
        let h = self.oplog.internal(horizon.as_slice())?;
        let h = self.oplog.reduce(h.as_slice());
        if h.is_empty() {
            return Ok(0);
        }
        let n = self.oplog.len();
        let whole = h == self.oplog.version;
        let k = if whole {
            n
        } else if self.oplog.is_critical(h.as_slice()) {
            h.as_slice()[h.len() - 1] + 1
        } else {
            return Err(VersionError::NotCritical);
        };
        let text = if whole {
            self.branch.to_rope()
        } else {
            let mut b = Branch::at_root(&self.oplog);
            b.merge_with(&self.oplog, h.as_slice(), |_| {})
                .map_err(|BadEvent(lv)| VersionError::InvalidEvent(lv))?;
            b.text().clone()
        };
        let ids = h
            .as_slice()
            .iter()
            .map(|lv| self.oplog.lv_to_id(*lv))
            .collect();
        let dropped = k - self.oplog.first;
        self.oplog.compact_prefix(k, text, h, ids);
        self.branch.clear_cache();
        if whole {
            self.branch.version = Frontier::root();
        }
        Ok(dropped)
    }

    /// A compacted copy (see [`Document::compact`]); `self` is unchanged.
    pub fn compacted(&self, horizon: &Frontier) -> Result<Document, VersionError> {
        let mut d = self.clone();
        d.compact(horizon)?;
        Ok(d)
    }

    /// The newest version [`Document::compact`] accepts that is contained in `want` (e.g. the
    /// oldest version a connected participant still has): `want` itself when it is the current
    /// version or critical, else the newest critical single event in its history, else the
    /// current horizon
    /// (compacting there is a no-op). A `want` older than the horizon gives the horizon.
    pub fn horizon_candidate(&self, want: &Frontier) -> Frontier {
        let Ok(w) = self.oplog.internal(want.as_slice()) else {
            return self.oplog.horizon.clone();
        };
        let oplog = &self.oplog;
        if oplog.frontier_contains(w.as_slice(), oplog.version.as_slice()) {
            return oplog.version().clone();
        }
        let w = oplog.reduce(w.as_slice());
        if oplog.is_critical(w.as_slice()) {
            return w;
        }
        // `want` contains boundary k's tip for a prefix of the (ordered) critical boundaries.
        let ok = |k: LV| oplog.version_contains(w.as_slice(), k - 1);
        let ranges = oplog.critical_ranges();
        let ri = ranges.partition_point(|r| ok(r.start));
        if ri == 0 {
            return oplog.horizon.clone();
        }
        let r = ranges[ri - 1].clone();
        let (mut lo, mut hi) = (r.start, r.end); // ok(lo); find the first k in lo+1..hi not ok
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        oplog.boundary_frontier(lo)
    }

    /// The newest version [`Document::compact`] accepts that has at least `events` events after
    /// it: for retention by count (or by size or age, once the caller has turned those into an
    /// event count). 0 gives the current version; more events than the log keeps give the
    /// current horizon (a no-op).
    pub fn horizon_keeping_last(&self, events: usize) -> Frontier {
        let oplog = &self.oplog;
        let n = oplog.len();
        if events == 0 {
            return oplog.version().clone();
        }
        let target = n.saturating_sub(events);
        if target <= oplog.first {
            return oplog.horizon.clone();
        }
        let ranges = oplog.critical_ranges();
        let ri = ranges.partition_point(|r| r.start <= target);
        if ri == 0 {
            return oplog.horizon.clone();
        }
        oplog.boundary_frontier((ranges[ri - 1].end - 1).min(target))
    }

    /// Was history compacted away?
    pub fn is_compacted(&self) -> bool {
        self.oplog.is_compacted()
    }

    /// The horizon as a local frontier (root when never compacted).
    pub fn horizon(&self) -> &Frontier {
        &self.oplog.horizon
    }

    /// The horizon in wire form: agent -> highest compacted seq (empty when never compacted).
    /// A peer whose version does not include it must resync from a snapshot.
    pub fn horizon_version(&self) -> RemoteVersion {
        self.oplog.horizon_version()
    }

    /// The wire ids of the horizon's events.
    pub fn horizon_ids(&self) -> Vec<RemoteId> {
        self.ids_of(&[])
    }

    /// Does the local version `v` include the horizon (so that checkout, transform, edit_at...
    /// can serve it)? False for unknown versions.
    pub fn includes_horizon(&self, v: &Frontier) -> bool {
        self.oplog.internal(v.as_slice()).is_ok()
    }

    /// Does the wire version `rv` include the horizon?
    pub fn remote_includes_horizon(&self, rv: &RemoteVersion) -> bool {
        self.oplog.horizon_ids.iter().all(|(a, s)| {
            rv.get(self.oplog.agent_name(*a))
                .is_some_and(|have| *have >= *s)
        })
    }

    /// [`Document::events_since`] that refuses a `have` older than the horizon (the events it
    /// lacks are gone): `VersionError::BeforeHorizon`, resync needed.
    pub fn try_events_since(&self, have: &RemoteVersion) -> Result<Vec<RemoteEvent>, VersionError> {
        if !self.remote_includes_horizon(have) {
            return Err(self.oplog.before_horizon());
        }
        Ok(self.events_since(have))
    }
}
