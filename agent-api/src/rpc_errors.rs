//! JSON-RPC errors that say what was wrong. jsonrpsee answers some malformed requests with
//! its generic texts ("Invalid request", "Internal error", "Method not found") or, for a
//! request whose `id` is not an id (an object, an array, a fraction, a repeated key), not at
//! all: it takes such a message for a notification. This RPC middleware (one per connection,
//! WebSocket and HTTP alike) answers every notification with an error, since the agent API
//! has none (every method answers), and replaces the generic texts with ones naming the
//! problem.

use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::{
    Batch, MethodResponse, Notification, Request, RpcServiceT,
};
use jsonrpsee::types::{ErrorCode, ErrorObject, Id};

/// Error code of an invalid request (JSON-RPC standard).
pub const INVALID_REQUEST: i32 = -32600;

/// The RPC middleware (see the module docs).
#[derive(Clone)]
pub struct Clarify<S> {
    pub(crate) inner: S,
    /// Every method name, for "method not found".
    pub(crate) methods: Arc<Vec<&'static str>>,
    /// The subscription and unsubscription methods (WebSocket only).
    pub(crate) subscriptions: Arc<Vec<&'static str>>,
}

/// What a message without a usable `id` is told.
pub const NO_ID: &str = "invalid request: no usable `id`. Every agent API method answers, so \
    every request needs an `id` that is a number (an integer), a string or null; this one has \
    none, or an object, an array or a fraction as its `id`, or the `id` key twice. Nothing was done";

fn clarify(
    rp: MethodResponse,
    method: &str,
    id: Id<'static>,
    methods: &[&str],
    subs: &[&str],
) -> MethodResponse {
    let Some(code) = rp.as_error_code() else {
        return rp;
    };
    // Only jsonrpsee's own generic errors are rewritten (ours already say what is wrong).
    let generic = |c: ErrorCode| {
        code == c.code()
            && serde_json::from_str::<serde_json::Value>(rp.as_json().get())
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str().map(str::to_string))
                })
                .is_some_and(|m| m == c.message())
    };
    let msg = if generic(ErrorCode::MethodNotFound) {
        format!(
            "method not found: `{}`; the agent API's methods are {}",
            vfs::names::shorten(method, 100),
            methods.join(", ")
        )
    } else if generic(ErrorCode::InternalError) && subs.contains(&method) {
        format!(
            "`{method}` needs a WebSocket connection: subscriptions are not available over HTTP \
             (connect to the same port with ws://)"
        )
    } else if generic(ErrorCode::InternalError) {
        format!("internal error while answering `{method}`; the daemon log has the details")
    } else if generic(ErrorCode::InvalidRequest) {
        format!("invalid request to `{method}`")
    } else {
        return rp;
    };
    let (_, _, ext) = rp.into_parts();
    MethodResponse::error(id, ErrorObject::owned(code, msg, None::<()>)).with_extensions(ext)
}

impl<S> RpcServiceT for Clarify<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            NotificationResponse = MethodResponse,
            BatchResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        req: Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        let method = req.method_name().to_string();
        let id = req.id().into_owned();
        let inner = self.inner.clone();
        let (methods, subs) = (self.methods.clone(), self.subscriptions.clone());
        async move {
            let rp = inner.call(req).await;
            clarify(rp, &method, id, &methods, &subs)
        }
    }

    fn batch<'a>(
        &self,
        requests: Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        self.inner.batch(requests)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        tracing::debug!(method = %vfs::names::shorten(&n.method, 100), "agent API: message without a usable id refused");
        async move {
            MethodResponse::error(
                Id::Null,
                ErrorObject::owned(INVALID_REQUEST, NO_ID, None::<()>),
            )
        }
    }
}

/// What is wrong with a single JSON-RPC request `body` that jsonrpsee refused as a parse
/// error or an invalid request (`None` when nothing is found wrong).
pub fn diagnose(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(format!("parse error: the body is not JSON: {e}")),
    };
    if let Some(batch) = v.as_array() {
        return batch.is_empty().then(|| {
            "invalid request: an empty batch (an array needs at least one request)".into()
        });
    }
    let Some(o) = v.as_object() else {
        return Some(format!(
            "invalid request: a request is a JSON object (or a batch: an array of them), not {}",
            kind(&v)
        ));
    };
    if o.get("jsonrpc").and_then(|j| j.as_str()) != Some("2.0") {
        return Some("invalid request: `jsonrpc` must be the string \"2.0\"".into());
    }
    match o.get("method") {
        Some(serde_json::Value::String(_)) => {}
        Some(m) => {
            return Some(format!(
                "invalid request: `method` must be a string, not {}",
                kind(m)
            ))
        }
        None => return Some("invalid request: no `method`".into()),
    }
    match o.get("id") {
        None | Some(serde_json::Value::Null | serde_json::Value::String(_)) => {}
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        Some(id) => {
            return Some(format!(
                "invalid request: `id` must be an integer, a string or null, not {}",
                kind(id)
            ))
        }
    }
    match o.get("params") {
        None | Some(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {}
        Some(p) => {
            return Some(format!(
                "invalid request: `params` must be an object (named params), not {}",
                kind(p)
            ))
        }
    }
    if let Some(k) = o
        .keys()
        .find(|k| !["jsonrpc", "method", "id", "params"].contains(&k.as_str()))
    {
        return Some(format!(
            "invalid request: unknown member `{}`",
            vfs::names::shorten(k, 60)
        ));
    }
    None
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_f64() => "a fraction",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A tower layer on the HTTP service: a single request jsonrpsee answers with its generic
/// "Parse error" or "Invalid request" gets the same code with [`diagnose`]'s explanation.
/// (WebSocket messages never reach a tower layer; there, requests without a usable `id` are
/// answered by [`Clarify`].)
#[derive(Clone)]
pub struct ExplainLayer {
    /// The server's request size limit (a bigger body is refused, not buffered).
    pub max_request_bytes: u32,
}

impl<S> tower::Layer<S> for ExplainLayer {
    type Service = Explain<S>;
    fn layer(&self, inner: S) -> Explain<S> {
        Explain {
            inner,
            max: self.max_request_bytes,
        }
    }
}

#[derive(Clone)]
pub struct Explain<S> {
    inner: S,
    max: u32,
}

type BoxFut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<jsonrpsee::server::HttpRequest<B>> for Explain<S>
where
    S: tower::Service<
            jsonrpsee::server::HttpRequest<jsonrpsee::server::HttpBody>,
            Response = jsonrpsee::server::HttpResponse,
        > + Clone
        + Send
        + 'static,
    S::Error: Into<jsonrpsee::core::BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<jsonrpsee::core::BoxError>,
{
    type Response = jsonrpsee::server::HttpResponse;
    type Error = jsonrpsee::core::BoxError;
    type Future = BoxFut<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: jsonrpsee::server::HttpRequest<B>) -> Self::Future {
        use http_body_util::BodyExt;
        // WebSocket upgrades pass untouched (their body is empty; the upgrade keeps the parts).
        let upgrade = jsonrpsee::server::ws::is_upgrade_request(&req);
        let mut inner = self.inner.clone();
        std::mem::swap(&mut self.inner, &mut inner);
        let max = self.max;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            if upgrade {
                let req = http::Request::from_parts(parts, jsonrpsee::server::HttpBody::new(body));
                return inner.call(req).await.map_err(Into::into);
            }
            // At most the server's own limit is buffered (jsonrpsee checks it again).
            let limited = http_body_util::Limited::new(body, max as usize);
            let bytes = match limited.collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Ok(jsonrpsee::server::http::response::too_large(max)),
            };
            let req = http::Request::from_parts(
                parts,
                jsonrpsee::server::HttpBody::new(http_body_util::Full::new(bytes.clone())),
            );
            let resp = inner.call(req).await.map_err(Into::into)?;
            let (rparts, rbody) = resp.into_parts();
            let rbytes = rbody.collect().await?.to_bytes();
            let out = explain(&bytes, &rbytes).unwrap_or(rbytes);
            Ok(http::Response::from_parts(
                rparts,
                jsonrpsee::server::HttpBody::new(http_body_util::Full::new(out)),
            ))
        })
    }
}

/// The response with a generic parse / invalid-request error explained, if it is one.
fn explain(req: &[u8], resp: &[u8]) -> Option<bytes::Bytes> {
    if resp.len() > 4096 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(resp).ok()?;
    let code = v.pointer("/error/code")?.as_i64()?;
    let msg = v.pointer("/error/message")?.as_str()?;
    let generic = [ErrorCode::ParseError, ErrorCode::InvalidRequest]
        .iter()
        .any(|c| c.code() as i64 == code && c.message() == msg);
    if !generic {
        return None;
    }
    let why = diagnose(req)?;
    let mut v = v;
    v["error"]["message"] = serde_json::Value::String(why);
    serde_json::to_vec(&v).ok().map(bytes::Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnoses_requests() {
        for (body, want) in [
            (&b"{"[..], "parse error"),
            (b"42", "not a number"),
            (br#"{"id":1,"method":"x"}"#, "`jsonrpc`"),
            (br#"{"jsonrpc":"2.0","id":1}"#, "no `method`"),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                "`method` must be a string",
            ),
            (br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, "an object"),
            (br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#, "a fraction"),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
                "`params`",
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","extra":3}"#,
                "unknown member",
            ),
        ] {
            let d = diagnose(body).unwrap_or_default();
            assert!(d.contains(want), "{}: {d}", String::from_utf8_lossy(body));
        }
        assert_eq!(diagnose(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#), None);
    }
}
