//! The agent API against a real `dist-space serve` process: real jsonrpsee
//! WebSocket and HTTP clients with the token from the info file, every method, every error,
//! and an agent edit made at a version more than 100 edits old while an editor types.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::time::Duration;

use agent::{auth, endpoint, obj, workspace, Agent};
use common::{wait_for, Daemon, RevAgent};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde_json::{json, Value};

#[test]
fn info_file_has_endpoint_and_token_and_requests_without_token_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let (url, token) = endpoint(&d);
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(d.root.join(".dist-space/daemon.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let rt = tokio::runtime::Runtime::new().unwrap();
    // WebSocket: no token, wrong token.
    let no = rt.block_on(WsClientBuilder::default().build(&url));
    assert!(no.is_err(), "connected without a token");
    let wrong = rt.block_on(
        WsClientBuilder::default()
            .set_headers(auth(&"0".repeat(64)))
            .build(&url),
    );
    assert!(wrong.is_err(), "connected with a wrong token");
    // HTTP: refused without the token, served with it.
    let http_url = url.replacen("ws://", "http://", 1);
    let bare = HttpClientBuilder::default().build(&http_url).unwrap();
    let r = rt.block_on(bare.request::<Value, _>("workspace.info", serde_json::Map::new()));
    match r {
        Err(ClientError::Transport(e)) => assert!(e.to_string().contains("401"), "{e}"),
        other => panic!("expected a 401 transport error, got {other:?}"),
    }
    let http = HttpClientBuilder::default()
        .set_headers(auth(&token))
        .build(&http_url)
        .unwrap();
    let info = rt
        .block_on(http.request::<Value, _>("workspace.info", serde_json::Map::new()))
        .unwrap();
    assert_eq!(info["root"], json!(d.root));
}

#[test]
fn info_list_read() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let mut ed = d.connect();
    ed.initialize("Ed", false, &["utf-16"]);
    ed.did_open(&d.uri("notes.md"), "# notes\n😀 smile\nend\n");
    ed.request("dist-space/info", json!({})); // the open has been handled
    let a = Agent::connect(&d);

    let info = a.ok("workspace.info", Value::Null);
    assert_eq!(info["root"], json!(d.root));
    let parts = info["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["name"], "Ed");
    assert_eq!(parts[0]["kind"], "editor");
    assert!(info["version"].as_u64().is_some());

    let all = a.ok("fs.list", Value::Null);
    let files = all["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["blob.bin", "notes.md", "src/main.rs"]);
    let main = &files[2];
    assert_eq!(main["languageId"], "rust");
    assert_eq!(main["size"], 29);
    assert_eq!(main["text"], true);
    assert_eq!(main["dirty"], false);
    assert_eq!(main["open"], false);
    assert_eq!(files[1]["open"], true);
    assert_eq!(files[0]["text"], false);

    let rs = a.ok("fs.list", json!({"glob": "**/*.rs"}));
    let rs: Vec<&str> = rs["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(rs, ["src/main.rs"]);
    let (code, _) = a.err("fs.list", json!({"glob": "a[b"}));
    assert_eq!(code, agent_api::error::INVALID_PARAMS);

    let r = a.ok("fs.read", json!({"path": "notes.md"}));
    assert_eq!(r["text"], "# notes\n😀 smile\nend\n");
    assert_eq!(r["totalLines"], 4);
    assert!(r["version"].is_object());
    let r = a.ok(
        "fs.read",
        json!({"path": "notes.md", "startLine": 1, "endLine": 2}),
    );
    assert_eq!(r["text"], "😀 smile\n");
    assert_eq!(r["startLine"], 1);
    let r = a.ok("fs.read", json!({"path": "notes.md", "startLine": 2}));
    assert_eq!(r["text"], "end\n");
}

#[test]
fn edit_applies_and_reaches_editors_and_disk() {
    let dir = workspace();
    let mut d = Daemon::start(dir.path());
    let mut ed = RevAgent::new(&d, "Ed", "notes.md");
    let a = Agent::connect(&d);
    let r = a.ok("fs.read", json!({"path": "notes.md"}));
    let v0 = r["version"].clone();
    // Two simultaneous edits in UTF-16 (the emoji is two units), given out of order.
    let out = a.ok(
        "fs.edit",
        json!({"path": "notes.md", "version": v0, "encoding": "utf-16", "edits": [
            {"range": {"start": {"line": 1, "character": 3}, "end": {"line": 1, "character": 8}}, "text": "grin"},
            {"range": {"start": {"line": 0, "character": 2}, "end": {"line": 0, "character": 7}}, "text": "NOTES"},
        ]}),
    );
    let want = "# NOTES\n😀 grin\nend\n";
    let now = a.ok("fs.read", json!({"path": "notes.md"}));
    assert_eq!(now["text"], want);
    assert_eq!(now["version"], out["version"]);
    assert_ne!(out["version"], v0);
    // Where the edits landed, in request order.
    let e = out["edits"].as_array().unwrap();
    assert_eq!(
        e[0]["range"],
        json!({"start": {"line": 1, "character": 3}, "end": {"line": 1, "character": 7}})
    );
    assert_eq!(e[0]["offsets"], json!({"start": 10, "end": 14}));
    assert_eq!(e[1]["offsets"], json!({"start": 2, "end": 7}));
    // Char offsets, against the new version: a second edit by the same agent.
    let out2 = a.ok(
        "fs.edit",
        json!({"path": "notes.md", "version": out["version"], "edits": [
            {"offsets": {"start": 15, "end": 15}, "text": "THE "}]}),
    );
    assert_eq!(out2["edits"][0]["offsets"], json!({"start": 15, "end": 19}));
    let want = "# NOTES\n😀 grin\nTHE end\n";
    // The editor receives it.
    wait_for(
        "the editor to receive the agent's edits",
        Duration::from_secs(10),
        || {
            ed.pump(Duration::from_millis(50));
            (ed.text == want).then_some(())
        },
    );
    let listed = a.ok("fs.list", json!({"glob": "notes.md"}));
    assert_eq!(listed["files"][0]["version"], out2["version"]);
    d.stop();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.md")).unwrap(),
        want
    );
}

#[test]
fn errors_have_stable_codes_and_change_nothing() {
    use agent_api::error::*;
    let dir = workspace();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let before = a.ok("fs.read", json!({"path": "notes.md"}));
    let v = before["version"].clone();
    let edit = |path: &str, version: Value, edits: Value| {
        a.err(
            "fs.edit",
            json!({"path": path, "version": version, "edits": edits}),
        )
    };
    let one = json!([{"offsets": {"start": 0, "end": 0}, "text": "x"}]);

    // Paths.
    for p in [
        "../outside.txt",
        "/etc/passwd",
        ".dist-space/daemon.json",
        "etc/passwd",
        "src/../../x",
    ] {
        assert_eq!(
            a.err("fs.read", json!({"path": p})).0,
            PATH_OUTSIDE_ROOT,
            "read {p}"
        );
        assert_eq!(
            edit(p, v.clone(), one.clone()).0,
            PATH_OUTSIDE_ROOT,
            "edit {p}"
        );
    }
    assert_eq!(a.err("fs.read", json!({"path": ""})).0, BAD_PATH);
    let (code, msg) = a.err("fs.read", json!({"path": "nope.txt"}));
    assert_eq!(code, NOT_FOUND);
    assert!(msg.contains("nope.txt"), "{msg}");
    assert_eq!(a.err("fs.read", json!({"path": "blob.bin"})).0, NOT_TEXT);
    assert_eq!(a.err("fs.read", json!({"path": "src"})).0, NOT_TEXT);
    // Params.
    assert_eq!(a.err("fs.read", json!({})).0, INVALID_PARAMS);
    assert_eq!(
        a.err("fs.read", json!({"path": "notes.md", "bogus": 1})).0,
        INVALID_PARAMS
    );
    assert_eq!(
        edit("notes.md", v.clone(), json!([{"text": "x"}])).0,
        INVALID_PARAMS
    );
    assert_eq!(
        a.err(
            "fs.edit",
            json!({"path": "notes.md", "version": v, "encoding": "utf-7", "edits": one})
        )
        .0,
        INVALID_PARAMS
    );
    // Versions.
    let (code, msg) = edit("notes.md", json!({"nobody": 5}), one.clone());
    assert_eq!(code, UNKNOWN_VERSION);
    assert!(msg.contains("nobody"), "{msg}");
    // Overlapping ranges.
    let (code, msg) = edit(
        "notes.md",
        v.clone(),
        json!([{"offsets": {"start": 0, "end": 4}, "text": "a"}, {"offsets": {"start": 2, "end": 6}, "text": "b"}]),
    );
    assert_eq!(code, OVERLAPPING_EDITS, "{msg}");
    assert_eq!(
        edit("notes.md", v.clone(), json!([{"offsets": {"start": 1, "end": 1}, "text": "a"}, {"offsets": {"start": 1, "end": 1}, "text": "b"}])).0,
        OVERLAPPING_EDITS
    );
    // Bad positions: inside the emoji's surrogate pair, negative, end before start, past the end.
    let range = |l: i64, c: i64, l2: i64, c2: i64| json!([{"range": {"start": {"line": l, "character": c}, "end": {"line": l2, "character": c2}}, "text": "x"}]);
    for (what, edits) in [
        ("inside a surrogate pair", range(1, 1, 1, 1)),
        ("negative", range(0, -1, 0, 0)),
        ("end before start", range(1, 4, 0, 0)),
        (
            "offsets past the end",
            json!([{"offsets": {"start": 0, "end": 999}, "text": ""}]),
        ),
        (
            "offsets reversed",
            json!([{"offsets": {"start": 3, "end": 2}, "text": ""}]),
        ),
    ] {
        let (code, msg) = edit("notes.md", v.clone(), edits);
        assert_eq!(code, BAD_POSITION, "{what}: {msg}");
    }
    // Oversized request (over the 16 MiB limit): refused, nothing applied.
    let huge = "x".repeat(17 * 1024 * 1024);
    let r = a.call(
        "fs.edit",
        json!({"path": "notes.md", "version": v, "edits": [{"offsets": {"start": 0, "end": 0}, "text": huge}]}),
    );
    assert!(r.is_err(), "an oversized request was accepted");
    // Nothing changed.
    let a2 = Agent::connect(&d);
    let after = a2.ok("fs.read", json!({"path": "notes.md"}));
    assert_eq!(after, before);
    assert!(std::fs::read_to_string(dir.path().join("notes.md")).unwrap() == before["text"]);
}

/// The agent reads, an editor then types 150 characters into the same function (each a
/// separate change), and the agent edits at the version it read, 150 edits old: both edits are
/// in the result, the agent's where it meant them.
#[test]
fn agent_edit_at_a_version_150_edits_old_while_an_editor_types() {
    let dir = workspace();
    let mut d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let read = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let v0 = read["version"].clone();
    let mut ed = RevAgent::new(&d, "Ed", "src/main.rs");
    // Type before `let` on line 1 (chars 16..): "    " is at 12..16.
    let typed: String = (0..150).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    for (i, ch) in typed.chars().enumerate() {
        ed.edit(16 + i..16 + i, &ch.to_string());
        ed.pump(Duration::ZERO);
    }
    let uri = ed.uri.clone();
    let mid = ed.c.text(&uri); // all 150 changes are applied
    assert_eq!(mid, format!("fn main() {{\n    {typed}let x = 1;\n}}\n"));
    let now = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let ed_seq = now["version"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("Ed#"))
        .map(|(_, s)| s.as_u64().unwrap())
        .expect("the editor's events");
    assert!(ed_seq >= 149, "the editor made {} events", ed_seq + 1);
    // Meanwhile the editor keeps typing at the end of the same line.
    ed.edit(16 + 150 + 10..16 + 150 + 10, "//");
    // The agent edits at v0 in line/character (UTF-16): "1" -> "42", and a line on top.
    let out = a.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": v0, "edits": [
            {"range": {"start": {"line": 1, "character": 12}, "end": {"line": 1, "character": 13}}, "text": "42"},
            {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "// agent\n"},
        ]}),
    );
    let want = format!("// agent\nfn main() {{\n    {typed}let x = 42;//\n}}\n");
    // The editor's own request is ordered after its "//" (another connection's is not).
    assert_eq!(ed.c.text(&uri), want);
    let text = a.ok("fs.read", json!({"path": "src/main.rs"}))["text"].clone();
    assert_eq!(text, want);
    // Where the edit landed, as the reply says.
    let col = 4 + 150 + 8;
    assert_eq!(
        out["edits"][0]["range"],
        json!({"start": {"line": 2, "character": col}, "end": {"line": 2, "character": col + 2}})
    );
    let off = &out["edits"][0]["offsets"];
    let chars: Vec<char> = want.chars().collect();
    let s: String = chars
        [off["start"].as_u64().unwrap() as usize..off["end"].as_u64().unwrap() as usize]
        .iter()
        .collect();
    assert_eq!(s, "42");
    assert_eq!(out["edits"][1]["offsets"], json!({"start": 0, "end": 9}));
    // The editor converges on the same text; so does the disk.
    wait_for("the editor to converge", Duration::from_secs(10), || {
        ed.pump(Duration::from_millis(50));
        (ed.text == want).then_some(())
    });
    d.stop();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/main.rs")).unwrap(),
        want
    );
}

/// `changes` pushes every document change with its versions; applying the pushed edits in
/// order to the text read at the first `from` reconstructs the final text. The glob filters.
#[test]
fn changes_subscription_pushes_edits_with_versions() {
    use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let mut rs_only: Subscription<Value> =
        a.rt.block_on(a.client.subscribe(
            "changes.subscribe",
            obj(json!({"glob": "**/*.rs"})),
            "changes.unsubscribe",
        ))
        .unwrap();
    let mut all: Subscription<Value> = a
        .rt
        .block_on(
            a.client
                .subscribe("changes.subscribe", obj(json!({})), "changes.unsubscribe"),
        )
        .unwrap();
    // A bad glob is refused.
    let bad = a.rt.block_on(a.client.subscribe::<Value, _>(
        "changes.subscribe",
        obj(json!({"glob": "a[b"})),
        "changes.unsubscribe",
    ));
    assert!(
        matches!(bad, Err(ClientError::Call(e)) if e.code() == agent_api::error::INVALID_PARAMS)
    );

    let start = a.ok("fs.read", json!({"path": "notes.md"}));
    let mut ed = RevAgent::new(&d, "Ed", "notes.md");
    let mut last = start["version"].clone();
    let mut agent_versions = Vec::new();
    for i in 0..20 {
        if i % 2 == 0 {
            ed.edit(0..0, &format!("{i}"));
        } else {
            let out = a.ok(
                "fs.edit",
                json!({"path": "notes.md", "version": last, "edits": [{"offsets": {"start": 2, "end": 2}, "text": "é"}]}),
            );
            last = out["version"].clone();
            agent_versions.push(last.clone());
        }
        ed.pump(Duration::ZERO);
    }
    let uri = ed.uri.clone();
    let final_text = ed.c.text(&uri);
    let final_v = a.ok("fs.read", json!({"path": "notes.md"}))["version"].clone();
    // One .rs edit, to check the filter.
    let main = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let out = a.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": main["version"], "edits": [{"offsets": {"start": 0, "end": 0}, "text": "// hi\n"}]}),
    );

    let next = |s: &mut Subscription<Value>| -> Value {
        a.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), s.next())
                .await
                .expect("a change notice in time")
                .expect("subscription open")
                .expect("a notice")
        })
    };
    let mut text = ropey::Rope::from_str(start["text"].as_str().unwrap());
    let mut at = start["version"].clone();
    let mut boundaries = Vec::new();
    loop {
        let n = next(&mut all);
        if n["path"] == "src/main.rs" {
            assert_eq!(n["to"], out["version"]);
            break;
        }
        assert_eq!(n["path"], "notes.md");
        assert_eq!(n["from"], at, "notices chain by version");
        for e in n["edits"].as_array().unwrap() {
            let s = e["offsets"]["start"].as_u64().unwrap() as usize;
            let en = e["offsets"]["end"].as_u64().unwrap() as usize;
            text.remove(s..en);
            text.insert(s, e["text"].as_str().unwrap());
        }
        at = n["to"].clone();
        boundaries.push(at.clone());
    }
    assert_eq!(at, final_v);
    // Every version the agent was given is a notice boundary.
    for v in &agent_versions {
        assert!(boundaries.contains(v), "{v} is not a notice boundary");
    }
    assert_eq!(text.to_string(), final_text);
    // The filtered subscription saw only the .rs change.
    let n = next(&mut rs_only);
    assert_eq!(n["path"], "src/main.rs");
    assert_eq!(
        n["edits"],
        json!([{"offsets": {"start": 0, "end": 0}, "text": "// hi\n"}])
    );
}

/// The proof with a real Neovim (the plugin over the daemon's socket): the agent
/// reads, Neovim types 300 letters into the same function, and once at least 100 of them are
/// in the daemon the agent edits at the version it read while Neovim keeps typing. Both edits
/// are in the result, the agent's where it meant it; Neovim, the daemon and the disk agree.
#[test]
fn agent_edit_at_an_old_version_while_neovim_types() {
    let Some(nvim) = common::nvim() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {\n    let x = 1;\n}\n").unwrap();
    let mut d = Daemon::start(&ws);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let a = Agent::connect(&d);
    let v0 = a.ok("fs.read", json!({"path": "src/main.rs"}))["version"].clone();
    const N: usize = 300;
    let env = [
        ("DS_FILE", d.root.join("src/main.rs").display().to_string()),
        ("DS_OUT", out.display().to_string()),
        ("DS_N", N.to_string()),
    ];
    let mut nv = common::spawn_nvim(&nvim, &d, &common::script("agent_region.lua"), &env);
    wait_for("nvim attached", Duration::from_secs(30), || {
        out.join("ready").exists().then_some(())
    });
    std::fs::write(out.join("go"), "").unwrap();
    // Wait until the daemon has at least 100 of Neovim's edits.
    let typed: String = (0..N).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let seen = wait_for(
        "100 typed edits in the daemon",
        Duration::from_secs(30),
        || {
            let r = a.ok("fs.read", json!({"path": "src/main.rs"}));
            let line = r["text"]
                .as_str()
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .to_string();
            let k = line.len() - "    let x = 1;".len();
            (k >= 100).then_some(r["version"].clone())
        },
    );
    let nv_events: u64 = seen
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("Nvim#"))
        .map(|(_, s)| s.as_u64().unwrap() + 1)
        .sum();
    assert!(nv_events >= 100, "only {nv_events} editor events since v0");
    let out_edit = a.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": v0, "edits": [
            {"range": {"start": {"line": 1, "character": 12}, "end": {"line": 1, "character": 13}}, "text": "42"},
            {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "// agent\n"},
        ]}),
    );
    // Right after the edit (Neovim may still be typing before `let`): the agent's text is
    // where it meant. The reply's place is at the reply's version; `k` letters were typed then.
    let now = a.ok("fs.read", json!({"path": "src/main.rs"}))["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(now.starts_with("// agent\nfn main() {\n    "), "{now}");
    assert!(now.ends_with("let x = 42;\n}\n"), "{now}");
    let r = &out_edit["edits"][0]["range"];
    assert_eq!(r["start"]["line"], 2);
    assert_eq!(r["end"]["line"], 2);
    let col = r["start"]["character"].as_u64().unwrap() as usize;
    assert_eq!(r["end"]["character"].as_u64().unwrap() as usize, col + 2);
    let k = col - "    let x = ".len();
    assert!(
        k >= 100,
        "the agent's edit landed after only {k} typed letters"
    );
    let off = &out_edit["edits"][0]["offsets"];
    assert_eq!(
        off["start"].as_u64().unwrap() as usize,
        "// agent\nfn main() {\n".len() + col
    );
    assert_eq!(
        out_edit["edits"][1]["offsets"],
        json!({"start": 0, "end": 9})
    );
    // Once Neovim is done: everything, once, in every copy.
    let want = format!("// agent\nfn main() {{\n    {typed}let x = 42;\n}}\n");
    wait_for("nvim done", Duration::from_secs(60), || {
        out.join("typed").exists().then_some(())
    });
    let t0 = std::time::Instant::now();
    loop {
        let got = std::fs::read_to_string(out.join("text")).unwrap_or_default();
        if got == want {
            break;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let daemon = a.ok("fs.read", json!({"path": "src/main.rs"}));
            panic!(
                "Neovim's buffer did not converge:\n{got:?}\ndaemon: {:?}\nwant: {want:?}",
                daemon["text"]
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        a.ok("fs.read", json!({"path": "src/main.rs"}))["text"],
        want
    );
    std::fs::write(out.join("stop"), "").unwrap();
    assert!(nv.wait().unwrap().success());
    d.stop();
    assert_eq!(
        std::fs::read_to_string(ws.join("src/main.rs")).unwrap(),
        want
    );
}

/// At most 64 agent connections: the 65th is refused; closing one frees a place.
#[test]
fn connection_limit() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let (url, token) = endpoint(&d);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let connect = || {
        rt.block_on(
            WsClientBuilder::default()
                .set_headers(auth(&token))
                .build(&url),
        )
    };
    let mut clients: Vec<WsClient> = (0..64)
        .map(|_| connect().expect("within the limit"))
        .collect();
    // Every one of them works.
    for c in &clients {
        rt.block_on(c.request::<Value, _>("workspace.info", serde_json::Map::new()))
            .unwrap();
    }
    let over = connect()
        .and_then(|c| rt.block_on(c.request::<Value, _>("workspace.info", serde_json::Map::new())));
    assert!(over.is_err(), "a 65th connection was served");
    drop(clients.pop());
    wait_for("a place to free up", Duration::from_secs(10), || {
        connect().ok().and_then(|c| {
            rt.block_on(c.request::<Value, _>("workspace.info", serde_json::Map::new()))
                .ok()
        })
    });
}

/// Branch: an agent forks, makes a 3-file change on its branch (two edits and a new
/// file) that nobody sees, while a human (a real editor connection) types into one of those
/// files at the very place the branch edits. The merge keeps every edit, and the result is the
/// engine's own merge of the same events, computed here independently with `engine::Document`.
#[test]
fn branch_merge_with_a_concurrent_human_edit_is_the_engines_merge() {
    use engine::{Document, Edit, Rope};
    let dir = workspace();
    let mut d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let main0 = "fn main() {\n    let x = 1;\n}\n";
    let notes0 = "# notes\n😀 smile\nend\n";
    let mut ed = RevAgent::new(&d, "Ed", "src/main.rs");
    let fork = a.ok("branch.fork", json!({"name": "refactor"}));
    let b = fork["branch"].as_str().unwrap().to_string();
    let read = a.ok("branch.read", json!({"branch": b, "path": "src/main.rs"}));
    assert_eq!(read["text"], main0);
    // The branch's edits, in chars of the text read: a line inserted before `let` (char 16),
    // `1` replaced (chars 24..25).
    let main_edits = [(16..16, "let y = 2;\n    "), (24..25, "compute()")];
    let out = a.ok(
        "branch.edit",
        json!({"branch": b, "path": "src/main.rs", "version": read["version"], "edits": [
            {"offsets": {"start": 16, "end": 16}, "text": main_edits[0].1},
            {"range": {"start": {"line": 1, "character": 12}, "end": {"line": 1, "character": 13}},
             "text": main_edits[1].1},
        ]}),
    );
    let main_branch = "fn main() {\n    let y = 2;\n    let x = compute();\n}\n";
    assert_eq!(out["edits"][1]["offsets"], json!({"start": 39, "end": 48}));
    let nread = a.ok("branch.read", json!({"branch": b, "path": "notes.md"}));
    a.ok(
        "branch.edit",
        json!({"branch": b, "path": "notes.md", "version": nread["version"], "encoding": "utf-16",
               "edits": [{"range": {"start": {"line": 1, "character": 3}, "end": {"line": 1, "character": 8}},
                          "text": "grin"}]}),
    );
    let notes_branch = "# notes\n😀 grin\nend\n";
    let util = "pub fn compute() -> i32 {\n    1\n}\n";
    a.ok(
        "branch.create",
        json!({"branch": b, "path": "src/util.rs", "text": util}),
    );
    let br = a.ok("branch.read", json!({"branch": b, "path": "src/main.rs"}));
    assert_eq!(br["text"], main_branch);
    assert_eq!(
        a.ok(
            "branch.read",
            json!({"branch": b, "path": "src/util.rs", "startLine": 1})
        )["text"],
        "    1\n}\n"
    );

    // Meanwhile the human types "zz" exactly where the branch inserted its line.
    ed.edit(16..16, "z");
    ed.edit(17..17, "z");
    let main_live = "fn main() {\n    zzlet x = 1;\n}\n";
    wait_for("the human's edits", Duration::from_secs(10), || {
        ed.pump(Duration::from_millis(20));
        (a.ok("fs.read", json!({"path": "src/main.rs"}))["text"] == main_live).then_some(())
    });
    // Before the merge the branch is invisible: to agents, editors and the disk.
    assert_eq!(a.ok("fs.read", json!({"path": "notes.md"}))["text"], notes0);
    assert_eq!(
        a.err("fs.read", json!({"path": "src/util.rs"})).0,
        agent_api::error::NOT_FOUND
    );
    assert_eq!(ed.text, main_live);
    wait_for("the human's edits on disk", Duration::from_secs(10), || {
        (std::fs::read_to_string(dir.path().join("src/main.rs")).unwrap() == main_live)
            .then_some(())
    });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.md")).unwrap(),
        notes0
    );
    assert!(!dir.path().join("src/util.rs").exists());

    // The diff: live text -> branch text, per changed file.
    let diff = a.ok("branch.diff", json!({"branch": b}));
    let files = diff["files"].as_array().unwrap();
    let by_path = |p: &str| files.iter().find(|f| f["path"] == p).unwrap().clone();
    assert_eq!(files.len(), 3);
    assert_eq!(
        by_path("notes.md")["diff"],
        "--- a/notes.md\n+++ b/notes.md\n@@ -1,3 +1,3 @@\n # notes\n-😀 smile\n+😀 grin\n end\n"
    );
    assert_eq!(
        by_path("src/main.rs")["diff"],
        "--- a/src/main.rs\n+++ b/src/main.rs\n@@ -1,3 +1,4 @@\n fn main() {\n-    zzlet x = 1;\n+    let y = 2;\n+    let x = compute();\n }\n"
    );
    assert_eq!(by_path("src/main.rs")["status"], "modified");
    assert_eq!(
        by_path("src/util.rs")["diff"],
        "--- /dev/null\n+++ b/src/util.rs\n@@ -0,0 +1,3 @@\n+pub fn compute() -> i32 {\n+    1\n+}\n"
    );
    assert_eq!(by_path("src/util.rs")["status"], "created");
    let live_v = a.ok("fs.read", json!({"path": "src/main.rs"}))["version"].clone();
    assert_eq!(by_path("src/main.rs")["liveVersion"], live_v);
    assert_eq!(by_path("src/main.rs")["forkVersion"], json!({}));

    let merged = a.ok("branch.merge", json!({"branch": b}));
    let text_now = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let version_now = text_now["version"].clone();

    // The same merge, by the engine directly: the human's events (typed one after the other
    // at the live version) and the branch's events (made at the fork version, the root).
    let names: Vec<String> = version_now.as_object().unwrap().keys().cloned().collect();
    let human = names
        .iter()
        .find(|n| n.starts_with("Ed#"))
        .expect("human agent");
    let bagent = names
        .iter()
        .find(|n| n.starts_with("branch#"))
        .expect("branch agent");
    let mut live = Document::from_text(Rope::from_str(main0));
    let h = live.agent(human);
    live.insert(h, 16, "z").unwrap();
    live.insert(h, 17, "z").unwrap();
    let mut branch = Document::from_text(Rope::from_str(main0));
    let ba = branch.agent(bagent);
    let root = branch.version().clone();
    let seq = Edit::sequence(
        main_edits
            .iter()
            .map(|(r, t)| Edit {
                range: r.clone(),
                text: t.to_string(),
            })
            .collect(),
    )
    .unwrap();
    branch.edit_at(ba, &root, &seq).unwrap();
    assert_eq!(branch.text().to_string(), main_branch);
    let human_events = live.all_events();
    live.apply_remote(&branch.all_events()).unwrap();
    let engine_text = live.text().to_string();
    assert_eq!(text_now["text"], engine_text);
    assert_eq!(version_now, json!(live.remote_version(live.version())));
    // (Merging the other way round gives the same text: the engine's convergence.)
    branch.apply_remote(&human_events).unwrap();
    assert_eq!(branch.text().to_string(), engine_text);
    // Every edit is there.
    assert!(engine_text.contains("zz") && engine_text.contains("let y = 2;"));
    assert!(engine_text.contains("let x = compute();"));

    // The reply: the new live versions, and where the branch's text landed.
    let mfiles = merged["files"].as_array().unwrap();
    let mf = |p: &str| mfiles.iter().find(|f| f["path"] == p).unwrap().clone();
    assert_eq!(mf("src/main.rs")["version"], version_now);
    let chars: Vec<char> = engine_text.chars().collect();
    let landed: Vec<String> = mf("src/main.rs")["inserted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (s, e) = (
                r["offsets"]["start"].as_u64().unwrap() as usize,
                r["offsets"]["end"].as_u64().unwrap() as usize,
            );
            chars[s..e].iter().collect()
        })
        .collect();
    assert_eq!(landed, ["let y = 2;\n    ", "compute()"]);
    assert_eq!(mf("src/util.rs")["status"], "created");
    assert_eq!(
        a.ok("fs.read", json!({"path": "notes.md"}))["text"],
        notes_branch
    );
    assert_eq!(
        a.ok("fs.read", json!({"path": "src/util.rs"}))["text"],
        util
    );
    // The branch is closed.
    assert_eq!(
        a.err("branch.read", json!({"branch": b, "path": "notes.md"}))
            .0,
        agent_api::error::UNKNOWN_BRANCH
    );
    // The human's editor converges on the merge; the disk gets all three files.
    wait_for("the editor to converge", Duration::from_secs(10), || {
        ed.pump(Duration::from_millis(50));
        (ed.text == engine_text).then_some(())
    });
    d.stop();
    let disk = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
    assert_eq!(disk("src/main.rs"), engine_text);
    assert_eq!(disk("notes.md"), notes_branch);
    assert_eq!(disk("src/util.rs"), util);
}

/// Branch errors have stable codes and change nothing; a discarded branch leaves the
/// workspace untouched; a merge conflict merges nothing and keeps the branch open.
#[test]
fn branch_discard_list_and_errors() {
    use agent_api::error::*;
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let notes0 = "# notes\n😀 smile\nend\n";
    let b1 = a.ok("branch.fork", json!({}))["branch"]
        .as_str()
        .unwrap()
        .to_string();
    let b2 = a.ok("branch.fork", json!({"name": "two"}))["branch"]
        .as_str()
        .unwrap()
        .to_string();
    let v = a.ok("branch.read", json!({"branch": b1, "path": "notes.md"}))["version"].clone();
    let e1 = a.ok(
        "branch.edit",
        json!({"branch": b1, "path": "notes.md", "version": v,
               "edits": [{"offsets": {"start": 0, "end": 0}, "text": "b1 "}]}),
    );
    // Another connection may use the branch; a version of branch 1 is not one of branch 2.
    let a2 = Agent::connect(&d);
    let (code, msg) = a2.err(
        "branch.edit",
        json!({"branch": b2, "path": "notes.md", "version": e1["version"],
               "edits": [{"offsets": {"start": 0, "end": 0}, "text": "x"}]}),
    );
    assert_eq!(code, NOT_BRANCH_VERSION, "{msg}");
    let list = a2.ok("branch.list", json!({}));
    let l = list["branches"].as_array().unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0]["modified"], json!(["notes.md"]));
    assert_eq!(l[1]["name"], "two");
    let b1_text = a2.ok("branch.read", json!({"branch": b1, "path": "notes.md"}));
    assert_eq!(b1_text["text"], format!("b1 {notes0}"));

    // Errors: each changes nothing.
    let one = json!([{"offsets": {"start": 0, "end": 0}, "text": "x"}]);
    assert_eq!(
        a.err(
            "branch.edit",
            json!({"branch": "b999", "path": "notes.md", "version": {}, "edits": one})
        )
        .0,
        UNKNOWN_BRANCH
    );
    assert_eq!(
        a.err("branch.diff", json!({"branch": "nope"})).0,
        UNKNOWN_BRANCH
    );
    assert_eq!(
        a.err(
            "branch.read",
            json!({"branch": b1, "path": "../etc/passwd"})
        )
        .0,
        PATH_OUTSIDE_ROOT
    );
    assert_eq!(
        a.err("branch.read", json!({"branch": b1, "path": "nope.md"}))
            .0,
        NOT_FOUND
    );
    assert_eq!(
        a.err("branch.read", json!({"branch": b1, "path": "blob.bin"}))
            .0,
        NOT_TEXT
    );
    assert_eq!(
        a.err("branch.read", json!({"branch": b1})).0,
        INVALID_PARAMS
    );
    assert_eq!(
        a.err(
            "branch.create",
            json!({"branch": b1, "path": "notes.md", "text": ""})
        )
        .0,
        FILE_EXISTS
    );
    assert_eq!(
        a.err(
            "branch.create",
            json!({"branch": b1, "path": ".dist-space/x", "text": ""})
        )
        .0,
        PATH_OUTSIDE_ROOT
    );
    assert_eq!(
        a.err("branch.edit", json!({"branch": b1, "path": "notes.md", "version": b1_text["version"],
            "edits": [{"offsets": {"start": 0, "end": 3}, "text": "a"}, {"offsets": {"start": 1, "end": 2}, "text": "b"}]})).0,
        OVERLAPPING_EDITS
    );
    assert_eq!(
        a.err(
            "branch.edit",
            json!({"branch": b1, "path": "notes.md", "version": b1_text["version"],
            "edits": [{"offsets": {"start": 0, "end": 999}, "text": "a"}]})
        )
        .0,
        BAD_POSITION
    );
    // A live version, once the live file has moved on, is not a version of the branch.
    let live = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let e = a.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": live["version"], "edits": [{"offsets": {"start": 0, "end": 0}, "text": "// live\n"}]}),
    );
    let (code, msg) = a.err(
        "branch.edit",
        json!({"branch": b1, "path": "src/main.rs", "version": e["version"], "edits": one}),
    );
    assert_eq!(code, NOT_BRANCH_VERSION, "{msg}");
    assert_eq!(
        a.ok("branch.read", json!({"branch": b1, "path": "notes.md"})),
        b1_text
    );
    // The branch still reads the file as it was at the fork.
    assert_eq!(
        a.ok("branch.read", json!({"branch": b1, "path": "src/main.rs"}))["text"],
        "fn main() {\n    let x = 1;\n}\n"
    );

    // Discard: the workspace is untouched.
    assert_eq!(
        a.ok("branch.discard", json!({"branch": b1}))["discarded"],
        true
    );
    assert_eq!(a.ok("fs.read", json!({"path": "notes.md"}))["text"], notes0);
    assert_eq!(
        a.err("branch.discard", json!({"branch": b1})).0,
        UNKNOWN_BRANCH
    );

    // Merge conflict: a file created on the branch appears in the workspace meanwhile.
    a.ok(
        "branch.create",
        json!({"branch": b2, "path": "new.txt", "text": "from the branch\n"}),
    );
    a.ok("branch.delete", json!({"branch": b2, "path": "notes.md"}));
    assert_eq!(
        a.err("branch.read", json!({"branch": b2, "path": "notes.md"}))
            .0,
        NOT_FOUND
    );
    std::fs::write(dir.path().join("new.txt"), "from the disk\n").unwrap();
    wait_for("the daemon to see new.txt", Duration::from_secs(10), || {
        a.call("fs.read", json!({"path": "new.txt"})).ok()
    });
    let v_before = a.ok("workspace.info", json!({}))["version"].clone();
    let (code, msg) = a.err("branch.merge", json!({"branch": b2}));
    assert_eq!(code, MERGE_CONFLICT, "{msg}");
    assert_eq!(a.ok("workspace.info", json!({}))["version"], v_before);
    assert_eq!(a.ok("fs.read", json!({"path": "notes.md"}))["text"], notes0);
    assert_eq!(
        a.ok("fs.read", json!({"path": "new.txt"}))["text"],
        "from the disk\n"
    );
    // Still open: its diff shows the deletion, and it can be discarded.
    let diff = a.ok("branch.diff", json!({"branch": b2}));
    let del = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["status"] == "deleted")
        .unwrap()
        .clone();
    assert_eq!(
        del["diff"],
        "--- a/notes.md\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-# notes\n-😀 smile\n-end\n"
    );
    a.ok("branch.discard", json!({"branch": b2}));
    assert_eq!(a.ok("branch.list", json!({}))["branches"], json!([]));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.md")).unwrap(),
        notes0
    );
}
