//! Stock LSP clients against a real daemon, as real processes: Neovim's built-in client (no
//! plugin, `vim.lsp.start` as the README says) and Emacs eglot (Debian `elpa-eglot`, the
//! README's settings), each typing concurrently with an agent (agent API `fs.edit`) and a
//! Neovim with our plugin. Every buffer, the daemon and the disk end identical, every marker
//! is there exactly once, no client asked a question, the `workspace/applyEdit` round trips
//! stay bounded, and a save in the middle loses nothing.
//!
//! Skips loudly when `nvim` / `emacs` is missing, fails instead when CI=true (see `common`).
#[path = "common/agent.rs"]
mod agent;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// Kills a child process when dropped (also when a test fails).
struct Kid(Option<Child>, &'static str);

impl Kid {
    fn wait_ok(&mut self, t: Duration) {
        let Some(mut c) = self.0.take() else { return };
        let t0 = Instant::now();
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                assert!(st.success(), "{} failed: {st}", self.1);
                return;
            }
            if t0.elapsed() > t {
                let _ = c.kill();
                let _ = c.wait();
                panic!("{} did not quit", self.1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The agent: `n` edits with `fs.edit` at the version it read (some at a version a few edits
/// old), markers `<G:i>` among them; never deletes a marker.
fn agent_run(d: &Daemon, rel: &str, seed: u64, n: usize, go: &Path) -> Vec<String> {
    let ag = agent::Agent::connect(d);
    wait_for("go", Duration::from_secs(60), || go.exists().then_some(()));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut mine = Vec::new();
    let mut read = ag.ok("fs.read", json!({"path": rel}));
    for i in 1..=n {
        if rng.f64() < 0.7 {
            read = ag.ok("fs.read", json!({"path": rel}));
        }
        let text = read["text"].as_str().unwrap().to_string();
        let len = text.chars().count();
        let spans = marker_spans(&text);
        let edit = if rng.f64() < 0.2 && len > 2 {
            let a = rng.usize(..len - 1);
            let e = (a + rng.usize(1..=2)).min(len);
            if spans.iter().any(|sp| a < sp.end && e > sp.start) {
                continue;
            }
            json!({"offsets": {"start": a, "end": e}, "text": ""})
        } else {
            let mut p = if rng.f64() < 0.3 {
                len
            } else {
                rng.usize(..=len)
            };
            if let Some(sp) = spans.iter().find(|sp| p > sp.start && p < sp.end) {
                p = sp.start;
            }
            let ins = if rng.f64() < 0.4 {
                let m = format!("<G:{i}>");
                mine.push(m.clone());
                m
            } else {
                ["g", "\n", "ö", "gg "][rng.usize(..4)].to_string()
            };
            json!({"offsets": {"start": p, "end": p}, "text": ins})
        };
        ag.ok(
            "fs.edit",
            json!({"path": rel, "version": read["version"], "edits": [edit]}),
        );
        std::thread::sleep(Duration::from_millis(rng.u64(5..40)));
    }
    mine
}

struct Setup {
    _dir: tempfile::TempDir,
    d: Daemon,
    out: PathBuf,
    file: PathBuf,
    go: PathBuf,
    stop: PathBuf,
}

fn setup(seed_text: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".dist-space")).unwrap();
    std::fs::write(ws.join("f.txt"), seed_text).unwrap();
    let d = Daemon::start(&ws);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    Setup {
        file: d.root.join("f.txt"),
        go: out.join("go"),
        stop: out.join("stop"),
        out,
        d,
        _dir: dir,
    }
}

fn nvim_env(
    s: &Setup,
    name: &str,
    seed: u64,
    n: usize,
    save_at: i64,
) -> Vec<(&'static str, String)> {
    vec![
        ("DS_FILE", s.file.display().to_string()),
        ("DS_NAME", name.to_string()),
        ("DS_SEED", seed.to_string()),
        ("DS_N", n.to_string()),
        ("DS_SAVE_AT", save_at.to_string()),
        ("DS_OUT", s.out.join(name).display().to_string()),
        ("DS_GO", s.go.display().to_string()),
        ("DS_STOP", s.stop.display().to_string()),
    ]
}

fn wait_file(p: &Path, what: &str, t: Duration) {
    wait_for(what, t, || p.exists().then_some(()));
}

/// Every participant's output equals the daemon's text (within 60 s); returns it.
fn converge(s: &Setup, names: &[&str]) -> String {
    let mut checker = s.d.connect();
    checker.initialize("checker", false, &[]);
    let uri = s.d.uri("f.txt");
    let t0 = Instant::now();
    loop {
        let daemon = checker.text(&uri);
        let outs: Vec<String> = names
            .iter()
            .map(|n| std::fs::read_to_string(s.out.join(n)).unwrap_or_default())
            .collect();
        if outs.iter().all(|o| *o == daemon) {
            eprintln!(
                "converged {:?} after the last participant finished",
                t0.elapsed()
            );
            return daemon;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let mut last = outs;
            last.push(daemon);
            let mut msg = String::from("no convergence:\n");
            for (n, o) in names.iter().chain(["daemon"].iter()).zip(&last) {
                msg.push_str(&format!("--- {n} ({} chars)\n{o}\n", o.chars().count()));
            }
            panic!("{msg}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// With `DS_DEBUG_LOG` set, print the daemon's log (e.g. with `RUST_LOG=info,dist_space=debug`).
fn debug_log(d: &Daemon) {
    if std::env::var("DS_DEBUG_LOG").is_ok() {
        let log =
            std::fs::read_to_string(d.root.join(".dist-space/daemon.log")).unwrap_or_default();
        eprintln!("{log}");
    }
}

fn stats(d: &Daemon) -> Value {
    let mut c = d.connect();
    c.initialize("stats", false, &[]);
    c.request("dist-space/stats", json!({}))["result"].clone()
}

fn markers_of(s: &Setup, name: &str) -> Vec<String> {
    std::fs::read_to_string(s.out.join(format!("{name}.markers")))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The sane bound on `workspace/applyEdit` round trips: a few per edit the stock client must
/// receive (each edit is sent at most once per gate opening; the gate opens after the
/// client's changes, refusals and timeouts), nowhere near the thousands of a retry storm.
fn check_round_trips(st: &Value, remote_edits: usize) {
    let sent = st["applyEditSent"].as_u64().unwrap();
    eprintln!(
        "applyEdit: {sent} sent, {} answered applied, {} refused, {} skipped as stale, {} echoes recognised; {remote_edits} remote edits",
        st["applyEditApplied"], st["applyEditRejected"], st["applyEditSkipped"], st["applyEditEchoes"]
    );
    assert!(sent > 0, "the stock client received remote edits");
    assert!(
        sent as usize <= 2 * remote_edits + 20,
        "{sent} applyEdit round trips for {remote_edits} remote edits"
    );
}

#[test]
fn stock_neovim_with_a_plugin_neovim_and_an_agent() {
    let Some(nvim) = nvim() else { return };
    let seed: u64 = std::env::var("DS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261204);
    let n = 150;
    eprintln!("seed {seed} (DS_FUZZ_SEED to change), {n} edits per participant");
    let s = setup("hello world\nsecond line\n");
    let stock = Kid(
        Some(spawn_nvim_capturing(
            &nvim,
            &s,
            "stock.lua",
            &nvim_env(&s, "Stock", seed + 1, n, (n / 2) as i64),
        )),
        "stock nvim",
    );
    let plugin = Kid(
        Some(spawn_nvim(
            &nvim,
            &s.d,
            &script("fuzz.lua"),
            &nvim_env(&s, "Plug", seed + 2, n, -1),
        )),
        "plugin nvim",
    );
    let mut kids = [stock, plugin];
    for name in ["Stock", "Plug"] {
        wait_file(
            &s.out.join(format!("{name}.ready")),
            "nvim attached",
            Duration::from_secs(30),
        );
    }
    let (d2, go2) = (&s.d, s.go.clone());
    let agent_markers = std::thread::scope(|sc| {
        let h = sc.spawn(move || agent_run(d2, "f.txt", seed, n, &go2));
        std::fs::write(&s.go, "").unwrap();
        for name in ["Stock", "Plug"] {
            wait_file(
                &s.out.join(format!("{name}.done")),
                "nvim done",
                Duration::from_secs(180),
            );
        }
        h.join().unwrap()
    });
    let text = converge(&s, &["Stock", "Plug"]);
    wait_for("disk equals the document", Duration::from_secs(10), || {
        (std::fs::read_to_string(&s.file).ok()? == text).then_some(())
    });
    let mut all = agent_markers.clone();
    all.extend(markers_of(&s, "Stock"));
    all.extend(markers_of(&s, "Plug"));
    assert!(all.len() > n / 2, "markers: {}", all.len());
    for m in &all {
        assert_eq!(
            text.matches(m.as_str()).count(),
            1,
            "marker {m} (seed {seed})"
        );
    }
    // Right after the save in the middle the disk held every marker the stock client had
    // typed until then (`:w` asks the daemon to write: no stale copy of the file is written).
    let saved = std::fs::read_to_string(s.out.join("Stock.saved")).expect("stock saved");
    for m in markers_of(&s, "Stock") {
        let i: usize = m
            .trim_matches(|c| c == '<' || c == '>')
            .split(':')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if i <= n / 2 {
            assert!(
                saved.contains(&m),
                "{m} typed before the save is on disk after it"
            );
        }
    }
    check_round_trips(&stats(&s.d), agent_markers.len() + n * 2);
    std::fs::write(&s.stop, "").unwrap();
    for k in kids.iter_mut() {
        k.wait_ok(Duration::from_secs(20));
    }
    // No question was asked: a prompt would have blocked the headless Neovim (it finished).
    let log = std::fs::read_to_string(s.out.join("Stock.stdout")).expect("stock output");
    eprintln!(
        "stock Neovim skipped {} applyEdits as stale (\"newer than edits\")",
        log.matches("newer than edits").count()
    );
    assert!(!log.contains("Press ENTER"), "a prompt was shown:\n{log}");
    assert!(!log.contains("WARNING"), "a warning was shown:\n{log}");
    assert!(
        !log.contains("Do you really want"),
        "a question was asked:\n{log}"
    );
    debug_log(&s.d);
    let mut d = s.d;
    d.stop();
    assert_eq!(std::fs::read_to_string(&s.file).unwrap(), text);
}

/// Like `common::spawn_nvim`, with its output (messages go to stderr) in `out/<name>.stdout`.
fn spawn_nvim_capturing(
    nvim: &Path,
    s: &Setup,
    script_name: &str,
    env: &[(&str, String)],
) -> Child {
    let name = env.iter().find(|(k, _)| *k == "DS_NAME").unwrap().1.clone();
    let log = std::fs::File::create(s.out.join(format!("{name}.stdout"))).unwrap();
    let mut cmd = Command::new(nvim);
    cmd.args(["--headless", "-n", "--clean", "-i", "NONE", "-l"])
        .arg(script(script_name))
        .current_dir(&s.d.root)
        .env("XDG_RUNTIME_DIR", s.d.runtime.path())
        .env("DS_BIN", bin())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn nvim")
}

/// `emacs` with eglot, or `None` (the test then skips loudly, except in CI where it fails).
fn emacs() -> Option<PathBuf> {
    let p = std::env::var_os("DIST_SPACE_EMACS").map_or(PathBuf::from("emacs"), PathBuf::from);
    let ok = Command::new(&p)
        .args(["--batch", "-q", "--eval", "(require 'eglot)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("emacs with eglot not found but CI=true: run scripts/setup-emacs.sh (the eglot test must not skip in CI)");
    }
    eprintln!();
    eprintln!("################################################################");
    eprintln!("## SKIPPED: emacs with eglot not found. Run                   ##");
    eprintln!("## scripts/setup-emacs.sh to run the Emacs eglot test (it     ##");
    eprintln!("## never skips when CI=true).                                 ##");
    eprintln!("################################################################");
    None
}

/// The eglot settings of the README (the elisp block after `<!-- eglot settings -->`), so the
/// test runs exactly what users copy.
fn readme_eglot_settings() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let at = readme
        .find("<!-- eglot settings -->")
        .expect("README eglot settings marker");
    let rest = &readme[at..];
    let start = rest.find("```elisp\n").expect("elisp block") + "```elisp\n".len();
    let end = rest[start..].find("```").expect("end of the elisp block");
    rest[start..start + end].to_string()
}

#[test]
fn emacs_eglot_with_a_plugin_neovim_and_an_agent() {
    let Some(emacs) = emacs() else { return };
    let Some(nvim) = nvim() else { return };
    let seed: u64 = std::env::var("DS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261205);
    let n = 150;
    eprintln!("seed {seed} (DS_FUZZ_SEED to change), {n} edits per participant");
    let s = setup("hello world\nsecond line\n");
    let settings = s.out.join("settings.el");
    std::fs::write(&settings, readme_eglot_settings()).unwrap();
    let bin_dir = Path::new(&bin()).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(&emacs);
    cmd.args(["--batch", "-q", "-l"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emacs/eglot-driver.el"))
        .current_dir(&s.d.root)
        .env("XDG_RUNTIME_DIR", s.d.runtime.path())
        .env("PATH", path)
        .env("DS_SETTINGS", &settings)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(std::fs::File::create(s.out.join("Emacs.stderr")).unwrap());
    for (k, v) in nvim_env(&s, "Emacs", seed + 1, n, (n / 2) as i64) {
        cmd.env(k, v);
    }
    let em = Kid(Some(cmd.spawn().expect("spawn emacs")), "emacs");
    let plugin = Kid(
        Some(spawn_nvim(
            &nvim,
            &s.d,
            &script("fuzz.lua"),
            &nvim_env(&s, "Plug", seed + 2, n, -1),
        )),
        "plugin nvim",
    );
    let mut kids = [em, plugin];
    for name in ["Emacs", "Plug"] {
        wait_file(
            &s.out.join(format!("{name}.ready")),
            "editor attached",
            Duration::from_secs(60),
        );
    }
    let (d2, go2) = (&s.d, s.go.clone());
    let agent_markers = std::thread::scope(|sc| {
        let h = sc.spawn(move || agent_run(d2, "f.txt", seed, n, &go2));
        std::fs::write(&s.go, "").unwrap();
        for name in ["Emacs", "Plug"] {
            wait_file(
                &s.out.join(format!("{name}.done")),
                "editor done",
                Duration::from_secs(240),
            );
        }
        h.join().unwrap()
    });
    let text = converge(&s, &["Emacs", "Plug"]);
    wait_for("disk equals the document", Duration::from_secs(10), || {
        (std::fs::read_to_string(&s.file).ok()? == text).then_some(())
    });
    let mut all = agent_markers.clone();
    all.extend(markers_of(&s, "Emacs"));
    all.extend(markers_of(&s, "Plug"));
    assert!(all.len() > n / 2, "markers: {}", all.len());
    for m in &all {
        assert_eq!(
            text.matches(m.as_str()).count(),
            1,
            "marker {m} (seed {seed})"
        );
    }
    let saved = std::fs::read_to_string(s.out.join("Emacs.saved")).expect("emacs saved");
    for m in markers_of(&s, "Emacs") {
        let i: usize = m
            .trim_matches(|c| c == '<' || c == '>')
            .split(':')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if i <= n / 2 {
            assert!(
                saved.contains(&m),
                "{m} typed before the save is on disk after it"
            );
        }
    }
    check_round_trips(&stats(&s.d), agent_markers.len() + n * 2);
    std::fs::write(&s.stop, "").unwrap();
    for k in kids.iter_mut() {
        k.wait_ok(Duration::from_secs(30));
    }
    let prompts =
        std::fs::read_to_string(s.out.join("Emacs.prompts")).expect("Emacs listed its prompts");
    assert!(prompts.trim().is_empty(), "Emacs asked:\n{prompts}");
    debug_log(&s.d);
    let mut d = s.d;
    d.stop();
    assert_eq!(std::fs::read_to_string(&s.file).unwrap(), text);
}

/// A raw LSP client that introduces itself as Neovim (applyEdit, no `documentChanges`).
fn raw_client(d: &Daemon, client_info: Value, doc_changes: bool) -> Client {
    let mut c = d.connect();
    let r = c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "clientInfo": client_info,
               "capabilities": {"workspace": {"applyEdit": true,
                                              "workspaceEdit": {"documentChanges": doc_changes}}}}),
    );
    assert!(r["result"]["capabilities"].is_object(), "{r}");
    c.notify("initialized", json!({}));
    c
}

/// The next `workspace/applyEdit` request: (id, version, range, newText).
fn next_apply(c: &mut Client) -> (Value, i64, Value, String) {
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(20), "no applyEdit came");
        let Some(v) = c.next_notification(Duration::from_millis(100)) else {
            continue;
        };
        if v["method"] != "workspace/applyEdit" {
            continue;
        }
        let dc = &v["params"]["edit"]["documentChanges"][0];
        return (
            v["id"].clone(),
            dc["textDocument"]["version"]
                .as_i64()
                .expect("a versioned edit"),
            dc["edits"][0]["range"].clone(),
            dc["edits"][0]["newText"].as_str().unwrap().to_string(),
        );
    }
}

fn answer(c: &mut Client, id: &Value, applied: bool) {
    let f = frame(&json!({"jsonrpc": "2.0", "id": id, "result": {"applied": applied}}));
    c.send_raw(&f);
}

fn change(c: &mut Client, uri: &str, version: i64, changes: Value) {
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
    );
}

fn range(l0: u64, c0: u64, l1: u64, c1: u64) -> Value {
    json!({"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}})
}

/// Neovim's ways, played exactly: the first apply names version 1 (Neovim does not check 0),
/// its echo comes in one `didChange` with typing after it and in another shape than sent (a
/// minimal diff); a stale apply is answered `applied: true` but skipped, and the user's
/// change that made it stale settles it; the edit is then sent again and lands once.
#[test]
fn neovim_echo_bundled_with_typing_and_a_silently_skipped_apply() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "abc\n").unwrap();
    let d = Daemon::start(dir.path());
    let uri = d.uri("f.txt");
    let mut c = raw_client(&d, json!({"name": "Neovim", "version": "0.10.4"}), false);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "text", "version": 0, "text": "abc\n"}}),
    );
    let ag = agent::Agent::connect(&d);
    let edit = |text: &str, at: usize| {
        let r = ag.ok("fs.read", json!({"path": "f.txt"}));
        ag.ok(
            "fs.edit",
            json!({"path": "f.txt", "version": r["version"],
                   "edits": [{"offsets": {"start": at, "end": at}, "text": text}]}),
        );
    };
    edit("aX", 0); // "aXabc\n"
    let (id, version, r, t) = next_apply(&mut c);
    assert_eq!(version, 1, "never version 0 to Neovim");
    assert_eq!((r, t.as_str()), (range(0, 0, 0, 0), "aX"));
    // Applied; Neovim reports the minimal diff of the line ("Xa" after the first "a"), then
    // the user's typing at the end of the line, in one didChange; the answer comes last.
    change(
        &mut c,
        &uri,
        7,
        json!([{"range": range(0, 1, 0, 1), "text": "Xa"},
               {"range": range(0, 5, 0, 5), "text": "Y"}]),
    );
    answer(&mut c, &id, true);
    assert_eq!(c.text(&uri), "aXabcY\n", "the echo is not applied twice");
    // A stale apply: the user typed "W" at the start before it arrived.
    edit("Z", 6); // after "Y": "aXabcYZ\n"
    let (id, version, _, t) = next_apply(&mut c);
    assert_eq!((version, t.as_str()), (7, "Z"));
    answer(&mut c, &id, true); // skipped ("newer than edits"), yet applied: true
    change(
        &mut c,
        &uri,
        9,
        json!([{"range": range(0, 0, 0, 0), "text": "W"}]),
    );
    assert_eq!(c.text(&uri), "WaXabcYZ\n");
    // Sent again at the new version, on the buffer with "W": applied, echoed alone.
    let (id, version, r, t) = next_apply(&mut c);
    assert_eq!((version, r, t.as_str()), (9, range(0, 7, 0, 7), "Z"));
    answer(&mut c, &id, true);
    change(
        &mut c,
        &uri,
        10,
        json!([{"range": range(0, 7, 0, 7), "text": "Z"}]),
    );
    assert_eq!(c.text(&uri), "WaXabcYZ\n");
    // An edit after the final newline reaches Neovim as a replacement of that newline (it
    // would append a whole line otherwise); Neovim keeps its final newline ('eol'): the echo
    // with that newline is matched and the newline becomes Neovim's edit.
    edit("end", 9); // "WaXabcYZ\nend"
    let (id, version, r, t) = next_apply(&mut c);
    assert_eq!((version, r, t.as_str()), (10, range(0, 8, 1, 0), "\nend"));
    answer(&mut c, &id, true);
    change(
        &mut c,
        &uri,
        11,
        json!([{"range": range(1, 0, 1, 0), "text": "end\n"}]),
    );
    assert_eq!(c.text(&uri), "WaXabcYZ\nend\n");
    let st = stats(&d);
    assert_eq!(st["applyEditSent"], 4, "{st}");
    assert_eq!(st["applyEditSkipped"], 1, "{st}");
    assert_eq!(st["applyEditEchoes"], 3, "{st}");
}

/// A client that refuses every apply (and does not change its buffer) is asked again only
/// after a growing backoff, not at once: a handful of round trips, not thousands.
#[test]
fn refused_applies_back_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "abc\n").unwrap();
    let d = Daemon::start(dir.path());
    let uri = d.uri("f.txt");
    let mut c = raw_client(&d, json!({"name": "refuser"}), true);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "text", "version": 1, "text": "abc\n"}}),
    );
    let ag = agent::Agent::connect(&d);
    let r = ag.ok("fs.read", json!({"path": "f.txt"}));
    ag.ok(
        "fs.edit",
        json!({"path": "f.txt", "version": r["version"],
               "edits": [{"offsets": {"start": 0, "end": 0}, "text": "X"}]}),
    );
    let mut refused = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if let Some(v) = c.next_notification(Duration::from_millis(50)) {
            if v["method"] == "workspace/applyEdit" {
                assert_eq!(
                    v["params"]["edit"]["documentChanges"][0]["textDocument"]["version"],
                    1
                );
                answer(&mut c, &v["id"].clone(), false);
                refused += 1;
            }
        }
    }
    eprintln!("{refused} refused applies in 3 s");
    assert!((1..=10).contains(&refused), "{refused} round trips");
    // Its next change reopens the gate: the edit lands on the new version.
    change(
        &mut c,
        &uri,
        2,
        json!([{"range": range(0, 3, 0, 3), "text": "!"}]),
    );
    let (id, version, r, t) = next_apply(&mut c);
    assert_eq!((version, r, t.as_str()), (2, range(0, 0, 0, 0), "X"));
    answer(&mut c, &id, true);
    change(
        &mut c,
        &uri,
        3,
        json!([{"range": range(0, 0, 0, 0), "text": "X"}]),
    );
    assert_eq!(c.text(&uri), "Xabc!\n");
}
