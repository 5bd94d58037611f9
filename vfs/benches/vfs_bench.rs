//! VFS benchmark: one run, figures side by side.
//!   cargo bench -p dist-space-vfs --bench vfs_bench [-- FILES [REAL_TREE_DIR]]
//! 1. load of a generated FILES-file workspace (default 100k) vs the floor (the same parallel
//!    `ignore` walk + read of the same files, nothing kept): wall time, CPU time and RSS. Each
//!    load runs in a fresh child process between two floors (after an untimed warm-up floor),
//!    `BENCH_RUNS` times (default 7); median ratios;
//! 2. snapshot of the whole workspace: right after the load, unchanged, after an edit, after
//!    a rename;
//! 3. external edit of one file: write -> detected -> applied, after the debounce window.
//!
//! A real tree is only read (load + snapshot + in-memory edits, never written).
//! `BENCH_BINARY load-only DIR` loads DIR once and exits, `BENCH_BINARY floor-only DIR` runs
//! the floor once (for profilers: `valgrind --tool=callgrind`, `/usr/bin/time -v`).
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vfs::diff::TextEdit;
use vfs::disk::{Debounce, DiskWatcher, NotifyWatcher};
use vfs::load::{walk_builder, LoadOptions};
use vfs::{SnapContent, Workspace, WorkspaceOptions};

fn rss_kib() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) of this process so far, in ms (10 ms resolution).
fn cpu_ms() -> u64 {
    let s = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (tick(11) + tick(12)) * 10
}

fn generate(root: &Path, n: usize) -> u64 {
    let mut bytes = 0u64;
    let line = "    let value = compute(alpha, beta, gamma); // some typical source line\n";
    for i in 0..n {
        let dir = root.join(format!("crate{}/src/mod{}", i % 40, (i / 40) % 25));
        if i < 1000 {
            fs::create_dir_all(&dir).unwrap();
        }
        let lines = 4 + (i * 7919) % 24; // 4..28 lines, ~0.3-2 KB
        let mut s = format!("// file {i}\nfn f{i}() {{\n");
        for _ in 0..lines {
            s.push_str(line);
        }
        s.push_str("}\n");
        bytes += s.len() as u64;
        fs::write(dir.join(format!("f{i}.rs")), s).unwrap();
    }
    fs::write(root.join(".gitignore"), "target/\n").unwrap();
    bytes
}

fn floor(root: &Path) -> (Duration, u64, u64, u64) {
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let c = cpu_ms();
    let t = Instant::now();
    walk_builder(root, &LoadOptions::default())
        .build_parallel()
        .run(|| {
            Box::new(|e| {
                if let Ok(e) = e {
                    if e.file_type().is_some_and(|t| t.is_file()) {
                        let mut buf = Vec::new();
                        if fs::File::open(e.path())
                            .and_then(|mut f| f.read_to_end(&mut buf))
                            .is_ok()
                        {
                            files.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
                ignore::WalkState::Continue
            })
        });
    (
        t.elapsed(),
        files.into_inner(),
        bytes.into_inner(),
        cpu_ms() - c,
    )
}

/// Child process: one load of `root` in a fresh process (so that memory freed by an earlier
/// load cannot be reused and hide page faults or RSS growth), between two floors. A first,
/// untimed floor warms the page cache, so both sides read from a warm cache. Prints one line:
/// floor_before_ms floor_before_cpu load_ms load_cpu_ms rss_delta_bytes files floor_bytes
/// text_files text_bytes floor_after_ms floor_after_cpu.
fn load_child(root: &Path) {
    let (_, nfiles, nbytes, _) = floor(root); // warm-up, untimed
    let (fa, _, _, ca) = floor(root);
    let rss0 = rss_kib();
    let cpu = cpu_ms();
    let t = Instant::now();
    let mut ws = Workspace::load(root, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let load = t.elapsed();
    let load_cpu = cpu_ms() - cpu;
    let delta = rss_kib().saturating_sub(rss0) * 1024;
    let (fb, _, _, cb) = floor(root);
    let snap = ws.snapshot();
    let text_files = snap
        .files()
        .iter()
        .filter(|f| matches!(f.content, SnapContent::Text { .. }))
        .count();
    println!(
        "{} {} {} {} {} {} {} {} {} {} {}",
        fa.as_secs_f64() * 1e3,
        ca,
        load.as_secs_f64() * 1e3,
        load_cpu,
        delta,
        nfiles,
        nbytes,
        text_files,
        snap.text_bytes(),
        fb.as_secs_f64() * 1e3,
        cb,
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Fresh child processes per tree (`BENCH_RUNS`, default 7).
fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(7)
}

fn bench_tree(label: &str, root: &Path, edit_latency: bool) {
    println!("== {label}: {}", root.display());
    // Fresh processes, each: warm-up floor, floor, load, floor. Each load is compared with the
    // mean of the two floors around it (same process, same warm cache, same machine load a
    // moment before and after); the figures are the medians over the runs.
    let mut runs_out: Vec<Vec<f64>> = Vec::new();
    for _ in 0..runs() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("load-child")
            .arg(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        runs_out.push(
            line.split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect(),
        );
    }
    let col = |f: &dyn Fn(&Vec<f64>) -> f64| runs_out.iter().map(f).collect::<Vec<f64>>();
    let floor_ms = col(&|r| (r[0] + r[9]) / 2.0);
    let floor_cpu = col(&|r| (r[1] + r[10]) / 2.0);
    let load_ms = col(&|r| r[2]);
    let load_cpu = col(&|r| r[3]);
    let wall_ratio: Vec<f64> = load_ms.iter().zip(&floor_ms).map(|(l, f)| l / f).collect();
    let cpu_ratio: Vec<f64> = load_cpu
        .iter()
        .zip(&floor_cpu)
        .map(|(l, f)| l / f.max(1.0))
        .collect();
    let rss = median(col(&|r| r[4]));
    let r = &runs_out[0];
    let (nfiles, nbytes, text_files, text_bytes) = (r[5], r[6], r[7], r[8]);
    let list = |v: &[f64], prec: usize| {
        v.iter()
            .map(|x| format!("{x:.prec$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "files: {nfiles} ({:.1} MiB read by the floor); held as text: {text_files} files, {:.1} MiB; {} runs (fresh process each: warm-up floor, floor, load, floor)",
        nbytes / 1048576.0,
        text_bytes / 1048576.0,
        runs_out.len()
    );
    println!(
        "load wall:  vfs {:>7.1} ms | floor (ignore walk + read) {:>7.1} ms | median ratio {:.2}x (per run: {})",
        median(load_ms.clone()),
        median(floor_ms.clone()),
        median(wall_ratio.clone()),
        list(&wall_ratio, 2)
    );
    println!(
        "load CPU:   vfs {:>7.0} ms | floor {:>7.0} ms | median ratio {:.2}x (per run: {}; user+sys, all threads, 10 ms ticks)",
        median(load_cpu.clone()),
        median(floor_cpu.clone()),
        median(cpu_ratio.clone()),
        list(&cpu_ratio, 2)
    );
    println!(
        "load RSS:   vfs +{:.1} MiB (median; runs: {}) | text {:.1} MiB | vfs/text {:.2}x | per file beyond 1.0x text: {:.0} B, beyond 1.5x text: {:.0} B",
        rss / 1048576.0,
        list(&col(&|r| r[4] / 1048576.0), 1),
        text_bytes / 1048576.0,
        rss / text_bytes.max(1.0),
        (rss - text_bytes) / nfiles,
        (rss - 1.5 * text_bytes) / nfiles
    );
    let mut ws = Workspace::load(root, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let nfiles = nfiles as u64;
    // Snapshot: right after the load, unchanged, after an edit, after a rename.
    let time = |ws: &mut Workspace| {
        let t = Instant::now();
        let s = ws.snapshot();
        let d = t.elapsed();
        std::hint::black_box(&s);
        d
    };
    let first = time(&mut ws);
    let mut unchanged = Duration::MAX;
    for _ in 0..5 {
        unchanged = unchanged.min(time(&mut ws));
    }
    let target = ws
        .tree()
        .visible()
        .filter(|(f, _)| ws.text_file(*f).is_some())
        .nth(nfiles as usize / 2)
        .map(|(f, p)| (f, p.to_string()));
    let Some((f, rel)) = target else { return };
    let mut after_edit = Duration::MAX;
    for i in 0..5 {
        // In memory only (no flush): safe on a real tree.
        ws.edit(
            f,
            "bench",
            None,
            &[TextEdit {
                range: 0..0,
                text: format!("// {i}\n"),
            }],
        )
        .unwrap();
        after_edit = after_edit.min(time(&mut ws));
    }
    let n_entries = ws.snapshot().files().len();
    println!(
        "snapshot:   {:.3} ms first after load | {:.3} ms unchanged | {:.3} ms after a 1-file edit (best of 5, {n_entries} entries)",
        first.as_secs_f64() * 1e3,
        unchanged.as_secs_f64() * 1e3,
        after_edit.as_secs_f64() * 1e3,
    );
    if !edit_latency {
        return; // never write into a real source tree
    }
    // A rename changes the tree view: the listing catches up by one pointer comparison per node.
    let mut after_rename = Duration::MAX;
    for i in 0..4 {
        let (a, b) = if i % 2 == 0 {
            (rel.clone(), format!("{rel}.renamed"))
        } else {
            (format!("{rel}.renamed"), rel.clone())
        };
        ws.rename(&a, &b).unwrap();
        after_rename = after_rename.min(time(&mut ws));
    }
    println!(
        "snapshot:   {:.3} ms after a 1-file rename (best of 4)",
        after_rename.as_secs_f64() * 1e3
    );
    ws.flush(); // the in-memory edits above, before the disk edits below
                // External edit latency.
    let quiet = Duration::from_millis(50);
    let mut w = NotifyWatcher::new(
        ws.root(),
        Debounce {
            quiet,
            max_wait: Duration::from_millis(1000),
        },
    )
    .unwrap();
    while w.next_batch(Duration::from_millis(300)).is_some() {}
    let f = ws.lookup(&rel).unwrap();
    let mut lat = Vec::new();
    for i in 0..5 {
        let abs = ws.root().join(&rel);
        let mut s = fs::read_to_string(&abs).unwrap();
        s.insert_str(0, &format!("// edit {i}\n"));
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        fs::write(&abs, &s).unwrap();
        loop {
            let Some(batch) = w.next_batch(Duration::from_secs(5)) else {
                panic!("no event")
            };
            let detected = t.elapsed();
            let ta = Instant::now();
            let rep = ws.apply_disk_batch(&batch);
            let apply = ta.elapsed();
            if rep.modified.contains(&rel) {
                let total = t.elapsed();
                lat.push((total, detected, apply));
                break;
            }
        }
        assert!(ws
            .text(f)
            .unwrap()
            .to_string()
            .starts_with(&format!("// edit {i}\n")));
    }
    for (total, detected, apply) in &lat {
        println!(
            "ext. edit:  write->applied {:>6.1} ms = batch closed {:>6.1} ms (incl. {} ms quiet window) + apply {:>5.2} ms | after debounce: {:>5.1} ms",
            total.as_secs_f64() * 1e3,
            detected.as_secs_f64() * 1e3,
            quiet.as_millis(),
            apply.as_secs_f64() * 1e3,
            (total.saturating_sub(quiet)).as_secs_f64() * 1e3
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("load-child") {
        return load_child(Path::new(&args[1]));
    }
    if args.first().map(String::as_str) == Some("floor-only") {
        let (t, files, bytes, _) = floor(Path::new(&args[1]));
        println!("floor: {files} files, {bytes} bytes in {t:?}");
        return;
    }
    if args.first().map(String::as_str) == Some("load-only") {
        // For profiling (`perf record -g BENCH_BINARY load-only DIR`): one load, nothing else.
        let t = Instant::now();
        let ws = Workspace::load(
            Path::new(&args[1]),
            WorkspaceOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        println!("loaded {} entries in {:?}", ws.len(), t.elapsed());
        std::mem::forget(ws); // not timed: keep its drop out of the profile
        return;
    }
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let bytes = generate(dir.path(), n);
    println!(
        "generated {n} files ({bytes} bytes) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Let the writes reach the disk first, so that writeback does not run during the timings.
    let _ = std::process::Command::new("sync").status();
    bench_tree("generated workspace", dir.path(), true);
    if let Some(real) = args.get(1) {
        bench_tree(
            "real tree (read-only: load + snapshot)",
            Path::new(real),
            false,
        );
    }
}
