//! `dist-space lsp`: what an editor spawns. Finds the workspace (the nearest ancestor with a
//! `.dist-space/` folder, else the given root or the current directory), connects to its
//! daemon's socket (starting the daemon when nobody answers, `crate::start`) and relays LSP
//! messages between stdio and the socket, frame by frame (`frame.rs`).
//!
//! The bridge outlives a daemon crash, so that a stock LSP client (which drops a server whose
//! stdio closes and never restarts it) keeps working: when the daemon connection breaks while
//! its info file is still there (a crash; a daemon that stops cleanly removes it first), the
//! bridge answers the client's requests in flight with an error, forgets the daemon's requests
//! in flight (their late answers are dropped), starts or finds the new daemon, replays the
//! client's `initialize` (swallowing the answer: the client has one) and `initialized`, and
//! re-opens every open document with the buffer's current text (`docs.rs` follows
//! didOpen/didChange/didClose in the negotiated position encoding), so what was typed during
//! the outage reaches the new daemon as the editor's edit (reconciled by `reopen.rs`).
//! Clients of the revision protocol (our plugins) reconnect by themselves with their own
//! reopen report: for them the bridge ends with the daemon connection, as before.

mod docs;
pub mod frame;

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde_json::{json, Value};
use vfs::pos::PositionEncoding;

use crate::paths;
use frame::Frame;

#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// The editor's workspace root (default: the current directory). The daemon serves the
    /// nearest ancestor holding a `.dist-space/` folder, or this folder itself.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Do not start a daemon when none is running.
    #[arg(long)]
    pub no_start: bool,
}

/// Longest message relayed (as the daemon's own frame limit).
const MAX_BODY: usize = crate::proto::MAX_MESSAGE_BYTES;
/// Connection attempts (each may start a daemon and wait for it) before the bridge gives up.
const RECONNECT_ROUNDS: u32 = 3;
/// LSP `RequestFailed`.
const REQUEST_FAILED: i64 = -32803;

enum Ev {
    Client(Vec<u8>),
    ClientEnd,
    Daemon(u64, Vec<u8>),
    DaemonEnd(u64),
    Connected(UnixStream),
    ConnectFailed(String),
}

enum Phase {
    /// Messages flow both ways.
    Live,
    /// A new daemon was sent the replayed `initialize` (this id); the client's messages wait.
    Replaying(Value),
    /// No daemon connection; one is being made.
    Down,
}

struct Init {
    id: Value,
    params: Value,
    answered: bool,
}

struct Bridge {
    root: PathBuf,
    start: bool,
    tx: mpsc::Sender<Ev>,
    out: BufWriter<std::io::Stdout>,
    sock: Option<UnixStream>,
    session: u64,
    phase: Phase,
    init: Option<Init>,
    revision: bool,
    docs: docs::Docs,
    /// Client requests the daemon has not answered (key: the id's JSON).
    pending: HashMap<String, Value>,
    /// Daemon requests relayed to the client under the bridge's own ids: bridge id -> (session,
    /// daemon id). An answer from an older session is dropped.
    server_reqs: HashMap<i64, (u64, Value)>,
    next_server_id: i64,
    /// Client messages held while a replay is answered.
    held: Vec<Vec<u8>>,
    shutdown: Option<Value>,
    client_ended: bool,
}

fn key(id: &Value) -> String {
    id.to_string()
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("dist-space lsp: {msg}");
}

fn read_loop(mut r: impl std::io::BufRead, on_body: impl Fn(Vec<u8>) -> bool, what: &str) {
    loop {
        match frame::read_frame(&mut r, MAX_BODY) {
            Ok(Some(Frame::Body(b))) => {
                if !on_body(b) {
                    return;
                }
            }
            Ok(Some(Frame::Skipped(why))) => log(format_args!("{what}: frame dropped: {why}")),
            Ok(None) => return,
            Err(e) => {
                // A crashed daemon resets the connection: that is an end, not news.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) {
                    log(format_args!("{what}: {e}"));
                }
                return;
            }
        }
    }
}

impl Bridge {
    fn send_client(&mut self, body: &[u8]) {
        if frame::write_frame(&mut self.out, body).is_err() {
            // The editor is gone.
            std::process::exit(0);
        }
    }

    fn send_client_json(&mut self, v: &Value) {
        let b = serde_json::to_vec(v).expect("json");
        self.send_client(&b);
    }

    fn send_daemon(&mut self, body: &[u8]) {
        if let Some(s) = self.sock.as_mut() {
            // A failed write shows up as the end of the daemon's side too.
            let _ = frame::write_frame(s, body);
        }
    }

    fn send_daemon_json(&mut self, v: &Value) {
        let b = serde_json::to_vec(v).expect("json");
        self.send_daemon(&b);
    }

    fn attach(&mut self, stream: UnixStream) -> std::io::Result<()> {
        self.session += 1;
        let session = self.session;
        let rd = stream.try_clone()?;
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("dist-space-lsp-down".into())
            .spawn(move || {
                read_loop(
                    BufReader::with_capacity(64 * 1024, rd),
                    |b| tx.send(Ev::Daemon(session, b)).is_ok(),
                    "daemon",
                );
                let _ = tx.send(Ev::DaemonEnd(session));
            })?;
        self.sock = Some(stream);
        Ok(())
    }

    fn finish(&mut self) -> ! {
        let _ = self.out.flush();
        std::process::exit(0);
    }

    fn on_client(&mut self, body: Vec<u8>) {
        if self.revision {
            // Nothing to restore for these clients (see the module doc): relay as is.
            self.send_daemon(&body);
            return;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
            // Not JSON: the daemon answers for itself.
            if matches!(self.phase, Phase::Live) {
                self.send_daemon(&body);
            }
            return;
        };
        let method = msg.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = msg.get("id").cloned();
        match (method.as_deref(), id) {
            (Some(m), Some(id)) => self.client_request(m, id, &msg, body),
            (Some(m), None) => self.client_notification(m, &msg, body),
            (None, Some(id)) => self.client_response(id, msg),
            (None, None) => {
                if matches!(self.phase, Phase::Live) {
                    self.send_daemon(&body);
                }
            }
        }
    }

    fn client_request(&mut self, method: &str, id: Value, msg: &Value, body: Vec<u8>) {
        if method == "initialize" && self.init.is_none() {
            let params = msg.get("params").cloned().unwrap_or(Value::Null);
            self.revision = params
                .pointer("/initializationOptions/revisionProtocol")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            self.init = Some(Init {
                id: id.clone(),
                params,
                answered: false,
            });
        }
        if method == "shutdown" {
            self.shutdown = Some(id.clone());
        }
        match self.phase {
            Phase::Live => {
                self.pending.insert(key(&id), id);
                self.send_daemon(&body);
            }
            Phase::Replaying(_) => self.held.push(body),
            // The first initialize goes to the next daemon (`on_connected`).
            Phase::Down
                if self
                    .init
                    .as_ref()
                    .is_some_and(|i| !i.answered && i.id == id) => {}
            Phase::Down => {
                if method == "shutdown" {
                    self.send_client_json(&json!({"jsonrpc": "2.0", "id": id, "result": null}));
                } else {
                    self.fail_request(id);
                }
            }
        }
    }

    fn fail_request(&mut self, id: Value) {
        self.send_client_json(&json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": REQUEST_FAILED,
            "message": "the dist-space daemon connection was lost; reconnecting",
        }}));
    }

    fn client_notification(&mut self, method: &str, msg: &Value, body: Vec<u8>) {
        let doc = matches!(
            method,
            "textDocument/didOpen" | "textDocument/didChange" | "textDocument/didClose"
        );
        if doc {
            if let Err(e) = self
                .docs
                .apply(method, msg.get("params").unwrap_or(&Value::Null))
            {
                log(format_args!("{method} not followed: {e}"));
            }
        }
        match self.phase {
            Phase::Live => self.send_daemon(&body),
            // The replay re-opens documents with their text at that moment.
            Phase::Replaying(_) if !doc => self.held.push(body),
            Phase::Replaying(_) => {}
            Phase::Down if method == "exit" => self.finish(),
            Phase::Down => {}
        }
    }

    fn client_response(&mut self, id: Value, mut msg: Value) {
        let Some(bid) = id.as_i64() else { return };
        let Some((session, daemon_id)) = self.server_reqs.remove(&bid) else {
            return;
        };
        if session == self.session && matches!(self.phase, Phase::Live) {
            msg["id"] = daemon_id;
            self.send_daemon_json(&msg);
        }
        // Otherwise it answers a request of a daemon that is gone: dropped.
    }

    fn on_daemon(&mut self, session: u64, body: Vec<u8>) {
        if session != self.session {
            return;
        }
        if self.revision {
            self.send_client(&body);
            return;
        }
        let Ok(mut msg) = serde_json::from_slice::<Value>(&body) else {
            self.send_client(&body);
            return;
        };
        let method = msg.get("method").and_then(Value::as_str).is_some();
        let id = msg.get("id").cloned();
        match (method, id) {
            (true, Some(id)) => {
                // A request to the client: under a bridge id, unique across daemon runs.
                self.next_server_id += 1;
                let bid = self.next_server_id;
                self.server_reqs.insert(bid, (session, id));
                msg["id"] = json!(bid);
                self.send_client_json(&msg);
            }
            (false, Some(id)) => {
                if let Phase::Replaying(rid) = &self.phase {
                    if *rid == id {
                        self.replayed(&msg);
                        return;
                    }
                }
                self.pending.remove(&key(&id));
                if let Some(init) = self.init.as_mut() {
                    if init.id == id && !init.answered {
                        init.answered = true;
                        self.docs.enc = msg
                            .pointer("/result/capabilities/positionEncoding")
                            .and_then(Value::as_str)
                            .and_then(PositionEncoding::from_lsp_name)
                            .unwrap_or_default();
                    }
                }
                self.send_client(&body);
            }
            _ => self.send_client(&body),
        }
    }

    /// The new daemon answered the replayed `initialize`: finish the replay, then let the
    /// held messages through.
    fn replayed(&mut self, msg: &Value) {
        if msg.get("error").is_some() {
            log(format_args!(
                "the restarted daemon refused initialize: {msg}"
            ));
            self.finish();
        }
        self.send_daemon_json(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
        let opens: Vec<Value> = self.docs.reopen_params().collect();
        let n = opens.len();
        for p in opens {
            self.send_daemon_json(
                &json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": p}),
            );
        }
        log(format_args!(
            "reconnected to the daemon; {n} document(s) re-opened"
        ));
        self.phase = Phase::Live;
        for b in std::mem::take(&mut self.held) {
            self.on_client(b);
        }
    }

    fn on_daemon_end(&mut self, session: u64) {
        if session != self.session {
            return;
        }
        self.sock = None;
        let stopped = paths::read_info(&self.root).is_none();
        if self.revision || self.client_ended || self.shutdown.is_some() || stopped {
            // Our plugins reconnect by themselves; a client that is leaving, or a daemon that
            // stopped on purpose (it removes its info file first), ends the bridge.
            if let Some(id) = self.shutdown.take() {
                if self.pending.contains_key(&key(&id)) {
                    self.send_client_json(&json!({"jsonrpc": "2.0", "id": id, "result": null}));
                }
            }
            self.finish();
        }
        log("the daemon connection was lost; reconnecting");
        let init_pending = self
            .init
            .as_ref()
            .filter(|i| !i.answered)
            .map(|i| key(&i.id));
        let lost: Vec<Value> = self
            .pending
            .drain()
            .filter(|(k, _)| Some(k) != init_pending.as_ref())
            .map(|(_, v)| v)
            .collect();
        for id in lost {
            self.fail_request(id);
        }
        if let Some(k) = init_pending {
            let id = self.init.as_ref().map(|i| i.id.clone()).expect("init");
            self.pending.insert(k, id);
        }
        self.server_reqs.clear();
        self.phase = Phase::Down;
        let (root, start, tx) = (self.root.clone(), self.start, self.tx.clone());
        std::thread::spawn(move || {
            let mut last = String::new();
            for _ in 0..RECONNECT_ROUNDS {
                match connect_blocking(&root, start) {
                    Ok(s) => {
                        let _ = tx.send(Ev::Connected(s));
                        return;
                    }
                    Err(e) => last = e,
                }
                if !root.is_dir() {
                    break;
                }
            }
            let _ = tx.send(Ev::ConnectFailed(last));
        });
    }

    fn on_connected(&mut self, stream: UnixStream) {
        if let Err(e) = self.attach(stream) {
            log(format_args!("cannot use the daemon connection: {e}"));
            self.finish();
        }
        match &self.init {
            None => self.phase = Phase::Live,
            Some(init) if !init.answered => {
                // The client's own initialize is unanswered: send it (again) as it was.
                let m = json!({"jsonrpc": "2.0", "id": init.id, "method": "initialize", "params": init.params});
                self.pending.insert(key(&init.id), init.id.clone());
                self.phase = Phase::Live;
                self.send_daemon_json(&m);
            }
            Some(init) => {
                let rid = json!(format!("dist-space-bridge-replay-{}", self.session));
                let m = json!({"jsonrpc": "2.0", "id": rid, "method": "initialize", "params": init.params});
                self.phase = Phase::Replaying(rid);
                self.send_daemon_json(&m);
            }
        }
    }

    fn on_client_end(&mut self) {
        self.client_ended = true;
        match self.sock.as_ref() {
            // Let the daemon see the disconnect; the bridge ends when it closes its side.
            Some(s) if matches!(self.phase, Phase::Live) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            _ => self.finish(),
        }
    }
}

fn connect_blocking(root: &Path, start: bool) -> Result<UnixStream, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let s = rt.block_on(crate::start::connect_or_start(root, start))?;
    let s = s.into_std().map_err(|e| e.to_string())?;
    s.set_nonblocking(false).map_err(|e| e.to_string())?;
    Ok(s)
}

pub fn run(args: LspArgs) -> Result<(), String> {
    let start = match args.root {
        Some(r) => r,
        None => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let root = paths::find_root(&start).map_err(|e| format!("{}: {e}", start.display()))?;
    let stream = connect_blocking(&root, !args.no_start)?;
    let (tx, rx) = mpsc::channel();
    let mut b = Bridge {
        root,
        start: !args.no_start,
        tx: tx.clone(),
        out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        sock: None,
        session: 0,
        phase: Phase::Live,
        init: None,
        revision: false,
        docs: docs::Docs::default(),
        pending: HashMap::new(),
        server_reqs: HashMap::new(),
        next_server_id: 0,
        held: Vec::new(),
        shutdown: None,
        client_ended: false,
    };
    b.attach(stream).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("dist-space-lsp-up".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            read_loop(
                BufReader::with_capacity(64 * 1024, stdin.lock()),
                |body| tx.send(Ev::Client(body)).is_ok(),
                "editor",
            );
            let _ = tx.send(Ev::ClientEnd);
        })
        .map_err(|e| e.to_string())?;
    for ev in rx {
        match ev {
            Ev::Client(body) => b.on_client(body),
            Ev::ClientEnd => b.on_client_end(),
            Ev::Daemon(s, body) => b.on_daemon(s, body),
            Ev::DaemonEnd(s) => b.on_daemon_end(s),
            Ev::Connected(s) => b.on_connected(s),
            Ev::ConnectFailed(e) => {
                log(format_args!("giving up: {e}"));
                b.finish();
            }
        }
    }
    b.finish()
}
