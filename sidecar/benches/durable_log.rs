//! Durable log benchmark: a real `dist-space serve` process, agents on the real
//! WebSocket API doing `fs.edit` back to back; for each ack policy: sustained durable edit
//! throughput (events/s), ack latency p50/p99 (request sent -> reply received), and the log's
//! size per 1k events next to the engine's own encoding of the same documents.
//!
//! `cargo bench -p dist-space-sidecar --bench durable_log [-- SECONDS]`
//! (uses `DIST_SPACE_BIN` or `target/release/dist-space`; build it first with
//! `cargo build --release -p dist-space-sidecar`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};
use serde_json::{json, Value};

fn bin() -> PathBuf {
    if let Some(b) = std::env::var_os("DIST_SPACE_BIN") {
        return PathBuf::from(b);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/dist-space")
}

fn info(root: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(root.join(".dist-space/daemon.json")).ok()?).ok()
}

struct Daemon {
    child: Child,
    _runtime: tempfile::TempDir,
}

fn start(root: &Path, ack: &str) -> Daemon {
    let runtime = tempfile::tempdir().unwrap();
    let child = Command::new(bin())
        .arg("serve")
        .arg(root)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("DIST_SPACE_LOG_ACK", ack)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("dist-space binary (build it with --release first)");
    let t0 = Instant::now();
    while info(root).and_then(|i| i["pid"].as_u64()) != Some(child.id() as u64) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Daemon {
        child,
        _runtime: runtime,
    }
}

impl Daemon {
    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

async fn client(root: &Path) -> WsClient {
    let i = info(root).unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", i["agent_token"].as_str().unwrap())).unwrap(),
    );
    WsClientBuilder::default()
        .set_headers(h)
        .build(i["agent_endpoint"].as_str().unwrap())
        .await
        .unwrap()
}

struct Run {
    events: u64,
    secs: f64,
    lat_us: Vec<u64>,
}

fn run(root: &Path, agents: usize, chars: usize, secs: f64) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        let t0 = Instant::now();
        for a in 0..agents {
            let root = root.to_path_buf();
            tasks.push(tokio::spawn(async move {
                let c = client(&root).await;
                let file = format!("f{}.txt", a % 2);
                let text: String = "abcdefghij".chars().cycle().take(chars).collect();
                let mut lat = Vec::new();
                let mut events = 0u64;
                let t0 = Instant::now();
                let mut i = 0usize;
                let mut p = serde_json::Map::new();
                p.insert("path".into(), json!(file));
                let mut version =
                    c.request::<Value, _>("fs.read", p).await.unwrap()["version"].take();
                while t0.elapsed().as_secs_f64() < secs {
                    let at = (i * 7) % 50;
                    let mut p = serde_json::Map::new();
                    p.insert("path".into(), json!(file));
                    // At the version this agent last had (others' edits meanwhile are merged).
                    p.insert("version".into(), version.clone());
                    p.insert(
                        "edits".into(),
                        json!([{"offsets": {"start": at, "end": at}, "text": text}]),
                    );
                    let s = Instant::now();
                    let mut r = c.request::<Value, _>("fs.edit", p).await.unwrap();
                    version = r["version"].take();
                    lat.push(s.elapsed().as_micros() as u64);
                    events += chars as u64;
                    i += 1;
                }
                (events, lat)
            }));
        }
        let mut r = Run {
            events: 0,
            secs: 0.0,
            lat_us: Vec::new(),
        };
        for t in tasks {
            let (e, l) = t.await.unwrap();
            r.events += e;
            r.lat_us.extend(l);
        }
        r.secs = t0.elapsed().as_secs_f64();
        r.lat_us.sort_unstable();
        r
    })
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

/// Replays the log's frames into engine documents: (events, engine encoding bytes).
fn engine_size(log: &[u8]) -> (usize, usize) {
    use std::collections::BTreeMap;
    let mut docs: BTreeMap<u64, engine::Document> = BTreeMap::new();
    let mut at = 0;
    while at + 16 <= log.len() {
        let kind = log[at + 4];
        let len = u32::from_le_bytes(log[at + 8..at + 12].try_into().unwrap()) as usize;
        let p = &log[at + 16..at + 16 + len];
        let key = || u64::from_le_bytes(p[..8].try_into().unwrap());
        let chunk = |off: usize| {
            let n = u32::from_le_bytes(p[off..off + 4].try_into().unwrap()) as usize;
            &p[off + 4..off + 4 + n]
        };
        match kind {
            1 => {
                let plen = u32::from_le_bytes(p[16..20].try_into().unwrap()) as usize;
                docs.insert(key(), engine::Document::decode(chunk(20 + plen)).unwrap());
            }
            2 => {
                docs.get_mut(&key())
                    .unwrap()
                    .apply_encoded(chunk(16))
                    .unwrap();
            }
            _ => {}
        }
        at += 16 + len;
    }
    let events = docs.values().map(|d| d.oplog().len()).sum();
    let bytes = docs.values().map(|d| d.encode().len()).sum();
    (events, bytes)
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    println!(
        "dist-space durable log benchmark ({secs} s per row, binary {})",
        bin().display()
    );
    println!(
        "{:<10} {:<30} {:>12} {:>10} {:>10} {:>10} {:>14} {:>14}",
        "ack",
        "workload",
        "events/s",
        "acks/s",
        "p50 ms",
        "p99 ms",
        "log B/1k ev",
        "engine B/1k ev"
    );
    let mut compacted = Vec::new();
    for ack in ["durable", "written"] {
        for (agents, chars, what) in [
            (1, 1, "1 agent, 1-char edits"),
            (4, 1, "4 agents, 1-char edits"),
            (4, 40, "4 agents, 40-char edits"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join(".dist-space")).unwrap();
            for f in 0..2 {
                std::fs::write(dir.path().join(format!("f{f}.txt")), "x".repeat(100)).unwrap();
            }
            let d = start(dir.path(), ack);
            let r = run(dir.path(), agents, chars, secs);
            d.stop();
            let log = std::fs::read(dir.path().join(".dist-space/history.log")).unwrap();
            let (events, enc) = engine_size(&log);
            compacted.push((ack, what, log.len(), compact(dir.path(), ack)));
            println!(
                "{:<10} {:<30} {:>12.0} {:>10.0} {:>10.2} {:>10.2} {:>14.0} {:>14.0}",
                ack,
                what,
                r.events as f64 / r.secs,
                r.lat_us.len() as f64 / r.secs,
                pct(&r.lat_us, 0.5),
                pct(&r.lat_us, 0.99),
                log.len() as f64 * 1000.0 / events.max(1) as f64,
                enc as f64 * 1000.0 / events.max(1) as f64,
            );
        }
    }
    println!();
    println!("bounded history: the same logs after the daemon compacted them at start-up");
    println!("(config.json history: keepEvents 1000, compactLogBytes 0; its text at the horizon plus the newest 1,000 events per document)");
    println!(
        "{:<10} {:<30} {:>14} {:>14} {:>8}",
        "ack", "workload", "log bytes", "compacted", "ratio"
    );
    for (ack, what, before, after) in compacted {
        println!(
            "{:<10} {:<30} {:>14} {:>14} {:>7.1}x",
            ack,
            what,
            before,
            after,
            before as f64 / after.max(1) as f64
        );
    }
}

/// Restart the daemon on `root` with a small history policy; it compacts the log at its first
/// check (start-up). Returns the log's size afterwards.
fn compact(root: &Path, ack: &str) -> usize {
    let log = root.join(".dist-space/history.log");
    let before = std::fs::metadata(&log).unwrap().len();
    std::fs::write(
        root.join(".dist-space/config.json"),
        r#"{"history": {"keepSecs": null, "keepEvents": 1000, "compactLogBytes": 0}}"#,
    )
    .unwrap();
    let d = start(root, ack);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client(root).await;
        let t0 = Instant::now();
        // Any call ends a writer batch, after which the first size check runs.
        while std::fs::metadata(&log).unwrap().len() >= before
            && t0.elapsed() < Duration::from_secs(30)
        {
            let mut p = serde_json::Map::new();
            p.insert("path".into(), json!("f0.txt"));
            let _ = c.request::<Value, _>("fs.read", p).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    d.stop();
    std::fs::remove_file(root.join(".dist-space/config.json")).unwrap();
    std::fs::metadata(&log).unwrap().len() as usize
}
