//! A materialised document: text at one version.
//!
//! Typing arrives one char at a time, and a rope edit per char is what makes plain ropes slow.
//! Edits go to a small window (a gap-buffer-like copy of the text around the cursor) and reach
//! the rope in one replace when the window moves elsewhere or the text is read.

use ropey::Rope;

use crate::frontier::Frontier;
use crate::oplog::OpLog;
use crate::walker::{self, BadEvent, Emit};

/// Longest window, in bytes, before it is written back into the rope.
const WINDOW_MAX: usize = 1024;

/// A pending replacement of `rope[pos..pos + orig_chars]` by `text`: edits inside or touching
/// it are string edits, and it reaches the rope in one remove and one insert when flushed.
#[derive(Clone, Debug, Default)]
struct Window {
    pos: usize,
    orig_chars: usize,
    text: String,
    chars: usize,
}

/// Text at a version. Cloning is cheap (the rope shares structure).
#[derive(Clone, Debug, Default)]
pub struct Branch {
    pub(crate) version: Frontier,
    rope: Rope,
    window: Option<Window>,
}

fn count_chars(s: &str) -> usize {
    ropey::str_utils::byte_to_char_idx(s, s.len())
}

impl Branch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The text at the root version of `oplog` (its base text).
    pub fn at_root(oplog: &OpLog) -> Self {
        Branch {
            version: Frontier::root(),
            rope: oplog.base.clone(),
            window: None,
        }
    }

    pub fn version(&self) -> &Frontier {
        &self.version
    }

    pub fn len_chars(&self) -> usize {
        match &self.window {
            Some(w) => self.rope.len_chars() - w.orig_chars + w.chars,
            None => self.rope.len_chars(),
        }
    }

    /// Writes the window back into the rope.
    pub fn flush(&mut self) {
        if let Some(w) = self.window.take() {
            if w.orig_chars > 0 {
                self.rope.remove(w.pos..w.pos + w.orig_chars);
            }
            if w.chars > 0 {
                self.rope.insert(w.pos, &w.text);
            }
        }
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

    /// Inserts at a char position (`pos <= len_chars()`, checked by callers).
    pub(crate) fn insert(&mut self, pos: usize, text: &str) {
        if text.is_empty() {
            return;
        }
        let fits = |w: &Window| {
            pos >= w.pos && pos <= w.pos + w.chars && w.text.len() + text.len() <= WINDOW_MAX
        };
        match self.window.as_mut() {
            Some(w) if fits(w) => {
                let off = pos - w.pos;
                if off == w.chars {
                    w.text.push_str(text);
                } else {
                    let b = ropey::str_utils::char_to_byte_idx(&w.text, off);
                    w.text.insert_str(b, text);
                }
                w.chars += count_chars(text);
            }
            _ => {
                self.flush();
                if text.len() > WINDOW_MAX / 2 {
                    self.rope.insert(pos, text);
                } else {
                    let mut t = String::with_capacity(WINDOW_MAX);
                    t.push_str(text);
                    self.window = Some(Window {
                        pos,
                        orig_chars: 0,
                        chars: count_chars(text),
                        text: t,
                    });
                }
            }
        }
    }

    /// Deletes a char range (within bounds, checked by callers).
    pub(crate) fn delete(&mut self, pos: usize, len: usize) {
        if len == 0 {
            return;
        }
        let end = pos + len;
        match self.window.as_mut() {
            // Touching or overlapping the window: delete its part of the range from the window
            // text and widen the replaced rope range by the parts outside it.
            Some(w) if pos <= w.pos + w.chars && end >= w.pos => {
                let w_end = w.pos + w.chars;
                let s_from = pos.max(w.pos) - w.pos;
                let s_to = end.min(w_end) - w.pos;
                if s_to > s_from {
                    let a = ropey::str_utils::char_to_byte_idx(&w.text, s_from);
                    let b = a + ropey::str_utils::char_to_byte_idx(&w.text[a..], s_to - s_from);
                    w.text.replace_range(a..b, "");
                    w.chars -= s_to - s_from;
                }
                let left = w.pos.saturating_sub(pos);
                let right = end.saturating_sub(w_end);
                w.pos -= left;
                w.orig_chars += left + right;
            }
            _ => {
                self.flush();
                self.window = Some(Window {
                    pos,
                    orig_chars: len,
                    text: String::new(),
                    chars: 0,
                });
            }
        }
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
        let res = walker::transform(oplog, &from, Some(len), to, &mut |e| {
            match &e {
                Emit::Ins { pos, text, .. } => self.insert(*pos, text),
                Emit::Del { pos, len, .. } => self.delete(*pos, *len),
            }
            on_edit(&e);
        });
        match res {
            Ok(v) => {
                self.version = v;
                Ok(())
            }
            Err(e) => {
                self.rope = saved;
                self.window = None;
                Err(e)
            }
        }
    }

    /// Brings this branch to include `to`.
    pub fn merge(&mut self, oplog: &OpLog, to: &[usize]) -> Result<(), crate::error::VersionError> {
        if !oplog.check_known(to) {
            return Err(crate::error::VersionError::Unknown);
        }
        self.merge_with(oplog, to, |_| {})
            .map_err(|BadEvent(lv)| crate::error::VersionError::InvalidEvent(lv))
    }
}
