//! A jsonrpsee WebSocket agent of the daemon's agent API, for synchronous tests (include with
//! `#[path = "common/agent.rs"] mod agent;` next to `mod common;`).
#![allow(dead_code)]

use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Subscription, SubscriptionClientT};
use jsonrpsee::core::ClientError;
use jsonrpsee::ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};
use serde_json::Value;

use crate::common::{read_info, Daemon};

pub struct Agent {
    pub rt: tokio::runtime::Runtime,
    pub client: WsClient,
}

pub fn auth(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

/// The agent endpoint (`ws://…`) and token from the daemon's info file.
pub fn endpoint(d: &Daemon) -> (String, String) {
    let info = read_info(&d.root).expect("info file");
    (
        info["agent_endpoint"]
            .as_str()
            .expect("endpoint")
            .to_string(),
        info["agent_token"].as_str().expect("token").to_string(),
    )
}

pub fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => panic!("params must be an object: {other}"),
    }
}

impl Agent {
    pub fn connect(d: &Daemon) -> Agent {
        let (url, token) = endpoint(d);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt
            .block_on(
                WsClientBuilder::default()
                    .set_headers(auth(&token))
                    .max_request_size(64 * 1024 * 1024)
                    .build(&url),
            )
            .expect("connect with the token");
        Agent { rt, client }
    }

    pub fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.rt
            .block_on(self.client.request::<Value, _>(method, obj(params)))
    }

    pub fn ok(&self, method: &str, params: Value) -> Value {
        self.call(method, params)
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// The JSON-RPC error code and message of a failing call.
    pub fn err(&self, method: &str, params: Value) -> (i32, String) {
        match self.call(method, params) {
            Err(ClientError::Call(e)) => (e.code(), e.message().to_string()),
            other => panic!("{method}: expected a JSON-RPC error, got {other:?}"),
        }
    }

    pub fn subscribe(&self, method: &str, params: Value, unsub: &str) -> Subscription<Value> {
        self.rt
            .block_on(self.client.subscribe(method, obj(params), unsub))
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// The next notification of `s` (within 10 s).
    pub fn next(&self, s: &mut Subscription<Value>) -> Value {
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), s.next())
                .await
                .expect("a notification in time")
                .expect("subscription open")
                .expect("a notification")
        })
    }

    /// The next notification of `s` that satisfies `f` (within 10 s in all).
    pub fn next_where(&self, s: &mut Subscription<Value>, f: impl Fn(&Value) -> bool) -> Value {
        let t0 = std::time::Instant::now();
        loop {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no matching notification"
            );
            let n = self.next(s);
            if f(&n) {
                return n;
            }
        }
    }
}

/// The workspace both agent-API test files start from: `src/main.rs`, `notes.md` (with an
/// emoji) and a binary `blob.bin`.
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() {\n    let x = 1;\n}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.md"), "# notes\n😀 smile\nend\n").unwrap();
    std::fs::write(dir.path().join("blob.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    dir
}

/// Apply sequential char-offset edits (`[{offsets: {start, end}, text}]`) to `text`.
pub fn apply_edits(text: &str, edits: &Value) -> String {
    let mut r = ropey::Rope::from_str(text);
    for e in edits.as_array().expect("edits") {
        let s = e["offsets"]["start"].as_u64().unwrap() as usize;
        let en = e["offsets"]["end"].as_u64().unwrap() as usize;
        r.remove(s..en);
        r.insert(s, e["text"].as_str().unwrap());
    }
    r.to_string()
}
