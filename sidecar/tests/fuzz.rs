//! Seeded fuzz of the agent API (HTTP and WebSocket) and of LSP against a real daemon: every
//! request gets a well-formed answer naming what is wrong, a refused request changes nothing,
//! nothing reaches `.git`, ignored folders or names the disk cannot hold, and the daemon
//! never dies. `DIST_SPACE_FUZZ_SEED` replays a seed; the longer run is the `fuzz_soak` bench.

mod common;
#[path = "common/fuzz.rs"]
mod fuzz;

use common::Daemon;

fn seed() -> u64 {
    std::env::var("DIST_SPACE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026)
}

#[test]
fn agent_api_and_lsp_fuzz() {
    let dir = fuzz::workspace();
    let mut d = Daemon::start(dir.path());
    let seed = seed();
    let mut rep = fuzz::Report::default();
    fuzz::agent_cases(&d, seed, 1500, &mut rep);
    fuzz::lsp_sessions(&d, seed, 100, &mut rep);
    fuzz::check_confined(&d, &mut rep);
    // The daemon still serves, and still runs.
    let info = fuzz::Http::new(&d).call("workspace.info", serde_json::json!({}));
    assert!(info["result"]["version"].is_u64(), "{info}");
    assert!(
        d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "daemon died"
    );
    eprintln!(
        "seed {seed:#x}: {} agent cases ({} refused, {} accepted), {} LSP sessions ({} messages)",
        rep.cases, rep.refused, rep.accepted, rep.lsp_sessions, rep.lsp_messages
    );
    assert!(rep.refused > 100 && rep.accepted > 100, "{rep:?}");
    assert!(
        rep.findings.is_empty(),
        "seed {seed:#x}: {} findings:\n{}",
        rep.findings.len(),
        rep.findings.join("\n")
    );
    d.stop();
}
