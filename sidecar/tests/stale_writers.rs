//! Stale writers: a real program reads a file, agents (`fs.edit`, acknowledged) and a Neovim
//! with the plugin make edits that reach the disk, then the program writes back its own change
//! of the text it read: real formatters (`rustfmt`, `prettier` from npm), `sed -i`, a stock
//! Neovim `:w!`. Every
//! acknowledged edit and the writer's change end up in the daemon, on disk and in the editor.
//! A deliberate revert (`git checkout -- file`) and a `git checkout` of another branch give
//! the checked-out text. Real daemon, real processes, real git; seeded.
#[path = "common/agent.rs"]
mod agent;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent::Agent;
use common::{marker_spans, wait_for, Daemon};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

/// Kills and reaps a child process however the test ends.
struct Kill(Option<Child>);

impl Kill {
    /// Wait for a clean exit (the script quits by itself).
    fn wait(&mut self) {
        if let Some(mut c) = self.0.take() {
            let t0 = std::time::Instant::now();
            loop {
                if let Ok(Some(st)) = c.try_wait() {
                    assert!(st.success(), "nvim exited with {st}");
                    return;
                }
                if t0.elapsed() > WAIT {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("nvim did not exit");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `rustfmt` on PATH (it comes with the Rust toolchain), or `None` (the test then skips
/// loudly, except in CI where it fails).
fn rustfmt() -> Option<PathBuf> {
    let ok = Command::new("rustfmt")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(PathBuf::from("rustfmt"));
    }
    assert!(
        !ci(),
        "rustfmt not found but CI=true: install it (rustup component add rustfmt)"
    );
    eprintln!("\n## SKIPPED: rustfmt not found (rustup component add rustfmt) ##\n");
    None
}

/// `prettier` as installed by `scripts/setup-prettier.sh` (or `$DIST_SPACE_PRETTIER`), or
/// `None` (the test then skips loudly, except in CI where it fails).
fn prettier() -> Option<PathBuf> {
    let p = std::env::var_os("DIST_SPACE_PRETTIER").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/tools/prettier/node_modules/.bin/prettier")
        },
        PathBuf::from,
    );
    let ok = Command::new(&p)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(p);
    }
    assert!(
        !ci(),
        "prettier not found but CI=true: run scripts/setup-prettier.sh"
    );
    eprintln!("\n## SKIPPED: prettier not found (run scripts/setup-prettier.sh) ##\n");
    None
}

fn touch(p: &Path) {
    std::fs::write(p, "").unwrap();
}

fn exists(p: &Path) -> impl FnMut() -> Option<()> + '_ {
    move || p.exists().then_some(())
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(a: &Agent, path: &str) -> (String, serde_json::Value) {
    let r = a.ok("fs.read", json!({"path": path}));
    (
        r["text"].as_str().unwrap().to_string(),
        r["version"].clone(),
    )
}

/// An acknowledged agent edit: the line `text` inserted before the line that reads `before`.
fn agent_insert_before(a: &Agent, path: &str, before: &str, text: &str) {
    let (now, version) = read(a, path);
    let line = now
        .lines()
        .position(|l| l == before)
        .unwrap_or_else(|| panic!("no line {before:?} in {now:?}"));
    let pos = json!({"line": line, "character": 0});
    a.ok(
        "fs.edit",
        json!({"path": path, "version": version, "edits": [
            {"range": {"start": pos, "end": pos}, "text": format!("{text}\n")}]}),
    );
}

fn insert_line(s: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = s.split_inclusive('\n').collect();
    let l = format!("{line}\n");
    lines.insert(n.min(lines.len()), &l);
    lines.concat()
}

/// The text without the lines holding a `<Name:n>` marker.
fn without_markers(s: &str) -> String {
    s.split_inclusive('\n')
        .filter(|l| marker_spans(l).is_empty())
        .collect()
}

fn markers(s: &str) -> Vec<String> {
    let cs: Vec<char> = s.chars().collect();
    let mut v: Vec<String> = marker_spans(s)
        .into_iter()
        .map(|r| cs[r].iter().collect())
        .collect();
    v.sort();
    v
}

/// Wait until the plugin editor's buffer (written by `stale_editor.lua`) is `want`.
fn buffer_converges(out: &Path, want: &str) {
    wait_for("the editor's buffer to converge", WAIT, || {
        let t = std::fs::read_to_string(out.join("text")).ok()?;
        // Lines joined by newlines: the final newline shows as an empty last line.
        (t == want || t + "\n" == want).then_some(())
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    Rustfmt,
    Prettier,
    Sed,
    StockNvim,
}

const RUST_SRC: &str = "fn main() {
    let a = 1;
    let b = 2;
    println!(\"{}\", a + b);
}

fn   helper( a:i32 )->i32 { a+1 }

fn other() -> u8 {
    let c = 7;
    c
}
";

/// Lines of `RUST_SRC` where markers go (away from what rustfmt changes).
const RUST_SAFE: &[&str] = &[
    "    let a = 1;",
    "    let b = 2;",
    "    println!(\"{}\", a + b);",
    "fn other() -> u8 {",
    "    let c = 7;",
    "    c",
];

const JS_SRC: &str = "function main() {
  const a = 1;
  const b = 2;
  console.log(a + b);
}

function   helper( a ){ return a+1 }

function other() {
  const c = 7;
  return c;
}
";

/// Lines of `JS_SRC` where markers go (away from what prettier changes).
const JS_SAFE: &[&str] = &[
    "  const a = 1;",
    "  const b = 2;",
    "  console.log(a + b);",
    "function other() {",
    "  const c = 7;",
    "  return c;",
];

fn numbered(n: usize) -> String {
    (0..n).map(|i| format!("line {i:03}\n")).collect()
}

/// One stale-writer run: see the module doc.
fn stale_writer(writer: Writer, seed: u64) {
    let Some(nvim) = common::nvim() else { return };
    if writer == Writer::Rustfmt && rustfmt().is_none() {
        return;
    }
    let prettier = match writer {
        Writer::Prettier => match prettier() {
            Some(p) => Some(p),
            None => return,
        },
        _ => None,
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let tmp = tempfile::tempdir().unwrap();
    let (ws, out, tool) = (
        tmp.path().join("ws"),
        tmp.path().join("out"),
        tmp.path().join("tool"),
    );
    for d in [&ws, &out, &tool] {
        std::fs::create_dir(d).unwrap();
    }
    let out2 = tmp.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    let (rel, original, safe): (&str, String, Vec<String>) = match writer {
        Writer::Rustfmt => (
            "a.rs",
            RUST_SRC.to_string(),
            RUST_SAFE.iter().map(|s| s.to_string()).collect(),
        ),
        Writer::Prettier => (
            "a.js",
            JS_SRC.to_string(),
            JS_SAFE.iter().map(|s| s.to_string()).collect(),
        ),
        _ => (
            "a.txt",
            numbered(20),
            (0..20)
                .filter(|i| ![9, 10, 11, 14, 15].contains(i))
                .map(|i| format!("line {i:03}"))
                .collect(),
        ),
    };
    let file = ws.join(rel);
    std::fs::write(&file, &original).unwrap();
    let mut d = Daemon::start(&ws);

    // The editor with the plugin attaches.
    let ed_line = safe[rng.usize(..safe.len())].clone();
    let ed_at = original.lines().position(|l| l == ed_line).unwrap();
    let ed_text = "// <Nvim:1>";
    let env = [
        ("DS_FILE", file.display().to_string()),
        ("DS_OUT", out.display().to_string()),
        ("DS_LINE", ed_at.to_string()),
        ("DS_TEXT", ed_text.to_string()),
    ];
    let mut editor = Kill(Some(common::spawn_nvim(
        &nvim,
        &d,
        &common::script("stale_editor.lua"),
        &env,
    )));
    wait_for("the editor to attach", WAIT, exists(&out.join("ready")));

    // The external program reads the file (a stock Neovim opens it).
    let mut stock = Kill(None);
    let stale = std::fs::read_to_string(&file).unwrap();
    assert_eq!(stale, original);
    let stock_line = 15;
    let stock_text = "// saved by a stock Neovim";
    if writer == Writer::StockNvim {
        let env = [
            ("DS_FILE", file.display().to_string()),
            ("DS_OUT", out2.display().to_string()),
            ("DS_LINE", stock_line.to_string()),
            ("DS_TEXT", stock_text.to_string()),
        ];
        stock.0 = Some(common::spawn_nvim(
            &nvim,
            &d,
            &common::script("stock_save.lua"),
            &env,
        ));
        wait_for(
            "the stock Neovim to open",
            WAIT,
            exists(&out2.join("opened")),
        );
    }

    // Agents edit (acknowledged), the editor types; everything reaches the disk.
    let agents = [Agent::connect(&d), Agent::connect(&d)];
    let n = 2 + rng.usize(..4);
    let mut want = vec!["<Nvim:1>".to_string()];
    for i in 0..n {
        let who = ["Agent", "Bot"][i % 2];
        let m = format!("<{who}:{i}>");
        let before = &safe[rng.usize(..safe.len())];
        agent_insert_before(&agents[i % 2], rel, before, &format!("// {m}"));
        want.push(m);
    }
    want.sort();
    touch(&out.join("go"));
    wait_for("the editor to type", WAIT, exists(&out.join("typed")));
    wait_for("every edit on disk", WAIT, || {
        let disk = std::fs::read_to_string(&file).ok()?;
        (markers(&disk) == want).then_some(())
    });

    // The program writes back its own change of the stale text.
    let tool_text = match writer {
        Writer::Rustfmt => {
            let p = tool.join(rel);
            std::fs::write(&p, &stale).unwrap();
            let st = Command::new("rustfmt")
                .args(["--edition", "2021"])
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success());
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(
                t.contains("fn helper(a: i32) -> i32 {\n    a + 1\n}\n"),
                "{t}"
            );
            std::fs::rename(&p, &file).unwrap();
            t
        }
        Writer::Prettier => {
            let p = tool.join(rel);
            std::fs::write(&p, &stale).unwrap();
            let st = Command::new(prettier.as_ref().unwrap())
                .arg("--write")
                .arg(&p)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(
                t.contains("function helper(a) {\n  return a + 1;\n}\n"),
                "{t}"
            );
            std::fs::rename(&p, &file).unwrap();
            t
        }
        Writer::Sed => {
            let p = tool.join(rel);
            std::fs::write(&p, &stale).unwrap();
            let st = Command::new("sed")
                .args(["-i", "-e", "s/^line 010$/line 010 changed by sed/"])
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success());
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(t.contains("line 010 changed by sed\n"));
            std::fs::rename(&p, &file).unwrap();
            t
        }
        Writer::StockNvim => {
            touch(&out2.join("go"));
            wait_for(
                "the stock Neovim to save",
                WAIT,
                exists(&out2.join("saved")),
            );
            stock.wait();
            insert_line(&stale, stock_line, stock_text)
        }
    };
    assert_ne!(tool_text, stale);

    // Every acknowledged edit and the writer's change: in the daemon and on disk.
    let fin = wait_for("the merge in the daemon and on disk", WAIT, || {
        let (now, _) = read(&agents[0], rel);
        let disk = std::fs::read_to_string(&file).ok()?;
        (now == disk && markers(&now) == want && without_markers(&now) == tool_text).then_some(now)
    });
    for m in &want {
        assert_eq!(fin.matches(m.as_str()).count(), 1, "{m} in {fin}");
    }
    // The merge at an older state is logged, with counts and never the file's text.
    let log = ws.join(".dist-space/daemon.log");
    let line = wait_for("the merge in the daemon's log", WAIT, || {
        let l = std::fs::read_to_string(&log).ok()?;
        l.lines()
            .find(|l| l.contains("external change merged"))
            .map(str::to_string)
    });
    assert!(
        line.contains("kind=Older") && line.contains("path=a."),
        "{line}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    for secret in want.iter().map(String::as_str).chain([
        "a + 1",
        "return a + 1;",
        "changed by sed",
        "saved by a stock Neovim",
    ]) {
        assert!(!log.contains(secret), "the log holds file text {secret:?}");
    }
    // And in the editor's buffer.
    buffer_converges(&out, &fin);
    touch(&out.join("stop"));
    editor.wait();
    d.stop();
}

#[test]
fn a_formatter_writing_back_a_stale_copy_keeps_every_acknowledged_edit() {
    for seed in [1, 2] {
        stale_writer(Writer::Rustfmt, seed);
    }
}

#[test]
fn prettier_writing_back_a_stale_copy_keeps_every_acknowledged_edit() {
    for seed in [7, 8] {
        stale_writer(Writer::Prettier, seed);
    }
}

#[test]
fn sed_on_a_stale_copy_keeps_every_acknowledged_edit() {
    for seed in [3, 4] {
        stale_writer(Writer::Sed, seed);
    }
}

#[test]
fn a_stock_neovim_saving_a_stale_buffer_keeps_every_acknowledged_edit() {
    for seed in [5, 6] {
        stale_writer(Writer::StockNvim, seed);
    }
}

#[test]
fn a_revert_and_a_checkout_of_another_branch_give_the_checked_out_text() {
    let Some(nvim) = common::nvim() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (ws, out) = (tmp.path().join("ws"), tmp.path().join("out"));
    std::fs::create_dir(&ws).unwrap();
    std::fs::create_dir(&out).unwrap();
    let file = ws.join("a.txt");
    let original = numbered(12);
    std::fs::write(&file, &original).unwrap();
    std::fs::write(ws.join(".gitignore"), ".dist-space/\n").unwrap();
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-qm", "base"]);
    git(&ws, &["checkout", "-qb", "other"]);
    let branch = original.replace("line 009", "line 009 on the branch");
    std::fs::write(&file, &branch).unwrap();
    git(&ws, &["commit", "-qam", "other"]);
    git(&ws, &["checkout", "-q", "main"]);

    let mut d = Daemon::start(&ws);
    let env = [
        ("DS_FILE", file.display().to_string()),
        ("DS_OUT", out.display().to_string()),
        ("DS_LINE", "2".to_string()),
        ("DS_TEXT", "// <Nvim:1>".to_string()),
    ];
    let mut editor = Kill(Some(common::spawn_nvim(
        &nvim,
        &d,
        &common::script("stale_editor.lua"),
        &env,
    )));
    wait_for("the editor to attach", WAIT, exists(&out.join("ready")));
    let a = Agent::connect(&d);
    let converged = |want: &str| {
        wait_for("the daemon and the disk to hold the text", WAIT, || {
            let (now, _) = read(&a, "a.txt");
            let disk = std::fs::read_to_string(&file).ok()?;
            (now == want && disk == want).then_some(())
        })
    };

    // Edits reach the disk; `git checkout -- a.txt` restores the committed text.
    agent_insert_before(&a, "a.txt", "line 005", "// <Agent:1>");
    touch(&out.join("go"));
    wait_for("the editor to type", WAIT, exists(&out.join("typed")));
    wait_for("the edits on disk", WAIT, || {
        let disk = std::fs::read_to_string(&file).ok()?;
        (markers(&disk).len() == 2).then_some(())
    });
    git(&ws, &["checkout", "--", "a.txt"]);
    converged(&original);

    // Edits reach the disk and are committed; a checkout of the branch gives its text.
    agent_insert_before(&a, "a.txt", "line 003", "// <Agent:2>");
    let with_edit = insert_line(&original, 3, "// <Agent:2>");
    converged(&with_edit);
    git(&ws, &["commit", "-qam", "agent"]);
    git(&ws, &["checkout", "-q", "other"]);
    converged(&branch);
    buffer_converges(&out, &branch);
    touch(&out.join("stop"));
    editor.wait();
    d.stop();
}
