//! A materialised document: text at one version.
//!
//! Typing arrives one char at a time, and a rope edit per char is what makes plain ropes slow.
//! Edits that stay inside a small pending run (the text just typed) are applied to that run
//! and reach the rope in one insert when the run is flushed.

use ropey::Rope;

use crate::frontier::Frontier;
use crate::oplog::OpLog;
use crate::walker::{self, BadEvent, Emit};

/// Longest pending run, in bytes, before it is flushed into the rope.
const PENDING_MAX: usize = 512;

#[derive(Clone, Debug, Default)]
struct Pending {
    /// Char position of the run in the document.
    pos: usize,
    text: String,
    chars: usize,
}

/// Text at a version. Cloning is cheap (the rope shares structure).
#[derive(Clone, Debug, Default)]
pub struct Branch {
    pub(crate) version: Frontier,
    rope: Rope,
    pending: Pending,
}

fn count_chars(s: &str) -> usize {
    ropey::str_utils::byte_to_char_idx(s, s.len())
}

impl Branch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn version(&self) -> &Frontier {
        &self.version
    }

    pub fn len_chars(&self) -> usize {
        self.rope.len_chars() + self.pending.chars
    }

    /// Applies the pending run to the rope.
    pub fn flush(&mut self) {
        if self.pending.chars > 0 {
            self.rope.insert(self.pending.pos, &self.pending.text);
            self.pending.text.clear();
            self.pending.chars = 0;
        }
    }

    /// The text (flushes the pending run).
    pub fn text(&mut self) -> &Rope {
        self.flush();
        &self.rope
    }

    /// The text without flushing; `None` when a run is pending.
    pub fn text_if_flushed(&self) -> Option<&Rope> {
        (self.pending.chars == 0).then_some(&self.rope)
    }

    /// The text as an owned rope, without needing `&mut`.
    pub fn to_rope(&self) -> Rope {
        let mut r = self.rope.clone();
        if self.pending.chars > 0 {
            r.insert(self.pending.pos, &self.pending.text);
        }
        r
    }

    /// Inserts at a char position (`pos <= len_chars()`, checked by callers).
    pub(crate) fn insert(&mut self, pos: usize, text: &str) {
        let n = count_chars(text);
        if n == 0 {
            return;
        }
        let p = &mut self.pending;
        if p.chars > 0
            && pos >= p.pos
            && pos <= p.pos + p.chars
            && p.text.len() + text.len() <= PENDING_MAX
        {
            if pos == p.pos + p.chars {
                p.text.push_str(text);
            } else {
                let b = ropey::str_utils::char_to_byte_idx(&p.text, pos - p.pos);
                p.text.insert_str(b, text);
            }
            p.chars += n;
            return;
        }
        self.flush();
        if text.len() <= PENDING_MAX / 2 {
            self.pending.pos = pos;
            self.pending.text.push_str(text);
            self.pending.chars = n;
        } else {
            self.rope.insert(pos, text);
        }
    }

    /// Deletes a char range (within bounds, checked by callers).
    pub(crate) fn delete(&mut self, pos: usize, len: usize) {
        if len == 0 {
            return;
        }
        let p = &mut self.pending;
        if p.chars > 0 && pos >= p.pos && pos + len <= p.pos + p.chars {
            let a = ropey::str_utils::char_to_byte_idx(&p.text, pos - p.pos);
            let b = a + ropey::str_utils::char_to_byte_idx(&p.text[a..], len);
            p.text.replace_range(a..b, "");
            p.chars -= len;
            return;
        }
        self.flush();
        self.rope.remove(pos..pos + len);
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
                self.pending = Pending::default();
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
