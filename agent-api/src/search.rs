//! `search`: ripgrep-like search of the live workspace (unsaved text included), with the
//! `regex` crate, line by line (like `rg` without `--multiline`). The writer takes an
//! immutable snapshot and the matching runs on another thread.

use std::borrow::Cow;
use std::sync::Arc;

use engine::RemoteVersion;
use serde::Deserialize;
use serde_json::{json, Value};
use vfs::pos::PositionEncoding;
use vfs::{SnapContent, SnapText, Workspace};

use crate::error::*;
use crate::read::glob_matcher;
use crate::request::Deferred;
use crate::types::encoding_of;

/// Default and largest `maxResults`.
pub const DEFAULT_MAX_RESULTS: u64 = 1000;
pub const MAX_RESULTS: u64 = 100_000;
/// Longest `lineText` returned (chars; longer lines are cut, `lineTruncated` says so).
pub const MAX_LINE_CHARS: usize = 1000;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchParams {
    pub query: String,
    /// `query` is a regular expression (Rust `regex` syntax); otherwise a literal string.
    #[serde(default)]
    pub regex: bool,
    /// Default true (as ripgrep).
    #[serde(default)]
    pub case_sensitive: Option<bool>,
    /// Only matches that start and end at word boundaries.
    #[serde(default)]
    pub whole_word: bool,
    #[serde(default)]
    pub glob: Option<String>,
    #[serde(default)]
    pub max_results: Option<u64>,
    /// Unit of the returned `character`s (default utf-16).
    #[serde(default)]
    pub encoding: Option<String>,
}

fn units(s: &str, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf8 => s.len(),
        PositionEncoding::Utf16 => s.encode_utf16().count(),
        PositionEncoding::Utf32 => s.chars().count(),
    }
}

/// Lines of `text` without their break (`\n`, `\r\n` or `\r`, as LSP counts lines).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\n', '\r']) {
            Some(i) => {
                let brk = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + brk..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

pub fn search(
    ws: &mut Workspace,
    p: SearchParams,
    deferred: &mut Option<Deferred>,
) -> Result<Value, ApiError> {
    let enc = encoding_of(p.encoding.as_deref())?;
    let matcher = glob_matcher(p.glob.as_deref())?;
    if p.query.is_empty() {
        return Err(ApiError::new(INVALID_PARAMS, "empty query"));
    }
    let max = p.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if max == 0 || max > MAX_RESULTS {
        return Err(ApiError::new(
            INVALID_PARAMS,
            format!("maxResults must be 1..={MAX_RESULTS}"),
        ));
    }
    let mut pattern = if p.regex {
        p.query.clone()
    } else {
        regex::escape(&p.query)
    };
    if p.whole_word {
        pattern = format!(r"\b(?:{pattern})\b");
    }
    let re = regex::RegexBuilder::new(&pattern)
        .case_insensitive(!p.case_sensitive.unwrap_or(true))
        .size_limit(16 << 20)
        .build()
        .map_err(|e| ApiError::new(INVALID_PARAMS, format!("bad regex: {e}")))?;
    let snap = ws.snapshot();
    let mut files: Vec<(Arc<str>, SnapText, RemoteVersion)> = Vec::new();
    for sf in snap.files().iter() {
        let SnapContent::Text { text, version } = &sf.content else {
            continue;
        };
        if matcher.as_ref().is_some_and(|m| !m.is_match(&*sf.path)) {
            continue;
        }
        let rv = ws
            .text_file(sf.id)
            .and_then(|t| t.doc.built())
            .map(|d| d.remote_version(version))
            .unwrap_or_default();
        files.push((sf.path.clone(), text.clone(), rv));
    }
    let ws_version = snap.version();
    *deferred = Some(Box::new(move || {
        let mut results = Vec::new();
        let mut truncated = false;
        'files: for (path, text, version) in &files {
            let s: Cow<'_, str> = match text.as_str() {
                Some(s) => s.into(),
                None => text.to_string().into(),
            };
            for (ln, line) in lines(&s).enumerate() {
                for m in re.find_iter(line) {
                    if results.len() as u64 == max {
                        truncated = true;
                        break 'files;
                    }
                    let a = units(&line[..m.start()], enc);
                    let b = a + units(m.as_str(), enc);
                    let cut = line.char_indices().nth(MAX_LINE_CHARS).map(|(i, _)| i);
                    results.push(json!({
                        "path": &**path,
                        "line": ln,
                        "range": {"start": {"line": ln, "character": a},
                                  "end": {"line": ln, "character": b}},
                        "lineText": &line[..cut.unwrap_or(line.len())],
                        "lineTruncated": cut.is_some(),
                        "version": version,
                    }));
                }
            }
        }
        Ok(json!({
            "workspaceVersion": ws_version,
            "encoding": enc.lsp_name(),
            "results": results,
            "truncated": truncated,
        }))
    }));
    Ok(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_lsp() {
        let v: Vec<&str> = lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(v, ["a", "b", "c", "", "d"]);
        let v: Vec<&str> = lines("x\n").collect();
        assert_eq!(v, ["x", ""]);
    }
}
