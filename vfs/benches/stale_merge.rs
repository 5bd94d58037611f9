//! What merging an external change costs with a full window of disk states (prints figures;
//! no assertions). `cargo bench -p dist-space-vfs --bench stale_merge [-- KIB...]`
//!
//! For each file size: load one file, make 40 agent edits each written back (the window fills:
//! 32 older states), then time (a) a current external change (merged at the newest state),
//! (b) a stale writer's change made at the file as loaded (merged at the oldest state), and the
//! same change without any window (the cost before windows: one diff). Medians of 5 runs.
use std::collections::BTreeSet;
use std::fs;
use std::time::Instant;

use vfs::diff::TextEdit;
use vfs::disk::WatchBatch;
use vfs::{Workspace, WorkspaceOptions};

fn text_of(kib: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < kib * 1024 {
        s.push_str(&format!(
            "    let value_{i} = compute({i}, \"line {i}\");\n"
        ));
        i += 1;
    }
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Milliseconds to apply `new` as an external change after `writes` agent write-backs.
fn run(kib: usize, writes: usize, stale: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let original = text_of(kib);
    let p = dir.path().join("a.rs");
    fs::write(&p, &original).unwrap();
    let mut ws = Workspace::load(dir.path(), WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let f = ws.lookup("a.rs").unwrap();
    for i in 0..writes {
        let t = ws.text(f).unwrap();
        let at = t.line_to_char((i * 37) % (t.len_lines() - 1));
        let e = TextEdit {
            range: at..at,
            text: format!("// agent {i}\n"),
        };
        ws.edit(f, "agent", None, &[e]).unwrap();
        ws.flush();
    }
    let base = if stale {
        original
    } else {
        fs::read_to_string(&p).unwrap()
    };
    let mid = base.len() / 2;
    let cut = base[mid..].find('\n').map_or(base.len(), |i| mid + i + 1);
    let new = format!("{}// the writer's line\n{}", &base[..cut], &base[cut..]);
    fs::write(&p, new).unwrap();
    let batch = WatchBatch {
        paths: BTreeSet::from([p.clone()]),
        ..Default::default()
    };
    let t0 = Instant::now();
    let rep = ws.apply_disk_batch(&batch);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(rep.modified, ["a.rs"]);
    ms
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 1024]
    } else {
        sizes
    };
    println!("| file | current change, full window | stale change at the loaded state, full window | change, no window |");
    println!("|---|---|---|---|");
    for kib in sizes {
        let m = |writes, stale| median((0..5).map(|_| run(kib, writes, stale)).collect());
        println!(
            "| {kib} KiB | {:.2} ms | {:.2} ms | {:.2} ms |",
            m(40, false),
            m(40, true),
            m(0, false)
        );
    }
}
