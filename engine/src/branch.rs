//! A materialised document: text at one version.
//!
//! Typing arrives one char at a time, and a rope edit per char is what makes plain ropes slow.
//! Edits go to a small window (a gap buffer holding the text around the cursor) and reach the
//! rope in one replace when the window moves elsewhere or the text is read.

use ropey::Rope;

use crate::frontier::Frontier;
use crate::gapbuf::GapBuf;
use crate::oplog::OpLog;
use crate::walker::{self, BadEvent, Emit};

/// Longest window, in bytes, before it is written back into the rope.
const WINDOW_MAX: usize = 4096;
/// Most chars copied from the rope to let the window reach a nearby edit.
const REACH: usize = 256;

/// A pending replacement of `rope[pos..pos + orig_chars]` by the gap buffer's text: edits inside
/// or near it are gap-buffer edits, and it reaches the rope in one remove and one insert.
#[derive(Clone, Debug, Default)]
struct Window {
    active: bool,
    pos: usize,
    orig_chars: usize,
    text: GapBuf,
}

/// Text at a version. Cloning is cheap (the rope shares structure).
#[derive(Clone, Debug, Default)]
pub struct Branch {
    pub(crate) version: Frontier,
    rope: Rope,
    window: Window,
    cache: Cache,
}

/// The walker state of the last merge while the history is concurrent (see
/// [`walker::WalkCache`]). Not cloned: a copy starts without it.
#[derive(Debug, Default)]
struct Cache(Option<Box<walker::WalkCache>>);

impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache(None)
    }
}

fn count_chars(s: &str) -> usize {
    ropey::str_utils::byte_to_char_idx(s, s.len())
}

impl Branch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget the walker state kept between merges (the log's history changed under it, e.g.
    /// by compaction).
    pub(crate) fn clear_cache(&mut self) {
        self.cache = Cache::default();
    }

    /// The text at the root version of `oplog` (its base text).
    pub fn at_root(oplog: &OpLog) -> Self {
        Branch {
            version: Frontier::root(),
            rope: oplog.base.clone(),
            window: Window::default(),
            cache: Cache::default(),
        }
    }

    pub fn version(&self) -> &Frontier {
        &self.version
    }

    pub fn len_chars(&self) -> usize {
        let w = &self.window;
        if w.active {
            self.rope.len_chars() - w.orig_chars + w.text.chars()
        } else {
            self.rope.len_chars()
        }
    }

    /// Writes the window back into the rope.
    pub fn flush(&mut self) {
        let w = &mut self.window;
        if !w.active {
            return;
        }
        w.active = false;
        if w.orig_chars > 0 {
            self.rope.remove(w.pos..w.pos + w.orig_chars);
        }
        let (l, r) = w.text.parts();
        if r.is_empty() {
            if !l.is_empty() {
                self.rope.insert(w.pos, l);
            }
        } else {
            let mut s = String::with_capacity(l.len() + r.len());
            s.push_str(l);
            s.push_str(r);
            self.rope.insert(w.pos, &s);
        }
        w.text.clear();
    }

    /// The text (flushes the window).
    pub fn text(&mut self) -> &Rope {
        self.flush();
        &self.rope
    }

    /// The text as an owned rope, without needing `&mut`.
    pub fn to_rope(&self) -> Rope {
        let mut b = self.clone();
        b.flush();
        b.rope
    }

    fn open(&mut self, pos: usize, orig_chars: usize) {
        self.flush();
        let w = &mut self.window;
        w.active = true;
        w.pos = pos;
        w.orig_chars = orig_chars;
    }

    /// Grows the active window to cover current-text positions `start..end` when that only
    /// needs a few chars copied from the rope. Returns whether it covers them now.
    fn reach(&mut self, start: usize, end: usize, extra_bytes: usize) -> bool {
        let w = &mut self.window;
        if !w.active {
            return false;
        }
        let w_end = w.pos + w.text.chars();
        let before = w.pos.saturating_sub(start);
        let after = end.saturating_sub(w_end);
        if before == 0 && after == 0 {
            return true;
        }
        if before + after > REACH
            || w.text.len_bytes() + extra_bytes + 4 * (before + after) > WINDOW_MAX
        {
            return false;
        }
        if before > 0 {
            let mut at = 0;
            for chunk in self.rope.slice(start..w.pos).chunks() {
                let n = count_chars(chunk);
                w.text.insert(at, chunk, n);
                at += n;
            }
            w.pos = start;
            w.orig_chars += before;
        }
        if after > 0 {
            let r = w.pos + w.orig_chars;
            for chunk in self.rope.slice(r..r + after).chunks() {
                let c = w.text.chars();
                w.text.insert(c, chunk, count_chars(chunk));
            }
            w.orig_chars += after;
        }
        true
    }

    /// Inserts at a char position (`pos <= len_chars()`, checked by callers).
    pub(crate) fn insert(&mut self, pos: usize, text: &str) {
        if text.is_empty() {
            return;
        }
        let n = count_chars(text);
        if self.reach(pos, pos, text.len())
            && self.window.text.len_bytes() + text.len() <= WINDOW_MAX
        {
            let w = &mut self.window;
            w.text.insert(pos - w.pos, text, n);
            return;
        }
        if text.len() > WINDOW_MAX / 2 {
            self.flush();
            self.rope.insert(pos, text);
            return;
        }
        self.open(pos, 0);
        self.window.text.insert(0, text, n);
    }

    /// Deletes a char range (within bounds, checked by callers).
    pub(crate) fn delete(&mut self, pos: usize, len: usize) {
        if len == 0 {
            return;
        }
        let end = pos + len;
        let w = &self.window;
        let touching = w.active && pos <= w.pos + w.text.chars() && end >= w.pos;
        if !touching && !self.reach(pos, pos, 0) {
            self.open(pos, len);
            return;
        }
        // Delete the window's part of the range from its text and widen the replaced rope
        // range by the parts outside it.
        let w = &mut self.window;
        let w_end = w.pos + w.text.chars();
        let from = pos.max(w.pos);
        let to = end.min(w_end);
        if to > from {
            w.text.delete(from - w.pos, to - from);
        }
        let left = w.pos.saturating_sub(pos);
        let right = end.saturating_sub(w_end);
        w.pos -= left;
        w.orig_chars += left + right;
    }

    /// Brings this branch to include `to`, transforming every event it lacks.
    /// On an invalid event nothing changes.
    pub(crate) fn merge_with(
        &mut self,
        oplog: &OpLog,
        to: &[usize],
        mut on_edit: impl FnMut(&Emit),
    ) -> Result<(), BadEvent> {
        self.flush();
        let saved = self.rope.clone();
        let len = self.len_chars();
        let from = self.version.clone();
        let mut cache = self.cache.0.take();
        let res = walker::transform_cached(
            oplog,
            &from,
            Some(len),
            to,
            &mut |e| {
                match &e {
                    Emit::Ins { pos, text, .. } => self.insert(*pos, text),
                    Emit::Del { pos, len, .. } => self.delete(*pos, *len),
                }
                on_edit(&e);
            },
            &mut cache,
        );
        self.cache.0 = cache;
        match res {
            Ok(v) => {
                self.version = v;
                Ok(())
            }
            Err(e) => {
                self.rope = saved;
                self.window = Window::default();
                Err(e)
            }
        }
    }

    /// Brings this branch to include `to` (`BeforeHorizon` for a version older than a
    /// compacted log's horizon).
    pub fn merge(&mut self, oplog: &OpLog, to: &[usize]) -> Result<(), crate::error::VersionError> {
        let to = oplog.internal(to)?;
        self.merge_with(oplog, to.as_slice(), |_| {})
            .map_err(|BadEvent(lv)| crate::error::VersionError::InvalidEvent(lv))
    }
}
