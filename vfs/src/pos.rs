//! LSP positions <-> char offsets.
//!
//! Positions are converted only at the edge (helix style): everything inside the sidecar speaks
//! char offsets into a [`Rope`]. An LSP position is `(line, character)` where `character` counts
//! code units of the negotiated [`PositionEncoding`].
//!
//! Rules (LSP 3.17):
//! * Lines are separated by `\n`, `\r\n` or `\r` only. CRLF text stays CRLF; a position never
//!   points between the `\r` and `\n` of one line break.
//! * A line past the end of the document clamps to the end of the document.
//! * A character past the end of its line clamps to the end of the line (before its line break).
//! * A character that falls inside a char (inside a UTF-16 surrogate pair, inside a UTF-8
//!   sequence) is an error, as are negative numbers and a range whose end is before its start.
//!
//! Every conversion is O(log n) via ropey's indexes. (One caveat: if some other crate in the
//! build enables ropey's `unicode_lines` feature, ropey also breaks lines at U+000B, U+000C,
//! U+0085, U+2028 and U+2029, which LSP does not; then conversions fall back to an O(n) scan
//! that keeps LSP semantics. See `vfs/README.md`.)

use std::ops::Range;
use std::sync::OnceLock;

use ropey::Rope;

/// The position encoding negotiated with the client (`positionEncoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PositionEncoding {
    Utf8,
    /// The LSP default.
    #[default]
    Utf16,
    Utf32,
}

impl PositionEncoding {
    /// Parse the LSP name (`"utf-8"`, `"utf-16"`, `"utf-32"`).
    pub fn from_lsp_name(name: &str) -> Option<Self> {
        match name {
            "utf-8" => Some(Self::Utf8),
            "utf-16" => Some(Self::Utf16),
            "utf-32" => Some(Self::Utf32),
            _ => None,
        }
    }
    pub fn lsp_name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf16 => "utf-16",
            Self::Utf32 => "utf-32",
        }
    }
}

/// An LSP position. Both fields are unsigned on the wire; use [`LspPosition::from_signed`] for
/// input that was parsed as signed integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LspPosition {
    pub line: u32,
    pub character: u32,
}

impl LspPosition {
    pub fn new(line: u32, character: u32) -> Self {
        Self { line, character }
    }
    /// Checked construction from signed numbers (JSON can carry anything).
    pub fn from_signed(line: i64, character: i64) -> Result<Self, PositionError> {
        let line =
            u32::try_from(line).map_err(|_| PositionError::OutOfRange { line, character })?;
        let ch = u32::try_from(character).map_err(|_| PositionError::OutOfRange {
            line: line as i64,
            character,
        })?;
        Ok(Self {
            line,
            character: ch,
        })
    }
}

/// An LSP range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct LspRange {
    pub start: LspPosition,
    pub end: LspPosition,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("position ({line}, {character}) is negative or too large")]
    OutOfRange { line: i64, character: i64 },
    #[error("position ({line}, {character}) falls inside a character (e.g. inside a UTF-16 surrogate pair)")]
    InsideChar { line: u32, character: u32 },
    #[error("range end {end:?} is before its start {start:?}")]
    EndBeforeStart {
        start: LspPosition,
        end: LspPosition,
    },
    #[error("char offset {offset} is past the end of the document ({len} chars)")]
    OffsetPastEnd { offset: usize, len: usize },
}

/// True when ropey was built with `unicode_lines` (by feature unification from another crate).
fn ropey_has_unicode_lines() -> bool {
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| Rope::from_str("a\u{2028}b").len_lines() != 1)
}

fn is_lsp_break(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Number of LSP lines (line breaks + 1).
pub fn line_count(rope: &Rope) -> usize {
    if !ropey_has_unicode_lines() {
        return rope.len_lines();
    }
    slow::line_starts(rope).len()
}

/// Char offset of the start of LSP line `line`, or `None` when past the end.
fn line_start(rope: &Rope, line: usize) -> Option<usize> {
    if !ropey_has_unicode_lines() {
        return (line < rope.len_lines()).then(|| rope.line_to_char(line));
    }
    slow::line_starts(rope).get(line).copied()
}

/// LSP line containing char `offset` (`offset <= len_chars`).
fn char_to_line(rope: &Rope, offset: usize) -> usize {
    if !ropey_has_unicode_lines() {
        return rope.char_to_line(offset);
    }
    let starts = slow::line_starts(rope);
    starts.partition_point(|&s| s <= offset).saturating_sub(1)
}

/// Char offset of the end of the content of the line starting at `start` (before its break).
fn line_content_end(rope: &Rope, line: usize, start: usize) -> usize {
    let next = line_start(rope, line + 1).unwrap_or(rope.len_chars());
    let mut end = next;
    if end > start && rope.char(end - 1) == '\n' {
        end -= 1;
    }
    if end > start && rope.char(end - 1) == '\r' && (end == next || rope.char(end) == '\n') {
        end -= 1;
    }
    end
}

mod slow {
    use super::*;
    /// LSP line starts by a full scan; used only when ropey has `unicode_lines`.
    pub(super) fn line_starts(rope: &Rope) -> Vec<usize> {
        let mut starts = vec![0];
        let mut prev_cr = false;
        for (i, c) in rope.chars().enumerate() {
            if prev_cr && c != '\n' {
                starts.push(i);
            }
            prev_cr = false;
            if c == '\n' {
                starts.push(i + 1);
            } else if c == '\r' {
                prev_cr = true;
            }
        }
        if prev_cr {
            starts.push(rope.len_chars());
        }
        starts
    }
}

/// Units of `enc` at char offset `c` (from the start of the rope).
fn units_at(rope: &Rope, c: usize, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf8 => rope.char_to_byte(c),
        PositionEncoding::Utf16 => rope.char_to_utf16_cu(c),
        PositionEncoding::Utf32 => c,
    }
}

fn char_at_units(rope: &Rope, units: usize, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf8 => rope.byte_to_char(units),
        PositionEncoding::Utf16 => rope.utf16_cu_to_char(units),
        PositionEncoding::Utf32 => units,
    }
}

/// LSP position -> char offset, clamping per the LSP spec.
pub fn position_to_char(
    rope: &Rope,
    pos: LspPosition,
    enc: PositionEncoding,
) -> Result<usize, PositionError> {
    let line = pos.line as usize;
    let Some(start) = line_start(rope, line) else {
        return Ok(rope.len_chars());
    };
    let end = line_content_end(rope, line, start);
    let start_u = units_at(rope, start, enc);
    let end_u = units_at(rope, end, enc);
    let target = start_u.saturating_add(pos.character as usize);
    if target >= end_u {
        return Ok(end);
    }
    let c = char_at_units(rope, target, enc);
    if units_at(rope, c, enc) != target {
        return Err(PositionError::InsideChar {
            line: pos.line,
            character: pos.character,
        });
    }
    Ok(c)
}

/// Char offset -> LSP position. An offset between the `\r` and `\n` of a CRLF maps to the end of
/// that line's content; an offset past the end is an error.
pub fn char_to_position(
    rope: &Rope,
    offset: usize,
    enc: PositionEncoding,
) -> Result<LspPosition, PositionError> {
    let len = rope.len_chars();
    if offset > len {
        return Err(PositionError::OffsetPastEnd { offset, len });
    }
    let line = char_to_line(rope, offset);
    let start = line_start(rope, line).unwrap_or(len);
    let end = line_content_end(rope, line, start);
    let offset = offset.min(end);
    let character = units_at(rope, offset, enc) - units_at(rope, start, enc);
    Ok(LspPosition {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        character: u32::try_from(character).unwrap_or(u32::MAX),
    })
}

/// LSP range -> char range. The end must not be before the start (checked on the positions as
/// given, before clamping).
pub fn range_to_chars(
    rope: &Rope,
    range: LspRange,
    enc: PositionEncoding,
) -> Result<Range<usize>, PositionError> {
    if range.end < range.start {
        return Err(PositionError::EndBeforeStart {
            start: range.start,
            end: range.end,
        });
    }
    let s = position_to_char(rope, range.start, enc)?;
    let e = position_to_char(rope, range.end, enc)?;
    Ok(s..e.max(s))
}

/// Char range -> LSP range.
pub fn chars_to_range(
    rope: &Rope,
    range: Range<usize>,
    enc: PositionEncoding,
) -> Result<LspRange, PositionError> {
    if range.end < range.start {
        let start = char_to_position(rope, range.start, enc)?;
        let end = char_to_position(rope, range.end, enc)?;
        return Err(PositionError::EndBeforeStart { start, end });
    }
    Ok(LspRange {
        start: char_to_position(rope, range.start, enc)?,
        end: char_to_position(rope, range.end, enc)?,
    })
}

/// The line-break style a document uses (by its first line break), for writing new lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    Lf,
    CrLf,
    Cr,
}

impl LineEnding {
    pub fn detect(rope: &Rope) -> LineEnding {
        let mut chars = rope.chars().skip_while(|c| !is_lsp_break(*c));
        match (chars.next(), chars.next()) {
            (Some('\r'), Some('\n')) => LineEnding::CrLf,
            (Some('\r'), _) => LineEnding::Cr,
            _ => LineEnding::Lf,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
            LineEnding::Cr => "\r",
        }
    }
}
