//! Compaction figures for engine/BENCHMARKS.md: a history of more than 1M events, made by
//! replaying the real editing traces in `shared/traces/sequential` one after another into one
//! document (each replay edits in front of what the previous ones left), compacted so that only
//! the last 10,000 events are kept.
//!
//! `cargo run --release -p dist-space-engine --example compaction [TRACES_DIR]`

#[path = "../../sidecar/src/trace/format.rs"]
#[allow(dead_code)]
mod format;

use std::path::PathBuf;
use std::time::Instant;

use engine::Document;
use format::{load_trace, Trace};

const TARGET_EVENTS: usize = 1_000_000;
const KEEP: usize = 10_000;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces/sequential")
        });
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    names.sort();
    let traces: Vec<_> = names
        .iter()
        .map(|p| match load_trace(p).unwrap() {
            Trace::Sequential(t) => t,
            Trace::Concurrent(_) => panic!("{} is not sequential", p.display()),
        })
        .collect();

    let mut d = Document::new();
    let a = d.agent("typist");
    let t0 = Instant::now();
    let mut replays = 0;
    'outer: loop {
        for t in &traces {
            if !t.start_content.is_empty() {
                d.insert(a, 0, &t.start_content).unwrap();
            }
            for txn in &t.txns {
                for p in txn {
                    if p.del > 0 {
                        d.delete(a, p.pos..p.pos + p.del).unwrap();
                    }
                    if !p.ins.is_empty() {
                        d.insert(a, p.pos, &p.ins).unwrap();
                    }
                }
            }
            replays += 1;
            if d.oplog().len() >= TARGET_EVENTS {
                break 'outer;
            }
        }
    }
    let events = d.oplog().len();
    let text = d.text().to_string();
    println!(
        "history: {events} events from {replays} trace replays ({} traces) in {:.2?}; text {} chars, {} bytes",
        traces.len(),
        t0.elapsed(),
        d.len_chars(),
        text.len()
    );

    let t = Instant::now();
    let before = d.encode();
    let enc_before = t.elapsed();
    let h = d.horizon_keeping_last(KEEP);
    let t = Instant::now();
    let dropped = d.compact(&h).unwrap();
    let compact_time = t.elapsed();
    let t = Instant::now();
    let after = d.encode();
    let enc_after = t.elapsed();
    assert_eq!(d.text().to_string(), text);
    let t = Instant::now();
    let mut back = Document::decode(&after).unwrap();
    let load_after = t.elapsed();
    assert_eq!(back.text().to_string(), text);
    let raw_text = zstd::bulk::compress(text.as_bytes(), 3).unwrap().len();

    println!("| measurement | value |");
    println!("|---|---:|");
    println!("| events in the history | {events} |");
    println!("| events dropped by compaction (kept: last {KEEP}) | {dropped} |");
    println!("| encoded size, whole history | {} bytes |", before.len());
    println!("| encoded size, compacted | {} bytes |", after.len());
    println!("| (the final text alone, zstd level 3) | {raw_text} bytes |");
    println!("| compaction time | {compact_time:.2?} |");
    println!("| encode time, before / after | {enc_before:.2?} / {enc_after:.2?} |");
    println!("| load time (decode + materialise), compacted | {load_after:.2?} |");
}
