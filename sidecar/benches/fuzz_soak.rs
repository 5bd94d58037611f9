//! The protocol fuzz as a soak: the same seeded cases as `tests/fuzz.rs`, many more of them
//! (`DIST_SPACE_FUZZ_CASES`, default 20,000 agent cases and 1,000 LSP sessions), against one
//! daemon. Prints cases per second and every finding.
//!
//! `cargo bench -p dist-space-sidecar --bench fuzz_soak`

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/fuzz.rs"]
mod fuzz;

use std::time::Instant;

fn main() {
    let n: u64 = std::env::var("DIST_SPACE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("DIST_SPACE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x50ac);
    let dir = fuzz::workspace();
    let mut d = common::Daemon::start(dir.path());
    let mut rep = fuzz::Report::default();
    let t0 = Instant::now();
    fuzz::agent_cases(&d, seed, n, &mut rep);
    let agent_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    fuzz::lsp_sessions(&d, seed, (n / 20).max(1), &mut rep);
    let lsp_s = t1.elapsed().as_secs_f64();
    fuzz::check_confined(&d, &mut rep);
    let alive = d.child.as_mut().unwrap().try_wait().unwrap().is_none();
    println!("fuzz_soak seed {seed:#x}");
    println!(
        "  agent API: {} cases ({} refused, {} accepted) in {agent_s:.1} s = {:.0} cases/s",
        rep.cases,
        rep.refused,
        rep.accepted,
        rep.cases as f64 / agent_s
    );
    println!(
        "  LSP: {} sessions, {} messages in {lsp_s:.1} s = {:.0} messages/s",
        rep.lsp_sessions,
        rep.lsp_messages,
        rep.lsp_messages as f64 / lsp_s
    );
    println!("  daemon alive: {alive}");
    println!("  findings: {}", rep.findings.len());
    for f in &rep.findings {
        println!("    {f}");
    }
    d.stop();
}
