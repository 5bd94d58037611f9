//! Plain LSP clients (no revision protocol): the others' edits as versioned
//! `workspace/applyEdit`, the client's echo of an applied edit inside its `didChange`, and
//! when to send again.
//!
//! * **Only edits the client checks.** Each apply names the document version the client last
//!   reported and is made on exactly that buffer (`EditorDoc::ed_version`/`ed_text`). A client
//!   without a version gets nothing. Neovim skips the check for versions <= 0 (its `didOpen`
//!   version), so it is sent `max(version, 1)`: its buffer version is 0 until the first change
//!   after attaching and the buffer's `changedtick` (>= 3) after it, so 1 is checked exactly
//!   like 0 would be (see `proto::ApplyEdits`).
//! * **Every apply in flight is made on the same base.** A client that checks versions applies
//!   at most one of them (afterwards its version is past the base), and the one it applies is
//!   the first change it reports after that version. So the next `didChange` settles all of
//!   them: if the text after its first `k` changes is the text one apply produces, those
//!   changes are that apply's echo and the rest are the user's, made on the apply's result;
//!   otherwise nothing was applied and every change is the user's, made on the base. The echo
//!   may come bundled with typing before (never: it would have been refused) or after it
//!   (Neovim debounces 150 ms, eglot waits for 0.5 s of idle time). A client that adds or
//!   keeps a final newline it cannot do without (Neovim's `'eol'`) is matched too; the newline
//!   is then its own edit.
//! * **Never waiting forever.** An apply whose echo does not come (Neovim answers
//!   `applied: true` for an edit it skipped as stale) is followed, after [`ECHO_TIMEOUT`] and
//!   only if there is something new, by another apply on the same base, at most [`MAX_SENDS`]
//!   per base; the next change settles them all.
//! * **No retry storm.** Nothing is sent while the client types (its last change is younger
//!   than [`QUIET`]); an apply it refuses (`applied: false`) is sent again only after its next
//!   change or a backoff ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]).

use std::time::{Duration, Instant};

use engine::{Frontier, Rope, XfOp};
use tracing::{debug, warn};
use vfs::diff::TextEdit;
use vfs::pos;
use vfs::FileId;

use super::{ConnId, Outgoing, Writer};
use crate::proto::{self, ApplyEdits, ContentChange};

/// No apply is sent before the client's last change is this old (it is probably typing).
pub const QUIET: Duration = Duration::from_millis(200);
/// An apply not echoed is followed by another one on the same base after this long.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(2);
/// Most applies in flight on one base.
pub const MAX_SENDS: usize = 4;
/// After a refused apply, nothing is sent for this long (doubling up to `BACKOFF_MAX`), unless
/// the client changes its buffer first.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// One `workspace/applyEdit` in flight.
pub(super) struct SentApply {
    pub(super) token: u64,
    /// The document version and the client's text once it is applied.
    pub(super) after: Frontier,
    pub(super) text: Rope,
}

/// The applies in flight to one client for one document, all made on its buffer at `version`.
pub(super) struct PendingApply {
    pub(super) version: i64,
    pub(super) sends: Vec<SentApply>,
    pub(super) last_sent: Instant,
}

/// A plain client's state for one document.
pub(super) struct PlainDoc {
    /// The document version the client last reported (`didOpen`/`didChange`).
    pub(super) version: Option<i64>,
    pub(super) pending: Option<PendingApply>,
    pub(super) last_change: Option<Instant>,
    /// After a refused apply: nothing is sent before this (a change ends it).
    pub(super) hold_until: Option<Instant>,
    pub(super) backoff: Duration,
}

impl Default for PlainDoc {
    fn default() -> Self {
        PlainDoc {
            version: None,
            pending: None,
            last_change: None,
            hold_until: None,
            backoff: BACKOFF_MIN,
        }
    }
}

/// Which apply a `didChange` echoes, and how.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Echo {
    /// Index into `PendingApply::sends`.
    pub(super) send: usize,
    /// Changes `0..=change` are the echo.
    pub(super) change: usize,
    /// The client's own edit of the apply's text that its echo includes (a final newline it
    /// added or kept), in chars of the apply's text.
    pub(super) fixup: Option<TextEdit>,
}

/// `texts[k]` is the client's text after the first `k + 1` changes of a `didChange` made on
/// the base of `sends`. The earliest exact match wins; else the earliest that differs only by
/// a final newline.
pub(super) fn find_echo(texts: &[Rope], sends: &[SentApply]) -> Option<Echo> {
    for (k, t) in texts.iter().enumerate() {
        for (i, s) in sends.iter().enumerate() {
            if t.len_chars() == s.text.len_chars() && *t == s.text {
                return Some(Echo {
                    send: i,
                    change: k,
                    fixup: None,
                });
            }
        }
    }
    for (k, t) in texts.iter().enumerate() {
        for (i, s) in sends.iter().enumerate() {
            if let Some(fixup) = final_newline_fixup(&s.text, t) {
                return Some(Echo {
                    send: i,
                    change: k,
                    fixup: Some(fixup),
                });
            }
        }
    }
    None
}

/// The edit turning `want` into `got` when they differ only by one final `\n`.
fn final_newline_fixup(want: &Rope, got: &Rope) -> Option<TextEdit> {
    let (w, g) = (want.len_chars(), got.len_chars());
    let ends_nl = |r: &Rope, n: usize| n > 0 && r.char(n - 1) == '\n';
    if g == w + 1 && ends_nl(got, g) && got.slice(..w) == want.slice(..) {
        return Some(TextEdit {
            range: w..w,
            text: "\n".into(),
        });
    }
    if w == g + 1 && ends_nl(want, w) && want.slice(..g) == got.slice(..) {
        return Some(TextEdit {
            range: g..w,
            text: String::new(),
        });
    }
    None
}

/// Whether an apply may be sent to a client now.
pub(super) enum Gate {
    Go,
    /// Not before this.
    Wait(Instant),
    /// Not until the client reports something.
    No,
}

pub(super) fn gate(p: &PlainDoc, now: Instant) -> Gate {
    if p.version.is_none() {
        return Gate::No; // never an edit the client cannot check
    }
    let mut at = now;
    if let Some(t) = p.hold_until {
        at = at.max(t);
    }
    if let Some(t) = p.last_change {
        at = at.max(t + QUIET);
    }
    if let Some(pa) = &p.pending {
        if pa.sends.len() >= MAX_SENDS {
            return Gate::No;
        }
        at = at.max(pa.last_sent + ECHO_TIMEOUT);
    }
    if at > now {
        Gate::Wait(at)
    } else {
        Gate::Go
    }
}

impl Writer {
    /// Wake the loop at `t` to send what plain clients are waiting for.
    pub(super) fn wake_at(&mut self, t: Instant) {
        self.retry_at = Some(self.retry_at.map_or(t, |r| r.min(t)));
    }

    /// The retry timer fired: bring every plain client that lags up to date (if it may be sent
    /// to now; otherwise the timer is set again).
    pub(super) fn plain_retry(&mut self) {
        let mut files = Vec::new();
        for c in self.conns.values() {
            if c.revision || c.apply == ApplyEdits::None {
                continue;
            }
            for (f, ed) in &c.docs {
                let behind = self
                    .ws
                    .text_file(*f)
                    .is_some_and(|t| *t.doc.version() != ed.ed_version);
                if behind {
                    files.push(*f);
                }
            }
        }
        files.sort_unstable();
        files.dedup();
        self.update_editors(files);
    }

    /// One versioned `workspace/applyEdit` turning the client's text into `new_text`: the
    /// sequential `ops` are folded into a single replacement of the span they touch.
    pub(super) fn send_apply_edit(
        &mut self,
        id: ConnId,
        f: FileId,
        ops: &[XfOp],
        new_text: Rope,
        after: Frontier,
    ) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let enc = c.enc;
        let neovim = c.apply == ApplyEdits::Neovim;
        let Some(ed) = c.docs.get_mut(&f) else { return };
        let Some(reported) = ed.plain.version else {
            return;
        };
        if let Some(p) = &ed.plain.pending {
            if p.sends.iter().any(|s| s.text == new_text) {
                return; // nothing new since the last apply on this base
            }
        }
        let old_len = ed.ed_text.len_chars();
        let mut len = old_len;
        let (mut lo, mut tail) = (usize::MAX, usize::MAX);
        for op in ops {
            match op {
                XfOp::Insert { pos, text } => {
                    let n = text.chars().count();
                    len += n;
                    lo = lo.min(*pos);
                    tail = tail.min(len - (pos + n));
                }
                XfOp::Delete { pos, len: n } => {
                    len -= n;
                    lo = lo.min(*pos);
                    tail = tail.min(len - pos);
                }
            }
        }
        if lo == usize::MAX {
            return;
        }
        let old_end = (old_len - tail).max(lo);
        // Neovim appends whole lines for an edit that starts after the final newline (one more
        // newline than asked); replacing that newline too is the same edit, applied exactly.
        if neovim && lo == old_len && lo > 0 && ed.ed_text.char(lo - 1) == '\n' {
            lo -= 1;
        }
        let range = match pos::chars_to_range(&ed.ed_text, lo..old_end, enc) {
            Ok(r) => r,
            Err(e) => {
                warn!(conn = id, error = %e, "cannot express the apply edit");
                return;
            }
        };
        let new_end = (new_text.len_chars() - tail).max(lo);
        let change = ContentChange {
            range: Some(proto::Range::from_lsp(range)),
            text: new_text.slice(lo..new_end).to_string(),
        };
        let token = self.next_token;
        self.next_token += 1;
        let now = Instant::now();
        let p = ed.plain.pending.get_or_insert_with(|| PendingApply {
            version: if neovim { reported.max(1) } else { reported },
            sends: Vec::new(),
            last_sent: now,
        });
        p.last_sent = now;
        p.sends.push(SentApply {
            token,
            after,
            text: new_text,
        });
        debug!(
            conn = id,
            lo,
            old_end,
            version = p.version,
            sends = p.sends.len(),
            "applyEdit sent"
        );
        let msg = Outgoing::ApplyEdit {
            token,
            uri: ed.uri.clone(),
            version: p.version,
            change,
        };
        self.stats.edits_sent += 1;
        self.stats.apply_sent += 1;
        if c.out.try_send(msg).is_err() {
            warn!(
                conn = id,
                "outgoing queue full or closed: dropping the connection"
            );
            let _ = c.out.try_send(Outgoing::Close("too slow".into()));
        }
    }

    /// A client answered an apply.
    pub(super) fn apply_result(&mut self, conn: ConnId, token: u64, applied: bool) {
        if applied {
            self.stats.apply_applied += 1;
        } else {
            self.stats.apply_rejected += 1;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        for (f, ed) in c.docs.iter_mut() {
            let Some(p) = ed.plain.pending.as_mut() else {
                continue;
            };
            let Some(i) = p.sends.iter().position(|s| s.token == token) else {
                continue;
            };
            if applied {
                return; // settled by the client's next change
            }
            // Stale (the client changed meanwhile) or refused: again after its next change,
            // or after a backoff. (An answer after the echo settled it finds nothing here.)
            p.sends.remove(i);
            if p.sends.is_empty() {
                ed.plain.pending = None;
            }
            let now = Instant::now();
            ed.plain.hold_until = Some(now + ed.plain.backoff);
            ed.plain.backoff = (ed.plain.backoff * 2).min(BACKOFF_MAX);
            let f = *f;
            self.changed.insert(f);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(text: &str) -> SentApply {
        SentApply {
            token: 1,
            after: Frontier::root(),
            text: Rope::from_str(text),
        }
    }

    fn ropes(v: &[&str]) -> Vec<Rope> {
        v.iter().map(|s| Rope::from_str(s)).collect()
    }

    #[test]
    fn echo_first_then_typing() {
        let sends = [sent("a X b\n")];
        let e = find_echo(&ropes(&["a X b\n", "a X bc\n"]), &sends).unwrap();
        assert_eq!((e.send, e.change, e.fixup), (0, 0, None));
        assert!(find_echo(&ropes(&["a b c\n"]), &sends).is_none());
    }

    #[test]
    fn echo_of_a_later_send_in_two_changes() {
        let sends = [sent("one\n"), sent("one two\n")];
        let e = find_echo(&ropes(&["one tw\n", "one two\n", "one two!\n"]), &sends).unwrap();
        assert_eq!((e.send, e.change), (1, 1));
    }

    #[test]
    fn echo_with_a_final_newline_kept_or_added() {
        let sends = [sent("a\nb")];
        let e = find_echo(&ropes(&["a\nb\n"]), &sends).unwrap();
        assert_eq!(
            e.fixup,
            Some(TextEdit {
                range: 3..3,
                text: "\n".into()
            })
        );
        let sends = [sent("a\nb\n\n")];
        let e = find_echo(&ropes(&["a\nb\n"]), &sends).unwrap();
        assert_eq!(
            e.fixup,
            Some(TextEdit {
                range: 4..5,
                text: String::new()
            })
        );
        // Exact matches win over a newline difference.
        let sends = [sent("x\n")];
        let e = find_echo(&ropes(&["x\n\n", "x\n"]), &sends).unwrap();
        assert_eq!((e.change, e.fixup), (1, None));
    }

    #[test]
    fn gate_waits_for_quiet_and_backoff() {
        let now = Instant::now();
        let mut p = PlainDoc::default();
        assert!(matches!(gate(&p, now), Gate::No));
        p.version = Some(3);
        assert!(matches!(gate(&p, now), Gate::Go));
        p.last_change = Some(now);
        assert!(matches!(gate(&p, now), Gate::Wait(t) if t == now + QUIET));
        p.hold_until = Some(now + Duration::from_secs(1));
        assert!(matches!(gate(&p, now), Gate::Wait(t) if t == now + Duration::from_secs(1)));
    }
}
