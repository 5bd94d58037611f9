//! `dist-space mcp [DIR]`: a Model Context Protocol server over stdio (the official Rust SDK,
//! `rmcp`) for stock MCP clients. It is an agent-API client of the workspace's daemon: it reads
//! `ROOT/.dist-space/daemon.json` for the endpoint and bearer token, starting the daemon
//! detached when none is running (as `dist-space lsp` does), and connects over the jsonrpsee
//! WebSocket. Every MCP tool forwards to one agent-API method (a thin layer: the daemon
//! validates, and its JSON-RPC errors come back as MCP tool errors with their message); files
//! are MCP resources (`dist-space:///<path>`) whose `notifications/resources/updated` are driven
//! by the daemon's `changes` subscription.
//!
//! Invariants: stdout carries only MCP messages (logs go to stderr); a bad tool call or a
//! lost daemon gives an error result, never a crash; a dropped daemon connection is
//! re-established (and the daemon restarted) on the next call.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::core::ClientError;
use jsonrpsee::ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::{Peer, RequestContext};
use rmcp::{tool, tool_handler, tool_router, ErrorData as McpError, RoleServer, ServerHandler};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tracing::{debug, info, warn};

use crate::paths;

/// URI scheme of the workspace files as MCP resources: `dist-space:///src/main.rs` (the path
/// relative to the workspace root, `/`-separated, percent-encoded outside `A-Za-z0-9-._~/`).
pub const URI_PREFIX: &str = "dist-space:///";

#[derive(clap::Args, Debug)]
pub struct McpArgs {
    /// The workspace (default: the current directory). The daemon serves the nearest ancestor
    /// holding a `.dist-space/` folder, or this folder itself.
    pub dir: Option<PathBuf>,
    /// Do not start a daemon when none is running (fail instead).
    #[arg(long)]
    pub no_start: bool,
}

pub fn run(args: McpArgs) -> Result<(), String> {
    // Logs to stderr only: stdout is the MCP channel.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    let start = match args.dir {
        Some(d) => d,
        None => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let root = paths::find_root(&start).map_err(|e| format!("{}: {e}", start.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let conn = Arc::new(Conn::new(root, !args.no_start));
        // Connect before answering `initialize`, so a broken setup fails loudly at once.
        conn.client().await?;
        let server = DistSpaceMcp::new(conn);
        let running = rmcp::ServiceExt::serve(server, rmcp::transport::stdio())
            .await
            .map_err(|e| format!("MCP: {e}"))?;
        let reason = running.waiting().await.map_err(|e| format!("MCP: {e}"))?;
        info!(?reason, "MCP session ended");
        Ok::<(), String>(())
    })?;
    // Do not wait for the blocking stdin reader.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The daemon connection.

/// An agent-API call that failed: a JSON-RPC error from the daemon, or no daemon.
#[derive(Debug)]
enum CallError {
    Rpc {
        code: i32,
        message: String,
        data: Option<Value>,
    },
    Transport(String),
}

impl CallError {
    fn text(&self) -> String {
        match self {
            CallError::Rpc { code, message, .. } => format!("error {code}: {message}"),
            CallError::Transport(m) => format!("the dist-space daemon is unavailable: {m}"),
        }
    }
}

/// The shared state behind every MCP session handler clone.
struct Conn {
    root: PathBuf,
    start: bool,
    client: tokio::sync::Mutex<Option<Arc<WsClient>>>,
    /// URIs the MCP client subscribed to.
    subscribed: Mutex<HashSet<String>>,
    peer: Mutex<Option<Peer<RoleServer>>>,
    /// Whether the `changes` follower runs.
    watching: tokio::sync::Mutex<bool>,
}

impl Conn {
    fn new(root: PathBuf, start: bool) -> Conn {
        Conn {
            root,
            start,
            client: tokio::sync::Mutex::new(None),
            subscribed: Mutex::new(HashSet::new()),
            peer: Mutex::new(None),
            watching: tokio::sync::Mutex::new(false),
        }
    }

    /// The live WebSocket client, (re)connecting and starting the daemon when needed.
    async fn client(&self) -> Result<Arc<WsClient>, String> {
        let mut g = self.client.lock().await;
        if let Some(c) = g.as_ref() {
            if c.is_connected() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(connect(&self.root, self.start).await?);
        *g = Some(c.clone());
        Ok(c)
    }

    /// One agent-API call (params by name); a call that meets a dead connection is retried
    /// once on a new one.
    async fn call(&self, method: &str, params: Map<String, Value>) -> Result<Value, CallError> {
        let mut retried = false;
        loop {
            let c = self.client().await.map_err(CallError::Transport)?;
            match c.request::<Value, _>(method, params.clone()).await {
                Ok(v) => return Ok(v),
                Err(ClientError::Call(e)) => {
                    return Err(CallError::Rpc {
                        code: e.code(),
                        message: e.message().to_string(),
                        data: e.data().and_then(|d| serde_json::from_str(d.get()).ok()),
                    })
                }
                Err(e @ (ClientError::RestartNeeded(_) | ClientError::Transport(_)))
                    if !retried =>
                {
                    warn!(error = %e, method, "daemon connection lost; reconnecting");
                    retried = true;
                }
                Err(e) => return Err(CallError::Transport(e.to_string())),
            }
        }
    }

    fn subscribed(&self, uri: &str) -> bool {
        self.subscribed.lock().unwrap().contains(uri)
    }

    async fn notify_updated(&self, uri: String) -> bool {
        let peer = self.peer.lock().unwrap().clone();
        let Some(peer) = peer else { return true };
        debug!(%uri, "resource updated");
        peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
            .await
            .is_ok()
    }
}

fn auth_headers(token: &str) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    let v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    h.insert("authorization", v);
    Ok(h)
}

/// Connect to the agent API of `root`'s daemon, starting the daemon if `start` and nobody
/// answers.
async fn connect(root: &Path, start: bool) -> Result<WsClient, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut started = false;
    let mut last_err = String::from("no daemon info file");
    let mut wait = Duration::from_millis(5);
    loop {
        if let Some(info) = paths::read_info(root) {
            if let (Some(url), Some(token), true) = (
                info.agent_endpoint.as_deref(),
                info.agent_token.as_deref(),
                paths::pid_alive(info.pid),
            ) {
                match WsClientBuilder::default()
                    .set_headers(auth_headers(token)?)
                    .max_request_size(64 * 1024 * 1024)
                    .max_response_size(64 * 1024 * 1024)
                    .request_timeout(Duration::from_secs(120))
                    .build(url)
                    .await
                {
                    Ok(c) => {
                        info!(%url, pid = info.pid, "connected to the daemon's agent API");
                        return Ok(c);
                    }
                    Err(e) => last_err = format!("{url}: {e}"),
                }
            }
        }
        if !started {
            if !start {
                return Err(format!(
                    "no dist-space daemon for {} ({last_err}); run `dist-space serve` there",
                    root.display()
                ));
            }
            // Starts the daemon detached when its socket does not answer, and waits for it.
            let _ = crate::bridge::connect_or_start(root, true).await?;
            started = true;
            continue;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "cannot reach the daemon's agent API: {last_err} (see {})",
                paths::log_path(root).display()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(100));
    }
}

type ChangeSub = jsonrpsee::core::client::Subscription<Value>;

async fn subscribe_changes(conn: &Conn) -> Result<ChangeSub, String> {
    let c = conn.client().await?;
    c.subscribe::<Value, _>("changes.subscribe", Map::new(), "changes.unsubscribe")
        .await
        .map_err(|e| e.to_string())
}

/// Follow the daemon's `changes` (starting with `sub`) and turn them into
/// `notifications/resources/updated` for the subscribed URIs. Resubscribes when the
/// subscription ends (slow-subscriber cut-off, daemon restart), then reports every subscribed
/// URI as updated, since changes may have been missed. Ends when the MCP client is gone.
async fn watch_changes(conn: Arc<Conn>, mut sub: ChangeSub) {
    loop {
        while let Some(n) = sub.next().await {
            let Ok(notice) = n else { continue };
            let Some(path) = notice.get("path").and_then(Value::as_str) else {
                continue;
            };
            let uri = path_to_uri(path);
            if conn.subscribed(&uri) && !conn.notify_updated(uri).await {
                return;
            }
        }
        warn!(reason = ?sub.close_reason(), "changes subscription ended; resubscribing");
        sub = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match subscribe_changes(&conn).await {
                Ok(s) => break s,
                Err(e) => {
                    warn!(error = %e, "changes.subscribe failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let all: Vec<String> = conn.subscribed.lock().unwrap().iter().cloned().collect();
        for uri in all {
            if !conn.notify_updated(uri).await {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resource URIs.

pub fn path_to_uri(path: &str) -> String {
    let mut s = String::from(URI_PREFIX);
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

pub fn uri_to_path(uri: &str) -> Result<String, String> {
    let rest = uri.strip_prefix(URI_PREFIX).ok_or_else(|| {
        format!("`{uri}` is not a dist-space resource (expected {URI_PREFIX}<path>)")
    })?;
    let b = rest.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = rest
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{uri}`: bad percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{uri}`: the path is not UTF-8"))
}

// ---------------------------------------------------------------------------------------------
// Tool inputs. Field names are the agent API's (camelCase, by name); `None` is left out.

/// A document version as the agent API returns it: `{agent name: highest event number}`
/// (`{}` for a file nobody has edited since the daemon loaded it).
type Version = BTreeMap<String, u64>;

/// Parameters the tool does not know are passed to the agent API unchanged.
type Extra = Map<String, Value>;

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobParams {
    /// Only paths matching this glob (`*` stays within a folder, `**` crosses folders:
    /// `**/*.rs`, `src/*.rs`). Omit for all files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadParams {
    /// Path relative to the workspace root, e.g. `src/main.rs`.
    pub path: String,
    /// First line to return (0-based). Omit for the start of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    /// Line to stop before (exclusive). Omit for the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u64>,
    /// Read the file as it was at this earlier version (one returned by a previous call)
    /// instead of now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Position {
    /// 0-based line.
    pub line: u64,
    /// 0-based column in the request's `encoding` (UTF-16 code units by default).
    pub character: u64,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Offsets {
    /// Start, in Unicode scalar values (chars) from the start of the file.
    pub start: u64,
    /// End (exclusive), in chars.
    pub end: u64,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct TextEdit {
    /// The line/character range to replace (give exactly one of `range` and `offsets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// The char-offset range to replace (give exactly one of `range` and `offsets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<Offsets>,
    /// The new text (empty to delete).
    pub text: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditParams {
    /// Path relative to the workspace root.
    pub path: String,
    /// The version you read (from `fs_read`): all positions refer to the text at that
    /// version, even if others edited since.
    pub version: Version,
    /// How `character` counts in `range`s: `utf-16` (default), `utf-8` or `utf-32`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Simultaneous, non-overlapping edits, all against the text at `version`.
    pub edits: Vec<TextEdit>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotParams {
    /// Only paths matching this glob; omit for the whole workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Other agent-API parameters of `fs.snapshot`, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesSinceParams {
    /// The version to start from (as returned by an earlier call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Value>,
    /// Only this file (path relative to the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Other agent-API parameters of `changes.since`, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathParams {
    /// Path relative to the workspace root.
    pub path: String,
    /// Other agent-API parameters, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateParams {
    /// Path of the new file relative to the workspace root.
    pub path: String,
    /// Its initial text (empty if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other agent-API parameters of `fs.create`, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenameParams {
    /// Current path relative to the workspace root.
    pub from: String,
    /// New path relative to the workspace root.
    pub to: String,
    /// Other agent-API parameters of `fs.rename`, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    /// What to look for.
    pub query: String,
    /// Treat `query` as a regular expression (default: literal text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<bool>,
    /// Only files matching this glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Other agent-API parameters of `search`, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnchorCreateParams {
    /// File the anchor is in (relative to the root).
    pub path: String,
    /// The version the position refers to (from `fs_read`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// Other agent-API parameters of `anchor.create` (the position or range), passed through
    /// unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdParams {
    /// The id returned when it was created.
    pub id: String,
    /// Other agent-API parameters, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnyParams {
    /// Parameters of the agent-API method, by name, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchParams {
    /// The branch id (from `branch_fork` or `branch_list`).
    pub branch: String,
    /// Other agent-API parameters, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchPathParams {
    /// The branch id.
    pub branch: String,
    /// Path relative to the workspace root.
    pub path: String,
    /// Other agent-API parameters, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchEditParams {
    /// The branch id.
    pub branch: String,
    /// Path relative to the workspace root.
    pub path: String,
    /// The version of the file on the branch you read (from `branch_read`).
    pub version: Version,
    /// How `character` counts in `range`s: `utf-16` (default), `utf-8` or `utf-32`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Simultaneous, non-overlapping edits against the text at `version`.
    pub edits: Vec<TextEdit>,
    /// Other agent-API parameters, passed through unchanged.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitParams {
    /// Only changes to paths matching this glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// How long to wait for the first change, in milliseconds (default 10000, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// The MCP server.

#[derive(Clone)]
pub struct DistSpaceMcp {
    conn: Arc<Conn>,
    tool_router: ToolRouter<Self>,
}

fn to_params<T: Serialize>(p: &T) -> Map<String, Value> {
    match serde_json::to_value(p) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn tool_error(e: &CallError) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(e.text())]);
    if let CallError::Rpc {
        code,
        message,
        data,
    } = e
    {
        r.structured_content = Some(json!({"code": code, "message": message, "data": data}));
    }
    r
}

fn rpc_to_mcp(e: CallError) -> McpError {
    match e {
        CallError::Rpc {
            code: -32012,
            message,
            ..
        } => McpError::resource_not_found(message, None),
        CallError::Rpc {
            code: -32602 | -32010 | -32011 | -32013,
            message,
            ..
        } => McpError::invalid_params(message, None),
        other => McpError::internal_error(other.text(), None),
    }
}

const INSTRUCTIONS: &str = "The live dist-space workspace: the text humans have open in their \
editors (saved or not), shared with other AI agents. Read a file with `fs_read` to get its text \
and `version`, then edit with `fs_edit` against that version: your edits are merged with what \
others typed meanwhile, never written over it. Paths are relative to the workspace root. Files \
are also resources (`dist-space:///<path>`) you can subscribe to.";

#[tool_router]
impl DistSpaceMcp {
    fn new(conn: Arc<Conn>) -> Self {
        DistSpaceMcp {
            conn,
            tool_router: Self::tool_router(),
        }
    }

    async fn forward<T: Serialize>(&self, method: &str, p: &T) -> CallToolResult {
        match self.conn.call(method, to_params(p)).await {
            // MCP wants an object as structured content.
            Ok(v @ Value::Object(_)) => CallToolResult::structured(v),
            Ok(v) => CallToolResult::structured(json!({ "result": v })),
            Err(e) => tool_error(&e),
        }
    }

    #[tool(
        description = "Workspace overview: root folder, workspace version, number of files, and \
who is connected (editors and the file each one is in).",
        annotations(read_only_hint = true)
    )]
    async fn workspace_info(&self) -> Result<CallToolResult, McpError> {
        Ok(self.forward("workspace.info", &Map::new()).await)
    }

    #[tool(
        description = "List the workspace's files (optionally only those matching a glob): path, \
size, language id, version, whether it has unsaved changes (`dirty`) and is open in an editor.",
        annotations(read_only_hint = true)
    )]
    async fn fs_list(
        &self,
        Parameters(p): Parameters<GlobParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.list", &p).await)
    }

    #[tool(
        description = "Read a file's live text (what editors show, including unsaved edits), \
optionally a line range or an earlier version. Returns the text and its `version`: pass that \
version to `fs_edit`.",
        annotations(read_only_hint = true)
    )]
    async fn fs_read(
        &self,
        Parameters(p): Parameters<ReadParams>,
    ) -> Result<CallToolResult, McpError> {
        match self.conn.call("fs.read", to_params(&p)).await {
            Ok(v) => {
                // The text as its own block (readable, not JSON-escaped), then the rest.
                let text = v
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let mut meta = v.clone();
                if let Some(m) = meta.as_object_mut() {
                    m.remove("text");
                }
                let mut r = CallToolResult::success(vec![
                    ContentBlock::text(meta.to_string()),
                    ContentBlock::text(text),
                ]);
                r.structured_content = Some(v);
                Ok(r)
            }
            Err(e) => Ok(tool_error(&e)),
        }
    }

    #[tool(
        description = "Edit a file: a list of simultaneous, non-overlapping range edits \
(`range` in line/character, or `offsets` in chars), all against the `version` you read. The \
edits are applied atomically and merged with whatever others typed since that version; the \
result gives the new version and where each edit's text landed. A bad request changes nothing."
    )]
    async fn fs_edit(
        &self,
        Parameters(p): Parameters<EditParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.edit", &p).await)
    }

    #[tool(
        description = "Snapshot of many files (or the whole workspace) at one consistent \
version: each file's text and version.",
        annotations(read_only_hint = true)
    )]
    async fn fs_snapshot(
        &self,
        Parameters(p): Parameters<SnapshotParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.snapshot", &p).await)
    }

    #[tool(
        description = "What changed since a version: per file, as positional edits and as a \
unified diff.",
        annotations(read_only_hint = true)
    )]
    async fn changes_since(
        &self,
        Parameters(p): Parameters<ChangesSinceParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("changes.since", &p).await)
    }

    #[tool(
        description = "Wait for the next live changes (editor typing, agents, disk), \
optionally only for paths matching a glob: returns the change notices that arrive within the \
timeout (each: path, from/to versions, edits in chars applied in sequence), or none."
    )]
    async fn changes_wait(
        &self,
        Parameters(p): Parameters<WaitParams>,
    ) -> Result<CallToolResult, McpError> {
        let mut params = Map::new();
        if let Some(g) = &p.glob {
            params.insert("glob".into(), json!(g));
        }
        let timeout = Duration::from_millis(p.timeout_ms.unwrap_or(10_000).min(60_000));
        Ok(self
            .collect_notices("changes.subscribe", "changes.unsubscribe", params, timeout)
            .await)
    }

    #[tool(
        description = "Who is where: the participants (editors, agents), the file each is in \
and their cursors/selections. Waits up to 2 s for the daemon's presence notices.",
        annotations(read_only_hint = true)
    )]
    async fn presence(
        &self,
        Parameters(p): Parameters<AnyParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self
            .collect_notices(
                "presence.subscribe",
                "presence.unsubscribe",
                p.extra,
                Duration::from_secs(2),
            )
            .await)
    }

    #[tool(description = "Create a new file with the given text.")]
    async fn fs_create(
        &self,
        Parameters(p): Parameters<CreateParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.create", &p).await)
    }

    #[tool(
        description = "Delete a file from the workspace.",
        annotations(destructive_hint = true)
    )]
    async fn fs_delete(
        &self,
        Parameters(p): Parameters<PathParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.delete", &p).await)
    }

    #[tool(description = "Rename (move) a file within the workspace.")]
    async fn fs_rename(
        &self,
        Parameters(p): Parameters<RenameParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.rename", &p).await)
    }

    #[tool(
        description = "Search the live workspace text (including unsaved edits), like ripgrep: \
literal text or a regular expression, optionally only in files matching a glob. Returns the \
matches with path, line and position.",
        annotations(read_only_hint = true)
    )]
    async fn search(
        &self,
        Parameters(p): Parameters<SearchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("search", &p).await)
    }

    #[tool(
        description = "Create an anchor: a position (or range) in a file that follows the \
text as people edit. Returns its id; resolve it later with `anchor_resolve`."
    )]
    async fn anchor_create(
        &self,
        Parameters(p): Parameters<AnchorCreateParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("anchor.create", &p).await)
    }

    #[tool(
        description = "Where an anchor is now (after everything edited since it was created).",
        annotations(read_only_hint = true)
    )]
    async fn anchor_resolve(
        &self,
        Parameters(p): Parameters<IdParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("anchor.resolve", &p).await)
    }

    #[tool(description = "Delete an anchor.")]
    async fn anchor_delete(
        &self,
        Parameters(p): Parameters<IdParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("anchor.delete", &p).await)
    }

    #[tool(
        description = "Fork a private branch of the workspace at the current version. Edits \
on the branch are invisible to humans until merged: use it to prepare a multi-file change, \
then `branch_diff` and `branch_merge` (or `branch_discard`). Returns the branch id."
    )]
    async fn branch_fork(
        &self,
        Parameters(p): Parameters<AnyParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.fork", &p).await)
    }

    #[tool(
        description = "List your open branches.",
        annotations(read_only_hint = true)
    )]
    async fn branch_list(
        &self,
        Parameters(p): Parameters<AnyParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.list", &p).await)
    }

    #[tool(
        description = "Read a file as it is on a branch: its text and branch version.",
        annotations(read_only_hint = true)
    )]
    async fn branch_read(
        &self,
        Parameters(p): Parameters<BranchPathParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.read", &p).await)
    }

    #[tool(
        description = "Edit a file on a branch (like `fs_edit`, against the branch version \
you read with `branch_read`). Humans do not see it until the branch is merged."
    )]
    async fn branch_edit(
        &self,
        Parameters(p): Parameters<BranchEditParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.edit", &p).await)
    }

    #[tool(description = "Create a file on a branch.")]
    async fn branch_create(
        &self,
        Parameters(p): Parameters<BranchPathParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.create", &p).await)
    }

    #[tool(description = "Delete a file on a branch.")]
    async fn branch_delete(
        &self,
        Parameters(p): Parameters<BranchPathParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.delete", &p).await)
    }

    #[tool(
        description = "Diff a branch against the live workspace (unified diff per file).",
        annotations(read_only_hint = true)
    )]
    async fn branch_diff(
        &self,
        Parameters(p): Parameters<BranchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.diff", &p).await)
    }

    #[tool(
        description = "Merge a branch into the live workspace: the engine merges its edits \
with everything that happened meanwhile (nobody's text is lost); humans see the result at once."
    )]
    async fn branch_merge(
        &self,
        Parameters(p): Parameters<BranchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.merge", &p).await)
    }

    #[tool(
        description = "Throw a branch away without merging it.",
        annotations(destructive_hint = true)
    )]
    async fn branch_discard(
        &self,
        Parameters(p): Parameters<BranchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.discard", &p).await)
    }
}

impl DistSpaceMcp {
    /// Subscribe, gather the notices that arrive within `timeout` (stopping shortly after the
    /// first burst), unsubscribe.
    async fn collect_notices(
        &self,
        sub: &str,
        unsub: &str,
        params: Map<String, Value>,
        timeout: Duration,
    ) -> CallToolResult {
        let client = match self.conn.client().await {
            Ok(c) => c,
            Err(e) => return tool_error(&CallError::Transport(e)),
        };
        let mut s = match client.subscribe::<Value, _>(sub, params, unsub).await {
            Ok(s) => s,
            Err(ClientError::Call(e)) => {
                return tool_error(&CallError::Rpc {
                    code: e.code(),
                    message: e.message().to_string(),
                    data: None,
                })
            }
            Err(e) => return tool_error(&CallError::Transport(e.to_string())),
        };
        let mut notices = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // After the first notice, only wait a little for the rest of its batch.
            let until = if notices.is_empty() {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(100))
            };
            match tokio::time::timeout_at(until, s.next()).await {
                Ok(Some(Ok(v))) => notices.push(v),
                Ok(Some(Err(e))) => warn!(error = %e, "bad notice"),
                Ok(None) | Err(_) => break,
            }
            if notices.len() >= 1000 {
                break;
            }
        }
        let _ = s.unsubscribe().await;
        CallToolResult::structured(json!({ "notices": notices }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DistSpaceMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("dist-space", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    /// Resource subscriptions use `resources/subscribe`, which exists up to 2025-11-25 (the
    /// 2026-07-28 `subscriptions/listen` is not implemented here).
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let v = self
            .conn
            .call("fs.list", Map::new())
            .await
            .map_err(rpc_to_mcp)?;
        let files = v
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let resources = files
            .iter()
            .filter(|f| f.get("text").and_then(Value::as_bool) == Some(true))
            .filter_map(|f| {
                let path = f.get("path")?.as_str()?;
                let mut r = Resource::new(path_to_uri(path), path).with_mime_type("text/plain");
                if let Some(size) = f.get("size").and_then(Value::as_u64) {
                    r = r.with_size(size);
                }
                if let Some(lang) = f.get("languageId").and_then(Value::as_str) {
                    r = r.with_description(format!("{lang} file (live text, saved or not)"));
                }
                Some(r)
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let path = uri_to_path(&request.uri).map_err(|m| McpError::invalid_params(m, None))?;
        let v = self
            .conn
            .call("fs.read", to_params(&json!({ "path": path })))
            .await
            .map_err(rpc_to_mcp)?;
        let text = v
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut meta = rmcp::model::MetaObject::default();
        meta.0.insert(
            "version".into(),
            v.get("version").cloned().unwrap_or(Value::Null),
        );
        let contents = ResourceContents::text(text, request.uri)
            .with_mime_type("text/plain")
            .with_meta(meta);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        uri_to_path(&request.uri).map_err(|m| McpError::invalid_params(m, None))?;
        *self.conn.peer.lock().unwrap() = Some(context.peer.clone());
        // The first subscription starts following the daemon's changes; it is established
        // before we answer, so every change after `resources/subscribe` is reported.
        let mut watching = self.conn.watching.lock().await;
        if !*watching {
            let sub = subscribe_changes(&self.conn)
                .await
                .map_err(|e| McpError::internal_error(format!("changes.subscribe: {e}"), None))?;
            tokio::spawn(watch_changes(self.conn.clone(), sub));
            *watching = true;
        }
        self.conn.subscribed.lock().unwrap().insert(request.uri);
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.conn.subscribed.lock().unwrap().remove(&request.uri);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for p in ["src/main.rs", "a b/ü%.txt", "x#y?z"] {
            let u = path_to_uri(p);
            assert!(u.starts_with(URI_PREFIX), "{u}");
            assert!(!u[URI_PREFIX.len()..].contains(['#', '?', ' ']), "{u}");
            assert_eq!(uri_to_path(&u).unwrap(), p);
        }
        assert_eq!(path_to_uri("src/main.rs"), "dist-space:///src/main.rs");
        assert!(uri_to_path("file:///etc/passwd").is_err());
        assert!(uri_to_path("dist-space:///a%zz").is_err());
        assert!(uri_to_path("dist-space:///a%ff").is_err());
    }
}
