//! How many agents are connected: WebSocket connections and HTTP requests being served (the
//! daemon's idle exit and `dist-space status` read it). An RPC middleware layer is built once
//! per WebSocket connection and once per HTTP request, and the service it builds lives exactly
//! as long; each holds a guard that counts it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::Request;

#[derive(Default)]
struct Counts {
    active: AtomicUsize,
    opened: AtomicU64,
}

/// Shared counters of agent connections.
#[derive(Clone, Default)]
pub struct Connections(Arc<Counts>);

impl Connections {
    /// Connections (and HTTP requests) open now.
    pub fn active(&self) -> usize {
        self.0.active.load(Ordering::SeqCst)
    }

    /// Connections (and HTTP requests) ever opened: a change means one came, even if it has
    /// gone again.
    pub fn opened(&self) -> u64 {
        self.0.opened.load(Ordering::SeqCst)
    }

    pub(crate) fn layer(&self) -> CountLayer {
        CountLayer(self.clone())
    }
}

struct Guard(Connections);

impl Guard {
    fn new(c: &Connections) -> Guard {
        c.0.opened.fetch_add(1, Ordering::SeqCst);
        c.0.active.fetch_add(1, Ordering::SeqCst);
        Guard(c.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0 .0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
pub(crate) struct CountLayer(Connections);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            _guard: Arc::new(Guard::new(&self.0)),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    _guard: Arc<Guard>,
}

impl<S: RpcServiceT> RpcServiceT for Counted<S> {
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(req)
    }

    fn batch<'a>(&self, b: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        self.inner.batch(b)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
