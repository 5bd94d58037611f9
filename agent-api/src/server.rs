//! The transport: a jsonrpsee server (WebSocket and HTTP on one port) on 127.0.0.1, behind a
//! bearer token ([`crate::auth`]). Every method ([`crate::methods`]) hands a [`Call`] to the
//! daemon's writer and awaits its answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::{ConnectionId, Extensions, PingConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::auth::{new_token, BearerAuthLayer};
use crate::error::{ApiError, UNAVAILABLE};
use crate::feed::ChangeFeed;
use crate::request::{Call, Request};

/// Hands a call to the writer; `false` when the writer is gone.
pub type Submit = Arc<dyn Fn(Call) -> bool + Send + Sync>;

/// Limits of the agent server.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: u32,
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_subscriptions_per_connection: u32,
    /// Messages buffered per connection before a slow client is pushed back on.
    pub message_buffer: u32,
    /// `changes` notices a subscriber may fall behind before it is closed with a reason.
    pub subscription_buffer: usize,
    pub ping_interval: Duration,
    /// A WebSocket that answers no ping for this long is closed.
    pub inactive_limit: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // `DIST_SPACE_AGENT_MAX_CONNECTIONS` raises it (e.g. the load benchmark).
            max_connections: std::env::var("DIST_SPACE_AGENT_MAX_CONNECTIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(64),
            max_request_bytes: 16 * 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_subscriptions_per_connection: 16,
            message_buffer: 1024,
            subscription_buffer: 4096,
            ping_interval: Duration::from_secs(30),
            inactive_limit: Duration::from_secs(90),
        }
    }
}

/// A running agent server.
pub struct Running {
    pub addr: SocketAddr,
    /// `ws://127.0.0.1:PORT` (plain HTTP POSTs go to `http://` on the same port).
    pub endpoint: String,
    pub token: String,
    pub handle: ServerHandle,
    /// Agents connected now (WebSocket connections, HTTP requests in progress).
    pub connections: crate::Connections,
}

pub(crate) struct Ctx {
    pub(crate) submit: Submit,
    pub(crate) feed: ChangeFeed,
}

pub(crate) async fn call(
    ctx: &Ctx,
    ext: &Extensions,
    request: Request,
) -> Result<Value, ErrorObjectOwned> {
    let conn = ext.get::<ConnectionId>().map(|c| c.0 as u64).unwrap_or(0);
    let (reply, rx) = oneshot::channel();
    if !(ctx.submit)(Call {
        conn,
        request,
        reply,
    }) {
        return Err(ApiError::new(UNAVAILABLE, "the daemon is shutting down").into());
    }
    match rx.await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(ApiError::new(UNAVAILABLE, "the daemon is shutting down").into()),
    }
}

/// Tell the writer something without waiting for the answer.
pub(crate) fn tell(ctx: &Ctx, ext: &Extensions, request: Request) {
    let conn = ext.get::<ConnectionId>().map(|c| c.0 as u64).unwrap_or(0);
    let (reply, _rx) = oneshot::channel();
    (ctx.submit)(Call {
        conn,
        request,
        reply,
    });
}

/// Bind 127.0.0.1 on a free port and serve. Must run inside a tokio runtime.
pub async fn start(submit: Submit, feed: ChangeFeed, limits: Limits) -> std::io::Result<Running> {
    let token = new_token()?;
    let cfg = ServerConfig::builder()
        .max_connections(limits.max_connections)
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .set_message_buffer_capacity(limits.message_buffer)
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(limits.ping_interval)
                .inactive_limit(limits.inactive_limit),
        )
        .build();
    let module = crate::methods::module(submit, feed);
    let mut names: Vec<&'static str> = module.method_names().collect();
    names.sort_unstable();
    let methods = Arc::new(names);
    let subscriptions = Arc::new(crate::subscriptions::METHODS.to_vec());
    let connections = crate::Connections::default();
    let rpc = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
        .layer(connections.layer())
        .layer_fn(move |inner| crate::rpc_errors::Clarify {
            inner,
            methods: methods.clone(),
            subscriptions: subscriptions.clone(),
        });
    let server = Server::builder()
        .set_config(cfg)
        .set_rpc_middleware(rpc)
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(BearerAuthLayer {
                    token: Arc::from(token.as_str()),
                })
                .layer(crate::rpc_errors::ExplainLayer {
                    max_request_bytes: limits.max_request_bytes,
                }),
        )
        .build(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let addr = server.local_addr()?;
    let handle = server.start(module);
    Ok(Running {
        addr,
        endpoint: format!("ws://{addr}"),
        token,
        handle,
        connections,
    })
}
