//! The agent API's subscriptions over WebSocket: `changes` (document changes from the feed,
//! optionally filtered by a glob) and `presence` (who is where); while one runs, the
//! connection's agent counts as a participant.

use std::time::Duration;

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{ConnectionId, Extensions, RpcModule};
use tokio::sync::{broadcast, oneshot};

use crate::methods::parse_opt;
use crate::presence::PresenceRequest;
use crate::read::glob_matcher;
use crate::request::{Call, Request, SubscribeParams};
use crate::server::{call, tell, Ctx, Submit};
use crate::types::encoding_of;

/// A `changes` subscriber whose connection takes no notice for this long is closed.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Keeps the connection's agent listed as a participant while a subscription runs.
pub(crate) struct SubGuard {
    submit: Submit,
    conn: u64,
}

impl SubGuard {
    pub(crate) fn new(ctx: &Ctx, ext: &Extensions) -> SubGuard {
        tell(ctx, ext, Request::Presence(PresenceRequest::SubOpened));
        SubGuard {
            submit: ctx.submit.clone(),
            conn: ext.get::<ConnectionId>().map(|c| c.0 as u64).unwrap_or(0),
        }
    }
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        let (reply, _rx) = oneshot::channel();
        (self.submit)(Call {
            conn: self.conn,
            request: Request::Presence(PresenceRequest::SubClosed),
            reply,
        });
    }
}

/// The subscription and unsubscription methods (WebSocket only).
pub(crate) const METHODS: &[&str] = &[
    "changes.subscribe",
    "changes.unsubscribe",
    "presence.subscribe",
    "presence.unsubscribe",
];

pub(crate) fn register(m: &mut RpcModule<Ctx>) {
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
            let _live = SubGuard::new(&ctx, &ext);
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
    m.register_subscription(
        "presence.subscribe",
        "presence",
        "presence.unsubscribe",
        |p, pending, ctx, ext| async move {
            let enc = match parse_opt::<crate::presence::SubscribeParams>(&p).and_then(|sp| {
                encoding_of(sp.encoding.as_deref())
                    .map(|e| (e, sp.encoding))
                    .map_err(Into::into)
            }) {
                Ok(e) => e,
                Err(e) => {
                    pending.reject(e).await;
                    return Ok(());
                }
            };
            let (enc, enc_name) = enc;
            // Subscribe first, then ask for everyone's place: nothing falls in between
            // (an entry may come twice; the later one is the newer).
            let mut rx = ctx.feed.1.subscribe();
            let now = call(
                &ctx,
                &ext,
                Request::Presence(PresenceRequest::Now { encoding: enc_name }),
            )
            .await;
            let Ok(sink) = pending.accept().await else {
                return Ok(());
            };
            let _live = SubGuard::new(&ctx, &ext);
            if let Ok(serde_json::Value::Array(all)) = now {
                for e in all {
                    let Ok(raw) = serde_json::value::to_raw_value(&e) else {
                        continue;
                    };
                    if sink.send(raw).await.is_err() {
                        return Ok(());
                    }
                }
            }
            loop {
                let entry = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    n = rx.recv() => n,
                };
                match entry {
                    Ok(e) => {
                        let Ok(raw) = serde_json::value::to_raw_value(&e.to_json(enc)) else {
                            continue;
                        };
                        if sink.send(raw).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(k)) => {
                        return Err(SubscriptionError::from(format!(
                            "subscriber too slow: {k} presence notices missed; subscribe again"
                        )));
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        },
    )
    .expect("unique name");
}
