//! Positions and encodings of agent requests: line/character positions, ranges, char offsets,
//! one replacement (`EditSpec`), and the `encoding` param.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};
use vfs::pos::{LspPosition, PositionEncoding};

use crate::error::*;

/// `{ "line": 0, "character": 4 }` (0-based; `character` in the request's encoding).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Position {
    pub line: i64,
    pub character: i64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

/// Char offsets (Unicode scalar values), `start..end`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Offsets {
    pub start: i64,
    pub end: i64,
}

/// One replacement: exactly one of `range` (line/character) or `offsets` (chars).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct EditSpec {
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub offsets: Option<Offsets>,
    pub text: String,
}

/// Params and their parts are **by name**: serde's derived structs also accept a JSON array
/// (fields by position), which the API refuses. A type deserialized through this takes only
/// an object (its derived, `remote = "Self"` deserializer reads the fields).
trait ByName<'de>: Sized {
    fn from_fields<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

struct ByNameVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: ByName<'de>> Visitor<'de> for ByNameVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with named fields (not an array)")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_fields(serde::de::value::MapAccessDeserializer::new(map))
    }
}

macro_rules! by_name {
    ($($ty:ident),*) => {$(
        impl<'de> ByName<'de> for $ty {
            fn from_fields<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $ty::deserialize(d)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(ByNameVisitor::<$ty>(std::marker::PhantomData))
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, s)
            }
        }
    )*};
}
by_name!(Position, Range, Offsets, EditSpec);

/// Refuses params given by position (a JSON array): every method takes named params.
pub(crate) fn params_by_name(raw: Option<&str>) -> Result<(), ApiError> {
    match raw.map(str::trim_start) {
        Some(r) if r.starts_with('[') => Err(ApiError::new(
            INVALID_PARAMS,
            "params must be an object of named fields, not an array: the agent API takes no positional params",
        )),
        _ => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions, ranges, offsets and edits are objects with exactly their fields.
    #[test]
    fn parts_are_by_name() {
        let ok: EditSpec =
            serde_json::from_str(r#"{"offsets":{"start":1,"end":2},"text":"x"}"#).unwrap();
        assert_eq!(ok.offsets, Some(Offsets { start: 1, end: 2 }));
        assert_eq!(
            serde_json::to_value(ok).unwrap()["offsets"],
            json!({"start": 1, "end": 2})
        );
        for bad in [
            r#"{"offsets":[1,2],"text":"x"}"#,
            r#"{"offsets":{"start":1,"end":2,"extra":0},"text":"x"}"#,
            r#"{"range":{"start":[0,0],"end":{"line":0,"character":0}},"text":"x"}"#,
            r#"{"range":{"start":{"line":0,"character":0,"x":1},"end":{"line":0,"character":0}},"text":"x"}"#,
            r#"[null,{"start":1,"end":2},"x"]"#,
        ] {
            let e = serde_json::from_str::<EditSpec>(bad).unwrap_err();
            assert!(!e.to_string().is_empty(), "{bad}");
        }
        assert!(params_by_name(Some(" [1]")).is_err());
        assert!(params_by_name(Some("{}")).is_ok());
        assert!(params_by_name(None).is_ok());
    }
}
