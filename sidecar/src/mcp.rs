//! `dist-space mcp [DIR]`: a Model Context Protocol server over stdio (the official Rust SDK,
//! `rmcp`) for stock MCP clients. It is an agent-API client of the workspace's daemon: it reads
//! `ROOT/.dist-space/daemon.json` for the endpoint and bearer token, starting the daemon
//! detached when none is running (as `dist-space lsp` does), and connects over the jsonrpsee
//! WebSocket. Every MCP tool forwards to one agent-API method (a thin layer: each tool's input
//! schema is exactly the method's params, the daemon validates the values, and its JSON-RPC
//! errors come back as MCP tool errors with their message); files
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
            let _ = crate::start::connect_or_start(root, true).await?;
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
// Tool inputs: one struct per agent-API method, with exactly the method's params (camelCase,
// by name; `None` is left out). The daemon's param structs refuse unknown fields, and so do
// these: a misspelt argument is an MCP invalid-params error naming it, before any call.

/// A document version as the agent API returns it: `{agent name: highest event number}`
/// (`{}` for a file nobody has edited since the daemon loaded it).
type Version = BTreeMap<String, u64>;

/// How `character` counts in line/character positions.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
pub enum Encoding {
    #[serde(rename = "utf-16")]
    Utf16,
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "utf-32")]
    Utf32,
}

/// Which side of text inserted exactly at an anchor the anchor stays on.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bias {
    Right,
    Left,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobParams {
    /// Only paths matching this glob (`*` stays within a folder, `**` crosses folders:
    /// `**/*.rs`, `src/*.rs`). Omit for all files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadParams {
    /// Path relative to the workspace root, e.g. `src/main.rs`.
    pub path: String,
    /// First line to return (0-based). Omit for the start of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    /// Line to stop before (exclusive). Omit for the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u64>,
    /// Read the file as it was at this earlier document version (an object returned by a
    /// previous call, e.g. `{}`) instead of now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// 0-based line.
    pub line: u64,
    /// 0-based column in the request's `encoding` (UTF-16 code units by default).
    pub character: u64,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Offsets {
    /// Start, in Unicode scalar values (chars) from the start of the file.
    pub start: u64,
    /// End (exclusive), in chars.
    pub end: u64,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditParams {
    /// Path relative to the workspace root.
    pub path: String,
    /// The document version you read (from `fs_read`): all positions refer to the text at
    /// that version, even if others edited since.
    pub version: Version,
    /// How `character` counts in `range`s (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Simultaneous, non-overlapping edits, all against the text at `version`.
    pub edits: Vec<TextEdit>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotParams {
    /// Exactly these files (paths relative to the root; each must be a text file). Omit for
    /// every text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Only files whose path matches this glob (`**/*.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// The workspace version (a number, as returned by `workspace_info`, `fs_list`,
    /// `fs_snapshot`, `search` or a tree operation) to read at. Omit for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangesSinceParams {
    /// The workspace version (a number, as returned by `workspace_info`, `fs_list`,
    /// `fs_snapshot`, `search` or a tree operation) to compare the workspace now with.
    pub version: u64,
    /// Only files whose path now or then matches this glob (`src/**`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteParams {
    /// Path of the file or folder relative to the workspace root.
    pub path: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateParams {
    /// Path of the new file relative to the workspace root (missing folders are made).
    pub path: String,
    /// Its text (empty if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenameParams {
    /// Current path of the file or folder, relative to the workspace root.
    pub from: String,
    /// New path relative to the workspace root (must be free; missing folders are made).
    pub to: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchParams {
    /// What to look for (one line: matches never span lines).
    pub query: String,
    /// Treat `query` as a regular expression, Rust `regex` syntax (default false: literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<bool>,
    /// Match case exactly (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    /// Only matches that start and end at word boundaries (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_word: Option<bool>,
    /// Only files whose path matches this glob (`**/*.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// At most this many matches (default 1000, at most 100000); `truncated` says if there
    /// were more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u64>,
    /// How `character` counts in the returned ranges (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnchorCreateParams {
    /// File the anchor is in (relative to the root).
    pub path: String,
    /// The document version the place refers to, as read (from `fs_read`; it may be old).
    pub version: Version,
    /// The place as line/character in `encoding` (give exactly one of `position` and `offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// The place in chars from the start of the file (give exactly one of `position` and
    /// `offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// For a range anchor: its end as line/character (or use `endOffset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_position: Option<Position>,
    /// For a range anchor: its end in chars (or use `endPosition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<u64>,
    /// Position anchors only: `right` (default: text inserted exactly there goes before the
    /// anchor) or `left`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<Bias>,
    /// How `character` counts in `position` / `endPosition` (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnchorResolveParams {
    /// The anchor id (a number) returned by `anchor_create`.
    pub id: u64,
    /// How `character` counts in the returned positions (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnchorDeleteParams {
    /// The anchor id (a number) returned by `anchor_create`.
    pub id: u64,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceParams {
    /// How `character` counts in the returned selections (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForkParams {
    /// A label for people (`branch_list` shows it); the branch id is chosen by the daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchParams {
    /// The branch id (a string such as `b1`, from `branch_fork` or `branch_list`).
    pub branch: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchMergeParams {
    /// The branch id (a string such as `b1`, from `branch_fork` or `branch_list`).
    pub branch: String,
    /// How `character` counts in the reply's `inserted` ranges (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchPathParams {
    /// The branch id (a string such as `b1`).
    pub branch: String,
    /// Path relative to the workspace root.
    pub path: String,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchReadParams {
    /// The branch id (a string such as `b1`).
    pub branch: String,
    /// Path relative to the workspace root.
    pub path: String,
    /// First line to return (0-based). Omit for the start of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    /// Line to stop before (exclusive). Omit for the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u64>,
    /// Read the file at this earlier version of it on this branch (an object returned by an
    /// earlier branch call) instead of now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchCreateParams {
    /// The branch id (a string such as `b1`).
    pub branch: String,
    /// Path of the new file relative to the workspace root.
    pub path: String,
    /// Its text (empty if omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchEditParams {
    /// The branch id (a string such as `b1`).
    pub branch: String,
    /// Path relative to the workspace root.
    pub path: String,
    /// The version of the file on the branch you read (from `branch_read` or an earlier
    /// `branch_edit`); a version from `fs_read` is refused once the live file has changed.
    pub version: Version,
    /// How `character` counts in `range`s (default `utf-16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Simultaneous, non-overlapping edits against the text at `version`.
    pub edits: Vec<TextEdit>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
        description = "Workspace overview: root folder, the workspace `version` (a number \
naming the state of every file, for `fs_snapshot` and `changes_since`), number of files, and \
who is connected (editors and agents, with the file each one is in).",
        annotations(read_only_hint = true)
    )]
    async fn workspace_info(&self) -> Result<CallToolResult, McpError> {
        Ok(self.forward("workspace.info", &Map::new()).await)
    }

    #[tool(
        description = "List the workspace's files (optionally only those matching a glob): \
path, whether it is text, size, language id, document version, whether it has unsaved changes \
(`dirty`) and is open in an editor; plus the workspace `version` (a number).",
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
optionally a line range (`startLine`, `endLine` exclusive) or an earlier document version. \
Returns the text, `totalLines`, `dirty` and its document `version` (an object such as `{}`): \
pass that version to `fs_edit`.",
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
        description = "Read many files (or every text file) at ONE consistent workspace \
version: each file's path, text and document version. Narrow with `paths` (exactly these \
files) and/or `glob`; pass `version` (a workspace version number from an earlier call) to read \
the workspace as it was then. Returns `version` (the workspace version read) and `files`. At \
most 48 MiB of text per call.",
        annotations(read_only_hint = true)
    )]
    async fn fs_snapshot(
        &self,
        Parameters(p): Parameters<SnapshotParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.snapshot", &p).await)
    }

    #[tool(
        description = "What changed since a workspace version (a number from \
`workspace_info`, `fs_list`, `fs_snapshot`, `search` or a tree operation): for each text file \
that differs, its `status` (modified, created, deleted, renamed with `oldPath`), `from`/`to` \
document versions, `edits` (char offsets, applied in sequence, turning the old text into the \
new) and a unified `diff`. Returns `from`, `to` (workspace versions) and `files`.",
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
        description = "Who is where: returns `notices`, one per participant (editors and \
agents): `id`, `kind`, `name`, the file (`path`) and document `version` they are at, and \
their `selections` (`anchor`/`head` line/character in `encoding`; an agent's are where its \
last edits landed). Collects the daemon's presence notices for 2 s.",
        annotations(read_only_hint = true)
    )]
    async fn presence(
        &self,
        Parameters(p): Parameters<PresenceParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self
            .collect_notices(
                "presence.subscribe",
                "presence.unsubscribe",
                to_params(&p),
                Duration::from_secs(2),
            )
            .await)
    }

    #[tool(
        description = "Create a new text file (and any missing folders) with the given text \
(default empty); it is saved to disk shortly after. Refused if the path exists. Returns the \
file's document `version` and the new `workspaceVersion`."
    )]
    async fn fs_create(
        &self,
        Parameters(p): Parameters<CreateParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.create", &p).await)
    }

    #[tool(
        description = "Delete a file or a whole folder from the workspace, on disk at once \
(including any unsaved edits it has). Returns its `kind` and the new `workspaceVersion`.",
        annotations(destructive_hint = true)
    )]
    async fn fs_delete(
        &self,
        Parameters(p): Parameters<DeleteParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.delete", &p).await)
    }

    #[tool(
        description = "Rename (move) a file or folder from `from` to `to` within the \
workspace, on disk at once (missing folders are made; `to` must be free). The file keeps its \
identity: versions and anchors stay valid. Returns the new `workspaceVersion`."
    )]
    async fn fs_rename(
        &self,
        Parameters(p): Parameters<RenameParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("fs.rename", &p).await)
    }

    #[tool(
        description = "Search the live workspace text (including unsaved edits) line by line, \
like ripgrep: `query` is literal text unless `regex` is true (Rust regex syntax); options \
`caseSensitive` (default true), `wholeWord`, `glob`, `maxResults` (default 1000). Each result: \
`path`, `line`, `range` (line/character in `encoding`), `lineText` and the file's `version`; \
`truncated` says there were more.",
        annotations(read_only_hint = true)
    )]
    async fn search(
        &self,
        Parameters(p): Parameters<SearchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("search", &p).await)
    }

    #[tool(
        description = "Create an anchor: a place (or, with `endPosition`/`endOffset`, a range) \
in a file that follows every edit made after it, renames included. Give the document \
`version` you read and exactly one of `position` (line/character) or `offset` (chars). Returns \
its numeric `id`; find where it is now with `anchor_resolve`."
    )]
    async fn anchor_create(
        &self,
        Parameters(p): Parameters<AnchorCreateParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("anchor.create", &p).await)
    }

    #[tool(
        description = "Where an anchor is now (after everything edited since it was created): \
its current `path`, `version`, `offset`/`position` (and `endOffset`/`endPosition` for a \
range). Error -32051 if its file was deleted.",
        annotations(read_only_hint = true)
    )]
    async fn anchor_resolve(
        &self,
        Parameters(p): Parameters<AnchorResolveParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("anchor.resolve", &p).await)
    }

    #[tool(description = "Delete an anchor by its numeric id.")]
    async fn anchor_delete(
        &self,
        Parameters(p): Parameters<AnchorDeleteParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("anchor.delete", &p).await)
    }

    #[tool(
        description = "Fork a private branch of the whole workspace at the current version. \
Edits on the branch are invisible to humans, `fs_read` and the disk until merged: use it to \
prepare a multi-file change (`branch_read`, `branch_edit`, `branch_create`, `branch_delete`), \
then `branch_diff` and `branch_merge` (or `branch_discard`). Returns the `branch` id (a string \
such as `b1`) and the workspace `version` forked."
    )]
    async fn branch_fork(
        &self,
        Parameters(p): Parameters<ForkParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.fork", &p).await)
    }

    #[tool(
        description = "List the open branches (of every agent): id, name, forked workspace \
version, and the files each has modified, created and deleted.",
        annotations(read_only_hint = true)
    )]
    async fn branch_list(&self) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.list", &Map::new()).await)
    }

    #[tool(
        description = "Read a file as it is on a branch (its text at the fork plus the \
branch's edits), optionally a line range or an earlier branch version. Returns the text, \
`totalLines` and the branch `version`: pass it to `branch_edit`.",
        annotations(read_only_hint = true)
    )]
    async fn branch_read(
        &self,
        Parameters(p): Parameters<BranchReadParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.read", &p).await)
    }

    #[tool(
        description = "Edit a file on a branch, exactly like `fs_edit` (simultaneous, \
non-overlapping `range`/`offsets` edits, atomic) but against the branch version you read with \
`branch_read`. Humans do not see it until the branch is merged. Returns the new branch \
`version` and where each edit landed."
    )]
    async fn branch_edit(
        &self,
        Parameters(p): Parameters<BranchEditParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.edit", &p).await)
    }

    #[tool(
        description = "Create a new file (text default empty) on a branch; it appears in the \
workspace when the branch is merged. Refused if the path exists on the branch."
    )]
    async fn branch_create(
        &self,
        Parameters(p): Parameters<BranchCreateParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.create", &p).await)
    }

    #[tool(
        description = "Delete a file on a branch; it is deleted from the workspace when the \
branch is merged."
    )]
    async fn branch_delete(
        &self,
        Parameters(p): Parameters<BranchPathParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.delete", &p).await)
    }

    #[tool(
        description = "What a branch has that the live workspace has not: for each file the \
branch changed, its `status` (modified, created, deleted) and a unified `diff` from the live \
text now (a/) to the branch text (b/). Live changes made since the fork show as `-` lines; \
the merge keeps them.",
        annotations(read_only_hint = true)
    )]
    async fn branch_diff(
        &self,
        Parameters(p): Parameters<BranchParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.diff", &p).await)
    }

    #[tool(
        description = "Merge a branch into the live workspace and close it: the engine merges \
its edits with everything that happened meanwhile (nobody's text is lost); humans see the \
result at once. Per file: the new live `version` and where the branch's text was `inserted`. \
Error -32044 (nothing merged, branch kept) if a changed file was deleted live or a created \
file now exists."
    )]
    async fn branch_merge(
        &self,
        Parameters(p): Parameters<BranchMergeParams>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self.forward("branch.merge", &p).await)
    }

    #[tool(
        description = "Throw a branch away without merging it; the workspace is untouched.",
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
