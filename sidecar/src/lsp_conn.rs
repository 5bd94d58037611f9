//! One editor connection: LSP over a Unix socket with `tower-lsp-server`.
//!
//! **Ordering by design.** `tower-lsp-server`'s `Server` calls `Service::call` once per
//! incoming message, in arrival order, but then runs the returned futures concurrently, so
//! handler bodies of `did_change` could interleave. [`Ordered`] wraps the `LspService`: its
//! synchronous `call` parses document notifications (`didOpen/didChange/didClose/didSave`,
//! `dist-space/change`, `dist-space/cursor`) and pushes them onto the writer's single queue
//! right there, before returning a ready future. The queue order is therefore the arrival order;
//! no handler ever touches a document. `dist-space/*` requests are answered by the writer too.
//! Lifecycle (`initialize`, `shutdown`, `exit`) and unknown methods go to the `LspService`, which
//! answers "method not found" for requests it does not know and ignores unknown notifications.
//!
//! A framing task in front of the transport rejects frames larger than
//! [`proto::MAX_MESSAGE_BYTES`] (closing the connection) before anything is buffered.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tower::Service;
use tower_lsp_server::gen_lsp_types::{
    InitializeParams, InitializeResult, LspNotificationMethod, MessageDirection, Notification,
};
use tower_lsp_server::jsonrpc::{self, Request, Response};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};
use tracing::{debug, warn};
use vfs::pos::PositionEncoding;

use crate::proto::{self, MAX_MESSAGE_BYTES, MAX_OUTBOX};
use crate::writer::{ConnId, Event, EventTx, Hello, Outgoing};

/// Negotiated per-connection settings, shared between [`Ordered`] and [`Backend`].
#[derive(Clone, Debug, Default)]
struct Negotiated {
    encoding: PositionEncoding,
    revision: bool,
}

/// Pick the position encoding: utf-8, then utf-32, then the utf-16 default.
pub fn negotiate_encoding(offered: &[String]) -> PositionEncoding {
    for want in ["utf-8", "utf-32"] {
        if offered.iter().any(|o| o == want) {
            return PositionEncoding::from_lsp_name(want).unwrap_or_default();
        }
    }
    PositionEncoding::Utf16
}

/// The connection's engine agent name, answered by the writer when it handles the hello.
type AgentSlot = Arc<Mutex<Option<oneshot::Receiver<String>>>>;

struct Backend {
    neg: Arc<Mutex<Negotiated>>,
    agent: AgentSlot,
}

impl LanguageServer for Backend {
    async fn initialize(&self, _: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        let n = self.neg.lock().map(|n| n.clone()).unwrap_or_default();
        // The engine agent this connection's edits are made as (plugins remember it for
        // `initializationOptions.reopen`, see `crate::reopen`): known before any didOpen.
        let rx = self.agent.lock().ok().and_then(|mut a| a.take());
        let agent = match rx {
            Some(rx) => tokio::time::timeout(std::time::Duration::from_secs(5), rx)
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        // Revision-protocol clients send their changes as `dist-space/change`, so they get no
        // standard change sync (kind 0); everyone else gets incremental sync (kind 2).
        let v = json!({
            "capabilities": {
                "positionEncoding": n.encoding.lsp_name(),
                "textDocumentSync": {
                    "openClose": true,
                    "change": if n.revision { 0 } else { 2 },
                    "save": { "includeText": false },
                },
                "experimental": { "distSpace": { "revisionProtocol": n.revision, "agent": agent } },
            },
            "serverInfo": { "name": "dist-space", "version": env!("CARGO_PKG_VERSION") },
        });
        serde_json::from_value(v).map_err(|_| jsonrpc::Error::internal_error())
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        Ok(())
    }
}

/// Where a connection is in the LSP lifecycle, as [`Ordered`] sees the messages arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    /// Before `initialize`: only `initialize` (and `exit`) are taken.
    Uninitialized,
    Initialized,
    /// After `shutdown`: only `exit` is taken.
    ShutDown,
}

/// The ordering layer around the `LspService` (see the module docs).
struct Ordered {
    life: Life,
    inner: LspService<Backend>,
    conn: ConnId,
    tx: EventTx,
    neg: Arc<Mutex<Negotiated>>,
    agent: AgentSlot,
    hello: Option<(String, mpsc::Sender<Outgoing>)>,
}

type BoxFut =
    Pin<Box<dyn Future<Output = Result<Option<Response>, tower_lsp_server::ExitedError>> + Send>>;

impl Service<Request> for Ordered {
    type Response = Option<Response>;
    type Error = tower_lsp_server::ExitedError;
    type Future = BoxFut;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let method = req.method().to_string();
        // The lifecycle (LSP "Server lifecycle"): the `LspService` enforces it for what it
        // handles; document messages and `dist-space/*` never reach it, so it is kept here.
        match (self.life, method.as_str()) {
            (_, "exit") => return Box::pin(self.inner.call(req)),
            (Life::Uninitialized, "initialize") => self.life = Life::Initialized,
            (Life::Initialized, "shutdown") => {
                self.life = Life::ShutDown;
                return Box::pin(self.inner.call(req));
            }
            (Life::Initialized, _) => {}
            (life, _) => {
                let id = req.id().cloned();
                debug!(conn = self.conn, %method, ?life, "message outside the lifecycle refused");
                let res = id.map(|id| {
                    let e = if life == Life::Uninitialized {
                        jsonrpc::Error {
                            code: jsonrpc::ErrorCode::ServerError(-32002),
                            message: format!(
                                "server not initialized: `{}` before `initialize`",
                                proto::short(&method, 80)
                            )
                            .into(),
                            data: None,
                        }
                    } else {
                        jsonrpc::Error {
                            code: jsonrpc::ErrorCode::InvalidRequest,
                            message: format!(
                                "`{}` after `shutdown`: only `exit` is accepted now",
                                proto::short(&method, 80)
                            )
                            .into(),
                            data: None,
                        }
                    };
                    Response::from_error(id, e)
                });
                return Box::pin(async move { Ok(res) });
            }
        }
        if method == "initialize" {
            let params = req.params().cloned().unwrap_or(Value::Null);
            let offered: Vec<String> = params
                .pointer("/capabilities/general/positionEncodings")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            let opts = params.get("initializationOptions");
            let revision = opts
                .and_then(|o| o.get("revisionProtocol"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let name = opts
                .and_then(|o| o.get("name"))
                .and_then(Value::as_str)
                .or_else(|| params.pointer("/clientInfo/name").and_then(Value::as_str))
                .unwrap_or("editor")
                .to_string();
            let encoding = negotiate_encoding(&offered);
            let apply_edits = proto::apply_edits_of(&params);
            if let Ok(mut n) = self.neg.lock() {
                *n = Negotiated { encoding, revision };
            }
            if let Some((default_name, out)) = self.hello.take() {
                let name = if name.is_empty() { default_name } else { name };
                let (agent_reply, agent_rx) = oneshot::channel();
                if let Ok(mut a) = self.agent.lock() {
                    *a = Some(agent_rx);
                }
                let _ = self.tx.send(Event::Hello {
                    conn: self.conn,
                    hello: Hello {
                        name,
                        encoding,
                        revision_protocol: revision,
                        apply_edits,
                        reopen: crate::reopen::parse_hints(opts),
                        agent_reply: Some(agent_reply),
                        out,
                    },
                });
            }
            return Box::pin(self.inner.call(req));
        }
        if let Some(parsed) = proto::parse_doc_msg(&method, req.params()) {
            let id = req.id().cloned();
            let res = match parsed {
                Ok(msg) => {
                    let _ = self.tx.send(Event::Doc {
                        conn: self.conn,
                        msg,
                    });
                    None
                }
                Err(e) => {
                    warn!(conn = self.conn, %method, error = %e, "malformed notification dropped");
                    id.map(|id| Response::from_error(id, jsonrpc::Error::invalid_params(e)))
                }
            };
            return Box::pin(async move { Ok(res) });
        }
        if method.starts_with("dist-space/") {
            if let Some(id) = req.id().cloned() {
                let (reply, rx) = oneshot::channel();
                let _ = self.tx.send(Event::Request {
                    conn: self.conn,
                    method,
                    params: req.params().cloned().unwrap_or(Value::Null),
                    reply,
                });
                return Box::pin(async move {
                    let body = match rx.await {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err((code, msg))) => Err(jsonrpc::Error {
                            code: jsonrpc::ErrorCode::from(code),
                            message: msg.into(),
                            data: None,
                        }),
                        Err(_) => Err(jsonrpc::Error::internal_error()),
                    };
                    Ok(Some(Response::from_parts(id, body)))
                });
            }
            debug!(conn = self.conn, %method, "unknown dist-space notification dropped");
            return Box::pin(async { Ok(None) });
        }
        // Every other request (hover, definition...: the daemon announces none of them) is
        // answered here with a method-not-found naming it: the `LspService` would log an
        // ERROR line for each one a client sends.
        if method != "shutdown" {
            if let Some(id) = req.id().cloned() {
                debug!(conn = self.conn, %method, "request not served: method not found");
                let e = jsonrpc::Error {
                    code: jsonrpc::ErrorCode::MethodNotFound,
                    message: format!("dist-space does not serve `{}`", proto::short(&method, 80))
                        .into(),
                    data: None,
                };
                return Box::pin(async move { Ok(Some(Response::from_error(id, e))) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

macro_rules! server_notification {
    ($ty:ident, $name:literal) => {
        enum $ty {}
        impl Notification for $ty {
            type Params = Value;
            const METHOD: LspNotificationMethod<'static> = LspNotificationMethod::Custom($name);
            const MESSAGE_DIRECTION: MessageDirection = MessageDirection::ServerToClient;
        }
    };
}
server_notification!(EditN, "dist-space/edit");
server_notification!(PresenceN, "dist-space/presence");
server_notification!(ResyncN, "dist-space/resync");

async fn forward(
    client: Client,
    mut rx: mpsc::Receiver<Outgoing>,
    kill: oneshot::Sender<String>,
    conn: ConnId,
    tx: EventTx,
) {
    while let Some(m) = rx.recv().await {
        match m {
            Outgoing::ApplyEdit {
                token,
                uri,
                version,
                change,
            } => {
                let edit = json!({"documentChanges": [{
                    "textDocument": {"uri": uri, "version": version},
                    "edits": [{"range": change.range, "newText": change.text}],
                }]});
                let client = client.clone();
                let tx = tx.clone();
                // Awaited on its own task: later notifications must not wait for the answer.
                tokio::spawn(async move {
                    let applied = match serde_json::from_value(edit) {
                        Ok(edit) => client
                            .apply_edit(edit)
                            .await
                            .map(|r| r.applied)
                            .unwrap_or(false),
                        Err(e) => {
                            warn!(error = %e, "bad workspace edit");
                            false
                        }
                    };
                    let _ = tx.send(Event::ApplyResult {
                        conn,
                        token,
                        applied,
                    });
                });
            }
            Outgoing::Notify(method, v) => {
                // A connection that is gone (peer hung up, `exit`) takes nothing more: stop
                // here instead of failing (and logging) once per notification.
                let mut c = client.clone();
                if tower::ServiceExt::<Request>::ready(&mut c).await.is_err() {
                    debug!(conn, "connection closed: no more notifications");
                    return;
                }
                match method {
                    "dist-space/edit" => client.send_notification::<EditN>(v).await,
                    "dist-space/presence" => client.send_notification::<PresenceN>(v).await,
                    "dist-space/resync" => client.send_notification::<ResyncN>(v).await,
                    other => warn!(method = other, "no such outgoing notification"),
                }
            }
            Outgoing::Close(why) => {
                let _ = kill.send(why);
                return;
            }
        }
    }
}

/// Copy LSP frames from `src` to `dst`, refusing frames over the size limit.
async fn frame_guard(
    src: tokio::net::unix::OwnedReadHalf,
    mut dst: tokio::io::DuplexStream,
) -> Result<(), String> {
    let mut r = BufReader::with_capacity(64 * 1024, src);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut len: Option<usize> = None;
        let mut header_bytes = 0usize;
        loop {
            line.clear();
            let n = (&mut r)
                .take(8 * 1024)
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(()); // EOF
            }
            if !line.ends_with('\n') {
                return Err("header line too long".into());
            }
            header_bytes += line.len();
            let t = line.trim_end();
            if t.is_empty() {
                break;
            }
            if let Some((k, v)) = t.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    len = Some(v.trim().parse().map_err(|_| {
                        format!("bad Content-Length `{}`", crate::proto::short(v.trim(), 40))
                    })?);
                }
            }
            if header_bytes > 64 * 1024 {
                return Err("headers too long".into());
            }
        }
        let Some(len) = len else {
            return Err("frame without Content-Length".into());
        };
        if len > MAX_MESSAGE_BYTES {
            return Err(format!(
                "message of {len} bytes exceeds the {MAX_MESSAGE_BYTES} limit"
            ));
        }
        body.resize(len, 0);
        r.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        // The transport ends the whole connection on a body it cannot decode; drop such a
        // message here instead (logged), so one bad message costs only itself.
        if serde_json::from_slice::<Request>(&body).is_err()
            && serde_json::from_slice::<Response>(&body).is_err()
        {
            warn!(bytes = len, "malformed JSON-RPC message dropped");
            continue;
        }
        // Header names are case-insensitive (the transport's parser is not): what it gets is
        // the one header it needs, spelled its way.
        let header = format!("Content-Length: {len}\r\n\r\n");
        dst.write_all(header.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        dst.write_all(&body).await.map_err(|e| e.to_string())?;
    }
}

/// Serve one connection until it closes; then tell the writer.
pub async fn serve_conn(stream: UnixStream, conn: ConnId, tx: EventTx) {
    let (rd, wr) = stream.into_split();
    let (guard_w, lsp_r) = tokio::io::duplex(256 * 1024);
    let neg = Arc::new(Mutex::new(Negotiated::default()));
    let (out_tx, out_rx) = mpsc::channel(MAX_OUTBOX);
    let (kill_tx, kill_rx) = oneshot::channel::<String>();
    let backend_neg = neg.clone();
    let agent: AgentSlot = Arc::new(Mutex::new(None));
    let backend_agent = agent.clone();
    let mut client_slot = None;
    let (service, socket) = LspService::build(|client| {
        client_slot = Some(client);
        Backend {
            neg: backend_neg,
            agent: backend_agent,
        }
    })
    .finish();
    let ordered = Ordered {
        life: Life::Uninitialized,
        inner: service,
        conn,
        tx: tx.clone(),
        neg,
        agent,
        hello: Some((format!("editor-{conn}"), out_tx)),
    };
    let fwd = client_slot.map(|c| tokio::spawn(forward(c, out_rx, kill_tx, conn, tx.clone())));
    let server = Server::new(lsp_r, wr, socket).serve(ordered);
    // The guard owns the write end of the pipe: when the peer hangs up (or sends an oversized
    // frame) the server still reads every complete message forwarded so far, then ends.
    tokio::spawn(async move {
        if let Err(e) = frame_guard(rd, guard_w).await {
            warn!(conn, error = %e, "closing connection");
        }
    });
    tokio::select! {
        _ = server => {}
        why = kill_rx => {
            if let Ok(why) = why { warn!(conn, reason = %why, "connection dropped"); }
        }
    }
    if let Some(f) = fwd {
        f.abort();
    }
    let _ = tx.send(Event::Closed { conn });
}
