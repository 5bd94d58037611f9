//! `dist-space mcp` driven by a real MCP client: rmcp's client over the child-process
//! stdio transport, against a real daemon on a temp workspace. Tools, resources, resource
//! update notifications after another participant's edit, errors, and starting the daemon.
// `resources/subscribe` is what stock clients speak (protocol <= 2025-11-25); rmcp 3.9 marks the
// client call deprecated in favour of 2026-07-28's `subscriptions/listen`.
#![allow(deprecated)]

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use agent::apply_edits;
use common::{wait_for, Daemon, PlainEditor};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::ws_client::{HeaderMap, HeaderValue, WsClientBuilder};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientInfo, ProtocolVersion, ReadResourceRequestParams,
    ResourceContents, ResourceUpdatedNotificationParam, SubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RunningService, ServiceError};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const MAIN: &str = "fn main() {\n    let x = 1;\n}\n";

/// Every tool `dist-space mcp` exposes (sidecar/README.md lists them with their methods).
const TOOLS: &[&str] = &[
    "workspace_info",
    "fs_list",
    "fs_read",
    "fs_edit",
    "fs_snapshot",
    "changes_since",
    "changes_wait",
    "presence",
    "fs_create",
    "fs_delete",
    "fs_rename",
    "search",
    "anchor_create",
    "anchor_resolve",
    "anchor_delete",
    "branch_fork",
    "branch_list",
    "branch_read",
    "branch_edit",
    "branch_create",
    "branch_delete",
    "branch_diff",
    "branch_merge",
    "branch_discard",
];

/// An MCP client that reports `notifications/resources/updated` URIs on a channel.
struct Watcher {
    updated: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Watcher {
    /// A handshake protocol version, as stock clients use (resources/subscribe).
    fn get_info(&self) -> ClientInfo {
        ClientInfo::default().with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.updated.send(params.uri);
    }
}

type Client = RunningService<RoleClient, Watcher>;

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), MAIN).unwrap();
    std::fs::write(dir.path().join("notes.md"), "# notes\n").unwrap();
    std::fs::write(dir.path().join("blob.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    dir
}

/// `dist-space mcp ROOT` as a child process with the MCP client on its stdio.
async fn start_mcp(root: &Path, runtime: &Path) -> (Client, mpsc::UnboundedReceiver<String>) {
    let cmd = tokio::process::Command::new(common::bin()).configure(|c| {
        c.arg("mcp")
            .arg(root)
            .env("XDG_RUNTIME_DIR", runtime)
            .env("RUST_LOG", "info");
    });
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dist-space mcp");
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Watcher { updated: tx }
        .serve(transport)
        .await
        .expect("MCP initialize");
    (client, rx)
}

async fn call(c: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

fn ok(r: CallToolResult) -> Value {
    assert_eq!(r.is_error, Some(false), "tool failed: {r:?}");
    r.structured_content.expect("structured result")
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn read_resource(c: &Client, uri: &str) -> Result<String, ServiceError> {
    let r = c.read_resource(ReadResourceRequestParams::new(uri)).await?;
    assert_eq!(r.contents.len(), 1);
    match &r.contents[0] {
        ResourceContents::TextResourceContents { text, uri: u, .. } => {
            assert_eq!(u, uri);
            Ok(text.clone())
        }
        other => panic!("not text: {other:?}"),
    }
}

/// The file through the agent API directly (a second agent-API client, not the MCP server).
async fn agent_api_text(d: &Daemon, path: &str) -> String {
    let info = common::read_info(&d.root).unwrap();
    let mut h = HeaderMap::new();
    let token = info["agent_token"].as_str().unwrap();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let ws = WsClientBuilder::default()
        .set_headers(h)
        .build(info["agent_endpoint"].as_str().unwrap())
        .await
        .unwrap();
    let mut p = serde_json::Map::new();
    p.insert("path".into(), json!(path));
    let v: Value = ws.request("fs.read", p).await.unwrap();
    v["text"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_client_reads_edits_and_is_notified() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let (c, mut updated) = start_mcp(&d.root, d.runtime.path()).await;

    // initialize: who we talk to and what it offers.
    let info = c.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "dist-space");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    assert!(info.instructions.as_deref().unwrap().contains("fs_edit"));
    let caps = &info.capabilities;
    assert!(caps.tools.is_some());
    assert_eq!(caps.resources.as_ref().unwrap().subscribe, Some(true));

    // tools/list: every tool, each with a description and an object input schema.
    let tools = c.list_all_tools().await.unwrap();
    let names: HashSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOLS.iter().copied().collect::<HashSet<_>>());
    for t in &tools {
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 15),
            "{} has no real description",
            t.name
        );
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
    }
    let edit = tools.iter().find(|t| t.name == "fs_edit").unwrap();
    let required: HashSet<&str> = edit.input_schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, HashSet::from(["path", "version", "edits"]));

    // fs_read: the text (also as its own content block) and the version.
    let r = call(&c, "fs_read", json!({"path": "src/main.rs"})).await;
    assert!(text_of(&r).contains(MAIN), "{r:?}");
    let read = ok(r);
    assert_eq!(read["text"], MAIN);
    assert_eq!(read["totalLines"], 4);
    let version = read["version"].clone();
    let list = ok(call(&c, "fs_list", json!({"glob": "**/*.rs"})).await);
    assert_eq!(list["files"][0]["path"], "src/main.rs");

    // fs_edit against the version read: `1` -> `42`.
    let res = ok(call(
        &c,
        "fs_edit",
        json!({"path": "src/main.rs", "version": version, "edits": [
            {"range": {"start": {"line": 1, "character": 12}, "end": {"line": 1, "character": 13}}, "text": "42"}
        ]}),
    )
    .await);
    assert_ne!(res["version"], version);
    assert_eq!(res["edits"][0]["offsets"], json!({"start": 24, "end": 26}));
    let after = MAIN.replace("= 1", "= 42");
    // In the workspace: through the agent API, and on disk after write-back.
    assert_eq!(agent_api_text(&d, "src/main.rs").await, after);
    let disk = d.root.join("src/main.rs");
    wait_for("the edit on disk", Duration::from_secs(20), || {
        (std::fs::read_to_string(&disk).ok()? == after).then_some(())
    });

    // Resources: text files only, readable, subscribable.
    let resources = c.list_all_resources().await.unwrap();
    let uris: HashSet<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        HashSet::from(["dist-space:///notes.md", "dist-space:///src/main.rs"])
    );
    let uri = "dist-space:///src/main.rs";
    assert_eq!(read_resource(&c, uri).await.unwrap(), after);
    c.subscribe(SubscribeRequestParams::new(uri)).await.unwrap();
    c.subscribe(SubscribeRequestParams::new("dist-space:///notes.md"))
        .await
        .unwrap();
    // The subscription is live once a change to another subscribed file comes through.
    let mut ed_notes = PlainEditor::new(&d, "Notes", "notes.md");
    ed_notes.edit(0..0, "!");
    let first = tokio::time::timeout(Duration::from_secs(20), updated.recv())
        .await
        .expect("no update notification")
        .unwrap();
    assert_eq!(first, "dist-space:///notes.md");

    // Another participant (an LSP editor) edits main.rs: the MCP client is told, and reads it.
    let mut ed = PlainEditor::new(&d, "Ed", "src/main.rs");
    ed.edit(0..0, "// hi\n");
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let u = updated.recv().await.unwrap();
            if u == uri {
                return u;
            }
        }
    })
    .await
    .expect("no update notification for main.rs");
    assert_eq!(got, uri);
    assert_eq!(
        read_resource(&c, uri).await.unwrap(),
        format!("// hi\n{after}")
    );

    // Errors are tool errors with the daemon's message; nothing crashes, nothing changes.
    let bad = call(&c, "fs_read", json!({"path": "../etc/passwd"})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("-32011"), "{bad:?}");
    assert!(text_of(&bad).contains("`..` is not allowed"), "{bad:?}");
    assert_eq!(bad.structured_content.unwrap()["code"], -32011);
    let missing = call(&c, "fs_read", json!({"path": "nope.rs"})).await;
    assert_eq!(missing.is_error, Some(true));
    assert!(text_of(&missing).contains("-32012"), "{missing:?}");
    let stale = call(
        &c,
        "fs_edit",
        json!({"path": "src/main.rs", "version": {"nobody": 3}, "edits": [{"offsets": {"start": 0, "end": 0}, "text": "x"}]}),
    )
    .await;
    assert_eq!(stale.is_error, Some(true));
    assert!(text_of(&stale).contains("-32020"), "{stale:?}");
    // Arguments that do not fit the schema are refused before reaching the daemon.
    assert!(c
        .call_tool(
            CallToolRequestParams::new("fs_read")
                .with_arguments(json!({"path": 7}).as_object().unwrap().clone())
        )
        .await
        .is_err_or_tool_error());
    assert!(read_resource(&c, "dist-space:///nope.rs").await.is_err());
    assert!(read_resource(&c, "file:///etc/passwd").await.is_err());
    // Still serving, and the text is unchanged by the failed calls.
    let again = ok(call(&c, "fs_read", json!({"path": "src/main.rs"})).await);
    assert_eq!(again["text"], format!("// hi\n{after}"));
    assert_eq!(
        read_resource(&c, uri).await.unwrap(),
        format!("// hi\n{after}")
    );

    c.cancel().await.unwrap();
}

/// Each tool's input schema: its properties and the required ones, exactly the agent-API
/// method's params (agent-API/README.md). `changes_wait` is the MCP server's own.
const SCHEMAS: &[(&str, &[&str], &[&str])] = &[
    ("workspace_info", &[], &[]),
    ("fs_list", &["glob"], &[]),
    (
        "fs_read",
        &["path", "startLine", "endLine", "version"],
        &["path"],
    ),
    (
        "fs_edit",
        &["path", "version", "encoding", "edits"],
        &["path", "version", "edits"],
    ),
    ("fs_snapshot", &["paths", "glob", "version"], &[]),
    ("changes_since", &["version", "glob"], &["version"]),
    ("changes_wait", &["glob", "timeoutMs"], &[]),
    ("presence", &["encoding"], &[]),
    ("fs_create", &["path", "text"], &["path"]),
    ("fs_delete", &["path"], &["path"]),
    ("fs_rename", &["from", "to"], &["from", "to"]),
    (
        "search",
        &[
            "query",
            "regex",
            "caseSensitive",
            "wholeWord",
            "glob",
            "maxResults",
            "encoding",
        ],
        &["query"],
    ),
    (
        "anchor_create",
        &[
            "path",
            "version",
            "position",
            "offset",
            "endPosition",
            "endOffset",
            "bias",
            "encoding",
        ],
        &["path", "version"],
    ),
    ("anchor_resolve", &["id", "encoding"], &["id"]),
    ("anchor_delete", &["id"], &["id"]),
    ("branch_fork", &["name"], &[]),
    ("branch_list", &[], &[]),
    (
        "branch_read",
        &["branch", "path", "startLine", "endLine", "version"],
        &["branch", "path"],
    ),
    (
        "branch_edit",
        &["branch", "path", "version", "encoding", "edits"],
        &["branch", "path", "version", "edits"],
    ),
    (
        "branch_create",
        &["branch", "path", "text"],
        &["branch", "path"],
    ),
    ("branch_delete", &["branch", "path"], &["branch", "path"]),
    ("branch_diff", &["branch"], &["branch"]),
    ("branch_merge", &["branch", "encoding"], &["branch"]),
    ("branch_discard", &["branch"], &["branch"]),
];

fn names(v: Option<&Value>) -> HashSet<String> {
    match v {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        Some(Value::Array(a)) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        _ => HashSet::new(),
    }
}

fn err_code(r: &CallToolResult) -> i64 {
    assert_eq!(r.is_error, Some(true), "expected a tool error: {r:?}");
    r.structured_content.as_ref().expect("error details")["code"]
        .as_i64()
        .unwrap()
}

/// The agent API's newer methods through MCP: every schema is the method's params; snapshot,
/// tree operations, changes since a workspace version, search, anchors and a branch merged into
/// the live workspace, all through the `dist-space mcp` child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_snapshot_tree_search_anchors_and_branches() {
    let dir = workspace();
    let d = Daemon::start(dir.path());
    let (c, _updated) = start_mcp(&d.root, d.runtime.path()).await;

    let tools = c.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), SCHEMAS.len());
    for (name, props, required) in SCHEMAS {
        let t = tools.iter().find(|t| t.name == *name).unwrap();
        let want = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        assert_eq!(
            names(t.input_schema.get("properties")),
            want(props),
            "{name}"
        );
        assert_eq!(
            names(t.input_schema.get("required")),
            want(required),
            "{name}"
        );
    }

    // fs_snapshot: every text file (not blob.bin) at one workspace version (a number).
    let v0 = ok(call(&c, "workspace_info", json!({})).await)["version"]
        .as_u64()
        .unwrap();
    let snap = ok(call(&c, "fs_snapshot", json!({})).await);
    assert_eq!(snap["version"], v0);
    assert_eq!(
        snap["files"],
        json!([{"path": "notes.md", "version": {}, "text": "# notes\n"},
               {"path": "src/main.rs", "version": {}, "text": MAIN}])
    );

    // Tree operations: create (written back), rename and delete (on disk at once).
    let created = ok(call(
        &c,
        "fs_create",
        json!({"path": "src/util.rs", "text": "pub fn u() {}\n"}),
    )
    .await);
    let w1 = created["workspaceVersion"].as_u64().unwrap();
    assert!(w1 > v0, "{created}");
    let renamed = ok(call(
        &c,
        "fs_rename",
        json!({"from": "notes.md", "to": "docs/notes.md"}),
    )
    .await);
    assert_eq!(renamed["path"], "docs/notes.md");
    assert!(renamed["workspaceVersion"].as_u64().unwrap() > w1);
    assert!(d.root.join("docs/notes.md").is_file() && !d.root.join("notes.md").exists());
    let deleted = ok(call(&c, "fs_delete", json!({"path": "blob.bin"})).await);
    assert_eq!(deleted["kind"], "file");
    assert!(!d.root.join("blob.bin").exists());
    let util = d.root.join("src/util.rs");
    wait_for("the created file on disk", Duration::from_secs(20), || {
        (std::fs::read_to_string(&util).ok()? == "pub fn u() {}\n").then_some(())
    });
    let exists = call(&c, "fs_create", json!({"path": "src/main.rs"})).await;
    assert_eq!(err_code(&exists), -32014);

    // An edit, then changes_since the first version: positional edits that rebuild the new
    // text from the old, a unified diff, the rename and the creation.
    let edit = ok(call(
        &c,
        "fs_edit",
        json!({"path": "src/main.rs", "version": {}, "edits": [
            {"offsets": {"start": 24, "end": 25}, "text": "42"}]}),
    )
    .await);
    let main42 = MAIN.replace("= 1", "= 42");
    let since = ok(call(&c, "changes_since", json!({"version": v0})).await);
    assert_eq!(since["from"], v0);
    let files = since["files"].as_array().unwrap();
    let by_path = |p: &str| files.iter().find(|f| f["path"] == p).unwrap().clone();
    assert_eq!(files.len(), 3, "{since}");
    let notes = by_path("docs/notes.md");
    assert_eq!(
        (notes["status"].as_str(), notes["oldPath"].as_str()),
        (Some("renamed"), Some("notes.md"))
    );
    let util_ch = by_path("src/util.rs");
    assert_eq!(util_ch["status"], "created");
    assert_eq!(apply_edits("", &util_ch["edits"]), "pub fn u() {}\n");
    let main_ch = by_path("src/main.rs");
    assert_eq!(main_ch["status"], "modified");
    assert_eq!(main_ch["to"], edit["version"]);
    assert_eq!(apply_edits(MAIN, &main_ch["edits"]), main42);
    assert!(
        main_ch["diff"]
            .as_str()
            .unwrap()
            .contains("\n-    let x = 1;\n+    let x = 42;\n"),
        "{main_ch}"
    );
    let only_src = ok(call(
        &c,
        "changes_since",
        json!({"version": v0, "glob": "src/*.rs"}),
    )
    .await);
    let src_paths: Vec<&str> = only_src["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(src_paths, ["src/main.rs", "src/util.rs"]);
    // The past, by workspace version number and by path.
    let old = ok(call(
        &c,
        "fs_snapshot",
        json!({"version": v0, "paths": ["notes.md"]}),
    )
    .await);
    assert_eq!(
        old["files"],
        json!([{"path": "notes.md", "version": {}, "text": "# notes\n"}])
    );
    // Arguments the method does not take, or of the wrong type, are refused.
    for (tool, args) in [
        (
            "changes_since",
            json!({"version": v0, "path": "src/main.rs"}),
        ),
        ("changes_since", json!({"version": {}})),
        ("changes_since", json!({})),
        ("fs_snapshot", json!({"version": {}})),
        ("anchor_resolve", json!({"id": "0"})),
        ("search", json!({"query": "x", "encoding": "latin-1"})),
    ] {
        let r = c
            .call_tool(
                CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone()),
            )
            .await;
        assert!(r.is_err_or_tool_error(), "{tool} {args}: {r:?}");
    }

    // search: regex, case-insensitive, columns; whole word; the limit.
    let found = ok(call(
        &c,
        "search",
        json!({"query": "LET \\w+ = \\d+;", "regex": true, "caseSensitive": false, "glob": "src/**"}),
    )
    .await);
    assert_eq!(found["truncated"], false);
    assert_eq!(
        found["results"],
        json!([{"path": "src/main.rs", "line": 1,
                "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 15}},
                "lineText": "    let x = 42;", "lineTruncated": false, "version": edit["version"]}])
    );
    let word = ok(call(&c, "search", json!({"query": "le", "wholeWord": true})).await);
    assert_eq!(word["results"], json!([]));
    let limited = ok(call(&c, "search", json!({"query": "n", "maxResults": 1})).await);
    assert_eq!(limited["results"].as_array().unwrap().len(), 1);
    assert_eq!(limited["truncated"], true);

    // Anchors: made at the version read, moved by a later edit, numeric ids.
    let anchor = ok(call(
        &c,
        "anchor_create",
        json!({"path": "src/main.rs", "version": edit["version"],
               "position": {"line": 1, "character": 8}, "bias": "left", "encoding": "utf-8"}),
    )
    .await);
    let id = anchor["id"].as_u64().expect("a numeric anchor id");
    ok(call(
        &c,
        "fs_edit",
        json!({"path": "src/main.rs", "version": edit["version"], "edits": [
            {"offsets": {"start": 0, "end": 0}, "text": "// hi\n"}]}),
    )
    .await);
    let at = ok(call(&c, "anchor_resolve", json!({"id": id})).await);
    assert_eq!(at["path"], "src/main.rs");
    assert_eq!(at["offset"], 26);
    assert_eq!(at["position"], json!({"line": 2, "character": 8}));
    let range = ok(call(
        &c,
        "anchor_create",
        json!({"path": "src/util.rs", "version": util_ch["to"], "offset": 7, "endOffset": 13}),
    )
    .await);
    let r_at = ok(call(&c, "anchor_resolve", json!({"id": range["id"]})).await);
    assert_eq!(
        (r_at["offset"].as_u64(), r_at["endOffset"].as_u64()),
        (Some(7), Some(13))
    );
    assert_eq!(
        ok(call(&c, "anchor_delete", json!({"id": id})).await)["deleted"],
        true
    );
    assert_eq!(
        err_code(&call(&c, "anchor_resolve", json!({"id": id})).await),
        -32050
    );

    // A branch: fork, edit and create on it (invisible live), diff, merge (visible live).
    let live = format!("// hi\n{main42}");
    let fork = ok(call(&c, "branch_fork", json!({"name": "add y"})).await);
    let b = fork["branch"].as_str().unwrap().to_string();
    let br = ok(call(
        &c,
        "branch_read",
        json!({"branch": b, "path": "src/main.rs"}),
    )
    .await);
    assert_eq!(br["text"], live);
    let bed = ok(call(
        &c,
        "branch_edit",
        json!({"branch": b, "path": "src/main.rs", "version": br["version"], "edits": [
            {"range": {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 0}},
             "text": "    let y = 2;\n"}]}),
    )
    .await);
    assert_eq!(bed["edits"][0]["offsets"], json!({"start": 18, "end": 33}));
    ok(call(
        &c,
        "branch_create",
        json!({"branch": b, "path": "src/extra.rs", "text": "// extra\n"}),
    )
    .await);
    let branched = live.replace("{\n", "{\n    let y = 2;\n");
    let line2 = ok(call(
        &c,
        "branch_read",
        json!({"branch": b, "path": "src/main.rs", "startLine": 2, "endLine": 3}),
    )
    .await);
    assert_eq!(line2["text"], "    let y = 2;\n");
    assert_eq!(
        ok(call(&c, "fs_read", json!({"path": "src/main.rs"})).await)["text"],
        live
    );
    assert_eq!(
        err_code(&call(&c, "fs_read", json!({"path": "src/extra.rs"})).await),
        -32012
    );
    let listed = ok(call(&c, "branch_list", json!({})).await);
    assert_eq!(listed["branches"][0]["modified"], json!(["src/main.rs"]));
    assert_eq!(listed["branches"][0]["created"], json!(["src/extra.rs"]));
    let diff = ok(call(&c, "branch_diff", json!({"branch": b})).await);
    let dfiles = diff["files"].as_array().unwrap();
    assert_eq!(dfiles.len(), 2, "{diff}");
    assert_eq!(dfiles[0]["path"], "src/extra.rs");
    assert_eq!(dfiles[0]["status"], "created");
    assert_eq!(dfiles[1]["status"], "modified");
    assert!(
        dfiles[1]["diff"]
            .as_str()
            .unwrap()
            .contains(" fn main() {\n+    let y = 2;\n     let x = 42;\n"),
        "{diff}"
    );
    let merged = ok(call(&c, "branch_merge", json!({"branch": b})).await);
    assert_eq!(merged["merged"], true);
    assert_eq!(
        ok(call(&c, "fs_read", json!({"path": "src/main.rs"})).await)["text"],
        branched
    );
    assert_eq!(
        ok(call(&c, "fs_read", json!({"path": "src/extra.rs"})).await)["text"],
        "// extra\n"
    );
    assert_eq!(agent_api_text(&d, "src/main.rs").await, branched);
    assert_eq!(
        ok(call(&c, "branch_list", json!({})).await)["branches"],
        json!([])
    );
    assert_eq!(
        err_code(&call(&c, "branch_diff", json!({"branch": b})).await),
        -32040
    );

    c.cancel().await.unwrap();
}

trait ToolOutcome {
    fn is_err_or_tool_error(&self) -> bool;
}

impl ToolOutcome for Result<CallToolResult, ServiceError> {
    fn is_err_or_tool_error(&self) -> bool {
        match self {
            Err(_) => true,
            Ok(r) => r.is_error == Some(true),
        }
    }
}

/// SIGTERM a daemon the test did not spawn itself (started detached by `dist-space mcp`).
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_starts_the_daemon_when_none_runs() {
    let dir = workspace();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let runtime = tempfile::tempdir().unwrap();
    assert!(common::read_info(&root).is_none());
    let (c, _updated) = start_mcp(&root, runtime.path()).await;
    let info = common::read_info(&root).expect("the daemon wrote its info file");
    let pid = info["pid"].as_u64().unwrap() as u32;
    let mut guard = KillOnDrop(Some(pid));
    let ws = ok(call(&c, "workspace_info", json!({})).await);
    assert_eq!(ws["root"], json!(root));
    let list = ok(call(&c, "fs_list", json!({})).await);
    let paths: Vec<&str> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["blob.bin", "notes.md", "src/main.rs"]);
    c.cancel().await.unwrap();
    // The daemon outlives the MCP session (like with `dist-space lsp`); stop it.
    guard.0 = None;
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    wait_for("the daemon to stop", Duration::from_secs(20), || {
        (!Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
}
