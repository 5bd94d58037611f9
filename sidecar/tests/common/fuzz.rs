//! Seeded fuzz of both protocols against a real daemon (shared by `tests/fuzz.rs` and the
//! `fuzz_soak` bench; include with `#[path = "common/fuzz.rs"] mod fuzz;` next to `mod common;`).
//!
//! Agent API (raw HTTP POSTs and raw WebSocket frames, so that malformed JSON-RPC a client
//! library would never send gets through): random methods, params of right and wrong shapes,
//! paths (over-long, `..`, `.git`, ignored, symlinks, NUL, unicode), versions and positions,
//! malformed requests (ids that are not ids, repeated keys, no method, not JSON, positional
//! params). Every request must get one well-formed JSON-RPC answer in time that names what
//! was wrong, and a refused one must change nothing: workspace version, listing (paths and
//! versions) and, when nothing is waiting for write-back, the disk tree.
//!
//! LSP (raw frames over the daemon's socket): random lifecycle orders, header spellings,
//! URIs (other hosts, `.git`, ignored, over-long, outside the root), changes and requests;
//! every request answered (lifecycle errors as LSP says), and afterwards nothing inside
//! `.git`, ignored folders or over-long names exists in the workspace or on disk.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::common::{read_info, Daemon};

/// Answer timeout: generous for a loaded CI machine; no answer in this time is a finding.
pub const ANSWER: Duration = Duration::from_secs(60);

/// The workspace the fuzz starts from.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    std::fs::create_dir_all(r.join("src")).unwrap();
    std::fs::create_dir_all(r.join(".git/objects")).unwrap();
    std::fs::create_dir_all(r.join("build")).unwrap();
    std::fs::write(r.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(r.join(".gitignore"), "build/\n*.log\n").unwrap();
    std::fs::write(r.join("build/out.txt"), "generated\n").unwrap();
    std::fs::write(r.join("a.txt"), "alpha\nbeta\ngamma\n").unwrap();
    std::fs::write(r.join("notes.md"), "# notes\n😀 smile\nünïcödé\n").unwrap();
    std::fs::write(
        r.join("src/m.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc", r.join("out")).unwrap();
    std::os::unix::fs::symlink(r.join(".git"), r.join("gitlink")).unwrap();
    dir
}

/// What the fuzz found and did.
#[derive(Default, Debug)]
pub struct Report {
    pub cases: u64,
    pub refused: u64,
    pub accepted: u64,
    pub lsp_sessions: u64,
    pub lsp_messages: u64,
    pub findings: Vec<String>,
}

impl Report {
    fn find(&mut self, what: String) {
        if self.findings.len() < 50 {
            self.findings.push(what);
        }
    }
}

// ------------------------------------------------------------------ transports

/// Raw HTTP/1.1 POSTs to the agent port.
pub struct Http {
    addr: String,
    token: String,
}

impl Http {
    pub fn new(d: &Daemon) -> Http {
        let info = read_info(&d.root).expect("info file");
        let ep = info["agent_endpoint"].as_str().unwrap();
        Http {
            addr: ep.trim_start_matches("ws://").to_string(),
            token: info["agent_token"].as_str().unwrap().to_string(),
        }
    }

    /// POST `body`; the status and the response body.
    pub fn post(&self, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let mut s = TcpStream::connect(&self.addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(ANSWER)).unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            self.token,
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .map_err(|e| format!("no answer: {e}"))?;
        let at = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no HTTP header end")?;
        let head = String::from_utf8_lossy(&out[..at]).to_string();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("no status")?;
        Ok((status, out[at + 4..].to_vec()))
    }

    /// A well-formed call; the whole response.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (_, b) = self.post(body.to_string().as_bytes()).expect("answer");
        serde_json::from_slice(&b).expect("JSON answer")
    }
}

type WsSender = soketto::connection::Sender<Compat<tokio::net::TcpStream>>;
type WsReceiver = soketto::connection::Receiver<Compat<tokio::net::TcpStream>>;

/// A raw WebSocket connection to the agent port (text frames as given).
pub struct Ws {
    rt: tokio::runtime::Runtime,
    tx: WsSender,
    rx: WsReceiver,
}

impl Ws {
    pub fn connect(d: &Daemon) -> Ws {
        let info = read_info(&d.root).expect("info file");
        let addr = info["agent_endpoint"]
            .as_str()
            .unwrap()
            .trim_start_matches("ws://")
            .to_string();
        let auth = format!("Bearer {}", info["agent_token"].as_str().unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = rt.block_on(async {
            let sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let mut c = soketto::handshake::Client::new(sock.compat(), &addr, "/");
            let h = [soketto::handshake::client::Header {
                name: "Authorization",
                value: auth.as_bytes(),
            }];
            c.set_headers(&h);
            match c.handshake().await.unwrap() {
                soketto::handshake::ServerResponse::Accepted { .. } => {}
                other => panic!("WebSocket refused: {other:?}"),
            }
            c.into_builder().finish()
        });
        Ws { rt, tx, rx }
    }

    /// Send one text frame and wait for the next answer (notifications skipped).
    pub fn exchange(&mut self, text: &str) -> Result<Value, String> {
        let (tx, rx) = (&mut self.tx, &mut self.rx);
        self.rt.block_on(async {
            tx.send_text(text).await.map_err(|e| e.to_string())?;
            tx.flush().await.map_err(|e| e.to_string())?;
            loop {
                let mut data = Vec::new();
                tokio::time::timeout(ANSWER, rx.receive_data(&mut data))
                    .await
                    .map_err(|_| "no answer in time".to_string())?
                    .map_err(|e| e.to_string())?;
                let v: Value = serde_json::from_slice(&data)
                    .map_err(|e| format!("answer is not JSON: {e}"))?;
                if v.get("method").is_some() {
                    continue; // a subscription notice
                }
                return Ok(v);
            }
        })
    }
}

// ------------------------------------------------------------------ state

/// What a refused request must leave as it was (`dirty`: something waits for write-back).
#[derive(Debug, PartialEq, Eq)]
pub struct State {
    pub version: Value,
    pub files: Vec<(String, String)>,
    pub dirty: bool,
    pub disk: BTreeMap<String, Vec<u8>>,
}

pub fn disk_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            // The state folder, and the write-back's transient temp files (renamed over
            // their target a moment later).
            let name = e.file_name().to_string_lossy().to_string();
            if rel == ".dist-space" || name.starts_with(".dist-space-tmp-") {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &p, out);
            } else if m.file_type().is_symlink() {
                out.insert(rel, b"->".to_vec());
            } else {
                out.insert(rel, std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

pub fn state(http: &Http, root: &Path) -> State {
    let info = http.call("workspace.info", json!({}));
    let list = http.call("fs.list", json!({}));
    let mut dirty = false;
    let files = list["result"]["files"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    dirty |= f["dirty"] == json!(true);
                    (
                        f["path"].as_str().unwrap_or("").to_string(),
                        f["version"].to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    State {
        version: info["result"]["version"].clone(),
        files,
        dirty,
        disk: disk_tree(root),
    }
}

/// The disk did not change but by the write-back of listed files (debounced, so it may land
/// between any two looks): nothing removed, nothing added or changed outside the listing.
fn disk_unchanged(before: &State, after: &State) -> bool {
    let listed = |p: &str| {
        let p = p.trim_end_matches('/');
        after
            .files
            .iter()
            .any(|(f, _)| f == p || f.starts_with(&format!("{p}/")))
    };
    before.disk.keys().all(|k| after.disk.contains_key(k))
        && after
            .disk
            .iter()
            .all(|(k, v)| before.disk.get(k) == Some(v) || listed(k))
}

// ------------------------------------------------------------------ agent cases

const GENERIC: &[&str] = &[
    "Invalid request",
    "Internal error",
    "Parse error",
    "Method not found",
    "Invalid params",
];

fn pick<'a, T>(rng: &mut fastrand::Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.usize(..xs.len())]
}

fn path(rng: &mut fastrand::Rng) -> String {
    let fixed = [
        "a.txt",
        "notes.md",
        "src/m.rs",
        "new.txt",
        "src/new.rs",
        "dir/sub/new.txt",
        "../escape.txt",
        "src/../../x",
        "/etc/passwd",
        ".git/x",
        ".git/HEAD",
        "src/.git/y",
        ".dist-space/daemon.json",
        "build/x.txt",
        "build",
        "x.log",
        "out/passwd",
        "gitlink/config",
        "a\u{0}b",
        "ü/ñ😀.txt",
        "",
        ".",
        "a.txt/sub",
        "./a.txt",
        "renamed.txt",
    ];
    match rng.u8(..10) {
        0 => "n".repeat(rng.usize(250..300)),
        1 => (0..rng.usize(15..25))
            .map(|_| "d".repeat(200))
            .collect::<Vec<_>>()
            .join("/"),
        2 => format!("{}/f.txt", "é".repeat(rng.usize(120..140))),
        _ => pick(rng, &fixed).to_string(),
    }
}

fn int(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..6) {
        0 => json!(-1),
        1 => json!(rng.i64(..)),
        2 => json!(1.5),
        3 => json!("3"),
        _ => json!(rng.u32(..40)),
    }
}

fn pos(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..8) {
        0 => json!([int(rng), int(rng)]),
        1 => json!({"line": int(rng), "character": int(rng), "extra": 1}),
        _ => json!({"line": rng.u32(..5), "character": rng.u32(..12)}),
    }
}

fn edit(rng: &mut fastrand::Rng) -> Value {
    let text = *pick(rng, &["", "X", "😀", "\n", "line\r\n", "ü"]);
    match rng.u8(..8) {
        0 => json!({"offsets": [int(rng), int(rng)], "text": text}),
        1 => json!({"offsets": {"start": 0, "end": 1, "x": 2}, "text": text}),
        2 => {
            json!({"range": {"start": pos(rng), "end": pos(rng)}, "offsets": {"start": 0, "end": 0}, "text": text})
        }
        3 => json!({"range": {"start": pos(rng), "end": pos(rng)}, "text": text}),
        _ => {
            let a = rng.u32(..20);
            json!({"offsets": {"start": a, "end": a + rng.u32(..4)}, "text": text})
        }
    }
}

/// One random request (method, params) of the agent API.
fn request(rng: &mut fastrand::Rng, versions: &[Value]) -> (String, Value) {
    let version = if versions.is_empty() || rng.u8(..4) == 0 {
        pick(
            rng,
            &[json!({}), json!({"nobody": 5}), json!("v"), json!(null)],
        )
        .clone()
    } else {
        pick(rng, versions).clone()
    };
    let m = *pick(
        rng,
        &[
            "workspace.info",
            "fs.list",
            "fs.read",
            "fs.read",
            "fs.edit",
            "fs.edit",
            "fs.create",
            "fs.create",
            "fs.delete",
            "fs.rename",
            "fs.rename",
            "fs.snapshot",
            "changes.since",
            "search",
            "anchor.create",
            "anchor.resolve",
            "branch.fork",
            "branch.create",
            "branch.list",
            "no.such.method",
        ],
    );
    let p = match m {
        "fs.list" => json!({"glob": pick(rng, &["**/*.rs", "[", "*"])}),
        "fs.read" => json!({"path": path(rng), "startLine": int(rng)}),
        "fs.edit" => {
            let n = rng.usize(0..3);
            json!({"path": path(rng), "version": version, "encoding": pick(rng, &["utf-8", "utf-16", "utf-32", "latin1"]),
                   "edits": (0..n).map(|_| edit(rng)).collect::<Vec<_>>()})
        }
        "fs.create" => json!({"path": path(rng), "text": pick(rng, &["", "new\n", "😀"])}),
        "fs.delete" => json!({"path": path(rng)}),
        "fs.rename" => json!({"from": path(rng), "to": path(rng)}),
        "fs.snapshot" => json!({"version": int(rng)}),
        "changes.since" => json!({"version": int(rng)}),
        "search" => json!({"pattern": pick(rng, &["a", "(", "😀", ".*"]), "regex": rng.bool()}),
        "anchor.create" => json!({"path": path(rng), "version": version, "position": pos(rng)}),
        "anchor.resolve" => json!({"id": int(rng)}),
        "branch.create" => json!({"branch": int(rng), "path": path(rng), "text": "b"}),
        _ => json!({}),
    };
    // Sometimes the wrong shape altogether.
    let p = match rng.u8(..12) {
        0 => json!([p]),
        1 => json!(42),
        2 => {
            let mut p = p;
            if let Some(o) = p.as_object_mut() {
                o.insert("unknownField".into(), json!(true));
            }
            p
        }
        _ => p,
    };
    (m.to_string(), p)
}

/// A malformed message (as raw text) and whether its `id` is usable (then it is `7`).
/// Over WebSocket, jsonrpsee itself answers messages it cannot read as a request with a
/// usable id (parse errors, no `method`, a wrong `jsonrpc`) with its generic texts: no hook
/// sees the raw frame there (`rpc_errors.rs`); those answers are only checked for their shape.
fn malformed(rng: &mut fastrand::Rng) -> (String, bool) {
    match rng.u8(..11) {
        0 => (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"workspace.info"}"#.into(),
            false,
        ),
        1 => (
            r#"{"jsonrpc":"2.0","id":[1],"method":"workspace.info"}"#.into(),
            false,
        ),
        2 => (
            r#"{"jsonrpc":"2.0","id":1.5,"method":"fs.list"}"#.into(),
            false,
        ),
        3 => (
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"fs.list"}"#.into(),
            false,
        ),
        4 => (r#"{"jsonrpc":"2.0","method":"fs.list"}"#.into(), false),
        5 => (r#"{"jsonrpc":"2.0","id":7}"#.into(), true),
        6 => (
            r#"{"jsonrpc":"1.0","id":7,"method":"fs.list"}"#.into(),
            true,
        ),
        7 => (
            r#"{"jsonrpc":"2.0","id":7,"method":"fs.read","params":5}"#.into(),
            true,
        ),
        8 => (
            r#"{"jsonrpc":"2.0","id":7,"method":"fs.read","params":["a.txt"]}"#.into(),
            true,
        ),
        9 => ("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\"".into(), false),
        _ => (
            r#"{"jsonrpc":"2.0","id":7,"method":"changes.subscribe"}"#.into(),
            true,
        ),
    }
}

/// Check one answer; `None` when well-formed, else what is wrong. `Some(true)` in `.1`:
/// the request was refused.
fn check_answer(v: &Value, want_id: Option<i64>, strict: bool) -> Result<bool, String> {
    if v.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(format!("no jsonrpc 2.0: {v}"));
    }
    match want_id {
        Some(id) => {
            if v.get("id") != Some(&json!(id)) {
                return Err(format!("wrong id (want {id}): {v}"));
            }
        }
        None => {
            if v.get("id") != Some(&Value::Null) {
                return Err(format!("id should be null: {v}"));
            }
        }
    }
    match (v.get("result"), v.get("error")) {
        (Some(_), None) => Ok(false),
        (None, Some(e)) => {
            let msg = e["message"].as_str().unwrap_or("");
            if !e["code"].is_i64() || msg.is_empty() {
                return Err(format!("malformed error: {v}"));
            }
            if strict && GENERIC.contains(&msg) {
                return Err(format!("error says nothing: {v}"));
            }
            if msg.len() > 2000 {
                return Err(format!("error message of {} bytes", msg.len()));
            }
            Ok(true)
        }
        _ => Err(format!("not exactly one of result/error: {v}")),
    }
}

/// `n` agent cases over HTTP and WebSocket, alternating.
pub fn agent_cases(d: &Daemon, seed: u64, n: u64, rep: &mut Report) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let http = Http::new(d);
    let mut ws = Ws::connect(d);
    let mut versions: Vec<Value> = Vec::new();
    for i in 0..n {
        let over_ws = i % 2 == 1;
        let (text, want_id, strict) = if rng.u8(..5) == 0 {
            let (t, usable) = malformed(&mut rng);
            let jsonrpsee_own = usable && !t.contains("\"params\"") || !t.ends_with('}');
            (t, usable.then_some(7), !(over_ws && jsonrpsee_own))
        } else {
            let (m, p) = request(&mut rng, &versions);
            let id = 1000 + i as i64;
            (
                json!({"jsonrpc": "2.0", "id": id, "method": m, "params": p}).to_string(),
                Some(id),
                true,
            )
        };
        let before = state(&http, &d.root);
        let answer = if over_ws {
            ws.exchange(&text)
        } else {
            http.post(text.as_bytes()).and_then(|(status, b)| {
                if status != 200 {
                    return Err(format!("HTTP {status}"));
                }
                serde_json::from_slice(&b)
                    .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&b)))
            })
        };
        rep.cases += 1;
        let short: String = text.chars().take(300).collect();
        let v = match answer {
            Ok(v) => v,
            Err(e) => {
                rep.find(format!(
                    "{}: {e}: {short}",
                    if over_ws { "ws" } else { "http" }
                ));
                if over_ws {
                    ws = Ws::connect(d);
                }
                continue;
            }
        };
        match check_answer(&v, want_id, strict) {
            Err(e) => rep.find(format!(
                "{}: {e} <- {short}",
                if over_ws { "ws" } else { "http" }
            )),
            Ok(false) => {
                rep.accepted += 1;
                if let Some(ver) = v.pointer("/result/version") {
                    if ver.is_object() && versions.len() < 64 {
                        versions.push(ver.clone());
                    }
                }
            }
            Ok(true) => {
                rep.refused += 1;
                let after = state(&http, &d.root);
                let same = before.version == after.version
                    && before.files == after.files
                    && disk_unchanged(&before, &after);
                if !same {
                    let files = |s: &State| -> Vec<String> {
                        s.files
                            .iter()
                            .map(|(p, v)| format!("{}={v}", &p[..p.len().min(40)]))
                            .collect()
                    };
                    let answer: String = v.to_string().chars().take(400).collect();
                    rep.find(format!(
                        "a refused request changed state: {short} -> {answer}: version {} -> {}, files {:?} -> {:?}, disk entries gone {:?}, new or changed {:?}",
                        before.version, after.version, files(&before), files(&after),
                        before.disk.keys().filter(|k| !after.disk.contains_key(*k)).map(|k| &k[..k.len().min(60)]).collect::<Vec<_>>(),
                        after.disk.iter().filter(|(k, v)| before.disk.get(*k) != Some(v)).map(|(k, _)| &k[..k.len().min(60)]).collect::<Vec<_>>(),
                    ));
                }
            }
        }
    }
}

// ------------------------------------------------------------------ LSP

fn lsp_frame(rng: &mut fastrand::Rng, body: &[u8]) -> Vec<u8> {
    let name = *pick(
        rng,
        &[
            "Content-Length",
            "content-length",
            "CONTENT-LENGTH",
            "Content-length",
        ],
    );
    let extra = if rng.bool() {
        "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    } else {
        ""
    };
    let mut out = format!("{name}: {}\r\n{extra}\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn lsp_uri(rng: &mut fastrand::Rng, root: &Path) -> String {
    let r = root.to_string_lossy();
    match rng.u8(..12) {
        0 => format!("file://otherhost{r}/a.txt"),
        1 => format!("file://localhost{r}/lsp-local.txt"),
        2 => format!("file://{r}/.git/COMMIT_EDITMSG"),
        3 => format!("file://{r}/build/gen.txt"),
        4 => format!("file://{r}/debug.log"),
        5 => format!("file://{r}/{}", "l".repeat(rng.usize(250..300))),
        6 => format!("file://{r}/{}/x", vec!["p".repeat(200); 22].join("/")),
        7 => "file:///tmp/outside-the-workspace.txt".into(),
        8 => "untitled:Untitled-1".into(),
        9 => format!("file://{r}/%C3%BC-new.txt"),
        10 => format!("file://{r}/gitlink/x"),
        _ => format!("file://{r}/a.txt"),
    }
}

/// A raw LSP connection with a reader thread.
struct Lsp {
    w: UnixStream,
    rx: mpsc::Receiver<Value>,
}

impl Lsp {
    fn connect(sock: &Path) -> Lsp {
        let w = UnixStream::connect(sock).expect("connect");
        let r = w.try_clone().unwrap();
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
                    if let Some((k, v)) = t.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Lsp { w, rx }
    }

    /// The response to `id` (server requests and notifications skipped; applyEdit answered).
    fn response(&mut self, id: i64) -> Result<Value, String> {
        let t0 = Instant::now();
        loop {
            let left = ANSWER.saturating_sub(t0.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(v) if v.get("method").is_some() => {
                    if let Some(sid) = v.get("id") {
                        let r = json!({"jsonrpc": "2.0", "id": sid, "result": {"applied": false}});
                        let body = serde_json::to_vec(&r).unwrap();
                        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
                        f.extend_from_slice(&body);
                        let _ = self.w.write_all(&f);
                    }
                }
                Ok(v) if v.get("id") == Some(&json!(id)) => return Ok(v),
                Ok(_) => {}
                Err(e) => return Err(format!("no response to {id}: {e}")),
            }
        }
    }
}

/// `n` LSP sessions of random messages.
pub fn lsp_sessions(d: &Daemon, seed: u64, n: u64, rep: &mut Report) {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x9e37_79b9);
    for s in 0..n {
        let mut c = Lsp::connect(&d.socket);
        let mut life = 0u8; // 0 before initialize, 1 initialized, 2 shut down
        rep.lsp_sessions += 1;
        for id in 1..=rng.usize(3..14) as i64 {
            let kind = if life == 0 && rng.u8(..3) != 0 {
                0
            } else {
                rng.u8(..10)
            };
            let (msg, is_request): (Value, bool) = match kind {
                0 => (
                    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
                        "processId": null, "rootUri": null,
                        "capabilities": {"general": {"positionEncodings": ["utf-16"]}},
                        "initializationOptions": {"name": format!("fuzz{s}")}}}),
                    true,
                ),
                1 => (
                    json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
                        "uri": lsp_uri(&mut rng, &d.root), "languageId": "plaintext", "version": 1,
                        "text": pick(&mut rng, &["alpha\nbeta\ngamma\n", "new text\n", "😀\n"])}}}),
                    false,
                ),
                2 => (
                    json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                        "textDocument": {"uri": lsp_uri(&mut rng, &d.root), "version": 2},
                        "contentChanges": [{"range": {"start": {"line": rng.u32(..4), "character": rng.u32(..8)},
                                                      "end": {"line": rng.u32(..4), "character": rng.u32(..8)}},
                                            "text": "Z"}]}}),
                    false,
                ),
                3 => (
                    json!({"jsonrpc": "2.0", "id": id, "method": pick(&mut rng, &["dist-space/info", "dist-space/compact", "dist-space/text"]),
                           "params": {"uri": lsp_uri(&mut rng, &d.root)}}),
                    true,
                ),
                4 => (
                    json!({"jsonrpc": "2.0", "id": id, "method": "shutdown"}),
                    true,
                ),
                5 => (
                    json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/hover", "params": {}}),
                    true,
                ),
                6 => (
                    json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
                    false,
                ),
                7 => (
                    json!({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": lsp_uri(&mut rng, &d.root)}}}),
                    false,
                ),
                8 => (
                    json!({"jsonrpc": "2.0", "id": id, "method": "dist-space/cursor", "params": [1, 2]}),
                    true,
                ),
                _ => (
                    json!({"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"textDocument": {"uri": lsp_uri(&mut rng, &d.root)}}}),
                    false,
                ),
            };
            let frame = lsp_frame(&mut rng, msg.to_string().as_bytes());
            rep.lsp_messages += 1;
            if c.w.write_all(&frame).is_err() {
                rep.find(format!("LSP connection closed before {msg}"));
                break;
            }
            if !is_request {
                continue;
            }
            let method = msg["method"].as_str().unwrap_or("").to_string();
            let r = match c.response(id) {
                Ok(r) => r,
                Err(e) => {
                    rep.find(format!("LSP: {e} ({method}, life {life})"));
                    break;
                }
            };
            let code = r.pointer("/error/code").and_then(Value::as_i64);
            match life {
                0 if method != "initialize" && code != Some(-32002) => rep.find(format!(
                    "LSP: `{method}` before initialize not refused with -32002: {r}"
                )),
                2 if code != Some(-32600) => rep.find(format!(
                    "LSP: `{method}` after shutdown not refused with -32600: {r}"
                )),
                _ => {}
            }
            match (life, method.as_str()) {
                (0, "initialize") if r.get("result").is_some() => life = 1,
                (1, "shutdown") => life = 2,
                _ => {}
            }
        }
        if rng.u8(..3) == 0 {
            let f = lsp_frame(&mut rng, br#"{"jsonrpc":"2.0","method":"exit"}"#);
            let _ = c.w.write_all(&f);
        }
    }
}

/// Nothing inside `.git`, ignored folders or over-long names in the workspace or on disk,
/// and the daemon answers.
pub fn check_confined(d: &Daemon, rep: &mut Report) {
    let http = Http::new(d);
    let list = http.call("fs.list", json!({}));
    let Some(files) = list["result"]["files"].as_array() else {
        rep.find(format!("fs.list failed: {list}"));
        return;
    };
    for f in files {
        let p = f["path"].as_str().unwrap_or("");
        if p.split('/').any(|c| c == ".git" || c.len() > 255)
            || p.starts_with("build/")
            || p.ends_with(".log")
            || p.len() > 4000
        {
            rep.find(format!("in the workspace: {}", &p[..p.len().min(200)]));
        }
    }
    let disk = disk_tree(&d.root);
    let start = [
        ".git/",
        ".git/objects/",
        ".git/HEAD",
        "build/",
        "build/out.txt",
    ];
    for p in disk.keys() {
        if (p.starts_with(".git/") || p.starts_with("build/") || p.ends_with(".log"))
            && !start.contains(&p.as_str())
        {
            rep.find(format!("on disk: {p}"));
        }
    }
    if !std::path::Path::new("/etc/passwd").exists() {
        rep.find("/etc/passwd is gone".into());
    }
}
