//! The recent disk states of a text file, and the base an external change is merged at.
//!
//! A tool that read a file, then writes back its own change of what it read (a formatter, a
//! script, an editor without our plugin saving a buffer that is behind) made its change at the
//! state it read, not at what the disk holds now. Diffed against the newest disk text, its
//! write "deletes" every edit the daemon wrote meanwhile. So each text file keeps a bounded
//! window of the states the daemon recently wrote to or read from disk, each with the document
//! version whose text it is, and an external change is applied at the state it most plausibly
//! derives from: the one needing the smallest diff ([`choose`]; the cost is
//! [`crate::diff::derivation_cost`]: chars of the changed whole lines plus twice the changed
//! chars). Merged there with `Document::edit_at`, the engine keeps every edit made after that
//! state. The window keeps the newest 16 states, then thins out with age, and keeps the
//! oldest (the file as loaded, often what a long-open editor read): see [`DiskWindow::push`].
//!
//! The ambiguous cases, decided:
//! * **Revert**: a new text *equal* to an older state (`git checkout` of a file, an editor's
//!   undo-and-save) is a deliberate restore: diffed against and applied at the newest state,
//!   so the file becomes that text (edits not yet written to disk are still kept).
//! * **Replacement**: when even the closest state's diff is larger than the new text itself
//!   (deleted plus inserted chars > the new text's chars: an unrelated text, a file emptied
//!   or cut to a fraction), the new text is not a change of a recent state but a
//!   replacement: applied at the newest state. (The rule errs towards merging: a writer
//!   misread as a replacement would delete edits, a replacement misread as a change only
//!   keeps some.)
//! * **A text git restored**: a new text that would merge at an older state but is exactly
//!   what the git index holds for the file (a `git checkout` of another branch, `git reset`,
//!   `git stash`) is a deliberate checkout: applied at the newest state (the caller checks
//!   the index, see `crate::git`).
//! * Ties go to the newest state.
//!
//! The window lives in memory only: after a restart it starts again with the logged disk base.
//! States compacted away (bounded history) are dropped; a writer staler than every state left
//! merges at the closest state there is.
use std::borrow::Cow;
use std::collections::VecDeque;

use engine::{Frontier, Rope};

use crate::diff::{closest, merge_diff, TextEdit};

/// Older disk states kept per file (besides the current one).
pub const WINDOW_STATES: usize = 32;
/// The newest older states, always kept when the count is exceeded; beyond them the window
/// thins out (see [`DiskWindow::push`]).
const KEEP_RECENT: usize = 16;
/// Sum of the sizes of the older states kept (bytes; each counted whole although ropes share
/// their unchanged chunks). The newest older state is kept whatever its size.
pub const WINDOW_BYTES: usize = 8 << 20;
/// At most this many bytes of candidate text are diffed for one external change (the newest
/// states first): a huge file does not stall the writer with dozens of whole-file diffs.
const CHOOSE_BYTES: usize = 32 << 20;

/// One disk state: a text the daemon wrote to or read from disk, and a document version whose
/// text it is.
#[derive(Clone, Debug)]
pub struct DiskState {
    pub version: Frontier,
    pub text: Rope,
}

/// The older disk states of a file, newest first (the current one is not in it).
#[derive(Clone, Debug, Default)]
pub struct DiskWindow {
    /// With the sequence number of their push.
    states: VecDeque<(u64, DiskState)>,
    pushed: u64,
    bytes: usize,
}

impl DiskWindow {
    /// The disk moved on from `state`: keep it as the newest older state. Beyond
    /// [`WINDOW_STATES`] a state is dropped, but not the newest [`KEEP_RECENT`] nor the oldest
    /// (the file as loaded, often what a long-open editor holds): of the others, the one
    /// whose neighbours are closest in time (the newer on ties), so the window thins out with
    /// age (roughly exponential spacing) instead of forgetting everything older than the last
    /// 32 writes. Beyond [`WINDOW_BYTES`] the same rule drops states (only the newest is
    /// protected) until the sizes fit or one state is left.
    pub fn push(&mut self, state: DiskState) {
        self.bytes += state.text.len_bytes();
        self.pushed += 1;
        self.states.push_front((self.pushed, state));
        while self.states.len() > WINDOW_STATES {
            self.drop_one(KEEP_RECENT);
        }
        while self.states.len() > 1 && self.bytes > WINDOW_BYTES {
            self.drop_one(1);
        }
    }
    /// Drop the state at the densest spot among `protect..len-1`, else the oldest.
    fn drop_one(&mut self, protect: usize) {
        let n = self.states.len();
        let seq = |i: usize| self.states[i].0;
        let i = (protect.max(1)..n.saturating_sub(1))
            .min_by_key(|&i| seq(i - 1) - seq(i + 1))
            .unwrap_or(n - 1);
        let (_, s) = self.states.remove(i).expect("in range");
        self.bytes -= s.text.len_bytes();
    }
    /// Keep only the states `keep` accepts (e.g. those still after the history's horizon).
    pub fn retain(&mut self, mut keep: impl FnMut(&DiskState) -> bool) {
        self.states.retain(|(_, s)| keep(s));
        self.bytes = self.states.iter().map(|(_, s)| s.text.len_bytes()).sum();
    }
    pub fn len(&self) -> usize {
        self.states.len()
    }
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = &DiskState> {
        self.states.iter().map(|(_, s)| s)
    }
    pub fn get(&self, i: usize) -> Option<&DiskState> {
        self.states.get(i).map(|(_, s)| s)
    }
}

/// How an external change is merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeKind {
    /// At the newest disk state (the usual case: the writer had read what the disk held).
    Newest,
    /// At an older state: the writer had read that state; edits made since are kept.
    Older,
    /// The new text is exactly an older state: a deliberate revert, applied at the newest.
    Revert,
    /// The new text is no change of a recent state (or is empty): applied at the newest.
    Replacement,
    /// The new text would merge at an older state but is what the git index holds for the
    /// file (a checkout): applied at the newest.
    Checkout,
}

/// The decision for one external change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub kind: MergeKind,
    /// The state the change is applied at: 0 = the newest (current) disk state, `k` = the
    /// window's `k`-th state (1 = the one before the newest).
    pub base: usize,
    /// The state the new text is closest to (same numbering), whatever was decided.
    pub closest: usize,
    /// Edits turning the text of `base` into the new text ([`merge_diff`]).
    pub edits: Vec<TextEdit>,
}

fn text_of(r: &Rope) -> Cow<'_, str> {
    match r.slice(..).as_str() {
        Some(s) => s.into(),
        None => r.to_string().into(),
    }
}

/// Where to apply `new` (differing from `newest`, the current disk text), given the older
/// states `older` (newest first). `git_restored` is asked only when the answer would be an
/// older state: whether `new` is what the file's version control holds for it.
pub fn choose(
    newest: &Rope,
    older: &DiskWindow,
    new: &str,
    git_restored: impl FnOnce() -> bool,
) -> Choice {
    let mut budget = CHOOSE_BYTES;
    let cands = std::iter::once(newest)
        .chain(older.iter().map(|s| &s.text))
        .enumerate()
        .take_while(|(i, t)| {
            let ok = *i == 0 || budget >= t.len_bytes();
            budget = budget.saturating_sub(t.len_bytes());
            ok
        })
        .map(|(_, t)| text_of(t));
    let (best, cost) = closest(cands, new).expect("the newest state is a candidate");
    let text = |i: usize| -> &Rope {
        match i {
            0 => newest,
            k => &older.get(k - 1).expect("in range").text,
        }
    };
    let at_newest = |kind| Choice {
        kind,
        base: 0,
        closest: best,
        edits: merge_diff(&text_of(newest), new),
    };
    if best == 0 {
        return at_newest(MergeKind::Newest);
    }
    if cost == 0 {
        return at_newest(MergeKind::Revert);
    }
    if cost > new.chars().count() {
        return at_newest(MergeKind::Replacement);
    }
    if git_restored() {
        return at_newest(MergeKind::Checkout);
    }
    let edits = merge_diff(&text_of(text(best)), new);
    Choice {
        kind: MergeKind::Older,
        base: best,
        closest: best,
        edits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(states: &[&str]) -> DiskWindow {
        let mut w = DiskWindow::default();
        for s in states.iter().rev() {
            w.push(DiskState {
                version: Frontier::root(),
                text: Rope::from_str(s),
            });
        }
        w
    }

    #[test]
    fn a_stale_change_is_applied_at_the_state_it_was_made_from() {
        let newest = Rope::from_str("a\nAGENT\nb\nc\n");
        let w = window(&["a\nb\nc\n", "x\n"]);
        let c = choose(&newest, &w, "a\nb\nc\nTOOL\n", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Older, 1));
        assert_eq!(
            c.edits,
            [TextEdit {
                range: 6..6,
                text: "TOOL\n".into()
            }]
        );
        // A current writer: the newest state.
        let c = choose(&newest, &w, "a\nAGENT\nb\nc\nTOOL\n", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Newest, 0));
    }

    #[test]
    fn exact_old_states_empty_and_unrelated_texts_apply_at_the_newest() {
        let newest = Rope::from_str("a\nAGENT\nb\nc\n");
        let w = window(&["a\nb\nc\n"]);
        let c = choose(&newest, &w, "a\nb\nc\n", || false);
        assert_eq!((c.kind, c.base, c.closest), (MergeKind::Revert, 0, 1));
        let c = choose(&newest, &w, "", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Replacement, 0));
        let w2 = window(&["ab\n"]);
        let c = choose(&newest, &w2, "", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Replacement, 0));
        let c = choose(&newest, &w, "something else entirely\n", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Replacement, 0));
        // What git restored.
        let c = choose(&newest, &w, "a\nb\nc\nBRANCH\n", || true);
        assert_eq!((c.kind, c.base, c.closest), (MergeKind::Checkout, 0, 1));
    }

    #[test]
    fn ties_go_to_the_newest_state() {
        let newest = Rope::from_str("a\nb\n");
        let w = window(&["a\nb\n", "a\nb\n"]);
        let c = choose(&newest, &w, "a\nb\nc\n", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Newest, 0));
        let newest = Rope::from_str("q\n");
        let c = choose(&newest, &w, "a\nb\nc\n", || false);
        assert_eq!((c.kind, c.base), (MergeKind::Older, 1));
    }

    #[test]
    fn the_window_is_bounded_by_count_and_bytes_and_thins_out_with_age() {
        let mut w = DiskWindow::default();
        let n = 1000;
        for i in 0..n {
            w.push(DiskState {
                version: Frontier::root(),
                text: Rope::from_str(&format!("{i}\n")),
            });
        }
        let ages: Vec<usize> = w
            .iter()
            .map(|s| n - 1 - s.text.to_string().trim().parse::<usize>().unwrap())
            .collect();
        assert_eq!(ages.len(), WINDOW_STATES);
        // The newest 16, then sparser and sparser, and the first state ever.
        assert_eq!(
            ages[..KEEP_RECENT],
            (0..KEEP_RECENT).collect::<Vec<_>>()[..]
        );
        assert_eq!(*ages.last().unwrap(), n - 1);
        assert!(ages.windows(2).all(|p| p[0] < p[1]), "{ages:?}");
        let gaps: Vec<usize> = ages.windows(2).map(|p| p[1] - p[0]).collect();
        assert!(gaps[KEEP_RECENT..].iter().any(|g| *g > 16), "{ages:?}");
        assert!(ages.iter().any(|a| (100..600).contains(a)), "{ages:?}");
        // Bytes: big states push the others out; the newest always stays.
        let big = "x".repeat(WINDOW_BYTES / 3 + 1);
        for _ in 0..3 {
            w.push(DiskState {
                version: Frontier::root(),
                text: Rope::from_str(&big),
            });
        }
        assert!(w.bytes <= WINDOW_BYTES, "{}", w.bytes);
        assert_eq!(w.get(0).unwrap().text.len_bytes(), big.len());
        w.push(DiskState {
            version: Frontier::root(),
            text: Rope::from_str(&"y".repeat(WINDOW_BYTES + 1)),
        });
        assert_eq!(w.len(), 1);
        assert_eq!(w.bytes, WINDOW_BYTES + 1);
    }
}
