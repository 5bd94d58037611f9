//! Branch costs on a 100k-file workspace, side by side with the naive fork (a deep copy of
//! every text). Figures only (no assertions); run with
//! `cargo bench -p dist-space-agent-api --bench branch_fork` (`BRANCH_BENCH_FILES=n` to
//! change the size).

use std::time::{Duration, Instant};

use agent_api::branches::{parse, Branches};
use serde_json::{json, Value};
use vfs::{SnapContent, Workspace, WorkspaceOptions};

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let n: usize = std::env::var("BRANCH_BENCH_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let d = dir.path().join(format!("d{}/e{}", i % 100, (i / 100) % 10));
        if i < 1000 {
            std::fs::create_dir_all(&d).unwrap();
        }
        std::fs::write(
            d.join(format!("f{i}.rs")),
            format!("// file {i}\nfn f{i}() -> u32 {{\n    {i}\n}}\n").repeat(4),
        )
        .unwrap();
    }
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let t = Instant::now();
    let mut ws = Workspace::load(&root, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    println!("workspace: {n} files loaded in {}", ms(t.elapsed()));
    let mut br = Branches::new("bench");
    let mut call = |ws: &mut Workspace, m: &str, p: Value| -> Value {
        br.handle(ws, 1, parse(m, Some(&p.to_string())).unwrap())
            .result
            .unwrap()
    };
    ws.snapshot(); // the listing is built once, by the first snapshot of a daemon anyway

    let t = Instant::now();
    let b = call(&mut ws, "branch.fork", json!({}))["branch"].clone();
    let fork = t.elapsed();
    let t = Instant::now();
    let snap = ws.snapshot();
    let mut bytes = 0usize;
    let copies: Vec<String> = snap
        .files()
        .iter()
        .filter_map(|f| match &f.content {
            SnapContent::Text { text, .. } => Some(text.to_string()),
            _ => None,
        })
        .inspect(|s| bytes += s.len())
        .collect();
    let naive = t.elapsed();
    drop(copies);
    println!(
        "fork:                 branch.fork {:>12}   | naive deep copy of all texts {:>12} ({} MiB)",
        ms(fork),
        ms(naive),
        bytes >> 20
    );
    // Forks while the workspace changes (the listing catches up per changed file).
    let path = format!("d7/e3/f{}.rs", 7 + 300);
    let f = ws.lookup(&path).unwrap();
    let t = Instant::now();
    for k in 0..100 {
        ws.edit(
            f,
            "human",
            None,
            &[vfs::diff::TextEdit {
                range: 0..0,
                text: "x".into(),
            }],
        )
        .unwrap();
        let o = call(&mut ws, "branch.fork", json!({}));
        call(&mut ws, "branch.discard", json!({"branch": o["branch"]}));
        let _ = k;
    }
    println!(
        "edit + fork + discard, x100:        {:>12}",
        ms(t.elapsed())
    );
    let t = Instant::now();
    let r = call(&mut ws, "branch.read", json!({"branch": b, "path": path}));
    let read = t.elapsed();
    let t = Instant::now();
    let e = call(
        &mut ws,
        "branch.edit",
        json!({"branch": b, "path": path, "version": r["version"],
               "edits": [{"offsets": {"start": 0, "end": 0}, "text": "// branch\n"}]}),
    );
    let first_edit = t.elapsed();
    let t = Instant::now();
    call(
        &mut ws,
        "branch.edit",
        json!({"branch": b, "path": path, "version": e["version"],
               "edits": [{"offsets": {"start": 0, "end": 0}, "text": "// again\n"}]}),
    );
    let second_edit = t.elapsed();
    let t = Instant::now();
    let d = call(&mut ws, "branch.diff", json!({"branch": b}));
    let diff = t.elapsed();
    let t = Instant::now();
    let m = call(&mut ws, "branch.merge", json!({"branch": b}));
    let merge = t.elapsed();
    assert_eq!(d["files"].as_array().map(Vec::len), Some(1));
    assert_eq!(m["merged"], true);
    println!(
        "branch.read {} | first branch.edit (copy) {} | second edit {} | diff {} | merge {}",
        ms(read),
        ms(first_edit),
        ms(second_edit),
        ms(diff),
        ms(merge)
    );
}
