//! The eg-walker: replays events onto a document at some version, transforming each one to the
//! position it has in the document being produced.
//!
//! Events are visited in local-version order (a topological order). While the history is
//! linear relative to what has been applied, an event is applied as is (no CRDT state at all).
//! Only when an event's parents differ from the applied version does a [`Tracker`] get built,
//! starting from the last *critical version* (a version every later event descends from), with
//! a placeholder standing for the document content there. Whenever the applied version becomes
//! critical again the tracker is dropped, so CRDT state only ever covers concurrent regions.

use std::ops::Range;

use crate::frontier::{Frontier, LV};
use crate::oplog::{Flag, OpKind, OpLog};
use crate::tracker::{OutOfRange, Tracker, UNDERWATER};

/// One transformed edit for the document being produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Emit<'a> {
    Ins { lv: LV, pos: usize, text: &'a str },
    Del { lv: LV, pos: usize, len: usize },
}

/// An event whose position is out of range at its parents' version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadEvent(pub LV);

/// The CRDT state a merge ended with while the history was still concurrent (no critical
/// version reached), kept by the live [`crate::branch::Branch`] for its next merge. Without it,
/// participants that keep editing at slightly old versions (the history never becoming
/// critical) make every merge rebuild the tracker from the last critical version: a cost that
/// grows with the whole concurrent region. With it, a merge only moves the tracker over the
/// events it needs.
///
/// Valid for a merge from exactly `applied` (the branch's version) whose common ancestor with
/// the new events descends from `base`: the tracker holds every event after `base` up to
/// `applied`, so it can retreat and advance to any version in between.
#[derive(Debug)]
pub(crate) struct WalkCache {
    tracker: Tracker,
    tracker_at: Frontier,
    base: Frontier,
    applied: Frontier,
}

/// Placeholder length when the document length at the base version is unknown.
const HUGE: usize = UNDERWATER / 2;

struct Walk<'a> {
    oplog: &'a OpLog,
    tracker: Option<Tracker>,
    /// The tracker's prepare version.
    tracker_at: Frontier,
    /// Base version of the next tracker (a critical version, or the common ancestor).
    base: Frontier,
    /// Document length at `base`, if known.
    base_len: Option<usize>,
    /// Spans applied since `base`, in a topological order.
    since_base: Vec<Range<LV>>,
    /// The version the produced document is at.
    applied: Frontier,
    doc_len: Option<usize>,
}

impl<'a> Walk<'a> {
    fn move_tracker(&mut self, to: &[LV]) {
        if self.tracker_at.as_slice() == to {
            return;
        }
        let t = self.tracker.as_mut().unwrap();
        if let ([a], [b]) = (self.tracker_at.as_slice(), to) {
            // Moving along one linear run: no graph walk needed.
            let (a, b) = (*a, *b);
            let e = self.oplog.graph_entry(a.max(b));
            if e.start <= a.min(b) {
                if b < a {
                    t.retreat(self.oplog, b + 1..a + 1);
                } else {
                    t.advance(self.oplog, a + 1..b + 1);
                }
                self.tracker_at = Frontier::single(b);
                return;
            }
        }
        let (back, fwd) = self.oplog.diff(self.tracker_at.as_slice(), to);
        for r in back.into_iter().rev() {
            t.retreat(self.oplog, r);
        }
        for r in fwd {
            t.advance(self.oplog, r);
        }
        self.tracker_at = Frontier::from_unsorted(to);
    }

    /// Applies events `piece` (linear: one graph entry) to the tracker, which must be at the
    /// piece's parents, calling `emit` with the transformed edits.
    fn tracker_apply(
        &mut self,
        piece: Range<LV>,
        emit: &mut dyn FnMut(Emit<'a>),
    ) -> Result<(), BadEvent> {
        let oplog = self.oplog;
        let t = self.tracker.as_mut().unwrap();
        for op in oplog.ops_in(piece.clone()) {
            match op.kind {
                OpKind::Ins => {
                    let pos = t
                        .insert(oplog, op.lv, op.len, op.pos)
                        .map_err(|OutOfRange| BadEvent(op.lv))?;
                    emit(Emit::Ins {
                        lv: op.lv,
                        pos,
                        text: op.content,
                    });
                }
                OpKind::Del => {
                    let chunks = t
                        .delete(op.lv, op.pos, op.len, op.fwd)
                        .map_err(|OutOfRange| BadEvent(op.lv))?;
                    for (pos, len) in chunks {
                        emit(Emit::Del {
                            lv: op.lv,
                            pos,
                            len,
                        });
                    }
                }
            }
        }
        oplog.advance_frontier(&mut self.tracker_at, piece);
        Ok(())
    }

    fn ensure_tracker(&mut self) -> Result<(), BadEvent> {
        if self.tracker.is_some() {
            return Ok(());
        }
        self.tracker = Some(Tracker::new(self.base_len.unwrap_or(HUGE)));
        self.tracker_at = self.base.clone();
        let spans = std::mem::take(&mut self.since_base);
        for span in &spans {
            for piece in pieces(self.oplog, span.clone()) {
                let parents = self.oplog.parents_slice_of(piece.start);
                self.move_tracker(&parents);
                self.tracker_apply(piece, &mut |_| {})?;
            }
        }
        self.since_base = spans;
        if self.base_len.is_none() {
            let applied = self.applied.clone();
            self.move_tracker(applied.as_slice());
            let t = self.tracker.as_mut().unwrap();
            t.len_offset = match self.doc_len {
                Some(l) => t.raw_visible_len() - l,
                // Unknown length: positions were validated when the events were added.
                None => 0,
            };
        }
        Ok(())
    }
}

/// Splits a range of events into pieces that each lie in one graph entry.
fn pieces(oplog: &OpLog, range: Range<LV>) -> impl Iterator<Item = Range<LV>> + '_ {
    let mut at = range.start;
    std::iter::from_fn(move || {
        if at >= range.end {
            return None;
        }
        let e = oplog.graph_entry(at);
        let end = e.end.min(range.end);
        let r = at..end;
        at = end;
        Some(r)
    })
}

/// Transforms the events in `to` but not in `from` onto a document at version `from` whose
/// length is `doc_len` (None: unknown, positions are then trusted), calling `emit` for each
/// resulting edit in order. Returns the version of the produced document (`from` ∪ `to`).
///
/// Nothing is emitted for an event found out of range before the error is returned only if the
/// caller discards what was emitted; callers apply edits to a copy and keep it only on success.
pub(crate) fn transform<'a>(
    oplog: &'a OpLog,
    from: &Frontier,
    doc_len: Option<usize>,
    to: &[LV],
    emit: &mut dyn FnMut(Emit<'a>),
) -> Result<Frontier, BadEvent> {
    transform_cached(oplog, from, doc_len, to, emit, &mut None)
}

/// [`transform`] that starts from `cache` when it is valid for this merge (see
/// [`WalkCache`]) and leaves in it the state it ends with (`None` when the result is critical
/// or on error).
pub(crate) fn transform_cached<'a>(
    oplog: &'a OpLog,
    from: &Frontier,
    doc_len: Option<usize>,
    to: &[LV],
    emit: &mut dyn FnMut(Emit<'a>),
    cache: &mut Option<Box<WalkCache>>,
) -> Result<Frontier, BadEvent> {
    let cached = cache.take();
    let mut new_ops: Vec<Range<LV>> = Vec::new();
    // The kept tracker serves a merge from exactly its version when every new event descends
    // from its base (then everything to retreat or apply comes after the base, and the tracker
    // knows it). The new events are then found by a plain diff, which stops as soon as both
    // sides meet, instead of the walk to a single common ancestor (to the root, when the
    // history has been concurrent all along).
    let mut kept: Option<Walk> = None;
    if let Some(c) = cached.filter(|c| c.applied == *from) {
        let (only_from, only_to) = oplog.diff(from.as_slice(), to);
        if only_to.is_empty() {
            *cache = Some(c);
            return Ok(from.clone());
        }
        let descends = only_from.is_empty()
            && only_to.iter().all(|r| {
                pieces(oplog, r.clone()).all(|p| {
                    let ps = oplog.parents_slice_of(p.start);
                    c.base
                        .as_slice()
                        .iter()
                        .all(|b| oplog.version_contains(&ps, *b))
                })
            });
        if descends {
            new_ops = only_to;
            let c = *c;
            kept = Some(Walk {
                oplog,
                tracker: Some(c.tracker),
                tracker_at: c.tracker_at,
                base: c.base,
                // Only read to build a tracker, and this walk has one.
                base_len: None,
                since_base: Vec::new(),
                applied: from.clone(),
                doc_len,
            });
        }
    }
    let mut w = match kept {
        Some(w) => w,
        None => {
            let mut conflict: Vec<Range<LV>> = Vec::new();
            let common = oplog.walk_diff(from.as_slice(), to, true, |r, flag| {
                let v = if flag == Flag::OnlyB {
                    &mut new_ops
                } else {
                    &mut conflict
                };
                crate::oplog::push_range_desc(v, r);
            });
            if new_ops.is_empty() {
                return Ok(from.clone());
            }
            conflict.reverse();
            new_ops.reverse();
            let (base, base_len) = if conflict.is_empty() {
                // Every new event descends from `from`: its length is the base length.
                (from.clone(), doc_len)
            } else {
                (common.map_or_else(Frontier::root, Frontier::single), None)
            };
            Walk {
                oplog,
                tracker: None,
                tracker_at: Frontier::root(),
                base,
                base_len,
                since_base: conflict,
                applied: from.clone(),
                doc_len,
            }
        }
    };

    // Critical versions. Count the parent edges that cross from applied events into events not
    // applied yet (the predecessor edge inside a piece never crosses). Events are applied in LV
    // order; the applied version {x} is critical when no root event is left and every crossing
    // edge leaves from x.
    let mut edges: Vec<(LV, u32)> = Vec::new();
    let mut roots = 0usize;
    for r in &new_ops {
        for p in pieces(oplog, r.clone()) {
            let parents = oplog.parents_slice_of(p.start);
            if parents.is_empty() {
                roots += 1;
            }
            for q in parents {
                edges.push((q, 1));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    let in_new = |lv: LV| -> bool {
        let i = new_ops.partition_point(|r| r.end <= lv);
        i < new_ops.len() && new_ops[i].start <= lv
    };
    // Edges from already-applied events cross from the start.
    let mut crossing: usize = edges
        .iter()
        .filter(|e| !in_new(e.0))
        .map(|e| e.1 as usize)
        .sum();
    let edges_in = |r: Range<LV>| -> usize {
        let i = edges.partition_point(|e| e.0 < r.start);
        edges[i..]
            .iter()
            .take_while(|e| e.0 < r.end)
            .map(|e| e.1 as usize)
            .sum()
    };
    let edges_from = |x: LV| edges_in(x..x + 1);

    for r in new_ops {
        for piece in pieces(oplog, r) {
            let parents = oplog.parents_slice_of(piece.start);
            if w.tracker.is_none() && parents.as_slice() == w.applied.as_slice() {
                // Fast path: the event applies to the document as it stands.
                for op in oplog.ops_in(piece.clone()) {
                    match op.kind {
                        OpKind::Ins => {
                            if let Some(l) = w.doc_len.as_mut() {
                                if op.pos > *l {
                                    return Err(BadEvent(op.lv));
                                }
                                *l += op.len;
                            }
                            emit(Emit::Ins {
                                lv: op.lv,
                                pos: op.pos,
                                text: op.content,
                            });
                        }
                        OpKind::Del => {
                            if let Some(l) = w.doc_len.as_mut() {
                                if op.pos + op.len > *l {
                                    return Err(BadEvent(op.lv));
                                }
                                *l -= op.len;
                            }
                            emit(Emit::Del {
                                lv: op.lv,
                                pos: op.pos,
                                len: op.len,
                            });
                        }
                    }
                }
                w.since_base.push(piece.clone());
            } else {
                w.ensure_tracker()?;
                w.move_tracker(&parents);
                let mut delta: isize = 0;
                w.tracker_apply(piece.clone(), &mut |e| {
                    match &e {
                        Emit::Ins { text, .. } => {
                            delta += ropey::str_utils::byte_to_char_idx(text, text.len()) as isize
                        }
                        Emit::Del { len, .. } => delta -= *len as isize,
                    }
                    emit(e)
                })?;
                if let Some(l) = w.doc_len.as_mut() {
                    *l = (*l as isize + delta) as usize;
                }
            }
            oplog.advance_frontier(&mut w.applied, piece.clone());

            // Update the crossing edges and check whether the applied version became critical.
            if parents.is_empty() {
                roots -= 1;
            }
            crossing = crossing - parents.len() + edges_in(piece.clone());
            if w.applied.len() == 1 && roots == 0 {
                let x = w.applied.as_slice()[0];
                if crossing == edges_from(x) {
                    w.tracker = None;
                    w.base = w.applied.clone();
                    w.base_len = w.doc_len;
                    w.since_base.clear();
                }
            }
        }
    }
    if let Some(tracker) = w.tracker {
        *cache = Some(Box::new(WalkCache {
            tracker,
            tracker_at: w.tracker_at,
            base: w.base,
            applied: w.applied.clone(),
        }));
    }
    Ok(w.applied)
}
