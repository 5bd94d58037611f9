//! Recomputes the C1/C2 fixtures of `tests/dt_files.rs` with diamond-types 1.0.0 (takes about
//! six minutes: 1.0.0 is slow on these histories).
//!
//! `cargo run --release -p dist-space-engine --example dt_fixtures`

use sha2::{Digest, Sha256};

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces/dt");
    for name in ["C1", "C2"] {
        let start = std::time::Instant::now();
        let path = dir.join(format!("{name}.dt"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let oplog = diamond_types::list::OpLog::load_from(&bytes).expect("a diamond-types file");
        let text = oplog.checkout_tip().content().to_string();
        let sha: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!(
            "{name}: chars {} sha256 {sha} ({:?})",
            text.chars().count(),
            start.elapsed()
        );
    }
}
