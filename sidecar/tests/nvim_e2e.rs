//! Real Neovim (headless, with the plugin from editors/nvim) against a real daemon.
//! Skips loudly when `nvim` is missing, fails instead when CI=true (see common::nvim).
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The scripted agent: same kinds of edits as the Neovim scripts, in chars.
fn agent_run(mut ag: RevAgent, seed: u64, n: usize, go: &Path) -> (RevAgent, Vec<String>) {
    wait_for("go", Duration::from_secs(60), || go.exists().then_some(()));
    let mut rng = fastrand::Rng::with_seed(seed);
    let pool = ["a", "b", "é", "😀", "\n", "xy", "ü\n", " ", "日本"];
    let mut mine = Vec::new();
    for i in 1..=n {
        ag.pump(Duration::ZERO);
        let s = ag.text.to_string();
        let spans = marker_spans(&s);
        let len = ag.text.len_chars();
        let r = rng.f64();
        if r < 0.3 && len > 0 {
            for _ in 0..5 {
                let a = rng.usize(..len);
                let e = (a + rng.usize(1..=4)).min(len);
                if spans.iter().all(|sp| e <= sp.start || a >= sp.end) {
                    ag.edit(a..e, "");
                    break;
                }
            }
        } else {
            let mut p = if r < 0.45 { 0 } else { rng.usize(..=len) };
            if let Some(sp) = spans.iter().find(|sp| p > sp.start && p < sp.end) {
                p = sp.start;
            }
            let ins = if r > 0.8 {
                let m = format!("<G:{i}>");
                mine.push(m.clone());
                m
            } else {
                pool[rng.usize(..pool.len())].to_string()
            };
            ag.edit(p..p, &ins);
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..2000)));
    }
    (ag, mine)
}

#[test]
fn two_neovims_and_an_agent_converge() {
    let Some(nvim) = nvim() else { return };
    let seed: u64 = std::env::var("DS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261121);
    let n: usize = std::env::var("DS_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    eprintln!("fuzz seed {seed}, {n} edits per party (DS_FUZZ_SEED / DS_FUZZ_N to change)");
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".dist-space")).unwrap();
    std::fs::write(ws.join("f.txt"), "hello world\nsecond line\n").unwrap();
    let mut d = Daemon::start(&ws);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let go = out.join("go");
    let stop = out.join("stop");
    let file = d.root.join("f.txt");
    let mut kids = Vec::new();
    for (k, name) in ["Alice", "Bob"].iter().enumerate() {
        let env = [
            ("DS_FILE", file.display().to_string()),
            ("DS_NAME", name.to_string()),
            ("DS_SEED", (seed + 1 + k as u64).to_string()),
            ("DS_N", n.to_string()),
            ("DS_OUT", out.join(name).display().to_string()),
            ("DS_GO", go.display().to_string()),
            ("DS_STOP", stop.display().to_string()),
        ];
        kids.push(spawn_nvim(&nvim, &d, &script("fuzz.lua"), &env));
    }
    for name in ["Alice", "Bob"] {
        let p = out.join(format!("{name}.ready"));
        wait_for("nvim attached", Duration::from_secs(30), || {
            p.exists().then_some(())
        });
    }
    let ag = RevAgent::new(&d, "G", "f.txt");
    let go2 = go.clone();
    let agent = std::thread::spawn(move || agent_run(ag, seed, n, &go2));
    std::fs::write(&go, "").unwrap();
    let t_go = Instant::now();
    for name in ["Alice", "Bob"] {
        let p = out.join(format!("{name}.done"));
        wait_for("nvim done", Duration::from_secs(120), || {
            p.exists().then_some(())
        });
    }
    let (mut ag, agent_markers) = agent.join().unwrap();
    let t_done = Instant::now();
    eprintln!("edits took {:?}", t_done - t_go);
    let mut checker = d.connect();
    checker.initialize("checker", false, &[]);
    let uri = d.uri("f.txt");
    let mut last = (String::new(), String::new(), String::new(), String::new());
    let converged = (|| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            ag.pump(Duration::from_millis(5));
            let a = std::fs::read_to_string(out.join("Alice")).unwrap_or_default();
            let b = std::fs::read_to_string(out.join("Bob")).unwrap_or_default();
            let s = checker.text(&uri);
            let g = ag.text.to_string();
            if a == s && b == s && g == s {
                return Some(t0.elapsed());
            }
            if std::env::var("DS_FUZZ_TRACE").is_ok() {
                eprintln!(
                    "{:?}: A {} B {} G {} (len {})",
                    t0.elapsed(),
                    a == s,
                    b == s,
                    g == s,
                    s.len()
                );
            }
            last = (a, b, g, s);
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    })();
    let Some(conv) = converged else {
        let (a, b, g, s) = &last;
        panic!(
            "no convergence (seed {seed}).\n--- Alice ({})\n{a}\n--- Bob ({})\n{b}\n--- agent ({})\n{g}\n--- daemon ({})\n{s}",
            a.len(),
            b.len(),
            g.len(),
            s.len()
        );
    };
    eprintln!("converged {conv:?} after the last edit (includes the 20 ms polling of the buffers)");
    let text = checker.text(&uri);
    // Disk: flushed within the debounce window.
    wait_for("disk equals document", Duration::from_secs(10), || {
        (std::fs::read_to_string(&file).ok()? == text).then_some(())
    });
    // Every marker exactly once (deletes never touch a marker they can see, and a concurrent
    // delete cannot cover text it has not seen).
    let mut all = agent_markers;
    for name in ["Alice", "Bob"] {
        let m = std::fs::read_to_string(out.join(format!("{name}.markers"))).unwrap();
        all.extend(m.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    assert!(all.len() > 3 * n / 10, "markers: {}", all.len());
    for m in &all {
        assert_eq!(
            text.matches(m.as_str()).count(),
            1,
            "marker {m} (seed {seed})"
        );
    }
    std::fs::write(&stop, "").unwrap();
    for mut k in kids {
        let t0 = Instant::now();
        loop {
            if let Some(st) = k.try_wait().unwrap() {
                assert!(st.success(), "nvim failed: {st}");
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = k.kill();
                panic!("nvim did not quit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let final_a = std::fs::read_to_string(out.join("Alice")).unwrap();
    assert_eq!(final_a, text);
    eprintln!(
        "final text {} chars; agent applied {} remote edits, dropped {} stale ones",
        text.chars().count(),
        ag.applied,
        ag.dropped
    );
    d.stop();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn presence_shows_the_other_cursor() {
    let Some(nvim) = nvim() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".dist-space")).unwrap();
    std::fs::write(ws.join("p.txt"), "line zero\nline one\nline two 😀 end\n").unwrap();
    let d = Daemon::start(&ws);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let file = d.root.join("p.txt");
    let env = |role: &str| {
        [
            ("DS_FILE", file.display().to_string()),
            ("DS_ROLE", role.to_string()),
            ("DS_OUT", out.display().to_string()),
        ]
    };
    let mut a = spawn_nvim(&nvim, &d, &script("presence.lua"), &env("A"));
    let mut b = spawn_nvim(&nvim, &d, &script("presence.lua"), &env("B"));
    let res = out.join("A.result");
    wait_for("A's result", Duration::from_secs(40), || {
        res.exists().then_some(())
    });
    let r = std::fs::read_to_string(&res).unwrap();
    // B put its cursor on row 2, byte column 14 (after "line two 😀 "; the emoji is 4 bytes).
    assert_eq!(r.trim(), "Bob 2 14", "extmark seen by A: {r}");
    for k in [&mut a, &mut b] {
        let st = k.wait().unwrap();
        assert!(st.success());
    }
}

/// The daemon dies (kill -9); the plugin reconnects (its `dist-space lsp` starts a new daemon)
/// and re-sends the buffer: the text typed before, during and after the outage all reaches
/// the new daemon and the disk.
#[test]
fn plugin_reconnects_after_daemon_crash() {
    let Some(nvim) = nvim() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".dist-space")).unwrap();
    std::fs::write(ws.join("r.txt"), "text\n").unwrap();
    let mut d = Daemon::start(&ws);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let file = d.root.join("r.txt");
    let env = [
        ("DS_FILE", file.display().to_string()),
        ("DS_OUT", out.display().to_string()),
    ];
    let mut nv = spawn_nvim(&nvim, &d, &script("reconnect.lua"), &env);
    wait_for("typed", Duration::from_secs(30), || {
        out.join("typed").exists().then_some(())
    });
    wait_for("first edit on disk", Duration::from_secs(10), || {
        (std::fs::read_to_string(&file).ok()? == "before text\n").then_some(())
    });
    let old = d.pid();
    d.kill9();
    std::fs::write(out.join("killed"), "").unwrap();
    wait_for("reattached", Duration::from_secs(40), || {
        out.join("result").exists().then_some(())
    });
    // The new daemon was started detached by the plugin's `dist-space lsp`.
    let info = wait_for("new daemon", Duration::from_secs(10), || read_info(&d.root));
    let pid = info["pid"].as_u64().unwrap() as i32;
    struct TermOnDrop(i32);
    impl Drop for TermOnDrop {
        fn drop(&mut self) {
            unsafe {
                libc::kill(self.0, libc::SIGTERM);
            }
        }
    }
    let _guard = TermOnDrop(pid);
    assert_ne!(pid as u32, old);
    {
        let mut c = Client::connect(std::path::Path::new(info["socket"].as_str().unwrap()));
        c.initialize("checker", false, &[]);
        let uri = d.uri("r.txt");
        wait_for(
            "all text in the new daemon",
            Duration::from_secs(10),
            || (c.text(&uri) == "after offline before text\n").then_some(()),
        );
        wait_for("all text on disk", Duration::from_secs(10), || {
            (std::fs::read_to_string(&file).ok()? == "after offline before text\n").then_some(())
        });
    }
    std::fs::write(out.join("stop"), "").unwrap();
    let st = nv.wait().unwrap();
    assert!(st.success());
}

/// Remote edits before the cursor (a new line above, text before it on its line) move it
/// with the text it was on.
#[test]
fn remote_edits_keep_the_cursor_on_its_text() {
    let Some(nvim) = nvim() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join(".dist-space")).unwrap();
    std::fs::write(ws.join("c.txt"), "line zero\nline one\n").unwrap();
    let d = Daemon::start(&ws);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let env = [
        ("DS_FILE", d.root.join("c.txt").display().to_string()),
        ("DS_OUT", out.display().to_string()),
    ];
    let mut nv = spawn_nvim(&nvim, &d, &script("cursor.lua"), &env);
    wait_for("nvim ready", Duration::from_secs(30), || {
        out.join("cursor.ready").exists().then_some(())
    });
    let mut g = RevAgent::new(&d, "G", "c.txt");
    g.edit(0..0, "new line\n"); // a line above
    let at = "new line\nline zero\n".chars().count();
    g.edit(at..at, "XXé "); // before the cursor on its line (é is 2 bytes)
    let res = out.join("cursor.result");
    wait_for("result", Duration::from_secs(30), || {
        res.exists().then_some(())
    });
    assert!(nv.wait().unwrap().success());
    let r = std::fs::read_to_string(&res).unwrap();
    // Row 3 (1-based), byte col 5 + 5 ("XXé " is 5 bytes): still on the "o" of "one".
    assert_eq!(r, "3 10 o", "cursor after remote edits: {r}");
}
