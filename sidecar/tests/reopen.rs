//! Reopening after a `kill -9` with the editor's reported base ("Reconnect"; see
//! sidecar/src/reopen.rs): a real daemon process, a real WebSocket agent, an editor speaking
//! the revision protocol over the daemon's socket, like the Neovim plugin.

mod common;

use std::time::Duration;

use common::*;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};
use serde_json::{json, Value};

struct Agent {
    rt: tokio::runtime::Runtime,
    c: WsClient,
}

impl Agent {
    fn connect(d: &Daemon) -> Agent {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let info = read_info(&d.root).unwrap();
        let mut h = HeaderMap::new();
        let token = info["agent_token"].as_str().unwrap();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let c = rt
            .block_on(
                WsClientBuilder::default()
                    .set_headers(h)
                    .build(info["agent_endpoint"].as_str().unwrap()),
            )
            .unwrap();
        Agent { rt, c }
    }

    fn call(&self, m: &str, p: Value) -> Value {
        let Value::Object(p) = p else { unreachable!() };
        self.rt.block_on(self.c.request::<Value, _>(m, p)).unwrap()
    }

    /// Insert `text` at char `at` of `path` as it is now; returns once acknowledged (durable).
    fn insert(&self, path: &str, at: usize, text: &str) {
        let r = self.call("fs.read", json!({ "path": path }));
        self.call(
            "fs.edit",
            json!({"path": path, "version": r["version"],
                   "edits": [{"offsets": {"start": at, "end": at}, "text": text}]}),
        );
    }
}

/// The editor's buffer misses an acknowledged agent edit (its broadcast was never read: lost in
/// the crash) and the editor types while the daemon is down. On reconnect it reports the base
/// of the last edit it applied and its agents: the agent edit survives, the offline typing and
/// the typing the daemon had received are each kept once, and the editor converges. (Guessing
/// the base, the recovered document explains the buffer best, and the missing agent edit reads
/// as the editor deleting it.)
#[test]
fn reopen_at_the_reported_base_keeps_an_acknowledged_edit_the_buffer_never_got() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("o.txt"), "one\ntwo\nthree\n").unwrap();
    let mut d = Daemon::start(dir.path());
    let uri = d.uri("o.txt");
    let mut n = RevAgent::new(&d, "Nia", "o.txt");
    let info = n.c.request("dist-space/info", json!({}));
    let agent1 = info["result"]["agent"].as_str().unwrap().to_string();
    assert!(agent1.starts_with("Nia#"), "{info}");

    let a = Agent::connect(&d);
    a.insert("o.txt", 4, "<A1>"); // before "two"
    wait_for("Nia applies <A1>", Duration::from_secs(10), || {
        n.pump(Duration::from_millis(20));
        (n.text == "one\n<A1>two\nthree\n").then_some(())
    });
    // A second notice carries only what changed (`baseDelta`); the editor's map merges them.
    a.insert("o.txt", 0, "<A0>");
    wait_for("Nia applies <A0>", Duration::from_secs(10), || {
        n.pump(Duration::from_millis(20));
        (n.text == "<A0>one\n<A1>two\nthree\n").then_some(())
    });
    let base1 = n.base.clone().expect("edit notices carry baseDelta");
    assert!(!base1.as_object().unwrap().is_empty(), "{base1}");

    n.edit(0..0, "<N1>");
    wait_for("the daemon has <N1>", Duration::from_secs(10), || {
        n.c.text(&uri).starts_with("<N1>").then_some(())
    });
    // Acknowledged, made after <N1>: Nia never reads its broadcast.
    let end = "<N1><A0>one\n<A1>two\nthree\n".chars().count();
    a.insert("o.txt", end, "<A2>");
    drop(a);
    d.kill9();

    // Offline: Nia types before "three".
    let at = n.text.to_string().find("three").unwrap();
    n.text.insert(at, "<N2>");
    let n_text = n.text.to_string();
    assert_eq!(n_text, "<N1><A0>one\n<A1>two\n<N2>three\n");

    let root = d.root.clone();
    let d = Daemon::start(&root);
    let mut c = d.connect();
    let init = c.request(
        "initialize",
        json!({"processId": null, "rootUri": null,
               "capabilities": {"general": {"positionEncodings": ["utf-32"]}},
               "initializationOptions": {"name": "Nia", "revisionProtocol": true,
                   "reopen": {uri.clone(): {"base": base1, "agents": [agent1.clone()]}}}}),
    );
    // The initialize result names the new connection's agent (what the plugins remember).
    let agent2 = init["result"]["capabilities"]["experimental"]["distSpace"]["agent"]
        .as_str()
        .unwrap_or_else(|| panic!("no agent in {init}"))
        .to_string();
    assert!(agent2.starts_with("Nia#") && agent2 != agent1, "{agent2}");
    c.notify("initialized", json!({}));
    c.did_open(&uri, &n_text);
    let want = "<N1><A0>one\n<A1>two\n<N2>three\n<A2>";
    assert_eq!(c.text(&uri), want);
    let mut n = RevAgent::opened(c, uri.clone(), &n_text);
    wait_for("Nia gets <A2>", Duration::from_secs(10), || {
        n.pump(Duration::from_millis(20));
        (n.text == want).then_some(())
    });
    // And keeps editing at its version.
    n.edit(0..0, "<N3>");
    wait_for("the daemon has <N3>", Duration::from_secs(10), || {
        (n.c.text(&uri) == format!("<N3>{want}")).then_some(())
    });
    let log = std::fs::read_to_string(root.join(".dist-space/daemon.log")).unwrap_or_default();
    assert!(
        log.contains("base=\"reported\"") || log.contains("base=reported"),
        "the reported base was used: {}",
        log.lines()
            .filter(|l| l.contains("didOpen"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A reported base that names nothing the daemon knows (another workspace's history, a log
/// that was deleted) is ignored: the didOpen text is reconciled as without it, nothing lost.
#[test]
fn an_unknown_reported_base_falls_back_to_the_guess() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("o.txt"), "one\ntwo\n").unwrap();
    let d = Daemon::start(dir.path());
    let uri = d.uri("o.txt");
    let mut c = d.connect();
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": null,
               "capabilities": {"general": {"positionEncodings": ["utf-32"]}},
               "initializationOptions": {"name": "Nia", "revisionProtocol": true,
                   "reopen": {uri.clone(): {"base": {"nobody#x-1": 40}, "agents": ["Nia#x-1"]},
                              "file:///elsewhere": {"base": "bad"}}}}),
    );
    c.notify("initialized", json!({}));
    c.did_open(&uri, "one\nNEW\ntwo\n");
    assert_eq!(c.text(&uri), "one\nNEW\ntwo\n");
}
