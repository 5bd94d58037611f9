//! The bearer token of the agent server: a fresh random token per daemon run, and the tower
//! layer that refuses every HTTP request (plain or WebSocket upgrade) without it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

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
    pub(crate) token: Arc<str>,
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
