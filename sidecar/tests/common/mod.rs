//! Test harness: a real `dist-space serve` process on a temp workspace, raw LSP clients over
//! its real Unix socket, a revision-protocol agent, and headless Neovim helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BUILT_BIN: &str = env!("CARGO_BIN_EXE_dist-space");

/// The binary under test: `DIST_SPACE_BIN` (e.g. a release build) or the one cargo built.
pub fn bin() -> String {
    std::env::var("DIST_SPACE_BIN").unwrap_or_else(|_| BUILT_BIN.to_string())
}

pub struct Daemon {
    pub root: PathBuf,
    pub runtime: tempfile::TempDir,
    pub child: Option<Child>,
    pub socket: PathBuf,
}

pub fn read_info(root: &Path) -> Option<Value> {
    let s = std::fs::read_to_string(root.join(".dist-space/daemon.json")).ok()?;
    serde_json::from_str(&s).ok()
}

impl Daemon {
    /// Start `dist-space serve root` with its own runtime dir; wait for the socket.
    pub fn start(root: &Path) -> Daemon {
        let runtime = tempfile::tempdir().unwrap();
        Self::start_in(root, runtime)
    }

    pub fn start_in(root: &Path, runtime: tempfile::TempDir) -> Daemon {
        let root = std::fs::canonicalize(root).unwrap();
        let child = Command::new(bin())
            .arg("serve")
            .arg(&root)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dist-space serve");
        let pid = child.id() as u64;
        let t0 = Instant::now();
        let socket = loop {
            if let Some(i) = read_info(&root) {
                if i["pid"].as_u64() == Some(pid) {
                    break PathBuf::from(i["socket"].as_str().unwrap());
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Daemon {
            root,
            runtime,
            child: Some(child),
            socket,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn connect(&self) -> Client {
        Client::connect(&self.socket)
    }

    /// SIGTERM and wait (the daemon flushes first).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let t0 = Instant::now();
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("daemon did not stop on SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn uri(&self, rel: &str) -> String {
        path_to_uri(&self.root.join(rel))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn path_to_uri(p: &Path) -> String {
    let mut s = String::from("file://");
    for &b in p.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

pub fn frame(v: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(v).unwrap();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// A raw LSP client over the daemon socket. A reader thread parses frames into a channel.
pub struct Client {
    pub w: UnixStream,
    pub rx: Receiver<Value>,
    next_id: i64,
    /// Notifications received while waiting for a response.
    pub backlog: std::collections::VecDeque<Value>,
}

impl Client {
    pub fn connect(sock: &Path) -> Client {
        let s = UnixStream::connect(sock).expect("connect");
        let r = s.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let t = line.trim_end();
                    if t.is_empty() {
                        break;
                    }
                    if let Some(v) = t.strip_prefix("Content-Length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let v: Value = serde_json::from_slice(&body).unwrap();
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Client {
            w: s,
            rx,
            next_id: 1,
            backlog: Default::default(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        let f = frame(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
        self.w.write_all(&f).unwrap();
    }

    pub fn request_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A request; returns the whole response object.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.request_id();
        let f = frame(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.w.write_all(&f).unwrap();
        self.wait_response(id)
    }

    pub fn wait_response(&mut self, id: i64) -> Value {
        let t0 = Instant::now();
        loop {
            match self.rx.recv_timeout(Duration::from_secs(180)) {
                Ok(v) => {
                    if v.get("id").and_then(Value::as_i64) == Some(id) && v.get("method").is_none()
                    {
                        return v;
                    }
                    self.backlog.push_back(v);
                }
                Err(e) => panic!("no response to {id} after {:?}: {e}", t0.elapsed()),
            }
        }
    }

    /// Next notification (backlog first), waiting up to `t`.
    pub fn next_notification(&mut self, t: Duration) -> Option<Value> {
        if let Some(v) = self.backlog.pop_front() {
            return Some(v);
        }
        match self.rx.recv_timeout(t) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    pub fn initialize(&mut self, name: &str, revision: bool, encodings: &[&str]) -> Value {
        let r = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": {"general": {"positionEncodings": encodings}},
                "initializationOptions": {"name": name, "revisionProtocol": revision},
            }),
        );
        self.notify("initialized", json!({}));
        r
    }

    pub fn did_open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "text", "version": 0, "text": text}}),
        );
    }

    pub fn text(&mut self, uri: &str) -> String {
        let r = self.request("dist-space/text", json!({"uri": uri}));
        r["result"]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text: {r}"))
            .to_string()
    }
}

impl Drop for Client {
    /// Really close the connection (the reader thread holds a clone of the socket).
    fn drop(&mut self) {
        let _ = self.w.shutdown(std::net::Shutdown::Both);
    }
}

/// A scripted participant speaking the revision protocol (like the Neovim plugin), with the
/// text as it sees it. Positions are utf-32 (chars).
pub struct RevAgent {
    pub c: Client,
    pub uri: String,
    pub text: ropey::Rope,
    pub sent: u64,
    pub seen: u64,
    pub applied: u64,
    pub dropped: u64,
    /// `base` of the last edit (or resync) applied: the buffer's wire version.
    pub base: Option<Value>,
    /// Every notice's `baseDelta` merged (applied or dropped).
    pub wire: serde_json::Map<String, Value>,
}

pub fn lsp_pos(rope: &ropey::Rope, c: usize) -> Value {
    let line = rope.char_to_line(c);
    json!({"line": line, "character": c - rope.line_to_char(line)})
}

fn char_of(rope: &ropey::Rope, p: &Value) -> usize {
    let line = p["line"].as_u64().unwrap() as usize;
    let ch = p["character"].as_u64().unwrap() as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    rope.line_to_char(line) + ch
}

impl RevAgent {
    pub fn new(daemon: &Daemon, name: &str, rel: &str) -> RevAgent {
        let mut c = daemon.connect();
        c.initialize(name, true, &["utf-32"]);
        let uri = daemon.uri(rel);
        let text = std::fs::read_to_string(daemon.root.join(rel)).unwrap_or_default();
        c.did_open(&uri, &text);
        RevAgent::opened(c, uri, &text)
    }

    /// A participant on connection `c` that has opened `uri` with `text` (nothing sent or
    /// received yet).
    pub fn opened(c: Client, uri: String, text: &str) -> RevAgent {
        RevAgent {
            c,
            uri,
            text: ropey::Rope::from_str(text),
            sent: 0,
            seen: 0,
            applied: 0,
            dropped: 0,
            base: None,
            wire: Default::default(),
        }
    }

    /// Apply every queued `dist-space/edit` (or drop it when stale); wait up to `t` for one.
    pub fn pump(&mut self, t: Duration) -> usize {
        let mut n = 0;
        let mut wait = t;
        while let Some(v) = self.c.next_notification(wait) {
            wait = Duration::ZERO;
            match v["method"].as_str() {
                Some("dist-space/edit") => {
                    let p = &v["params"];
                    if p["uri"] != self.uri {
                        continue;
                    }
                    for (k, v) in p["baseDelta"].as_object().expect("baseDelta") {
                        self.wire.insert(k.clone(), v.clone());
                    }
                    if p["editorRev"].as_u64() != Some(self.sent) {
                        self.dropped += 1;
                        continue;
                    }
                    for e in p["edits"].as_array().unwrap() {
                        let s = char_of(&self.text, &e["range"]["start"]);
                        let en = char_of(&self.text, &e["range"]["end"]);
                        self.text.remove(s..en);
                        self.text.insert(s, e["text"].as_str().unwrap());
                    }
                    self.seen = p["rev"].as_u64().unwrap();
                    self.base = Some(Value::Object(self.wire.clone()));
                    self.applied += 1;
                    n += 1;
                }
                Some("dist-space/resync") => {
                    let p = &v["params"];
                    self.text = ropey::Rope::from_str(p["text"].as_str().unwrap());
                    self.sent = 0;
                    self.seen = 0;
                    self.base = Some(p["base"].clone());
                    self.wire = p["base"].as_object().cloned().unwrap_or_default();
                }
                _ => {}
            }
        }
        n
    }

    /// Replace chars `range` with `text` locally and send the change.
    pub fn edit(&mut self, range: std::ops::Range<usize>, text: &str) {
        let start = lsp_pos(&self.text, range.start);
        let end = lsp_pos(&self.text, range.end);
        self.text.remove(range.clone());
        self.text.insert(range.start, text);
        self.sent += 1;
        let uri = self.uri.clone();
        let seen = self.seen;
        self.c.notify(
            "dist-space/change",
            json!({"uri": uri, "seen": seen, "changes": [{"range": {"start": start, "end": end}, "text": text}]}),
        );
    }
}

/// The `nvim` to use, or `None` (tests then skip loudly, except in CI where they fail).
pub fn nvim() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DIST_SPACE_NVIM") {
        return Some(PathBuf::from(p));
    }
    let ok = Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return Some(PathBuf::from("nvim"));
    }
    if std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
    {
        panic!("nvim not found but CI=true: run scripts/setup-nvim.sh (Neovim e2e tests must not skip in CI)");
    }
    eprintln!();
    eprintln!("################################################################");
    eprintln!("## SKIPPED: nvim not found. Run scripts/setup-nvim.sh to run  ##");
    eprintln!("## the real-Neovim tests (they never skip when CI=true).      ##");
    eprintln!("################################################################");
    None
}

pub fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors/nvim")
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/nvim")
        .join(name)
}

/// Start headless Neovim running `script` with `env`.
pub fn spawn_nvim(nvim: &Path, daemon: &Daemon, script: &Path, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(nvim);
    cmd.args(["--headless", "-n", "--clean", "-i", "NONE", "-l"])
        .arg(script)
        .current_dir(&daemon.root)
        .env("XDG_RUNTIME_DIR", daemon.runtime.path())
        .env("DS_BIN", bin())
        .env("DS_PLUGIN", plugin_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn nvim")
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if t0.elapsed() > timeout {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain LSP client that behaves like VS Code: incremental didChange with versions, and
/// versioned `workspace/applyEdit` (applied only if the version matches, then the change is
/// reported back as a didChange, then `applied: true`). UTF-16 positions.
pub struct PlainEditor {
    pub c: Client,
    pub uri: String,
    pub text: ropey::Rope,
    pub version: i64,
    pub applied: u64,
    pub rejected: u64,
}

fn utf16_pos(rope: &ropey::Rope, c: usize) -> Value {
    let line = rope.char_to_line(c);
    let ls = rope.line_to_char(line);
    json!({"line": line, "character": rope.char_to_utf16_cu(c) - rope.char_to_utf16_cu(ls)})
}

fn utf16_char(rope: &ropey::Rope, p: &Value) -> usize {
    let line = p["line"].as_u64().unwrap() as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let ls = rope.line_to_char(line);
    let u = rope.char_to_utf16_cu(ls) + p["character"].as_u64().unwrap() as usize;
    rope.utf16_cu_to_char(u)
}

impl PlainEditor {
    pub fn new(daemon: &Daemon, name: &str, rel: &str) -> PlainEditor {
        let mut c = daemon.connect();
        let r = c.request(
            "initialize",
            json!({"processId": null, "rootUri": null,
                   "capabilities": {"workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}}},
                   "initializationOptions": {"name": name}}),
        );
        assert_eq!(r["result"]["capabilities"]["positionEncoding"], "utf-16");
        c.notify("initialized", json!({}));
        let uri = daemon.uri(rel);
        let text = std::fs::read_to_string(daemon.root.join(rel)).unwrap_or_default();
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "text", "version": 1, "text": text}}),
        );
        PlainEditor {
            c,
            uri,
            text: ropey::Rope::from_str(&text),
            version: 1,
            applied: 0,
            rejected: 0,
        }
    }

    fn did_change(&mut self, range: Value, text: &str) {
        let uri = self.uri.clone();
        let v = self.version;
        self.c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": v},
                   "contentChanges": [{"range": range, "text": text}]}),
        );
    }

    pub fn edit(&mut self, range: std::ops::Range<usize>, text: &str) {
        let r = json!({"start": utf16_pos(&self.text, range.start), "end": utf16_pos(&self.text, range.end)});
        self.text.remove(range.clone());
        self.text.insert(range.start, text);
        self.version += 1;
        self.did_change(r, text);
    }

    /// Answer queued `workspace/applyEdit` requests like VS Code does.
    pub fn pump(&mut self, t: Duration) {
        let mut wait = t;
        while let Some(v) = self.c.next_notification(wait) {
            wait = Duration::ZERO;
            if v["method"] != "workspace/applyEdit" {
                continue;
            }
            let id = v["id"].clone();
            let dc = &v["params"]["edit"]["documentChanges"][0];
            let ok = dc["textDocument"]["uri"] == self.uri.as_str()
                && dc["textDocument"]["version"].as_i64() == Some(self.version);
            if ok {
                // One edit per request (all ranges refer to the text before the edit).
                let e = &dc["edits"][0];
                let s = utf16_char(&self.text, &e["range"]["start"]);
                let en = utf16_char(&self.text, &e["range"]["end"]);
                let nt = e["newText"].as_str().unwrap().to_string();
                self.text.remove(s..en);
                self.text.insert(s, &nt);
                self.version += 1;
                self.did_change(e["range"].clone(), &nt);
                self.applied += 1;
            } else {
                self.rejected += 1;
            }
            if std::env::var("DS_DEBUG_LOG").is_ok() {
                eprintln!("{:?} applyEdit answered {ok}", std::time::SystemTime::now());
            }
            let resp = frame(&json!({"jsonrpc": "2.0", "id": id, "result": {"applied": ok}}));
            self.c.send_raw(&resp);
        }
    }
}

/// The char ranges of the `<Name:123>` markers the e2e scripts type.
pub fn marker_spans(s: &str) -> Vec<std::ops::Range<usize>> {
    // <Name:123> in chars
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] == '<' {
            let mut j = i + 1;
            while j < cs.len() && cs[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if j > i + 1 && j < cs.len() && cs[j] == ':' {
                let mut k = j + 1;
                while k < cs.len() && cs[k].is_ascii_digit() {
                    k += 1;
                }
                if k > j + 1 && k < cs.len() && cs[k] == '>' {
                    out.push(i..k + 1);
                    i = k + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}
