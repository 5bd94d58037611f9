//! Registration of the methods added after the first set (see README.md): snapshots,
//! changes since a version, tree operations, search, anchors, the `presence` subscription.

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{ConnectionId, Extensions, RpcModule};
use tokio::sync::{broadcast, oneshot};

use crate::anchors::AnchorRequest;
use crate::ops::{encoding_of, Call, Request};
use crate::presence::{PresenceRequest, SubscribeParams};
use crate::server::{call, parse, parse_opt, tell, Ctx, Submit};

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

macro_rules! method {
    ($m:expr, $name:literal, $parse:ident, $variant:expr) => {
        $m.register_async_method($name, |p, ctx, ext| async move {
            let params = $parse(&p)?;
            call(&ctx, &ext, $variant(params)).await
        })
        .expect("unique name");
    };
}

pub(crate) fn register(m: &mut RpcModule<Ctx>) {
    method!(m, "fs.snapshot", parse_opt, Request::Snapshot);
    method!(m, "changes.since", parse, Request::Since);
    method!(m, "fs.create", parse, Request::Create);
    method!(m, "fs.delete", parse, Request::Delete);
    method!(m, "fs.rename", parse, Request::Rename);
    method!(m, "search", parse, Request::Search);
    method!(m, "anchor.create", parse, |p| Request::Anchor(
        AnchorRequest::Create(p)
    ));
    method!(m, "anchor.resolve", parse, |p| Request::Anchor(
        AnchorRequest::Resolve(p)
    ));
    method!(m, "anchor.delete", parse, |p| Request::Anchor(
        AnchorRequest::Delete(p)
    ));
    m.register_subscription(
        "presence.subscribe",
        "presence",
        "presence.unsubscribe",
        |p, pending, ctx, ext| async move {
            let enc = match parse_opt::<SubscribeParams>(&p).and_then(|sp| {
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
