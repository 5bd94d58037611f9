//! Daemon lifecycle with real processes: `dist-space lsp` right after a `kill -9`, the bridge
//! surviving a daemon crash (raw LSP frames, stock Neovim, Emacs eglot, our Neovim plugin), auto-started
//! daemons leaving when idle or when their folder goes, and `status` / `stop`.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{bin, frame, path_to_uri, wait_for, Client, Daemon};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(90);

/// A workspace folder with its own runtime dir (socket). Dropping it stops whatever daemon
/// runs for it (`dist-space stop`, then `kill -9` of a pid left in the info file).
struct Ws {
    root: PathBuf,
    runtime: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Ws {
    fn new(files: &[(&str, &str)], config: Option<Value>) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("ws");
        std::fs::create_dir_all(root.join(".dist-space")).unwrap();
        for (p, t) in files {
            std::fs::write(root.join(p), t).unwrap();
        }
        if let Some(c) = config {
            std::fs::write(root.join(".dist-space/config.json"), c.to_string()).unwrap();
        }
        Ws {
            root,
            runtime: tempfile::tempdir().unwrap(),
            _dir: dir,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("XDG_RUNTIME_DIR", self.runtime.path());
        c
    }

    /// `dist-space status --json`: exit code and output.
    fn status(&self) -> (i32, Value) {
        self.status_of(&self.root)
    }

    fn status_of(&self, dir: &Path) -> (i32, Value) {
        let out = self
            .cmd()
            .args(["status", "--json"])
            .arg(dir)
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), v)
    }

    fn pid(&self) -> Option<u32> {
        common::read_info(&self.root).and_then(|i| i["pid"].as_u64().map(|p| p as u32))
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(
            common::read_info(&self.root).expect("info file")["socket"]
                .as_str()
                .unwrap(),
        )
    }

    /// The pid of a daemon that answers (a new one after a crash).
    fn running_pid(&self, not: Option<u32>) -> u32 {
        wait_for("a running daemon", LONG, || {
            let (code, st) = self.status();
            let pid = st["pid"].as_u64().map(|p| p as u32);
            (code == 0 && pid.is_some() && pid != not).then(|| pid.unwrap())
        })
    }

    fn lsp(&self) -> Lsp {
        Lsp::spawn(self, &self.root)
    }

    fn uri(&self, rel: &str) -> String {
        path_to_uri(&self.root.join(rel))
    }

    /// The daemon's text of `rel`, asked over a connection of its own (`None`: no daemon).
    fn daemon_text(&self, rel: &str) -> Option<String> {
        let info = common::read_info(&self.root)?;
        let sock = PathBuf::from(info["socket"].as_str()?);
        std::os::unix::net::UnixStream::connect(&sock).ok()?;
        let mut c = Client::connect(&sock);
        c.initialize("probe", false, &["utf-16"]);
        let r = c.request("dist-space/text", json!({"uri": self.uri(rel)}));
        r["result"]["text"].as_str().map(str::to_owned)
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        if self.root.exists() {
            let _ = self
                .cmd()
                .args(["stop", "--timeout", "30"])
                .arg(&self.root)
                .stdout(Stdio::null())
                .status();
        }
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill of a pid this test's workspace recorded.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

fn kill9(pid: u32) {
    // SAFETY: kill of the daemon pid read from the info file.
    assert_eq!(
        unsafe { libc::kill(pid as i32, libc::SIGKILL) },
        0,
        "kill -9 {pid}"
    );
}

fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A raw LSP client of `dist-space lsp` over its stdio: frames written to its stdin, frames read
/// from its stdout (header names in any case).
struct Lsp {
    proc: Proc,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Every message received, in order.
    seen: Vec<Value>,
    backlog: VecDeque<Value>,
}

fn read_frames(out: impl Read, tx: mpsc::Sender<Value>) {
    let mut r = BufReader::new(out);
    loop {
        let mut len = None;
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
                if k.trim().eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().ok();
                }
            }
        }
        let mut body = vec![0; len.expect("Content-Length")];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
            return;
        }
    }
}

impl Lsp {
    fn spawn(ws: &Ws, cwd: &Path) -> Lsp {
        let mut child = ws
            .cmd()
            .arg("lsp")
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dist-space lsp");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || read_frames(out, tx));
        Lsp {
            proc: Proc(child),
            stdin,
            rx,
            next_id: 1,
            seen: Vec::new(),
            backlog: VecDeque::new(),
        }
    }

    fn send(&mut self, v: &Value) {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(&frame(v)).unwrap();
        w.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    fn wait_response(&mut self, id: i64) -> Value {
        let t0 = Instant::now();
        loop {
            let left = LONG.saturating_sub(t0.elapsed());
            let v = self
                .rx
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no response to request {id}: {e}"));
            self.seen.push(v.clone());
            if v.get("method").is_none() && v["id"].as_i64() == Some(id) {
                return v;
            }
            self.backlog.push_back(v);
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.wait_response(id)
    }

    /// A plain client: no revision protocol, no versioned `applyEdit`; UTF-16 positions.
    fn initialize(&mut self, name: &str) -> Value {
        let r = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": {"general": {"positionEncodings": ["utf-16"]}},
                "initializationOptions": {"name": name},
            }),
        );
        self.notify("initialized", json!({}));
        r
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for("dist-space lsp to exit", LONG, || {
            self.proc.0.try_wait().unwrap()
        })
    }
}

#[test]
fn lsp_connects_right_after_a_kill9_every_time() {
    let ws = Ws::new(&[("a.txt", "hello\n")], None);
    let mut last = None;
    for round in 0..20 {
        let mut c = ws.lsp();
        let r = c.initialize("Kim");
        assert!(
            r["result"]["capabilities"].is_object(),
            "round {round}: {r}"
        );
        let pid = ws.running_pid(None);
        assert_ne!(
            Some(pid),
            last,
            "round {round}: a new daemon after the kill"
        );
        last = Some(pid);
        if round % 2 == 0 {
            // The editor has gone already; the next one starts right after the kill.
            drop(c);
            kill9(pid);
        } else {
            // Killed under an attached editor (whose bridge starts reconnecting), then a new
            // editor starts at once.
            kill9(pid);
            drop(c);
        }
    }
}

#[test]
fn bridge_replays_the_session_after_a_daemon_crash() {
    let ws = Ws::new(&[("a.txt", "😀 start\n")], Some(json!({"idleSecs": null})));
    let uri = ws.uri("a.txt");
    let mut c = ws.lsp();
    let init = c.initialize("Raw");
    assert_eq!(
        init["result"]["capabilities"]["positionEncoding"], "utf-16",
        "{init}"
    );
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "text", "version": 1, "text": "😀 start\n"}}),
    );
    // Markers typed right after the emoji (character 2 in UTF-16), each before the last.
    let mut t = Typist {
        uri: uri.clone(),
        version: 1,
        markers: Vec::new(),
    };
    for i in 1..=5 {
        t.type_marker(&mut c, format!("<A:{i}>"));
    }
    let expect = |ms: &[String]| format!("😀{} start\n", ms.concat());
    let before = expect(&t.markers);
    wait_for("the daemon to have the typing", LONG, || {
        let r = c.request("dist-space/text", json!({"uri": uri}));
        (r["result"]["text"] == before.as_str()).then_some(())
    });
    let old = ws.running_pid(None);

    for crash in 0..3 {
        kill9(if crash == 0 {
            old
        } else {
            ws.running_pid(None)
        });
        // Typing during the outage, and a request whose answer may come from no daemon.
        for i in 1..=5 {
            t.type_marker(&mut c, format!("<B{crash}:{i}>"));
        }
        let id = c.send_request("dist-space/text", json!({"uri": uri}));
        let r = c.wait_response(id);
        assert!(
            r.get("result").is_some() || r["error"]["code"] == -32803,
            "answered or failed cleanly: {r}"
        );
        let want = expect(&t.markers);
        // The bridge reconnects (starting a new daemon) and re-opens the buffer.
        let got = wait_for("the restarted daemon to have every marker", LONG, || {
            let r = c.request("dist-space/text", json!({"uri": uri}));
            r["result"]["text"]
                .as_str()
                .map(str::to_owned)
                .filter(|t| *t == want)
        });
        assert_eq!(got, want);
        assert_eq!(ws.daemon_text("a.txt").as_deref(), Some(want.as_str()));
        // Typing after the reconnect goes on as usual.
        t.type_marker(&mut c, format!("<C{crash}:1>"));
        let want = expect(&t.markers);
        wait_for("typing after the reconnect", LONG, || {
            let r = c.request("dist-space/text", json!({"uri": uri}));
            (r["result"]["text"] == want.as_str()).then_some(())
        });
        wait_for("the disk to have it", LONG, || {
            (std::fs::read_to_string(ws.root.join("a.txt")).ok()? == want).then_some(())
        });
    }
    // The replayed initialize was answered to the bridge, not to the client: one answer to id 1.
    let answers = c
        .seen
        .iter()
        .chain(c.backlog.iter())
        .filter(|v| v.get("method").is_none() && v["id"] == 1)
        .count();
    assert_eq!(answers, 1);
    assert!(
        c.proc.0.try_wait().unwrap().is_none(),
        "the bridge is still running"
    );
    // A clean stop ends the bridge (the editor sees its server exit, as with any server).
    let out = ws.cmd().arg("stop").arg(&ws.root).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(c.wait_exit().success());
}

/// Types markers at line 0, character 2 (after the emoji), each before the previous one.
struct Typist {
    uri: String,
    version: i64,
    markers: Vec<String>,
}

impl Typist {
    fn type_marker(&mut self, c: &mut Lsp, m: String) {
        self.version += 1;
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": self.uri, "version": self.version},
                   "contentChanges": [{"range": {"start": {"line": 0, "character": 2},
                                                 "end": {"line": 0, "character": 2}}, "text": m}]}),
        );
        self.markers.insert(0, m);
    }
}

#[test]
fn auto_started_daemon_exits_after_its_idle_time_and_a_hand_run_one_stays() {
    let cfg = json!({"idleSecs": 2});
    let ws = Ws::new(&[("a.txt", "one\n")], Some(cfg.clone()));
    let hand = Ws::new(&[("b.txt", "two\n")], Some(cfg));
    let mut manual = Daemon::start_in(&hand.root, tempfile::tempdir().unwrap());
    let uri = ws.uri("a.txt");
    let mut c = ws.lsp();
    c.initialize("Ida");
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "text", "version": 1, "text": "one\n"}}),
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 0, "character": 3},
                                             "end": {"line": 0, "character": 3}}, "text": "!"}]}),
    );
    let r = c.request("dist-space/text", json!({"uri": uri}));
    assert_eq!(r["result"]["text"], "one!\n");
    let (code, st) = ws.status();
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["editors"], 1, "{st}");
    assert_eq!(st["auto"], true, "{st}");
    assert_eq!(st["idleSecs"], 2, "{st}");
    let pid = st["pid"].as_u64().unwrap() as u32;
    // While an editor is connected it stays, however long.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(ws.status().0, 0, "stays while an editor is connected");
    c.close_stdin();
    assert!(c.wait_exit().success());
    wait_for("the idle daemon to exit", LONG, || {
        (!running(pid)).then_some(())
    });
    assert_eq!(ws.status().0, 3);
    assert!(common::read_info(&ws.root).is_none(), "info file removed");
    assert_eq!(
        std::fs::read_to_string(ws.root.join("a.txt")).unwrap(),
        "one!\n"
    );
    // The daemon run by hand with the same setting is still there.
    assert!(manual.child.as_mut().unwrap().try_wait().unwrap().is_none());
    manual.stop();
}

#[test]
fn auto_started_daemon_exits_when_its_folder_is_removed_or_moved() {
    for moved in [false, true] {
        let ws = Ws::new(&[("a.txt", "one\n")], Some(json!({"idleSecs": null})));
        let mut c = ws.lsp();
        c.initialize("Ola");
        let pid = ws.running_pid(None);
        let sock = ws.socket();
        if moved {
            c.close_stdin();
            c.wait_exit();
        }
        assert!(running(pid));
        if moved {
            let to = ws.root.with_file_name("elsewhere");
            std::fs::rename(&ws.root, &to).unwrap();
            wait_for("the daemon to exit after the move", LONG, || {
                (!running(pid)).then_some(())
            });
            assert_eq!(std::fs::read_to_string(to.join("a.txt")).unwrap(), "one\n");
        } else {
            // An editor still attached, with an edit not yet written back.
            let uri = ws.uri("a.txt");
            c.notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": uri, "languageId": "text", "version": 1, "text": "one\n"}}),
            );
            c.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": uri, "version": 2},
                       "contentChanges": [{"text": "two\n"}]}),
            );
            // (Retried: a write-back in progress may add a file while the tree goes.)
            wait_for("the folder to be removed", LONG, || {
                std::fs::remove_dir_all(&ws.root).ok()
            });
            wait_for("the daemon to exit after the removal", LONG, || {
                (!running(pid)).then_some(())
            });
            assert!(!ws.root.exists(), "nothing re-created");
            // Its editor's bridge ends (the daemon stopped; nothing to restart it in).
            c.wait_exit();
        }
        assert!(!sock.exists(), "socket removed");
    }
}

#[test]
fn status_and_stop() {
    let ws = Ws::new(&[("a.txt", "one\n")], None);
    let (code, st) = ws.status();
    assert_eq!(code, 3, "not running: {st}");
    let out = ws.cmd().arg("stop").arg(&ws.root).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));

    let mut d = Daemon::start_in(&ws.root, tempfile::tempdir_in(ws.runtime.path()).unwrap());
    // The harness gives the daemon its own runtime dir: talk to it there.
    let rt = d.runtime.path().to_path_buf();
    let status = |dir: &Path| {
        let out = Command::new(bin())
            .env("XDG_RUNTIME_DIR", &rt)
            .args(["status", "--json"])
            .arg(dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    let (code, st) = status(&ws.root);
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["pid"], d.pid(), "{st}");
    assert_eq!(
        (st["editors"].clone(), st["agents"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(st["auto"], false);
    assert_eq!(st["idleSecs"], Value::Null, "a daemon run by hand stays");
    // From a subfolder too, in plain text.
    std::fs::create_dir(ws.root.join("sub")).unwrap();
    let out = Command::new(bin())
        .env("XDG_RUNTIME_DIR", &rt)
        .arg("status")
        .current_dir(ws.root.join("sub"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("pid:     {}", d.pid())), "{text}");

    let mut editor = d.connect();
    editor.initialize("Eve", false, &["utf-16"]);
    let agent = agent::Agent::connect(&d);
    let (_, st) = status(&ws.root);
    assert_eq!(
        (st["editors"].clone(), st["agents"].clone()),
        (json!(1), json!(1)),
        "{st}"
    );
    // An edit right before the stop is flushed by it.
    let r = agent.ok("fs.read", json!({"path": "a.txt"}));
    agent.ok(
        "fs.edit",
        json!({"path": "a.txt", "version": r["version"], "edits": [{"offsets": {"start": 0, "end": 0}, "text": "zero "}]}),
    );
    let out = Command::new(bin())
        .env("XDG_RUNTIME_DIR", &rt)
        .arg("stop")
        .arg(&ws.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // `stop` returns once the process has exited.
    let child = d.child.as_mut().unwrap();
    let exited = wait_for(
        "the stopped daemon's exit status",
        Duration::from_secs(5),
        || child.try_wait().unwrap(),
    );
    assert!(exited.success());
    d.child = None;
    assert_eq!(
        std::fs::read_to_string(ws.root.join("a.txt")).unwrap(),
        "zero one\n"
    );
    assert!(common::read_info(&ws.root).is_none());
    assert!(!d.socket.exists());
    assert_eq!(status(&ws.root).0, 3);
}

/// Stock Neovim (no plugin) with `dist-space lsp` as its language server types markers while
/// the daemon is killed with -9 three times; the bridge restarts it and replays the session.
#[test]
fn kill9_with_stock_neovim_attached() {
    let Some(nvim) = common::nvim() else { return };
    let lines: String = (0..20).map(|i| format!("line {i}\n")).collect();
    let ws = Ws::new(&[("a.txt", &lines)], None);
    let out = tempfile::tempdir().unwrap();
    let mut ed = Proc(
        Command::new(&nvim)
            .args(["--headless", "-n", "--clean", "-i", "NONE", "-l"])
            .arg(common::script("stock_crash.lua"))
            .current_dir(&ws.root)
            .env("XDG_RUNTIME_DIR", ws.runtime.path())
            .env("DS_BIN", bin())
            .env("DS_FILE", ws.root.join("a.txt"))
            .env("DS_OUT", out.path())
            .env("DS_SEED", "7")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn nvim"),
    );
    crash_typing(&ws, &mut ed, out.path());
}

/// Our Neovim plugin types markers while the daemon is killed with -9 three times; it
/// reconnects by itself (starting the daemon through `dist-space lsp`).
#[test]
fn kill9_with_the_neovim_plugin_attached() {
    let Some(nvim) = common::nvim() else { return };
    let lines: String = (0..20).map(|i| format!("line {i}\n")).collect();
    let ws = Ws::new(&[("a.txt", &lines)], None);
    let out = tempfile::tempdir().unwrap();
    let mut ed = Proc(
        Command::new(&nvim)
            .args(["--headless", "-n", "--clean", "-i", "NONE", "-l"])
            .arg(common::script("crash.lua"))
            .current_dir(&ws.root)
            .env("XDG_RUNTIME_DIR", ws.runtime.path())
            .env("DS_BIN", bin())
            .env("DS_PLUGIN", common::plugin_dir())
            .env("DS_FILE", ws.root.join("a.txt"))
            .env("DS_OUT", out.path())
            .env("DS_SEED", "7")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn nvim"),
    );
    crash_typing(&ws, &mut ed, out.path());
}

/// The `emacs` to use, or `None` (the test then skips loudly, except in CI where it fails).
fn emacs() -> Option<PathBuf> {
    let ok = Command::new("emacs")
        .args(["--batch", "-q", "--eval", "(require 'eglot)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return Some(PathBuf::from("emacs"));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("emacs with eglot not found but CI=true (Debian: emacs-nox elpa-eglot)");
    }
    eprintln!("## SKIPPED: emacs with eglot not found (Debian: emacs-nox elpa-eglot)");
    None
}

/// Emacs eglot (Debian `elpa-eglot`, default settings) with `dist-space lsp` types markers
/// while the daemon is killed with -9 three times: eglot never sees its server go.
#[test]
fn kill9_with_eglot_attached() {
    let Some(emacs) = emacs() else { return };
    let lines: String = (0..20).map(|i| format!("line {i}\n")).collect();
    let ws = Ws::new(&[("a.txt", &lines)], None);
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emacs/eglot_crash.el");
    let mut ed = Proc(
        Command::new(&emacs)
            .args(["--batch", "-q", "-l"])
            .arg(script)
            .current_dir(&ws.root)
            .env("XDG_RUNTIME_DIR", ws.runtime.path())
            .env("DS_BIN", bin())
            .env("DS_FILE", ws.root.join("a.txt"))
            .env("DS_OUT", out.path())
            .env("DS_SEED", "7")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn emacs"),
    );
    crash_typing(&ws, &mut ed, out.path());
}

/// Drive a crash script (`DS_OUT/ready`, `stop`, `markers`, `buf`, `quit`): kill the daemon
/// three times while the editor types, then check that the editor is still connected and that
/// the daemon, the disk and the buffer hold every marker exactly once.
fn crash_typing(ws: &Ws, ed: &mut Proc, out: &Path) {
    let exists = |n: &str| out.join(n).exists();
    wait_for("the editor to attach", LONG, || {
        if let Some(s) = ed.0.try_wait().unwrap() {
            panic!("the editor exited: {s}");
        }
        exists("ready").then_some(())
    });
    let mut pid = ws.running_pid(None);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        kill9(pid);
        std::thread::sleep(Duration::from_millis(300));
        pid = ws.running_pid(Some(pid));
    }
    std::thread::sleep(Duration::from_millis(400));
    std::fs::write(out.join("stop"), "").unwrap();
    let markers: Vec<String> = wait_for("the typed markers", LONG, || {
        std::fs::read_to_string(out.join("markers")).ok()
    })
    .lines()
    .map(str::to_owned)
    .collect();
    assert!(markers.len() > 20, "typed {}", markers.len());
    let mut last = (String::new(), None);
    let t0 = Instant::now();
    let text = wait_for("the daemon to hold exactly the buffer", LONG, || {
        if t0.elapsed() > LONG - Duration::from_secs(1) {
            panic!("buffer and daemon differ: {last:?}");
        }
        let buf = std::fs::read_to_string(out.join("buf")).ok()?;
        // The stock script says whether its client is attached; the plugin's reports only
        // once it is.
        let (buf, attached) = match buf.strip_prefix("detached\n") {
            Some(b) => (b.to_string(), false),
            None => (
                buf.strip_prefix("attached\n").unwrap_or(&buf).to_string(),
                true,
            ),
        };
        let daemon = ws.daemon_text("a.txt");
        last = (
            format!("attached: {attached}, buffer: {buf:?}"),
            daemon.clone(),
        );
        let daemon = daemon?;
        // Neovim's lines cannot tell whether the text ends with a newline.
        (attached && daemon.trim_end_matches('\n') == buf.trim_end_matches('\n')).then_some(daemon)
    });
    for m in &markers {
        assert_eq!(text.matches(m.as_str()).count(), 1, "{m} once in {text:?}");
    }
    wait_for("the disk to hold it", LONG, || {
        (std::fs::read_to_string(ws.root.join("a.txt")).ok()? == text).then_some(())
    });
    std::fs::write(out.join("quit"), "").unwrap();
    wait_for("the editor to quit", LONG, || ed.0.try_wait().unwrap());
}
