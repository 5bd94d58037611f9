//! The agent API's snapshots, changes since a version, tree operations, search, anchors and
//! presence, against a real `dist-space serve` process with real jsonrpsee WebSocket clients;
//! and a slow `changes` subscriber (a raw WebSocket that stops reading) cut off while the
//! daemon keeps serving everyone else.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::io::{Read, Write};
use std::time::Duration;

use agent::{apply_edits, endpoint, workspace, Agent};
use agent_api::error::*;
use common::{wait_for, Daemon, RevAgent};
use serde_json::{json, Value};

fn paths(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// `fs.snapshot` gives every text file at one workspace version (now, or a past one), and
/// `changes.since` lists what changed since a version: edits that rebuild the new text from
/// the old, a unified diff, renames, creations, deletions.
#[test]
fn snapshot_and_changes_since() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let s0 = a.ok("fs.snapshot", json!({}));
    assert_eq!(paths(&s0["files"]), ["notes.md", "src/main.rs"]);
    assert_eq!(s0["files"][1]["text"], "fn main() {\n    let x = 1;\n}\n");
    let v0 = s0["version"].as_u64().unwrap();
    assert_eq!(a.ok("workspace.info", json!({}))["version"], v0);

    let main = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let e = a.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": main["version"], "edits": [
            {"offsets": {"start": 0, "end": 0}, "text": "// hi\n"},
            {"offsets": {"start": 24, "end": 25}, "text": "42"}]}),
    );
    let created = a.ok(
        "fs.create",
        json!({"path": "src/util.rs", "text": "pub fn u() {}\n"}),
    );
    let v_created = created["workspaceVersion"].as_u64().unwrap();
    a.ok(
        "fs.rename",
        json!({"from": "notes.md", "to": "docs/notes.md"}),
    );

    // Now: the new state; a glob and a list of paths select.
    let s1 = a.ok("fs.snapshot", json!({}));
    assert_eq!(
        paths(&s1["files"]),
        ["docs/notes.md", "src/main.rs", "src/util.rs"]
    );
    assert!(s1["version"].as_u64().unwrap() > v0);
    let main_now = "// hi\nfn main() {\n    let x = 42;\n}\n";
    assert_eq!(s1["files"][1]["text"], main_now);
    assert_eq!(s1["files"][1]["version"], e["version"]);
    let rs = a.ok("fs.snapshot", json!({"glob": "src/*.rs"}));
    assert_eq!(paths(&rs["files"]), ["src/main.rs", "src/util.rs"]);
    let one = a.ok("fs.snapshot", json!({"paths": ["src/util.rs"]}));
    assert_eq!(one["files"][0]["text"], "pub fn u() {}\n");
    // The past, at one version: the old paths and texts.
    let past = a.ok("fs.snapshot", json!({"version": v0}));
    assert_eq!(past["version"], v0);
    assert_eq!(past["files"], s0["files"]);
    let mid = a.ok("fs.snapshot", json!({"version": v_created}));
    assert_eq!(
        paths(&mid["files"]),
        ["notes.md", "src/main.rs", "src/util.rs"]
    );

    // Changes since v0.
    let ch = a.ok("changes.since", json!({"version": v0}));
    assert_eq!(ch["from"], v0);
    assert_eq!(ch["to"], s1["version"]);
    let files = ch["files"].as_array().unwrap();
    assert_eq!(
        paths(&ch["files"]),
        ["docs/notes.md", "src/main.rs", "src/util.rs"]
    );
    let notes = &files[0];
    assert_eq!(notes["status"], "renamed");
    assert_eq!(notes["oldPath"], "notes.md");
    assert_eq!(notes["edits"], json!([]));
    assert_eq!(notes["diff"], "");
    let m = &files[1];
    assert_eq!(m["status"], "modified");
    assert_eq!(m["from"], main["version"]);
    assert_eq!(m["to"], e["version"]);
    assert_eq!(
        apply_edits(main["text"].as_str().unwrap(), &m["edits"]),
        main_now
    );
    assert_eq!(
        m["diff"],
        "--- a/src/main.rs\n+++ b/src/main.rs\n@@ -1,3 +1,4 @@\n+// hi\n fn main() {\n-    let x = 1;\n+    let x = 42;\n }\n"
    );
    let u = &files[2];
    assert_eq!(u["status"], "created");
    assert_eq!(apply_edits("", &u["edits"]), "pub fn u() {}\n");
    assert!(u["diff"]
        .as_str()
        .unwrap()
        .contains("--- /dev/null\n+++ b/src/util.rs\n"));
    // A glob matches the old or the new path; a deletion since a version is listed.
    let g = a.ok("changes.since", json!({"version": v0, "glob": "*.md"}));
    assert_eq!(paths(&g["files"]), ["docs/notes.md"]);
    a.ok("fs.delete", json!({"path": "src/util.rs"}));
    let del = a.ok(
        "changes.since",
        json!({"version": v_created, "glob": "src/**"}),
    );
    let del = del["files"].as_array().unwrap();
    assert_eq!(del.len(), 1, "{del:?}");
    assert_eq!(del[0]["path"], "src/util.rs");
    assert_eq!(del[0]["status"], "deleted");
    assert_eq!(del[0]["to"], Value::Null);
    assert_eq!(apply_edits("pub fn u() {}\n", &del[0]["edits"]), "");
    // Created and deleted since v0: not a change since v0.
    let all = a.ok("changes.since", json!({"version": v0}));
    assert_eq!(paths(&all["files"]), ["docs/notes.md", "src/main.rs"]);

    // Errors.
    let (code, msg) = a.err("fs.snapshot", json!({"version": 1_000_000}));
    assert_eq!(code, UNKNOWN_VERSION, "{msg}");
    let (code, _) = a.err("changes.since", json!({"version": 1_000_000}));
    assert_eq!(code, UNKNOWN_VERSION);
    let (code, _) = a.err("changes.since", json!({"version": -1}));
    assert_eq!(code, INVALID_PARAMS);
    let (code, _) = a.err("fs.snapshot", json!({"paths": ["../etc/passwd"]}));
    assert_eq!(code, PATH_OUTSIDE_ROOT);
    let (code, _) = a.err("fs.snapshot", json!({"paths": ["nope.txt"]}));
    assert_eq!(code, NOT_FOUND);
    let (code, _) = a.err("fs.snapshot", json!({"paths": ["blob.bin"]}));
    assert_eq!(code, NOT_TEXT);
    let (code, _) = a.err("fs.snapshot", json!({"glob": "a[b"}));
    assert_eq!(code, INVALID_PARAMS);
    let (code, _) = a.err("fs.snapshot", json!({"nope": 1}));
    assert_eq!(code, INVALID_PARAMS);
}

/// Create, rename and delete go through the file tree and reach the disk; the watcher's echo
/// of them changes nothing; every refused request changes nothing.
#[test]
fn create_rename_delete_reach_disk_and_refusals_change_nothing() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let r = &d.root;
    let c = a.ok(
        "fs.create",
        json!({"path": "lib/new.rs", "text": "pub fn n() {}\n"}),
    );
    assert_eq!(c["path"], "lib/new.rs");
    wait_for("the created file on disk", Duration::from_secs(10), || {
        (std::fs::read_to_string(r.join("lib/new.rs")).ok()? == "pub fn n() {}\n").then_some(())
    });
    let rn = a.ok(
        "fs.rename",
        json!({"from": "lib/new.rs", "to": "lib2/deep/new2.rs"}),
    );
    assert_eq!(rn["path"], "lib2/deep/new2.rs");
    assert!(!r.join("lib/new.rs").exists());
    assert_eq!(
        std::fs::read_to_string(r.join("lib2/deep/new2.rs")).unwrap(),
        "pub fn n() {}\n"
    );
    // The file keeps its identity and history: edits at the version before the rename work.
    let e = a.ok(
        "fs.edit",
        json!({"path": "lib2/deep/new2.rs", "version": c["version"], "edits": [
            {"offsets": {"start": 0, "end": 0}, "text": "// moved\n"}]}),
    );
    assert_eq!(e["path"], "lib2/deep/new2.rs");
    a.ok("fs.delete", json!({"path": "notes.md"}));
    assert!(!r.join("notes.md").exists());
    wait_for("the edit on disk", Duration::from_secs(10), || {
        (std::fs::read_to_string(r.join("lib2/deep/new2.rs")).ok()? == "// moved\npub fn n() {}\n")
            .then_some(())
    });
    // The watcher's reports of our own operations are no-ops.
    std::thread::sleep(Duration::from_millis(800));
    let list = a.ok("fs.list", json!({}));
    assert_eq!(
        paths(&list["files"]),
        ["blob.bin", "lib2/deep/new2.rs", "src/main.rs"]
    );

    // Refusals.
    std::fs::write(r.join(".gitignore"), "ignored.txt\n").unwrap();
    wait_for(
        "the .gitignore in the workspace",
        Duration::from_secs(10),
        || {
            paths(&a.ok("fs.list", json!({}))["files"])
                .contains(&".gitignore".to_string())
                .then_some(())
        },
    );
    std::fs::write(r.join("ignored.txt"), "mine\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = a.ok("fs.list", json!({}));
    for (method, params, want) in [
        (
            "fs.create",
            json!({"path": "src/main.rs", "text": "x"}),
            EXISTS,
        ),
        // Ignored paths are never created (they would not be part of the workspace).
        (
            "fs.create",
            json!({"path": "ignored.txt", "text": "x"}),
            IGNORED_PATH,
        ),
        (
            "fs.rename",
            json!({"from": "src/main.rs", "to": "ignored.txt"}),
            IGNORED_PATH,
        ),
        // Names the file system cannot hold, refused before anything changes.
        ("fs.create", json!({"path": "n".repeat(256)}), NAME_TOO_LONG),
        (
            "fs.create",
            json!({"path": vec!["d".repeat(200); 21].join("/")}),
            NAME_TOO_LONG,
        ),
        (
            "fs.rename",
            json!({"from": "src/main.rs", "to": format!("src/{}", "m".repeat(300))}),
            NAME_TOO_LONG,
        ),
        // `.git` is out of reach as `.dist-space` is.
        (
            "fs.create",
            json!({"path": ".git/hooks/x"}),
            PATH_OUTSIDE_ROOT,
        ),
        (
            "fs.rename",
            json!({"from": "src/main.rs", "to": "src/.git/m.rs"}),
            PATH_OUTSIDE_ROOT,
        ),
        ("fs.create", json!({"path": "src/main.rs/x.rs"}), BAD_PATH),
        ("fs.create", json!({"path": "../out.rs"}), PATH_OUTSIDE_ROOT),
        (
            "fs.create",
            json!({"path": "/etc/out.rs"}),
            PATH_OUTSIDE_ROOT,
        ),
        (
            "fs.create",
            json!({"path": ".dist-space/x"}),
            PATH_OUTSIDE_ROOT,
        ),
        ("fs.create", json!({"path": ""}), BAD_PATH),
        (
            "fs.create",
            json!({"path": "a.rs", "text": 3}),
            INVALID_PARAMS,
        ),
        (
            "fs.rename",
            json!({"from": "nope.rs", "to": "x.rs"}),
            NOT_FOUND,
        ),
        (
            "fs.rename",
            json!({"from": "src/main.rs", "to": "blob.bin"}),
            EXISTS,
        ),
        (
            "fs.rename",
            json!({"from": "src", "to": "src/inner"}),
            BAD_PATH,
        ),
        (
            "fs.rename",
            json!({"from": "src/main.rs", "to": "../m.rs"}),
            PATH_OUTSIDE_ROOT,
        ),
        ("fs.delete", json!({"path": "nope.rs"}), NOT_FOUND),
        ("fs.delete", json!({"path": "../etc"}), PATH_OUTSIDE_ROOT),
        (
            "fs.delete",
            json!({"path": ".dist-space/daemon.json"}),
            PATH_OUTSIDE_ROOT,
        ),
    ] {
        let (code, msg) = a.err(method, params.clone());
        assert_eq!(code, want, "{method} {params}: {msg}");
    }
    // Oversized request (over the 16 MiB limit).
    let huge = "x".repeat(17 * 1024 * 1024);
    assert!(a
        .call("fs.create", json!({"path": "big.txt", "text": huge}))
        .is_err());
    let a2 = Agent::connect(&d);
    assert_eq!(a2.ok("fs.list", json!({})), before);
    assert_eq!(
        std::fs::read_to_string(r.join("ignored.txt")).unwrap(),
        "mine\n"
    );
    assert!(r.join("src/main.rs").exists() && !r.join("big.txt").exists());
}

/// `search` finds text in the live documents (unsaved editor text included), literal or
/// regex, with case, whole-word, glob, limits, and positions in the requested encoding.
#[test]
fn search_the_live_workspace() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let mut ed = RevAgent::new(&d, "Ed", "notes.md");
    ed.edit(0..0, "needle here, Needle there\n");
    wait_for(
        "the editor's text in the daemon",
        Duration::from_secs(10),
        || {
            a.ok("fs.read", json!({"path": "notes.md"}))["text"]
                .as_str()?
                .starts_with("needle")
                .then_some(())
        },
    );
    let r = a.ok("search", json!({"query": "needle"}));
    assert_eq!(r["truncated"], false);
    let res = r["results"].as_array().unwrap();
    assert_eq!(res.len(), 1, "{res:?}");
    assert_eq!(res[0]["path"], "notes.md");
    assert_eq!(res[0]["line"], 0);
    assert_eq!(res[0]["lineText"], "needle here, Needle there");
    assert_eq!(
        res[0]["version"],
        a.ok("fs.read", json!({"path": "notes.md"}))["version"]
    );
    let r = a.ok("search", json!({"query": "NEEDLE", "caseSensitive": false}));
    assert_eq!(r["results"].as_array().unwrap().len(), 2);
    // Encodings: "smile" follows an emoji (2 UTF-16 units, 4 UTF-8 bytes, 1 char) and a space.
    for (enc, ch) in [("utf-16", 3), ("utf-8", 5), ("utf-32", 2)] {
        let r = a.ok("search", json!({"query": "smile", "encoding": enc}));
        let m = &r["results"][0];
        assert_eq!(m["line"], 2, "{r}");
        assert_eq!(
            m["range"]["start"],
            json!({"line": 2, "character": ch}),
            "{enc}"
        );
        assert_eq!(
            m["range"]["end"],
            json!({"line": 2, "character": ch + 5}),
            "{enc}"
        );
    }
    let r = a.ok("search", json!({"query": r"let \w+ = \d+;", "regex": true}));
    assert_eq!(r["results"][0]["path"], "src/main.rs");
    assert_eq!(r["results"][0]["range"]["start"]["character"], 4);
    let r = a.ok("search", json!({"query": "e", "glob": "**/*.rs"}));
    assert!(r["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["path"] == "src/main.rs"));
    let r = a.ok("search", json!({"query": "ma", "wholeWord": true}));
    assert!(r["results"].as_array().unwrap().is_empty());
    let r = a.ok("search", json!({"query": "main", "wholeWord": true}));
    assert_eq!(r["results"].as_array().unwrap().len(), 1);
    let r = a.ok("search", json!({"query": "e", "maxResults": 2}));
    assert_eq!(r["results"].as_array().unwrap().len(), 2);
    assert_eq!(r["truncated"], true);
    // The literal is not a regex.
    let r = a.ok("search", json!({"query": "x = 1;"}));
    assert_eq!(r["results"].as_array().unwrap().len(), 1);
    let r = a.ok("search", json!({"query": ".", "regex": false}));
    assert!(r["results"].as_array().unwrap().is_empty());
    for params in [
        json!({"query": "a(", "regex": true}),
        json!({"query": ""}),
        json!({"query": "a", "maxResults": 0}),
        json!({"query": "a", "encoding": "latin-1"}),
        json!({"query": "a", "glob": "a[b"}),
        json!({"query": "a", "bogus": true}),
    ] {
        let (code, msg) = a.err("search", params.clone());
        assert_eq!(code, INVALID_PARAMS, "{params}: {msg}");
    }
}

/// Anchors follow the edits made after them (by editors and agents, concurrently with the
/// version they were made at), survive renames, report deletion, and bad requests are
/// refused.
#[test]
fn anchors_follow_edits() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let a = Agent::connect(&d);
    let r0 = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let v0 = r0["version"].clone();
    // Meanwhile an editor inserts a line at the top (the agent has not read it).
    let mut ed = RevAgent::new(&d, "Ed", "src/main.rs");
    ed.edit(0..0, "use std::io;\n");
    wait_for("the editor's edit", Duration::from_secs(10), || {
        (a.ok("fs.read", json!({"path": "src/main.rs"}))["text"]
            .as_str()?
            .starts_with("use"))
        .then_some(())
    });
    // Anchors at v0 (before that edit): the `x` (line 1, char 8) and the range over `1`.
    let x = a.ok(
        "anchor.create",
        json!({"path": "src/main.rs", "version": v0, "position": {"line": 1, "character": 8}}),
    )["id"]
        .clone();
    let one = a.ok(
        "anchor.create",
        json!({"path": "src/main.rs", "version": v0,
               "position": {"line": 1, "character": 12}, "endPosition": {"line": 1, "character": 13}}),
    )["id"]
        .clone();
    let left = a.ok(
        "anchor.create",
        json!({"path": "src/main.rs", "version": v0, "offset": 0, "bias": "left"}),
    )["id"]
        .clone();
    let rx = a.ok("anchor.resolve", json!({"id": x}));
    assert_eq!(rx["position"], json!({"line": 2, "character": 8}));
    let text = a.ok("fs.read", json!({"path": "src/main.rs"}));
    let t: Vec<char> = text["text"].as_str().unwrap().chars().collect();
    assert_eq!(t[rx["offset"].as_u64().unwrap() as usize], 'x');
    assert_eq!(rx["version"], text["version"]);
    let r1 = a.ok("anchor.resolve", json!({"id": one, "encoding": "utf-8"}));
    assert_eq!(r1["position"], json!({"line": 2, "character": 12}));
    assert_eq!(r1["endPosition"], json!({"line": 2, "character": 13}));
    // Bias left: the editor's insert at offset 0 went after it.
    assert_eq!(a.ok("anchor.resolve", json!({"id": left}))["offset"], 0);
    // An agent edit: `1` -> `42` replaced (the range collapses where it was), text before `x`.
    let e = a.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": text["version"], "edits": [
            {"range": {"start": {"line": 2, "character": 4}, "end": {"line": 2, "character": 4}}, "text": "/*a*/ "},
            {"range": {"start": {"line": 2, "character": 12}, "end": {"line": 2, "character": 13}}, "text": "42"}]}),
    );
    let now = a.ok("fs.read", json!({"path": "src/main.rs"}));
    assert_eq!(
        now["text"],
        "use std::io;\nfn main() {\n    /*a*/ let x = 42;\n}\n"
    );
    let rx = a.ok("anchor.resolve", json!({"id": x}));
    assert_eq!(rx["position"], json!({"line": 2, "character": 14}));
    assert_eq!(rx["version"], e["version"]);
    let r1 = a.ok("anchor.resolve", json!({"id": one}));
    assert_eq!(r1["offset"], r1["endOffset"]);
    // Its text was replaced: it collapses after the replacement (it does not grow).
    assert_eq!(r1["position"], json!({"line": 2, "character": 20}));
    // A rename keeps the anchor; a deletion ends it.
    a.ok(
        "fs.rename",
        json!({"from": "src/main.rs", "to": "src/app.rs"}),
    );
    let rx = a.ok("anchor.resolve", json!({"id": x}));
    assert_eq!(rx["path"], "src/app.rs");
    assert_eq!(rx["position"], json!({"line": 2, "character": 14}));
    drop(ed);
    a.ok("fs.delete", json!({"path": "src/app.rs"}));
    let (code, msg) = a.err("anchor.resolve", json!({"id": x}));
    assert_eq!(code, ANCHOR_GONE, "{msg}");
    assert_eq!(a.ok("anchor.delete", json!({"id": x}))["deleted"], true);
    let (code, _) = a.err("anchor.resolve", json!({"id": x}));
    assert_eq!(code, UNKNOWN_ANCHOR);
    let (code, _) = a.err("anchor.delete", json!({"id": 987654}));
    assert_eq!(code, UNKNOWN_ANCHOR);
    // Bad requests.
    let n = a.ok("fs.read", json!({"path": "notes.md"}));
    let nv = n["version"].clone();
    for (params, want) in [
        (
            json!({"path": "notes.md", "version": {"nobody": 3}, "offset": 0}),
            UNKNOWN_VERSION,
        ),
        (
            json!({"path": "notes.md", "version": nv, "offset": 999}),
            BAD_POSITION,
        ),
        (
            json!({"path": "notes.md", "version": nv, "offset": -1}),
            BAD_POSITION,
        ),
        (
            json!({"path": "notes.md", "version": nv, "position": {"line": 0, "character": -2}}),
            BAD_POSITION,
        ),
        // Inside the emoji (UTF-16 unit 1 of 2).
        (
            json!({"path": "notes.md", "version": nv, "position": {"line": 1, "character": 1}}),
            BAD_POSITION,
        ),
        (
            json!({"path": "notes.md", "version": nv, "offset": 4, "endOffset": 2}),
            BAD_POSITION,
        ),
        (
            json!({"path": "notes.md", "version": nv, "offset": 0, "position": {"line": 0, "character": 0}}),
            INVALID_PARAMS,
        ),
        (json!({"path": "notes.md", "version": nv}), INVALID_PARAMS),
        (
            json!({"path": "notes.md", "version": nv, "offset": 0, "bias": "up"}),
            INVALID_PARAMS,
        ),
        (
            json!({"path": "../x", "version": nv, "offset": 0}),
            PATH_OUTSIDE_ROOT,
        ),
        (
            json!({"path": "blob.bin", "version": nv, "offset": 0}),
            NOT_TEXT,
        ),
    ] {
        let (code, msg) = a.err("anchor.create", params.clone());
        assert_eq!(code, want, "{params}: {msg}");
    }
    assert_eq!(a.ok("fs.read", json!({"path": "notes.md"})), n);
}

/// `presence` pushes who is where: editors' cursors (in the subscriber's encoding, at the
/// version they refer to) and agents' last edits; `workspace.info` lists agents too.
#[test]
fn presence_of_editors_and_agents() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let watcher = Agent::connect(&d);
    let mut sub = watcher.subscribe(
        "presence.subscribe",
        json!({"encoding": "utf-8"}),
        "presence.unsubscribe",
    );
    let mut ed = RevAgent::new(&d, "Ed", "notes.md");
    let _joined = watcher.next_where(&mut sub, |n| n["kind"] == "editor" && n["name"] == "Ed");
    // Cursor after "smile" (line 1; RevAgent speaks UTF-32: the emoji is 1 char, 4 bytes).
    ed.c.notify(
        "dist-space/cursor",
        json!({"uri": ed.uri, "cursors": [{"anchor": {"line": 1, "character": 2}, "head": {"line": 1, "character": 7}}]}),
    );
    let n = watcher.next_where(&mut sub, |n| {
        n["kind"] == "editor" && n["path"] == "notes.md"
    });
    assert_eq!(n["name"], "Ed");
    assert_eq!(n["left"], false);
    assert_eq!(
        n["selections"],
        json!([{"anchor": {"line": 1, "character": 5}, "head": {"line": 1, "character": 10}}])
    );
    assert_eq!(
        n["version"],
        watcher.ok("fs.read", json!({"path": "notes.md"}))["version"]
    );
    // An agent edits: it is where its edit landed.
    let b = Agent::connect(&d);
    let r = b.ok("fs.read", json!({"path": "src/main.rs"}));
    let e = b.ok(
        "fs.edit",
        json!({"path": "src/main.rs", "version": r["version"], "edits": [{"offsets": {"start": 0, "end": 0}, "text": "// b\n"}]}),
    );
    let n = watcher.next_where(&mut sub, |n| n["kind"] == "agent");
    assert_eq!(n["path"], "src/main.rs");
    assert_eq!(n["version"], e["version"]);
    assert_eq!(
        n["selections"],
        json!([{"anchor": {"line": 0, "character": 0}, "head": {"line": 1, "character": 0}}])
    );
    // workspace.info: the editor, the subscribed agent and the agent that edited.
    let info = watcher.ok("workspace.info", json!({}));
    let parts = info["participants"].as_array().unwrap();
    let kinds: Vec<(&str, Option<&str>)> = parts
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["file"].as_str()))
        .collect();
    assert_eq!(kinds.len(), 3, "{parts:?}");
    assert!(kinds.contains(&("editor", Some("notes.md"))), "{kinds:?}");
    assert!(kinds.contains(&("agent", Some("src/main.rs"))), "{kinds:?}");
    assert!(kinds.contains(&("agent", None)), "{kinds:?}");
    // A newcomer gets everyone's place at once.
    let late = Agent::connect(&d);
    let mut sub2 = late.subscribe("presence.subscribe", json!({}), "presence.unsubscribe");
    let first = late.next_where(&mut sub2, |n| n["kind"] == "editor");
    assert_eq!(
        first["selections"][0]["head"],
        json!({"line": 1, "character": 8}),
        "UTF-16 for this subscriber"
    );
    // The editor leaves.
    drop(ed);
    let n = watcher.next_where(&mut sub, |n| n["kind"] == "editor" && n["left"] == true);
    assert_eq!(n["path"], Value::Null);
    let (code, _) = late.err("presence.subscribe", json!({"encoding": "ebcdic"}));
    assert_eq!(code, INVALID_PARAMS);
}

// ---------------------------------------------------------------- slow subscriber

/// A WebSocket client written by hand, so that it can stop reading.
struct RawWs {
    s: std::net::TcpStream,
}

impl RawWs {
    fn connect(d: &Daemon) -> RawWs {
        let (url, token) = endpoint(d);
        let addr = url.trim_start_matches("ws://").to_string();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        RawWs { s }
    }

    /// One masked text frame (mask 0: the payload goes as is).
    fn send(&mut self, text: &str) {
        let n = text.len();
        let mut f = vec![0x81u8];
        if n < 126 {
            f.push(0x80 | n as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(text.as_bytes());
        self.s.write_all(&f).unwrap();
    }

    /// The next text frame (pings are answered, other control frames skipped).
    fn recv(&mut self) -> String {
        loop {
            let mut h = [0u8; 2];
            self.s.read_exact(&mut h).unwrap();
            let mut n = (h[1] & 0x7f) as u64;
            if n == 126 {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).unwrap();
                n = u16::from_be_bytes(b) as u64;
            } else if n == 127 {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).unwrap();
                n = u64::from_be_bytes(b);
            }
            let mut p = vec![0u8; n as usize];
            self.s.read_exact(&mut p).unwrap();
            match h[0] & 0x0f {
                0x1 => return String::from_utf8(p).unwrap(),
                0x9 => {
                    let mut f = vec![0x8a, 0x80 | p.len() as u8, 0, 0, 0, 0];
                    f.extend_from_slice(&p);
                    self.s.write_all(&f).unwrap();
                }
                0x8 => panic!("closed by the server"),
                _ => {}
            }
        }
    }
}

/// A `changes` subscriber that stops reading is cut off with a reason once it is 4096
/// notices behind, while the daemon keeps answering and a reading subscriber gets every
/// change (its reconstructed text equals the final text).
#[test]
fn slow_changes_subscriber_is_cut_off_while_others_are_served() {
    use jsonrpsee::core::client::SubscriptionClientT;
    let dir = tempfile::tempdir().unwrap();
    let block = "y".repeat(8192);
    std::fs::write(dir.path().join("big.txt"), &block).unwrap();
    let d = Daemon::start(dir.path());
    let mut slow = RawWs::connect(&d);
    slow.send(r#"{"jsonrpc":"2.0","id":1,"method":"changes.subscribe","params":{}}"#);
    let ack = slow.recv();
    assert!(ack.contains("\"result\""), "{ack}");

    // A reading subscriber, consumed on its own task.
    let fast = Agent::connect(&d);
    let start = fast.ok("fs.read", json!({"path": "big.txt"}));
    let mut sub = fast
        .rt
        .block_on(fast.client.subscribe::<Value, _>(
            "changes.subscribe",
            agent::obj(json!({})),
            "changes.unsubscribe",
        ))
        .unwrap();
    let text0 = start["text"].as_str().unwrap().to_string();
    let reader = fast.rt.spawn(async move {
        let mut text = text0;
        let mut n = 0u64;
        while let Ok(Some(Ok(v))) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
            text = apply_edits(&text, &v["edits"]);
            n += 1;
        }
        (text, n)
    });

    // 8000 edits, each replacing the whole 8 KiB text (8 KiB notices): far more than the
    // socket buffers, the connection's message buffer and the 4096-notice margin hold.
    let editor = Agent::connect(&d);
    let mut v = start["version"].clone();
    let edits = 8000;
    for i in 0..edits {
        let c = char::from(b'a' + (i % 26) as u8);
        let out = editor.ok(
            "fs.edit",
            json!({"path": "big.txt", "version": v, "edits": [
                {"offsets": {"start": 0, "end": 8192}, "text": c.to_string().repeat(8192)}]}),
        );
        v = out["version"].clone();
    }
    // The daemon still answers while the slow subscriber is stuck.
    let info = editor.ok("workspace.info", json!({}));
    assert!(info["version"].as_u64().unwrap() > 0);
    let final_text = editor.ok("fs.read", json!({"path": "big.txt"}))["text"].clone();
    let (text, n) = fast.rt.block_on(reader).unwrap();
    assert_eq!(n, edits as u64, "the reading subscriber missed notices");
    assert_eq!(json!(text), final_text);
    // The slow one, reading again, finds the reason after what was already queued.
    let mut got = 0;
    let reason = loop {
        let m = slow.recv();
        if m.contains("too slow") {
            break m;
        }
        got += 1;
        assert!(got <= edits, "never cut off");
    };
    assert!(got < edits - 4096, "cut off after {got} notices");
    assert!(reason.contains("subscribe again"), "{reason}");
}
