//! Wire types of the editor protocol (standard LSP document sync plus the `dist-space/*`
//! extensions). Everything the connection layer parses is turned into these types before it
//! reaches the writer; a message that does not parse is answered with an error or dropped with
//! a log line, and never reaches a document.
//!
//! ## The revision protocol (`dist-space/change` / `dist-space/edit`)
//! Clients that set `initializationOptions.revisionProtocol = true` (the Neovim plugin) do not
//! send `textDocument/didChange` (the server registers no change sync for them); instead:
//! * editor -> sidecar `dist-space/change {uri, seen, changes}`: `changes` are LSP
//!   content changes in sequence; `seen` is the `rev` of the last `dist-space/edit` the editor
//!   applied (0: none). Each change message counts as one editor revision.
//! * sidecar -> editor `dist-space/edit {uri, rev, editorRev, edits, baseDelta}`: `edits` are applied in
//!   sequence (each range refers to the text after the previous edit); `editorRev` is the
//!   number of change messages of this editor the sidecar had processed when it computed the
//!   edit. The editor applies it only if `editorRev` equals the number of change messages it
//!   has sent; otherwise it drops it, and the sidecar, on receiving the editor's newer change,
//!   recomputes everything the editor lacks and sends it again (transformed by the engine).
//! * Plain LSP clients (no revision protocol) that check versioned `workspace/applyEdit`
//!   ([`ApplyEdits`]) get remote edits as one `TextDocumentEdit` naming the document version
//!   the sidecar last saw from them: a client that has moved on skips or refuses it, and it is
//!   sent again, transformed, after the client's next change (or a backoff). Its echo is
//!   recognised inside the next `didChange`, also when bundled with the user's typing, and is
//!   not applied again (see `writer::plain`).
//! * `dist-space/resync {uri, text, base}`: the sidecar could not place an editor message
//!   (protocol violation); the editor replaces its buffer with `text` and continues from
//!   revision 0.
//!
//! ## Reopening after a reconnect (`base`, `initializationOptions.reopen`)
//! The base of a notice is the engine wire version (agent name -> highest seq; stable across
//! daemon restarts) of the editor's buffer after it applies the notice. It grows with the
//! history, so `dist-space/edit` carries only `baseDelta`: the entries that changed since the
//! previous notice for that document on this connection (the first notice after `didOpen`:
//! all). The editor merges every notice's `baseDelta` into a running map (applied or dropped
//! as stale: the versions only grow) and, when it applies one, takes the map as its `base`.
//! `dist-space/resync` carries the full `base` (the running map restarts from it). The
//! initialize result names the connection's engine agent
//! (`capabilities.experimental.distSpace.agent`; also `dist-space/info` `agent`). A plugin
//! keeps, per buffer, the `base` of the last notice it applied and its agents (one per
//! connection, the last 16), and sends them when it (re)connects:
//! `initializationOptions.reopen = {"<uri>": {"base": {"agent": seq, ...}, "agents": [...]}}`.
//! The `didOpen` text that differs is then merged as the editor's edit at exactly that version
//! (see `crate::reopen`); without it the sidecar guesses the base. All optional: a client
//! that ignores `base` and sends no `reopen` works as before.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vfs::pos::{LspPosition, LspRange};

/// Largest accepted message body (bytes). Larger frames close the connection.
pub const MAX_MESSAGE_BYTES: usize = 32 << 20;
/// Most editor connections one daemon accepts at a time.
pub const MAX_CONNECTIONS: usize = 64;
/// Most queued outgoing messages per connection before it is dropped as too slow.
pub const MAX_OUTBOX: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Pos {
    pub line: i64,
    pub character: i64,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Range {
    pub start: Pos,
    pub end: Pos,
}

impl Pos {
    pub fn to_lsp(self) -> Result<LspPosition, vfs::pos::PositionError> {
        LspPosition::from_signed(self.line, self.character)
    }
    pub fn from_lsp(p: LspPosition) -> Pos {
        Pos {
            line: p.line as i64,
            character: p.character as i64,
        }
    }
}

impl Range {
    pub fn to_lsp(self) -> Result<LspRange, vfs::pos::PositionError> {
        Ok(LspRange {
            start: self.start.to_lsp()?,
            end: self.end.to_lsp()?,
        })
    }
    pub fn from_lsp(r: LspRange) -> Range {
        Range {
            start: Pos::from_lsp(r.start),
            end: Pos::from_lsp(r.end),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct TextDocumentId {
    pub uri: String,
    /// The client's document version (didChange).
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextDocumentItem {
    pub uri: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContentChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidOpenParams {
    pub text_document: TextDocumentItem,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidChangeParams {
    pub text_document: TextDocumentId,
    pub content_changes: Vec<ContentChange>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocParams {
    pub text_document: TextDocumentId,
}

/// `dist-space/change`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeParams {
    pub uri: String,
    pub seen: u64,
    pub changes: Vec<ContentChange>,
}

/// One cursor: `anchor` is where a selection started, `head` where the caret is.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Cursor {
    pub anchor: Pos,
    pub head: Pos,
}

/// `dist-space/cursor` (editor -> sidecar).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorParams {
    pub uri: String,
    pub cursors: Vec<Cursor>,
}

/// `dist-space/edit` (sidecar -> editor).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EditNotice {
    pub uri: String,
    pub rev: u64,
    pub editor_rev: u64,
    pub edits: Vec<ContentChange>,
    /// The entries of the engine wire version of the editor's buffer after applying `edits`
    /// that changed since the previous notice for this document on this connection (all of
    /// them in the first one after `didOpen`). See the module doc.
    pub base_delta: engine::RemoteVersion,
}

/// `dist-space/presence` (sidecar -> editors): where participant `id` is; `uri: None` means
/// the participant left (or closed its last document).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceNotice {
    pub id: u64,
    pub name: String,
    pub uri: Option<String>,
    pub cursors: Vec<Cursor>,
}

/// How a plain LSP client (no revision protocol) takes the others' edits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApplyEdits {
    /// No versioned `workspace/applyEdit`: it gets no remote edits.
    #[default]
    None,
    /// It announces `workspace.applyEdit` and `workspaceEdit.documentChanges` and checks the
    /// version of a `TextDocumentEdit` (VS Code, Emacs eglot).
    Versioned,
    /// Neovim's built-in client (`clientInfo.name == "Neovim"`): it announces no
    /// `documentChanges`, yet applies them (`vim.lsp.util.apply_workspace_edit`) and checks
    /// their version, but only when it is > 0: a stale edit is skipped (`buf_versions[buf] >
    /// version`, answered `applied: true`). The same in Neovim 0.9, 0.10 and 0.11.
    Neovim,
}

/// What the `initialize` params say about versioned `workspace/applyEdit`.
pub fn apply_edits_of(params: &Value) -> ApplyEdits {
    let w = params.pointer("/capabilities/workspace");
    let apply = w.and_then(|w| w.get("applyEdit")).and_then(Value::as_bool) == Some(true);
    if !apply {
        return ApplyEdits::None;
    }
    if params.pointer("/clientInfo/name").and_then(Value::as_str) == Some("Neovim") {
        return ApplyEdits::Neovim;
    }
    let doc_changes = w
        .and_then(|w| w.pointer("/workspaceEdit/documentChanges"))
        .and_then(Value::as_bool)
        == Some(true);
    if doc_changes {
        ApplyEdits::Versioned
    } else {
        ApplyEdits::None
    }
}

/// What a document notification from one connection asks for, in arrival order.
#[derive(Debug)]
pub enum DocMsg {
    Open(DidOpenParams),
    Change(DidChangeParams),
    RevChange(ChangeParams),
    Close(DocParams),
    Save(DocParams),
    Cursor(CursorParams),
}

impl DocMsg {
    /// The document the message is about.
    pub fn uri(&self) -> Option<&String> {
        Some(match self {
            DocMsg::Open(p) => &p.text_document.uri,
            DocMsg::Change(p) => &p.text_document.uri,
            DocMsg::RevChange(p) => &p.uri,
            DocMsg::Close(p) | DocMsg::Save(p) => &p.text_document.uri,
            DocMsg::Cursor(p) => &p.uri,
        })
    }
}

/// Parse a document notification. `Ok(None)`: not a document notification.
pub fn parse_doc_msg(method: &str, params: Option<&Value>) -> Option<Result<DocMsg, String>> {
    fn p<T: serde::de::DeserializeOwned>(v: Option<&Value>) -> Result<T, String> {
        let v = v.cloned().unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|e| format!("invalid params: {e}"))
    }
    Some(match method {
        "textDocument/didOpen" => p(params).map(DocMsg::Open),
        "textDocument/didChange" => p(params).map(DocMsg::Change),
        "textDocument/didClose" => p(params).map(DocMsg::Close),
        "textDocument/didSave" => p(params).map(DocMsg::Save),
        "dist-space/change" => p(params).map(DocMsg::RevChange),
        "dist-space/cursor" => p(params).map(DocMsg::Cursor),
        _ => return None,
    })
}

/// At most `n` chars of `s` (logs and error messages never carry a huge name in full).
pub fn short(s: &str, n: usize) -> String {
    vfs::names::shorten(s, n)
}

/// `file://` URI -> absolute path (percent-decoded). `None` for other schemes and for a host
/// other than `localhost` (`file://otherhost/...` names a file on another machine).
pub fn uri_to_path(uri: &str) -> Option<std::path::PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // An authority: empty or `localhost` only ("file://localhost/...").
    let path = if rest.starts_with('/') {
        rest
    } else {
        let at = rest.find('/')?;
        if !rest[..at].eq_ignore_ascii_case("localhost") {
            return None;
        }
        &rest[at..]
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let h = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else if bytes[i] == b'%' {
            return None;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    Some(std::path::PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// Absolute path -> `file://` URI (unreserved characters and `/` kept, the rest escaped).
pub fn path_to_uri(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut s = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_edits_support() {
        use serde_json::json;
        let caps = |w: Value| json!({"capabilities": {"workspace": w}});
        assert_eq!(apply_edits_of(&json!({})), ApplyEdits::None);
        assert_eq!(
            apply_edits_of(&caps(json!({"applyEdit": true}))),
            ApplyEdits::None
        );
        assert_eq!(
            apply_edits_of(&caps(
                json!({"applyEdit": true, "workspaceEdit": {"documentChanges": true}})
            )),
            ApplyEdits::Versioned
        );
        let mut nvim = caps(json!({"applyEdit": true, "workspaceEdit": {}}));
        nvim["clientInfo"] = json!({"name": "Neovim", "version": "0.10.4"});
        assert_eq!(apply_edits_of(&nvim), ApplyEdits::Neovim);
        nvim["capabilities"]["workspace"]["applyEdit"] = json!(false);
        assert_eq!(apply_edits_of(&nvim), ApplyEdits::None);
    }

    #[test]
    fn uri_roundtrip() {
        let p = std::path::Path::new("/tmp/a b/ü%x.rs");
        let u = path_to_uri(p);
        assert_eq!(u, "file:///tmp/a%20b/%C3%BC%25x.rs");
        assert_eq!(uri_to_path(&u).unwrap(), p);
        assert_eq!(
            uri_to_path("file://localhost/x/y").unwrap(),
            std::path::Path::new("/x/y")
        );
        assert!(uri_to_path("file:///x%2").is_none());
        assert!(uri_to_path("file://otherhost/x/y").is_none());
        assert!(uri_to_path("file://LocalHost/x").is_some());
        assert!(uri_to_path("untitled:1").is_none());
    }
}
