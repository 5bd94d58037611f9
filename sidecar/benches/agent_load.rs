//! Load benchmark of the agent API (not a test; prints figures):
//!
//!   cargo bench -p dist-space-sidecar --bench agent_load [-- MODE SUBSCRIBERS RATE SECONDS]
//!
//! SUBSCRIBERS (default 100) agent WebSocket connections subscribed to `changes` (every file)
//! while edits are applied at RATE edits/s (default 10000) for SECONDS (default 10), spread over
//! 10 files, each edit appending a line that holds its send time. MODE `editors` (default):
//! 10 revision-protocol editor connections (the daemon's Unix socket) type the edits; MODE
//! `agents`: 10 agent connections send them as `fs.edit` calls (each at the version its
//! previous call returned; closed loop, so the achieved rate is what one round trip allows).
//!
//! Reported: edits applied per second, `changes` notices delivered per second, notification
//! latency (edit sent -> notice received by a subscriber, one clock: this process) p50/p99/max,
//! the daemon's RSS before/after and peak, and whether every subscriber's text, rebuilt from
//! its notices alone, equals the final text of every file (nothing lost).
#[path = "../tests/common/agent.rs"]
mod agent;
#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{json, Value};

const FILES: usize = 10;

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn initial(i: usize) -> String {
    format!("file {i}\n")
}

struct SubResult {
    texts: HashMap<String, ropey::Rope>,
    latencies_us: Vec<u64>,
    notices: u64,
    closed_early: bool,
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mode = args.first().cloned().unwrap_or_else(|| "editors".into());
    let subs: usize = args.get(1).and_then(|x| x.parse().ok()).unwrap_or(100);
    let rate: u64 = args.get(2).and_then(|x| x.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.get(3).and_then(|x| x.parse().ok()).unwrap_or(10);
    assert!(
        mode == "editors" || mode == "agents",
        "MODE is editors or agents"
    );

    let dir = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        std::fs::write(dir.path().join(format!("f{i}.txt")), initial(i)).unwrap();
    }
    // The daemon (a child process) allows 64 agent connections by default.
    std::env::set_var("DIST_SPACE_AGENT_MAX_CONNECTIONS", (subs + 64).to_string());
    let d = Daemon::start(dir.path());
    let pid = d.pid();
    let (url, token) = agent::endpoint(&d);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let rss0 = status_kib(pid, "VmRSS:");

    // Subscribers.
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let client = rt
            .block_on(
                WsClientBuilder::default()
                    .set_headers(agent::auth(&token))
                    .max_buffer_capacity_per_subscription(1 << 16)
                    .build(&url),
            )
            .expect("connect");
        let mut sub = rt
            .block_on(client.subscribe::<Value, _>(
                "changes.subscribe",
                agent::obj(json!({})),
                "changes.unsubscribe",
            ))
            .expect("subscribe");
        let done = done.clone();
        tasks.push(rt.spawn(async move {
            let _client = client;
            let mut r = SubResult {
                texts: (0..FILES)
                    .map(|i| (format!("f{i}.txt"), ropey::Rope::from_str(&initial(i))))
                    .collect(),
                latencies_us: Vec::new(),
                notices: 0,
                closed_early: false,
            };
            loop {
                let n = match tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
                    Err(_) if done.load(Ordering::SeqCst) => break,
                    Err(_) => continue,
                    Ok(Some(Ok(n))) => n,
                    Ok(_) => {
                        r.closed_early = true;
                        break;
                    }
                };
                let now = t0.elapsed().as_micros() as u64;
                r.notices += 1;
                let Some(text) = n["path"].as_str().and_then(|p| r.texts.get_mut(p)) else {
                    continue;
                };
                for e in n["edits"].as_array().into_iter().flatten() {
                    let s = e["offsets"]["start"].as_u64().unwrap_or(0) as usize;
                    let en = e["offsets"]["end"].as_u64().unwrap_or(0) as usize;
                    let ins = e["text"].as_str().unwrap_or("");
                    text.remove(s..en);
                    text.insert(s, ins);
                    for stamp in ins.split('\n').filter_map(|l| l.parse::<u64>().ok()) {
                        r.latencies_us.push(now.saturating_sub(stamp));
                    }
                }
            }
            r
        }));
    }
    println!(
        "agent API load: {subs} subscribers connected and subscribed in {:.2} s; mode {mode}, target {rate} edits/s for {secs} s over {FILES} files",
        t0.elapsed().as_secs_f64()
    );

    // The edits.
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stamp = move || format!("{}\n", t0.elapsed().as_micros());
    if mode == "editors" {
        let mut eds: Vec<RevAgent> = (0..FILES)
            .map(|i| RevAgent::new(&d, &format!("Ed{i}"), &format!("f{i}.txt")))
            .collect();
        let total = rate * secs;
        let mut k = 0u64;
        while k < total {
            // Pace: edits due by now.
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while k < due.min(total) {
                let ed = &mut eds[(k % FILES as u64) as usize];
                let n = ed.text.len_chars();
                ed.edit(n..n, &stamp());
                k += 1;
            }
            for ed in eds.iter_mut() {
                ed.pump(Duration::ZERO);
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        sent.store(k, Ordering::SeqCst);
        // Keep the editors connected until the end.
        std::mem::forget(eds);
    } else {
        let mut editors = Vec::new();
        for i in 0..FILES {
            let client = rt
                .block_on(
                    WsClientBuilder::default()
                        .set_headers(agent::auth(&token))
                        .build(&url),
                )
                .expect("connect");
            let sent = sent.clone();
            let per_agent = rate / FILES as u64;
            editors.push(rt.spawn(async move {
                let path = format!("f{i}.txt");
                let mut len = initial(i).chars().count();
                let mut version = json!({});
                let mut k = 0u64;
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(secs) {
                    let due = (start.elapsed().as_secs_f64() * per_agent as f64) as u64;
                    if k >= due {
                        tokio::time::sleep(Duration::from_micros(500)).await;
                        continue;
                    }
                    let text = stamp();
                    let out: Value = client
                        .request(
                            "fs.edit",
                            agent::obj(json!({"path": path, "version": version,
                                "edits": [{"offsets": {"start": len, "end": len}, "text": text}]})),
                        )
                        .await
                        .expect("fs.edit");
                    len += text.chars().count();
                    version = out["version"].clone();
                    k += 1;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for e in editors {
            rt.block_on(e).unwrap();
        }
    }
    let send_s = start.elapsed().as_secs_f64();
    let total = sent.load(Ordering::SeqCst);

    // Wait until the daemon holds every edit, then for the subscribers to go quiet.
    let reader = agent::Agent::connect(&d);
    let finals: HashMap<String, String> = loop {
        let snap = reader.ok("fs.snapshot", json!({}));
        let files: HashMap<String, String> = snap["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let lines: usize = files.values().map(|t| t.lines().count() - 1).sum();
        if lines as u64 >= total || start.elapsed() > Duration::from_secs(secs + 120) {
            break files;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let applied_s = start.elapsed().as_secs_f64();
    let applied: usize = finals.values().map(|t| t.lines().count() - 1).sum();
    let rss1 = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    done.store(true, Ordering::SeqCst);
    let results: Vec<SubResult> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();

    let mut lat: Vec<u64> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let notices: u64 = results.iter().map(|r| r.notices).sum();
    let closed = results.iter().filter(|r| r.closed_early).count();
    let exact = results
        .iter()
        .filter(|r| {
            finals
                .iter()
                .all(|(p, t)| r.texts.get(p).is_some_and(|x| x == t.as_str()))
        })
        .count();
    println!(
        "edits sent: {total} in {send_s:.2} s = {:.0}/s; applied by the daemon: {applied} ({:.0}/s until the last was in)",
        total as f64 / send_s,
        applied as f64 / applied_s
    );
    println!(
        "changes notices delivered: {notices} ({:.0}/s, {:.1} edits per notice)",
        notices as f64 / applied_s,
        lat.len() as f64 / notices.max(1) as f64
    );
    println!(
        "notification latency (edit sent -> notice received), {} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "daemon RSS: {:.1} MiB before, {:.1} MiB after, peak {:.1} MiB",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "nothing lost: {exact}/{subs} subscribers rebuilt every file exactly from their notices; {closed} were closed early (too slow)"
    );
}
