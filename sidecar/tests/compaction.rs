//! Bounded history with a real daemon: compaction by policy, "resync needed" for
//! versions older than the horizon, retention of what connected participants hold, and the
//! rewritten log surviving restarts and kill -9.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agent::Agent;
use common::{bin, Daemon, RevAgent};
use jsonrpsee::core::ClientError;
use serde_json::{json, Value};

fn workspace(history: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".dist-space")).unwrap();
    std::fs::write(dir.path().join("a.txt"), "start\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "bee\n").unwrap();
    std::fs::write(
        dir.path().join(".dist-space/config.json"),
        json!({ "history": history }).to_string(),
    )
    .unwrap();
    dir
}

/// The error code and data of a failing agent call.
fn err_data(a: &Agent, method: &str, params: Value) -> (i32, String, Value) {
    match a.call(method, params) {
        Err(ClientError::Call(e)) => (
            e.code(),
            e.message().to_string(),
            e.data()
                .map(|d| serde_json::from_str(d.get()).unwrap())
                .unwrap_or(Value::Null),
        ),
        other => panic!("{method}: expected an error, got {other:?}"),
    }
}

/// Append `n` lines to `path`, one `fs.edit` each at the version the previous one returned.
fn append_lines(a: &Agent, path: &str, n: usize, tag: &str) -> Vec<Value> {
    let r = a.ok("fs.read", json!({"path": path}));
    let mut v = r["version"].clone();
    let lines = r["totalLines"].as_u64().unwrap();
    let mut versions = Vec::new();
    for i in 0..n {
        let at = json!({"line": lines + i as u64, "character": 0});
        let r = a.ok(
            "fs.edit",
            json!({"path": path, "version": v,
                   "edits": [{"range": {"start": at, "end": at}, "text": format!("{tag} {i}\n")}]}),
        );
        v = r["version"].clone();
        versions.push(v.clone());
    }
    versions
}

fn compact(d: &Daemon) -> Value {
    let mut c = d.connect();
    c.initialize("compactor", false, &[]);
    let r = c.request("dist-space/compact", json!({}));
    r["result"].clone()
}

fn log_len(root: &Path) -> u64 {
    std::fs::metadata(root.join(".dist-space/history.log"))
        .unwrap()
        .len()
}

fn verify(root: &Path) -> String {
    let out = Command::new(bin())
        .args(["log", "--verify"])
        .arg(root)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "log --verify failed: {s}");
    s
}

#[test]
fn compaction_bounds_the_log_and_older_versions_need_a_resync() {
    let dir = workspace(json!({"keepSecs": null, "keepEvents": 300, "checkSecs": 3600}));
    let mut d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let ws_before = a.ok("workspace.info", json!({}))["version"].clone();
    let versions = append_lines(&a, "a.txt", 300, "line");
    let early = versions[5].clone();
    let late = versions[290].clone();
    let expected = a.ok("fs.read", json!({"path": "a.txt"}))["text"]
        .as_str()
        .unwrap()
        .to_string();
    let before = log_len(&d.root);

    let r = compact(&d);
    assert_eq!(r["compacted"], 1, "{r}");
    assert!(r["eventsDropped"].as_u64().unwrap() > 2000, "{r}");
    let after = log_len(&d.root);
    assert!(
        after * 4 < before,
        "the rewritten log is small: {before} -> {after} bytes"
    );
    assert_eq!(r["logAfter"].as_u64(), Some(after));

    // Older than the horizon: "resync needed", with the horizon and how to get a snapshot.
    let (code, msg, data) = err_data(&a, "fs.read", json!({"path": "a.txt", "version": early}));
    assert_eq!(code, -32060, "{msg}");
    assert!(msg.contains("resync needed"), "{msg}");
    assert_eq!(data["path"], "a.txt");
    assert!(data["horizon"].is_object() && !data["horizon"].as_object().unwrap().is_empty());
    assert_eq!(data["snapshot"]["method"], "fs.snapshot");
    let at = json!({"line": 0, "character": 0});
    let (code, _, _) = err_data(
        &a,
        "fs.edit",
        json!({"path": "a.txt", "version": early,
               "edits": [{"range": {"start": at, "end": at}, "text": "lost?"}]}),
    );
    assert_eq!(code, -32060);
    let (code, _, data) = err_data(&a, "changes.since", json!({"version": ws_before}));
    assert_eq!(code, -32060);
    assert_eq!(data["snapshot"]["method"], "fs.snapshot");
    let (code, _, _) = err_data(&a, "fs.snapshot", json!({"version": ws_before}));
    assert_eq!(code, -32060);
    // Nothing changed by the failed edit.
    assert_eq!(
        a.ok("fs.read", json!({"path": "a.txt"}))["text"],
        expected.as_str()
    );

    // Newer than the horizon: readable, and an edit made there still merges (transformed over
    // the 9 lines added since).
    let old = a.ok("fs.read", json!({"path": "a.txt", "version": late}));
    assert!(expected.starts_with(old["text"].as_str().unwrap()));
    let at = json!({"line": 1, "character": 0});
    a.ok(
        "fs.edit",
        json!({"path": "a.txt", "version": late,
               "edits": [{"range": {"start": at, "end": at}, "text": "MERGED\n"}]}),
    );
    let now = a.ok("fs.read", json!({"path": "a.txt"}))["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(now, expected.replacen("start\n", "start\nMERGED\n", 1));

    // Appends after the rewrite are durable: kill -9, restart, same text, log verifies.
    append_lines(&a, "a.txt", 5, "after");
    let text = a.ok("fs.read", json!({"path": "a.txt"}))["text"].clone();
    drop(a);
    d.kill9();
    assert!(verify(dir.path()).contains("ok:"));
    let mut d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    assert_eq!(a.ok("fs.read", json!({"path": "a.txt"}))["text"], text);
    a.ok("fs.read", json!({"path": "a.txt", "version": late}));
    let (code, _, _) = err_data(&a, "fs.read", json!({"path": "a.txt", "version": early}));
    assert_eq!(code, -32060, "the horizon survives the restart");
    d.stop();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        text.as_str().unwrap()
    );
    let out = Command::new(bin())
        .arg("log")
        .arg(dir.path())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    // The file table's "compacted" column: events replaced by the text at the horizon.
    let row: Vec<&str> = s
        .lines()
        .find(|l| l.starts_with("a.txt "))
        .unwrap_or_else(|| panic!("no a.txt row: {s}"))
        .split_whitespace()
        .collect();
    assert!(row[4].parse::<u64>().unwrap() > 2000, "{s}");
}

#[test]
fn what_connected_participants_hold_is_kept() {
    let dir = workspace(json!({"keepSecs": null, "keepEvents": 0, "checkSecs": 3600}));
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    // An editor that stops acknowledging: its changes are based on the text it opened.
    let mut ed = RevAgent::new(&d, "slow-editor", "b.txt");
    ed.pump(Duration::from_millis(200));
    // An anchor and a branch forked now.
    let r = a.ok("fs.read", json!({"path": "b.txt"}));
    let anchor = a.ok(
        "anchor.create",
        json!({"path": "b.txt", "version": r["version"], "offset": 3}),
    )["id"]
        .clone();
    let br = a.ok("branch.fork", json!({}))["branch"].clone();
    let versions = append_lines(&a, "b.txt", 50, "agent");
    assert!(!versions.is_empty());

    let r = compact(&d);
    assert!(r["heldBack"].as_u64().unwrap() >= 1, "{r}");
    // The editor's change made on its old text merges where it meant it.
    ed.edit(0..0, "EDITOR ");
    let b = d.uri("b.txt");
    let mut c = d.connect();
    c.initialize("reader", false, &[]);
    let t = common::wait_for("the editor's change", Duration::from_secs(10), || {
        let t = c.text(&b);
        t.starts_with("EDITOR bee\n").then_some(t)
    });
    assert!(t.contains("agent 49\n"), "{t}");
    // The anchor still resolves (after "bee" at offset 3, shifted by the editor's 7 chars).
    let res = a.ok("anchor.resolve", json!({"id": anchor}));
    assert_eq!(res["offset"], 10, "{res}");
    // The branch still merges.
    let at = json!({"line": 0, "character": 0});
    let bv = a.ok("branch.read", json!({"branch": br, "path": "b.txt"}))["version"].clone();
    a.ok(
        "branch.edit",
        json!({"branch": br, "path": "b.txt", "version": bv,
               "edits": [{"range": {"start": at, "end": at}, "text": "BRANCH "}]}),
    );
    a.ok("branch.merge", json!({"branch": br}));
    let t = c.text(&b);
    assert!(t.contains("BRANCH ") && t.contains("EDITOR "), "{t}");

    // Once nobody holds the old versions, the history goes.
    drop(ed);
    a.ok("anchor.delete", json!({"id": anchor}));
    std::thread::sleep(Duration::from_millis(300));
    a.ok("fs.read", json!({"path": "b.txt"}));
    let r = compact(&d);
    assert_eq!(r["compacted"], 1, "{r}");
    assert_eq!(r["heldBack"], 0, "{r}");
}

#[test]
fn a_log_over_the_limit_is_compacted_by_the_daemon_itself() {
    let dir = workspace(
        json!({"keepSecs": null, "keepEvents": 50, "compactLogBytes": 20000, "checkSecs": 1}),
    );
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    append_lines(&a, "a.txt", 400, "x");
    let max = 20000 * 3 / 2 + 8000;
    common::wait_for("an automatic compaction", Duration::from_secs(15), || {
        a.ok("fs.read", json!({"path": "a.txt"}));
        (log_len(&d.root) < 20000).then_some(())
    });
    // Keeps going: the log never grows far past the limit.
    append_lines(&a, "a.txt", 400, "y");
    std::thread::sleep(Duration::from_millis(1500));
    append_lines(&a, "a.txt", 5, "z");
    assert!(
        log_len(&d.root) < max,
        "log {} bytes, limit 20000",
        log_len(&d.root)
    );
    assert!(verify(&d.root).contains("ok:"));
}

/// kill -9 at seeded random moments while an agent edits and the daemon compacts and rewrites
/// its log about every second: every acknowledged edit survives each crash (whether it hit an
/// append, a rewrite or neither), exactly once, and the log verifies.
#[test]
fn kill9_while_compacting_loses_no_acknowledged_edit() {
    let seed: u64 = std::env::var("DS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xc0_ffee);
    eprintln!("seed {seed} (DS_CRASH_SEED to replay)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = workspace(
        json!({"keepSecs": null, "keepEvents": 100, "compactLogBytes": 3000, "checkSecs": 1}),
    );
    let mut acked: Vec<String> = Vec::new();
    let mut resyncs = 0;
    for round in 0..12 {
        let mut d = Daemon::start(dir.path());
        let a = Agent::connect(&d);
        let pid = d.pid() as i32;
        let delay = rng.u64(300..1500);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(delay));
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        });
        let mut version = a.ok("fs.read", json!({"path": "a.txt"}))["version"].clone();
        for i in 0.. {
            let m = format!("<{round}-{i}>");
            let r = a.call(
                "fs.edit",
                json!({"path": "a.txt", "version": version,
                       "edits": [{"offsets": {"start": 0, "end": 0}, "text": format!("{m}\n")}]}),
            );
            match r {
                Ok(r) => {
                    version = r["version"].clone();
                    acked.push(m);
                }
                Err(ClientError::Call(e)) if e.code() == -32060 => {
                    resyncs += 1;
                    version = a.ok("fs.read", json!({"path": "a.txt"}))["version"].clone();
                }
                Err(_) => break, // killed
            }
        }
        killer.join().unwrap();
        d.kill9();
        assert!(
            verify(dir.path()).contains("ok:"),
            "round {round}: the log verifies after the kill"
        );
    }
    let mut d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let text = a.ok("fs.read", json!({"path": "a.txt"}))["text"]
        .as_str()
        .unwrap()
        .to_string();
    d.stop();
    for m in &acked {
        assert_eq!(text.matches(m.as_str()).count(), 1, "{m} once in {text}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        text
    );
    let out = Command::new(bin())
        .args(["log", "--records"])
        .arg(dir.path())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("log rewritten"), "the daemon compacted: {s}");
    eprintln!(
        "{} acknowledged edits over 12 crashes, {resyncs} resyncs, log {} bytes",
        acked.len(),
        log_len(dir.path())
    );
    assert!(acked.len() > 100);
}
