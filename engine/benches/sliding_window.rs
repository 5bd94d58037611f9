//! Continuous concurrency: `N` participants edit one document without pause, each at the
//! version its own previous edit returned, so the history never becomes critical (the
//! pattern of several agents editing one file through the daemon). Prints edits/s per slice:
//! flat means each merge costs the same however long the history is (the live branch keeps
//! the walker's state between merges, `WalkCache`); falling means each merge replays the
//! concurrent region.
//!
//! `cargo bench -p dist-space-engine --bench sliding_window [-- EDITS]`

use std::time::Instant;

use engine::{Document, Edit};

fn main() {
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    println!(
        "continuous concurrency: participants editing at their own last versions ({total} edits)"
    );
    println!(
        "{:>12} {:>10} {:>14}",
        "participants", "edits", "edits/s (slice)"
    );
    for n in [2usize, 4, 8] {
        let mut d = Document::from_text("x".repeat(100).into());
        let agents: Vec<_> = (0..n).map(|i| d.agent(&format!("agent#{i}"))).collect();
        let mut at: Vec<_> = (0..n).map(|_| d.version().clone()).collect();
        let slice = total / 5;
        let mut t = Instant::now();
        for i in 0..total {
            let k = i % n;
            let p = (i * 7919) % 50;
            let e = if i % 5 == 4 { p + 1 } else { p };
            let out = d
                .edit_at(
                    agents[k],
                    &at[k],
                    &[Edit {
                        range: p..e,
                        text: "ab".into(),
                    }],
                )
                .expect("in range at its version");
            at[k] = out.version;
            if (i + 1) % slice == 0 {
                println!(
                    "{:>12} {:>10} {:>14.0}",
                    n,
                    i + 1,
                    slice as f64 / t.elapsed().as_secs_f64()
                );
                t = Instant::now();
            }
        }
    }
}
