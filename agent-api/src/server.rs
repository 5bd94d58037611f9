//! The transport: a jsonrpsee server (WebSocket and HTTP on one port) on 127.0.0.1, behind a
//! bearer token. Every method hands a [`Call`] to the daemon's writer and awaits its answer.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Duration;

use jsonrpsee::core::BoxError;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{
    ConnectionId, Extensions, HttpBody, HttpRequest, HttpResponse, PingConfig, RpcModule, Server,
    ServerConfig, ServerHandle,
};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};
use tower::{Layer, Service};

use crate::error::{ApiError, INVALID_PARAMS, UNAVAILABLE};
use crate::ops::{glob_matcher, Call, ChangeFeed, Request, SubscribeParams};

/// A `changes` subscriber whose connection takes no notice for this long is closed.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

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

/// A fresh random bearer token (256 bits, hex).
pub fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Refuses every HTTP request (plain or WebSocket upgrade) without `Authorization: Bearer
/// <token>` with 401, before any JSON-RPC is parsed.
#[derive(Clone)]
pub struct BearerAuthLayer {
    token: Arc<str>,
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            token: self.token.clone(),
        }
    }
}

#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    token: Arc<str>,
}

fn token_ok(header: Option<&http::HeaderValue>, token: &str) -> bool {
    let Some(given) = header
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Compare without an early exit.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl<S, B> Service<HttpRequest<B>> for BearerAuth<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskCx<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if token_ok(req.headers().get(http::header::AUTHORIZATION), &self.token) {
            let fut = self.inner.call(req);
            Box::pin(async move { fut.await.map_err(Into::into) })
        } else {
            tracing::warn!("agent API: request without a valid bearer token refused");
            let resp = http::Response::builder()
                .status(http::StatusCode::UNAUTHORIZED)
                .header(http::header::WWW_AUTHENTICATE, "Bearer")
                .body(HttpBody::from("missing or wrong bearer token"))
                .expect("static response");
            Box::pin(async move { Ok(resp) })
        }
    }
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

/// Named params (`{...}`); absent params mean "all defaults" where `T: Default`.
pub(crate) fn parse<T: DeserializeOwned>(p: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    p.parse::<T>()
        .map_err(|e| ApiError::new(INVALID_PARAMS, e.message().to_string()).into())
}

pub(crate) fn parse_opt<T: DeserializeOwned + Default>(
    p: &Params<'_>,
) -> Result<T, ErrorObjectOwned> {
    if p.as_str().is_none() {
        return Ok(T::default());
    }
    parse(p)
}

/// The methods (see README.md).
fn module(submit: Submit, feed: ChangeFeed) -> RpcModule<Ctx> {
    let mut m = RpcModule::new(Ctx { submit, feed });
    m.register_async_method("workspace.info", |_p, ctx, ext| async move {
        call(&ctx, &ext, Request::Info).await
    })
    .expect("unique name");
    m.register_async_method("fs.list", |p, ctx, ext| async move {
        let params = parse_opt(&p)?;
        call(&ctx, &ext, Request::List(params)).await
    })
    .expect("unique name");
    m.register_async_method("fs.read", |p, ctx, ext| async move {
        let params = parse(&p)?;
        call(&ctx, &ext, Request::Read(params)).await
    })
    .expect("unique name");
    m.register_async_method("fs.edit", |p, ctx, ext| async move {
        let params = parse(&p)?;
        call(&ctx, &ext, Request::Edit(params)).await
    })
    .expect("unique name");
    for &name in crate::branches::METHODS {
        m.register_async_method(name, move |p, ctx, ext| async move {
            let req = crate::branches::parse(name, p.as_str())?;
            call(&ctx, &ext, Request::Branch(req)).await
        })
        .expect("unique name");
    }
    crate::server_more::register(&mut m);
    m.register_subscription(
        "changes.subscribe",
        "changes",
        "changes.unsubscribe",
        |p, pending, ctx, ext| async move {
            let matcher = match parse_opt::<SubscribeParams>(&p)
                .and_then(|sp| glob_matcher(sp.glob.as_deref()).map_err(Into::into))
            {
                Ok(m) => m,
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let mut rx = ctx.feed.0.subscribe();
            let Ok(sink) = pending.accept().await else {
                return Ok(());
            };
            let _live = crate::server_more::SubGuard::new(&ctx, &ext);
            loop {
                let notice = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    n = rx.recv() => n,
                };
                match notice {
                    Ok(n) => {
                        if matcher.as_ref().is_some_and(|m| !m.is_match(&n.path)) {
                            continue;
                        }
                        // A client that stops reading altogether is cut off too.
                        match sink.send_timeout(n.json.clone(), STALL_LIMIT).await {
                            Ok(()) => {}
                            Err(jsonrpsee::server::SendTimeoutError::Timeout(_)) => {
                                tracing::warn!("agent API: stalled `changes` subscriber closed");
                                return Err(SubscriptionError::from(format!(
                                    "subscriber too slow: not reading for {} s; subscribe again and re-read",
                                    STALL_LIMIT.as_secs()
                                )));
                            }
                            Err(_) => return Ok(()),
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(k)) => {
                        tracing::warn!(missed = k, "agent API: slow `changes` subscriber closed");
                        return Err(SubscriptionError::from(format!(
                            "subscriber too slow: {k} changes missed; subscribe again and re-read"
                        )));
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        },
    )
    .expect("unique name");
    m
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
    let connections = crate::Connections::default();
    let server = Server::builder()
        .set_config(cfg)
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer(connections.layer()),
        )
        .set_http_middleware(tower::ServiceBuilder::new().layer(BearerAuthLayer {
            token: Arc::from(token.as_str()),
        }))
        .build(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let addr = server.local_addr()?;
    let handle = server.start(module(submit, feed));
    Ok(Running {
        addr,
        endpoint: format!("ws://{addr}"),
        token,
        handle,
        connections,
    })
}
