//! Positions and encodings of agent requests: line/character positions, ranges, char offsets,
//! one replacement (`EditSpec`), and the `encoding` param.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vfs::pos::{LspPosition, PositionEncoding};

use crate::error::*;

/// `{ "line": 0, "character": 4 }` (0-based; `character` in the request's encoding).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    pub line: i64,
    pub character: i64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// Char offsets (Unicode scalar values), `start..end`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Offsets {
    pub start: i64,
    pub end: i64,
}

/// One replacement: exactly one of `range` (line/character) or `offsets` (chars).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EditSpec {
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub offsets: Option<Offsets>,
    pub text: String,
}

pub(crate) fn encoding_of(name: Option<&str>) -> Result<PositionEncoding, ApiError> {
    match name {
        None => Ok(PositionEncoding::Utf16),
        Some(n) => PositionEncoding::from_lsp_name(n).ok_or_else(|| {
            ApiError::new(
                INVALID_PARAMS,
                format!("unknown encoding `{n}` (use utf-8, utf-16 or utf-32)"),
            )
        }),
    }
}

pub(crate) fn pos_json(p: LspPosition) -> Value {
    json!({"line": p.line, "character": p.character})
}
