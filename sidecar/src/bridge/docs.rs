//! The editor's open documents as the bridge sees them: `didOpen`/`didChange`/`didClose`
//! applied with the negotiated position encoding, so that after a daemon restart every buffer
//! can be re-opened with the text it has *now* (typing during the outage included).

use std::collections::BTreeMap;

use ropey::Rope;
use serde_json::{json, Value};
use vfs::pos::{self, LspPosition, LspRange, PositionEncoding};

pub struct Doc {
    pub language_id: Value,
    pub version: Value,
    pub text: Rope,
}

#[derive(Default)]
pub struct Docs {
    pub enc: PositionEncoding,
    open: BTreeMap<String, Doc>,
}

fn position(v: &Value) -> Option<LspPosition> {
    let line = v.get("line")?.as_i64()?;
    let character = v.get("character")?.as_i64()?;
    LspPosition::from_signed(line, character).ok()
}

fn range(v: &Value) -> Option<LspRange> {
    Some(LspRange {
        start: position(v.get("start")?)?,
        end: position(v.get("end")?)?,
    })
}

impl Docs {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Apply a document notification; `Err` says why it was not understood (the daemon gets
    /// it anyway and answers for itself).
    pub fn apply(&mut self, method: &str, params: &Value) -> Result<(), String> {
        let td = params.get("textDocument").ok_or("no textDocument")?;
        let uri = td.get("uri").and_then(Value::as_str).ok_or("no uri")?;
        match method {
            "textDocument/didOpen" => {
                let text = td.get("text").and_then(Value::as_str).ok_or("no text")?;
                self.open.insert(
                    uri.to_string(),
                    Doc {
                        language_id: td.get("languageId").cloned().unwrap_or(json!("")),
                        version: td.get("version").cloned().unwrap_or(json!(0)),
                        text: Rope::from_str(text),
                    },
                );
            }
            "textDocument/didClose" => {
                self.open.remove(uri);
            }
            "textDocument/didChange" => {
                let enc = self.enc;
                let doc = self
                    .open
                    .get_mut(uri)
                    .ok_or("change of a document not open")?;
                let changes = params
                    .get("contentChanges")
                    .and_then(Value::as_array)
                    .ok_or("no contentChanges")?;
                for c in changes {
                    let text = c
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or("change without text")?;
                    match c.get("range") {
                        None | Some(Value::Null) => doc.text = Rope::from_str(text),
                        Some(r) => {
                            let r = range(r).ok_or("bad range")?;
                            let span = pos::range_to_chars(&doc.text, r, enc)
                                .map_err(|e| e.to_string())?;
                            doc.text.remove(span.clone());
                            doc.text.insert(span.start, text);
                        }
                    }
                }
                if let Some(v) = td.get("version") {
                    doc.version = v.clone();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `didOpen` params re-opening every document with its current text.
    pub fn reopen_params(&self) -> impl Iterator<Item = Value> + '_ {
        self.open.iter().map(|(uri, d)| {
            json!({"textDocument": {
                "uri": uri,
                "languageId": d.language_id,
                "version": d.version,
                "text": d.text.to_string(),
            }})
        })
    }

    #[cfg(test)]
    pub fn text(&self, uri: &str) -> Option<String> {
        self.open.get(uri).map(|d| d.text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(docs: &mut Docs, uri: &str, v: i64, changes: Value) {
        docs.apply(
            "textDocument/didChange",
            &json!({"textDocument": {"uri": uri, "version": v}, "contentChanges": changes}),
        )
        .unwrap();
    }

    #[test]
    fn changes_apply_in_the_negotiated_encoding() {
        for (enc, col) in [
            (PositionEncoding::Utf16, 3),
            (PositionEncoding::Utf8, 5),
            (PositionEncoding::Utf32, 2),
        ] {
            let mut d = Docs {
                enc,
                ..Docs::default()
            };
            d.apply(
                "textDocument/didOpen",
                &json!({"textDocument": {"uri": "file:///a", "languageId": "text", "version": 1, "text": "a😀b\nxy\n"}}),
            )
            .unwrap();
            // Insert "!" after the emoji (2 UTF-16 units, 4 UTF-8 bytes, 1 scalar).
            change(
                &mut d,
                "file:///a",
                2,
                json!([{"range": {"start": {"line": 0, "character": col}, "end": {"line": 0, "character": col}}, "text": "!"}]),
            );
            change(
                &mut d,
                "file:///a",
                3,
                json!([{"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 1}}, "text": "X"}]),
            );
            assert_eq!(d.text("file:///a").unwrap(), "a😀!b\nXy\n", "{enc:?}");
            change(&mut d, "file:///a", 4, json!([{"text": "new"}]));
            assert_eq!(d.text("file:///a").unwrap(), "new");
            assert_eq!(
                d.reopen_params().next().unwrap()["textDocument"]["version"],
                4
            );
            d.apply(
                "textDocument/didClose",
                &json!({"textDocument": {"uri": "file:///a"}}),
            )
            .unwrap();
            assert_eq!(d.len(), 0);
        }
    }
}
