//! The agent API's methods: each one parses its params (by name) into a [`Request`] and hands
//! it to the writer ([`call`]); the subscriptions are in [`crate::subscriptions`].

use jsonrpsee::server::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;

use crate::anchors::AnchorRequest;
use crate::error::{ApiError, INVALID_PARAMS};
use crate::feed::ChangeFeed;
use crate::request::Request;
use crate::server::{call, Ctx, Submit};

/// Named params (`{...}`); absent params mean "all defaults" where `T: Default`.
pub(crate) fn parse<T: DeserializeOwned>(p: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    crate::types::params_by_name(p.as_str())?;
    p.parse::<T>().map_err(|e| {
        // jsonrpsee puts serde's explanation in `data`; the message is the generic text.
        let why = e
            .data()
            .and_then(|d| serde_json::from_str::<String>(d.get()).ok())
            .unwrap_or_else(|| e.message().to_string());
        ApiError::new(
            INVALID_PARAMS,
            format!("invalid params: {}", vfs::names::shorten(&why, 300)),
        )
        .into()
    })
}

pub(crate) fn parse_opt<T: DeserializeOwned + Default>(
    p: &Params<'_>,
) -> Result<T, ErrorObjectOwned> {
    if p.as_str().is_none() {
        return Ok(T::default());
    }
    parse(p)
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

/// The methods (see README.md).
pub(crate) fn module(submit: Submit, feed: ChangeFeed) -> RpcModule<Ctx> {
    let mut m = RpcModule::new(Ctx { submit, feed });
    m.register_async_method("workspace.info", |_p, ctx, ext| async move {
        call(&ctx, &ext, Request::Info).await
    })
    .expect("unique name");
    method!(m, "fs.list", parse_opt, Request::List);
    method!(m, "fs.read", parse, Request::Read);
    method!(m, "fs.edit", parse, Request::Edit);
    for &name in crate::branches::METHODS {
        m.register_async_method(name, move |p, ctx, ext| async move {
            let req = crate::branches::parse(name, p.as_str())?;
            call(&ctx, &ext, Request::Branch(req)).await
        })
        .expect("unique name");
    }
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
    crate::subscriptions::register(&mut m);
    m
}
