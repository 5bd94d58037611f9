//! The daemon over its real socket: ordering, lifecycle, bad input.
mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use serde_json::json;

/// 10,000 rapid didChange notifications, written as one burst: the result must be exactly the
/// sequential application (tower-lsp runs handlers concurrently; our layer must not).
#[test]
fn ten_thousand_did_changes_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "start\n").unwrap();
    let mut d = Daemon::start(dir.path());
    let mut c = d.connect();
    let init = c.initialize("orderer", false, &["utf-16"]);
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(
        init["result"]["capabilities"]["textDocumentSync"]["change"],
        2
    );
    let uri = d.uri("a.txt");
    c.did_open(&uri, "start\n");
    // Model: one line of text (before the final newline). Order matters: inserts at positions
    // that depend on the length so far, and deletes of the first char.
    let mut model: Vec<char> = "start".chars().collect();
    let mut burst = Vec::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..10_000u32 {
        let (range, text) = if i % 5 == 4 && !model.is_empty() {
            model.remove(0);
            ((0, 1), String::new())
        } else {
            let ch = ['a', 'b', 'é', 'ß', '7'][rng.usize(..5)];
            let p = (i as usize * 31) % (model.len() + 1);
            model.insert(p, ch);
            // utf-16 positions: all chars here are one code unit.
            ((p, p), ch.to_string())
        };
        let v = json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": i + 1},
            "contentChanges": [{"range": {"start": {"line": 0, "character": range.0},
                                          "end": {"line": 0, "character": range.1}}, "text": text}]}});
        burst.extend(frame(&v));
    }
    c.send_raw(&burst);
    let expected: String = model.iter().collect::<String>() + "\n";
    assert_eq!(c.text(&uri), expected);
    d.stop();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        expected
    );
    assert!(
        !d.root.join(".dist-space/daemon.json").exists(),
        "info file removed"
    );
}

#[test]
fn second_serve_reports_running_one_and_stale_lock_recovers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.txt"), "x").unwrap();
    let mut d = Daemon::start(dir.path());
    let out = std::process::Command::new(bin())
        .arg("serve")
        .arg(dir.path())
        .env("XDG_RUNTIME_DIR", d.runtime.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("already running") && s.contains(&d.pid().to_string()),
        "{s}"
    );
    // Crash: the lock and info file stay behind; a new daemon takes over.
    let old = d.pid();
    d.kill9();
    assert!(dir.path().join(".dist-space/daemon.json").exists());
    let runtime = std::mem::replace(&mut d.runtime, tempfile::tempdir().unwrap());
    let mut d2 = Daemon::start_in(dir.path(), runtime);
    assert_ne!(d2.pid(), old);
    let mut c = d2.connect();
    c.initialize("after-crash", false, &[]);
    let uri = d2.uri("x.txt");
    c.did_open(&uri, "x");
    assert_eq!(c.text(&uri), "x");
    d2.stop();
}

#[test]
fn bad_input_never_changes_a_document() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.txt"), "héllo 😀 world\n").unwrap();
    let d = Daemon::start(dir.path());
    let mut c = d.connect();
    let init = c.initialize("bad", false, &["utf-16", "utf-32", "utf-8"]);
    assert_eq!(init["result"]["capabilities"]["positionEncoding"], "utf-8");
    let uri = d.uri("b.txt");
    let orig = "héllo 😀 world\n";
    c.did_open(&uri, orig);
    // Malformed JSON body.
    c.send_raw(b"Content-Length: 9\r\n\r\n{\"jsonrp\"");
    // Unknown request method: an error reply.
    let r = c.request("textDocument/frobnicate", json!({}));
    assert!(r["error"]["code"].as_i64().is_some(), "{r}");
    let r = c.request("dist-space/frobnicate", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    // A standard request the daemon does not announce: method-not-found naming it, and no
    // ERROR line in the daemon log for it (stock clients may send these at every keystroke).
    for _ in 0..3 {
        let r = c.request("textDocument/hover", json!({}));
        assert_eq!(r["error"]["code"], -32601, "{r}");
        let msg = r["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("textDocument/hover"), "{r}");
    }
    let log =
        std::fs::read_to_string(dir.path().join(".dist-space/daemon.log")).unwrap_or_default();
    assert!(!log.contains("not implemented"), "{log}");
    // Unknown notification, change to an unknown document, change outside the workspace,
    // a position inside a UTF-8 sequence (byte 2 is inside 'é'), a range ending before it
    // starts, negative numbers, wrong types.
    c.notify("dist-space/nope", json!({}));
    for (u, range) in [
        (
            d.uri("nope.txt"),
            json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}),
        ),
        (
            "file:///etc/passwd".to_string(),
            json!({"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}),
        ),
        (
            uri.clone(),
            json!({"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": 2}}),
        ),
        (
            uri.clone(),
            json!({"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 1}}),
        ),
        (
            uri.clone(),
            json!({"start": {"line": -1, "character": 0}, "end": {"line": 0, "character": 0}}),
        ),
        (
            uri.clone(),
            json!({"start": {"line": "x", "character": 0}, "end": {"line": 0, "character": 0}}),
        ),
    ] {
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": u, "version": 1}, "contentChanges": [{"range": range, "text": "X"}]}),
        );
    }
    c.notify("textDocument/didChange", json!({"nonsense": true}));
    // Oversized frame on a second connection: that connection is closed, the daemon lives.
    let mut big = d.connect();
    big.send_raw(format!("Content-Length: {}\r\n\r\n", 1u64 << 40).as_bytes());
    let _ = big.w.flush();
    assert_eq!(c.text(&uri), orig);
    // Out-of-range positions clamp (LSP rule): line 99 is the end of the document.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range":
            {"start": {"line": 99, "character": 0}, "end": {"line": 99, "character": 5}}, "text": "!"}]}),
    );
    assert_eq!(c.text(&uri), format!("{orig}!"));
    // The daemon still accepts new connections.
    let mut c2 = d.connect();
    c2.initialize("still-alive", false, &[]);
    assert_eq!(c2.text(&uri), format!("{orig}!"));
    std::thread::sleep(Duration::from_millis(10));
}

/// A client that disconnects right after a burst loses nothing.
#[test]
fn disconnect_loses_nothing_sent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), "").unwrap();
    let mut d = Daemon::start(dir.path());
    let uri = d.uri("c.txt");
    let mut expected = String::new();
    {
        let mut c = d.connect();
        c.initialize("leaver", false, &["utf-32"]);
        c.did_open(&uri, "");
        let mut burst = Vec::new();
        for i in 0..2000 {
            let s = format!("{}", i % 10);
            let v = json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": i},
                "contentChanges": [{"range": {"start": {"line": 0, "character": i},
                                              "end": {"line": 0, "character": i}}, "text": s}]}});
            expected.push_str(&s);
            burst.extend(frame(&v));
        }
        c.send_raw(&burst);
        // dropped here: the socket closes with the burst possibly still unread by the daemon
    }
    let mut c = d.connect();
    c.initialize("checker", false, &[]);
    wait_for("all edits", Duration::from_secs(10), || {
        (c.text(&uri) == expected).then_some(())
    });
    d.stop();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("c.txt")).unwrap(),
        expected
    );
}

/// Two revision-protocol agents typing at the same spot at once converge, nothing lost.
#[test]
fn revision_protocol_agents_converge() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.txt"), "0123456789\n").unwrap();
    let d = Daemon::start(dir.path());
    let mut a = RevAgent::new(&d, "A", "r.txt");
    let mut b = RevAgent::new(&d, "B", "r.txt");
    let mut rng = fastrand::Rng::with_seed(3);
    for i in 0..300 {
        for (ag, tag) in [(&mut a, 'a'), (&mut b, 'b')] {
            ag.pump(Duration::ZERO);
            let len = ag.text.len_chars();
            if i % 4 == 3 && len > 2 {
                let p = rng.usize(..len - 1);
                let ch = ag.text.char(p);
                if ch != tag && !ch.is_ascii_uppercase() && ch != '\n' {
                    ag.edit(p..p + 1, "");
                    continue;
                }
            }
            let p = if i % 3 == 0 {
                5.min(len)
            } else {
                rng.usize(..=len)
            };
            let s = if i % 10 == 0 {
                format!("{}\n", tag.to_ascii_uppercase())
            } else {
                tag.to_string()
            };
            ag.edit(p..p, &s);
        }
    }
    let mut c = d.connect();
    c.initialize("checker", false, &[]);
    let uri = d.uri("r.txt");
    wait_for("convergence", Duration::from_secs(20), || {
        a.pump(Duration::from_millis(5));
        b.pump(Duration::from_millis(5));
        let t = c.text(&uri);
        (a.text == t.as_str() && b.text == t.as_str()).then_some(())
    });
    let t = a.text.to_string();
    assert_eq!(t.matches('A').count(), 30);
    assert_eq!(t.matches('B').count(), 30);
}

/// didOpen with text that differs from the document is reconciled as an edit: an editor that
/// loaded the file from disk and changed it keeps its change, and so does everyone else.
#[test]
fn did_open_with_different_text_is_an_edit_not_an_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("o.txt"), "one\ntwo\nthree\n").unwrap();
    let mut d = Daemon::start(dir.path());
    let uri = d.uri("o.txt");
    let mut a = d.connect();
    a.initialize("A", false, &["utf-32"]);
    a.did_open(&uri, "one\ntwo\nthree\n");
    a.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 1}, "contentChanges": [{"range":
            {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "A:"}]}),
    );
    assert_eq!(a.text(&uri), "A:one\ntwo\nthree\n");
    // B loaded the file before A's edit reached the disk and added a line.
    let mut b = d.connect();
    b.initialize("B", false, &["utf-32"]);
    b.did_open(&uri, "one\ntwo\nthree\nfour (B)\n");
    assert_eq!(b.text(&uri), "A:one\ntwo\nthree\nfour (B)\n");
    // B keeps typing at its own version.
    b.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 1}, "contentChanges": [{"range":
            {"start": {"line": 1, "character": 3}, "end": {"line": 1, "character": 3}}, "text": "!"}]}),
    );
    assert_eq!(b.text(&uri), "A:one\ntwo!\nthree\nfour (B)\n");
    d.stop();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.txt")).unwrap(),
        "A:one\ntwo!\nthree\nfour (B)\n"
    );
}

/// A plain LSP client (VS Code style: versioned workspace/applyEdit) and a revision-protocol
/// agent type at the same time: both end with the daemon's text, nothing lost or doubled.
#[test]
fn plain_lsp_client_gets_remote_edits_via_versioned_apply_edit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.txt"), "vscode\n").unwrap();
    let d = Daemon::start(dir.path());
    let mut p = PlainEditor::new(&d, "code", "v.txt");
    let mut g = RevAgent::new(&d, "agent", "v.txt");
    let mut rng = fastrand::Rng::with_seed(11);
    for i in 0..300 {
        p.pump(Duration::ZERO);
        g.pump(Duration::ZERO);
        let lp = p.text.len_chars();
        let pos = if i % 2 == 0 { 0 } else { rng.usize(..=lp) };
        p.edit(pos..pos, if i % 10 == 0 { "P\n" } else { "p" });
        let lg = g.text.len_chars();
        let pos = if i % 2 == 0 { 0 } else { rng.usize(..=lg) };
        g.edit(pos..pos, if i % 10 == 0 { "G\n" } else { "é" });
    }
    let mut c = d.connect();
    c.initialize("checker", false, &[]);
    let uri = d.uri("v.txt");
    wait_for("convergence", Duration::from_secs(30), || {
        p.pump(Duration::from_millis(2));
        g.pump(Duration::from_millis(2));
        let t = c.text(&uri);
        (p.text == t.as_str() && g.text == t.as_str()).then_some(())
    });
    let t = c.text(&uri);
    assert_eq!(t.matches('P').count(), 30);
    assert_eq!(t.matches('G').count(), 30);
    assert_eq!(t.chars().count(), "vscode\n".len() + 300 + 30 + 300 + 30);
    if std::env::var("DS_DEBUG_LOG").is_ok() {
        let log = std::fs::read_to_string(d.root.join(".dist-space/daemon.log")).unwrap();
        eprintln!("{log}");
    }
    assert!(p.applied > 0, "the plain client received remote edits");
    eprintln!(
        "plain client: {} applyEdit applied, {} rejected as stale",
        p.applied, p.rejected
    );
}

/// Beyond the connection limit (64) new connections are closed at once; the others work.
#[test]
fn connection_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.txt"), "k").unwrap();
    let d = Daemon::start(dir.path());
    let mut held: Vec<Client> = (0..64).map(|_| d.connect()).collect();
    // Make sure the daemon has accepted all of them.
    held[63].initialize("last", false, &[]);
    let extra = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1];
    let n = std::io::Read::read(&mut &extra, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the 65th connection is closed by the daemon");
    let uri = d.uri("k.txt");
    assert_eq!(held[63].text(&uri), "k");
    // Freeing a slot lets a new editor in.
    held.truncate(10);
    let mut c = wait_for("a free slot", Duration::from_secs(10), || {
        let mut c = d.connect();
        let id = c.request_id();
        let init = frame(&json!({"jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {"capabilities": {}}}));
        // A refused connection is closed: the write may fail, or no answer comes.
        std::io::Write::write_all(&mut c.w, &init).ok()?;
        c.rx.recv_timeout(Duration::from_millis(500))
            .ok()
            .map(|_| c)
    });
    c.notify("initialized", json!({}));
    assert_eq!(c.text(&uri), "k");
}

/// Two editors were offline while the daemon was killed (-9) and restarted; each typed
/// something meanwhile and reopens with its buffer, one right after the other (with and without
/// a write-back between them). Each reopen is merged as that editor's own edit: both offline
/// texts are kept (the second reopen must not replace the first one's text), and both editors
/// end in sync with the daemon and keep editing at their versions.
#[test]
fn reopen_after_restart_keeps_every_editors_offline_text() {
    for wait_for_write_back in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("o.txt"), "one\ntwo\nthree\n").unwrap();
        let mut d = Daemon::start(dir.path());
        let mut a = RevAgent::new(&d, "Nia", "o.txt");
        a.edit(0..0, "A:");
        let uri = d.uri("o.txt");
        wait_for("A's edit on disk", Duration::from_secs(10), || {
            (std::fs::read_to_string(d.root.join("o.txt")).ok()? == "A:one\ntwo\nthree\n")
                .then_some(())
        });
        drop(a);
        d.kill9();
        let root = d.root.clone();
        let d = Daemon::start(&root);
        // Vic (a plain LSP client, like VS Code) typed a line after "one" while offline.
        let v_text = "A:one\nV offline\ntwo\nthree\n";
        let mut v = d.connect();
        let r = v.request(
            "initialize",
            json!({"processId": null, "rootUri": null,
                   "capabilities": {"workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}}},
                   "initializationOptions": {"name": "Vic"}}),
        );
        assert_eq!(r["result"]["capabilities"]["positionEncoding"], "utf-16");
        v.notify("initialized", json!({}));
        v.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "text", "version": 1, "text": v_text}}),
        );
        if wait_for_write_back {
            wait_for("Vic's text on disk", Duration::from_secs(10), || {
                std::fs::read_to_string(root.join("o.txt"))
                    .ok()?
                    .contains("V offline")
                    .then_some(())
            });
        }
        // Nia (revision protocol, like the Neovim plugin) typed a last line while offline.
        let n_text = "A:one\ntwo\nthree\nN offline\n";
        let mut nc = d.connect();
        nc.initialize("Nia", true, &["utf-32"]);
        nc.did_open(&uri, n_text);
        let mut n = RevAgent::opened(nc, uri.clone(), n_text);
        let mut v = PlainEditor {
            c: v,
            uri: uri.clone(),
            text: ropey::Rope::from_str(v_text),
            version: 1,
            applied: 0,
            rejected: 0,
        };
        let merged = "A:one\nV offline\ntwo\nthree\nN offline\n";
        assert_eq!(
            n.c.text(&uri),
            merged,
            "wait_for_write_back {wait_for_write_back}"
        );
        wait_for("both editors in sync", Duration::from_secs(10), || {
            n.pump(Duration::from_millis(20));
            v.pump(Duration::from_millis(20));
            (n.text == merged && v.text == merged).then_some(())
        });
        // Both keep editing at their versions: the bookkeeping matches the daemon's.
        n.edit(0..0, "N:");
        let end = v.text.len_chars();
        v.edit(end..end, "V!\n");
        let want = "N:A:one\nV offline\ntwo\nthree\nN offline\nV!\n";
        wait_for("the last edits", Duration::from_secs(10), || {
            n.pump(Duration::from_millis(20));
            v.pump(Duration::from_millis(20));
            (n.text == want && v.text == want).then_some(())
        });
        assert_eq!(n.c.text(&uri), want);
    }
}
