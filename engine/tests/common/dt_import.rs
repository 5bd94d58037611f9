//! Reading a diamond-types 1.0.0 oplog as runs of events our engine can take
//! (`OpLog::add_insert_at` / `add_delete_at` with the same agent names and parents).
//!
//! dt stores three run-length lists over its local time (one entry per char inserted or
//! deleted): the operations, the history entries (parents) and the agent assignment. A run we
//! hand to our engine must lie inside one of each, so the walk below cuts at every boundary of
//! any of them. Inside a history entry each event's parent is the previous event, so only a run
//! that starts an entry carries the entry's parents; any other run's parent is the event just
//! before it. Both logs number events in the same order, so dt's local times are our LVs.
//!
//! Shared by `tests/dt_files.rs` and `benches/peers.rs` (included there with `#[path]`).

#![allow(dead_code)]

use diamond_types::list::operation::OpKind;
use diamond_types::list::OpLog as DtOpLog;

/// One run of events: the same agent, consecutive dt times `start..start + len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtRun {
    /// dt time of the first event (= our LV).
    pub start: usize,
    /// Index into [`DtHistory::agents`].
    pub agent: usize,
    /// Sequence number dt gave the first event.
    pub seq: usize,
    /// Parents of the first event (dt times); empty = root.
    pub parents: Vec<usize>,
    pub op: DtOp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtOp {
    Insert {
        pos: usize,
        text: String,
    },
    /// Deletes `range` (chars at the parents' version). `backwards`: dt recorded it as
    /// backspaces (last char first); the chars deleted are the same.
    Delete {
        range: std::ops::Range<usize>,
        backwards: bool,
    },
}

impl DtOp {
    pub fn len(&self) -> usize {
        match self {
            DtOp::Insert { text, .. } => text.chars().count(),
            DtOp::Delete { range, .. } => range.len(),
        }
    }
}

/// A whole dt oplog as runs, in dt time order.
#[derive(Clone, Debug)]
pub struct DtHistory {
    pub agents: Vec<String>,
    pub runs: Vec<DtRun>,
    /// Number of events (dt oplog length).
    pub len: usize,
}

/// Walks a dt oplog. Fails when an insert's content is not stored in the oplog.
pub fn dt_history(oplog: &DtOpLog) -> Result<DtHistory, String> {
    let len = oplog.len();
    let ops: Vec<_> = oplog.iter().collect();
    let hist: Vec<_> = oplog.iter_history().collect();
    let maps: Vec<_> = oplog.iter_mappings().collect();

    let mut agents: Vec<String> = Vec::new();
    let mut agent_index = std::collections::HashMap::new();
    let mut runs = Vec::new();

    let (mut oi, mut hi, mut mi) = (0usize, 0usize, 0usize);
    // Offsets of time `t` inside the current op / history entry / mapping.
    let (mut ooff, mut moff) = (0usize, 0usize);
    let mut t = 0usize;
    while t < len {
        let op = ops.get(oi).ok_or("dt oplog: operations end early")?;
        let h = hist.get(hi).ok_or("dt oplog: history ends early")?;
        let m = maps
            .get(mi)
            .ok_or("dt oplog: agent assignment ends early")?;
        if h.span.start > t || h.span.end <= t {
            return Err(format!(
                "dt oplog: history entry {hi} does not cover time {t}"
            ));
        }
        let op_len = op.loc.span.end - op.loc.span.start;
        let m_len = m.seq_range.end - m.seq_range.start;
        let k = (op_len - ooff).min(h.span.end - t).min(m_len - moff);

        let parents: Vec<usize> = if t == h.span.start {
            h.parents.iter().copied().collect()
        } else {
            vec![t - 1]
        };
        let dt_op = match op.kind {
            OpKind::Ins => {
                let content = op
                    .content_as_str()
                    .ok_or_else(|| format!("dt oplog: insert at time {t} has no content"))?;
                let text: String = content.chars().skip(ooff).take(k).collect();
                DtOp::Insert {
                    pos: op.loc.span.start + ooff,
                    text,
                }
            }
            OpKind::Del if op.loc.fwd => DtOp::Delete {
                range: op.loc.span.start..op.loc.span.start + k,
                backwards: false,
            },
            OpKind::Del => {
                let end = op.loc.span.end - ooff;
                DtOp::Delete {
                    range: end - k..end,
                    backwards: true,
                }
            }
        };
        let name = oplog.get_agent_name(m.agent);
        let agent = *agent_index.entry(m.agent).or_insert_with(|| {
            agents.push(name.to_string());
            agents.len() - 1
        });
        runs.push(DtRun {
            start: t,
            agent,
            seq: m.seq_range.start + moff,
            parents,
            op: dt_op,
        });

        t += k;
        ooff += k;
        moff += k;
        if ooff == op_len {
            oi += 1;
            ooff = 0;
        }
        if t == h.span.end {
            hi += 1;
        }
        if moff == m_len {
            mi += 1;
            moff = 0;
        }
    }
    Ok(DtHistory { agents, runs, len })
}

/// Loads a `.dt` file with diamond-types 1.0.0.
pub fn load_dt(path: &std::path::Path) -> Result<DtOpLog, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    DtOpLog::load_from(&bytes)
        .map_err(|e| format!("{}: dt cannot decode it: {e:?}", path.display()))
}
