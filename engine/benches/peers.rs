//! Our engine side by side with its peers, in one table.
//!
//! `cargo bench -p dist-space-engine --bench peers` (add `-- --full` to rerun diamond-types 1.0.0
//! on C1/C2, which takes minutes; `-- --quick` runs every cell once, for a smoke test).
//!
//! Columns: ours, diamond-types 1.0.0, cola 0.5 (+ a jumprope buffer for the text, since cola only
//! tracks positions), ropey alone, jumprope alone, and the eg-walker authors' newest figures
//! (fixed, from `shared/traces/TRACES.md`).
//! Sections:
//! * (a) local replay of each sequential trace;
//! * (b) merge from scratch (whole history -> final text) of each `.dt` file, imported through
//!   diamond-types;
//! * (c) long-diverged random branches: 2 and 3 agents each make >= 10k edits from a common
//!   version, then one merge (from scratch, and into the first agent's replica);
//! * (d) encoded size of the whole history, and load time (decode + materialise the text);
//! * (e) retained heap after replay / merge (counting global allocator).
//!
//! Times are medians of repeated runs after a warm-up run.

#[path = "../../sidecar/src/trace/format.rs"]
#[allow(dead_code)]
mod format;

#[path = "../tests/common/dt_import.rs"]
mod dt_import;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diamond_types::list::encoding::ENCODE_FULL;
use diamond_types::list::operation::Operation;
use diamond_types::list::{ListCRDT, OpLog as DtOpLog};
use jumprope::JumpRope;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ropey::Rope;

use dt_import::{dt_history, load_dt, DtHistory};
use format::{Patch, SequentialTrace, Trace};

// ---------------------------------------------------------------------------------------------
// Counting allocator: bytes currently allocated.

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes `build`'s result keeps alive (temporaries it dropped are not counted).
fn retained<T>(build: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let value = build();
    let after = LIVE.load(Ordering::Relaxed);
    (value, after.saturating_sub(before))
}

// ---------------------------------------------------------------------------------------------
// Timing.

struct Opts {
    full: bool,
    quick: bool,
}

/// Median time of `f` (its result is dropped outside the timed region).
fn time<R>(opts: &Opts, mut f: impl FnMut() -> R) -> Duration {
    let run = |f: &mut dyn FnMut() -> R| {
        let start = Instant::now();
        let r = f();
        let t = start.elapsed();
        drop(black_box(r));
        t
    };
    let warm = run(&mut f);
    if opts.quick || warm > Duration::from_secs(3) {
        return warm;
    }
    let budget = Duration::from_millis(1500);
    let runs = (budget.as_secs_f64() / warm.as_secs_f64().max(1e-6)).clamp(3.0, 31.0) as usize;
    let mut times: Vec<Duration> = (0..runs).map(|_| run(&mut f)).collect();
    times.sort();
    times[times.len() / 2]
}

/// Median time of `f` on a fresh `setup()` value each run (setup not timed).
fn time_with_setup<S>(
    opts: &Opts,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(&mut S),
) -> Duration {
    let mut run = || {
        let mut s = setup();
        let start = Instant::now();
        f(&mut s);
        let t = start.elapsed();
        drop(black_box(s));
        t
    };
    let warm = run();
    if opts.quick || warm > Duration::from_secs(3) {
        return warm;
    }
    let runs = (1.5 / warm.as_secs_f64().max(1e-6)).clamp(3.0, 31.0) as usize;
    let mut times: Vec<Duration> = (0..runs).map(|_| run()).collect();
    times.sort();
    times[times.len() / 2]
}

fn fmt_time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn fmt_bytes(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} kB", b as f64 / 1024.0)
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

#[derive(Default)]
struct Row {
    what: String,
    ours: String,
    dt: String,
    cola: String,
    ropey: String,
    jumprope: String,
    egwalker: String,
}

const NA: &str = "n/a";
const NO_ENCODING: &str = "no encoding yet";

fn print_table(rows: &[Row]) {
    println!("| measurement | ours | diamond-types 1.0.0 | cola 0.5 (+jumprope text) | ropey 1.6 alone | jumprope 1.1 alone | eg-walker newest (published) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.what, r.ours, r.dt, r.cola, r.ropey, r.jumprope, r.egwalker
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Data.

fn traces_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces"))
}

const SEQUENTIAL: [&str; 6] = [
    "automerge-paper",
    "seph-blog1",
    "rustcode",
    "sveltecomponent",
    "friendsforever_flat",
    "clownschool_flat",
];

const DT_FILES: [&str; 8] = [
    "S1",
    "S2",
    "S3",
    "C1",
    "C2",
    "A1",
    "friendsforever",
    "clownschool",
];

/// The eg-walker authors' newest code, merge from scratch, ms (TRACES.md).
fn egwalker_merge_ms(name: &str) -> Option<f64> {
    Some(match name {
        "S1" => 2.6,
        "S2" => 4.0,
        "S3" => 5.7,
        "C1" => 87.0,
        "C2" => 119.0,
        "A1" => 12.0,
        "friendsforever" => 2.5,
        "clownschool" => 3.6,
        _ => return None,
    })
}

/// diamond-types 1.0.0 merge from scratch on C1/C2, ms, measured on this machine kind (TRACES.md).
fn dt_published_ms(name: &str) -> Option<f64> {
    match name {
        "C1" => Some(119_000.0),
        "C2" => Some(254_000.0),
        _ => None,
    }
}

/// Eg-walker steady-state memory, MB (the paper's figures, TRACES.md).
fn egwalker_memory_mb(name: &str) -> Option<f64> {
    Some(match name {
        "S1" => 0.60,
        "S2" => 0.32,
        "S3" => 0.23,
        "C1" => 1.01,
        "C2" => 1.00,
        "A1" => 0.073,
        _ => return None,
    })
}

fn load_sequential(name: &str) -> SequentialTrace {
    let path = traces_dir()
        .join("sequential")
        .join(format!("{name}.json.gz"));
    match format::load_trace(&path) {
        Ok(Trace::Sequential(t)) => t,
        Ok(_) => panic!("{}: not a sequential trace", path.display()),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// Peers: local replay.

fn dt_replay(t: &SequentialTrace) -> ListCRDT {
    let mut doc = ListCRDT::new();
    let id = doc.get_or_create_agent_id("trace");
    let mut ops: Vec<Operation> = Vec::with_capacity(2);
    for txn in &t.txns {
        for p in txn {
            ops.clear();
            if p.del > 0 {
                ops.push(Operation::new_delete(p.pos..p.pos + p.del));
            }
            if !p.ins.is_empty() {
                ops.push(Operation::new_insert(p.pos, &p.ins));
            }
            doc.apply_local_operations(id, &ops);
        }
    }
    doc
}

struct ColaDoc {
    crdt: cola::Replica,
    text: JumpRope,
}

fn cola_replay(t: &SequentialTrace) -> ColaDoc {
    let mut doc = ColaDoc {
        crdt: cola::Replica::new(1, 0),
        text: JumpRope::new(),
    };
    for txn in &t.txns {
        for p in txn {
            if p.del > 0 {
                let _ = doc.crdt.deleted(p.pos..p.pos + p.del);
                doc.text.remove(p.pos..p.pos + p.del);
            }
            if !p.ins.is_empty() {
                let _ = doc.crdt.inserted(p.pos, p.ins.chars().count());
                doc.text.insert(p.pos, &p.ins);
            }
        }
    }
    doc
}

fn ropey_replay(t: &SequentialTrace) -> Rope {
    let mut rope = Rope::new();
    for txn in &t.txns {
        for p in txn {
            if p.del > 0 {
                rope.remove(p.pos..p.pos + p.del);
            }
            if !p.ins.is_empty() {
                rope.insert(p.pos, &p.ins);
            }
        }
    }
    rope
}

fn jumprope_replay(t: &SequentialTrace) -> JumpRope {
    let mut rope = JumpRope::new();
    for txn in &t.txns {
        for p in txn {
            if p.del > 0 {
                rope.remove(p.pos..p.pos + p.del);
            }
            if !p.ins.is_empty() {
                rope.insert(p.pos, &p.ins);
            }
        }
    }
    rope
}

// ---------------------------------------------------------------------------------------------
// Long-diverged branches.

/// One agent's edits on its own branch, each at the previous one.
struct BranchEdits {
    patches: Vec<Patch>,
}

/// A typing-like editor: mostly typing at a cursor, some backspaces, jumps and pastes.
fn random_branch(rng: &mut SmallRng, base_len: usize, edits: usize) -> BranchEdits {
    const WORDS: [&str; 8] = [
        "the ",
        "merge ",
        "é ",
        "ñandú ",
        "中文 ",
        "😀",
        "fn x() {}\n",
        "\n",
    ];
    let mut len = base_len;
    let mut cursor = rng.gen_range(0..=len);
    let mut patches = Vec::with_capacity(edits);
    while patches.len() < edits {
        let roll = rng.gen_range(0..100);
        if roll < 8 {
            cursor = rng.gen_range(0..=len);
        }
        if roll < 72 || len == 0 {
            let text = if roll < 68 {
                let c = (b'a' + rng.gen_range(0..26)) as char;
                c.to_string()
            } else {
                WORDS[rng.gen_range(0..WORDS.len())].to_string()
            };
            let n = text.chars().count();
            patches.push(Patch {
                pos: cursor,
                del: 0,
                ins: text,
            });
            cursor += n;
            len += n;
        } else if roll < 92 && cursor > 0 {
            cursor -= 1;
            patches.push(Patch {
                pos: cursor,
                del: 1,
                ins: String::new(),
            });
            len -= 1;
        } else if cursor < len {
            let del = rng.gen_range(1..=(len - cursor).min(12));
            patches.push(Patch {
                pos: cursor,
                del,
                ins: String::new(),
            });
            len -= del;
        }
    }
    BranchEdits { patches }
}

struct Diverged {
    base: String,
    branches: Vec<BranchEdits>,
}

fn diverged(agents: usize, edits: usize, seed: u64) -> Diverged {
    let mut rng = SmallRng::seed_from_u64(seed);
    let base: String = (0..4000)
        .map(|i| {
            if i % 60 == 59 {
                '\n'
            } else {
                (b'a' + (i % 26) as u8) as char
            }
        })
        .collect();
    let base_len = base.chars().count();
    let branches = (0..agents)
        .map(|_| random_branch(&mut rng, base_len, edits))
        .collect();
    Diverged { base, branches }
}

/// dt: base by agent "base", then each branch from the base version.
fn dt_diverged(d: &Diverged) -> DtOpLog {
    let mut oplog = DtOpLog::new();
    let base = oplog.get_or_create_agent_id("base");
    let base_v = oplog.add_insert_at(base, &[], 0, &d.base);
    for (i, b) in d.branches.iter().enumerate() {
        let agent = oplog.get_or_create_agent_id(&format!("agent{i}"));
        let mut parent = base_v;
        for p in &b.patches {
            if p.del > 0 {
                parent = oplog.add_delete_at(agent, &[parent], p.pos..p.pos + p.del);
            }
            if !p.ins.is_empty() {
                parent = oplog.add_insert_at(agent, &[parent], p.pos, &p.ins);
            }
        }
    }
    oplog
}

enum ColaEdit {
    Ins(cola::Insertion, String),
    Del(cola::Deletion),
}

/// cola: each agent forks the base replica and edits; returns the first agent's replica and
/// the other agents' edits.
fn cola_diverged(d: &Diverged) -> (ColaDoc, Vec<Vec<ColaEdit>>) {
    let base = ColaDoc {
        crdt: cola::Replica::new(1, d.base.chars().count()),
        text: JumpRope::from(d.base.as_str()),
    };
    let mut first = None;
    let mut others = Vec::new();
    for (i, b) in d.branches.iter().enumerate() {
        let mut doc = ColaDoc {
            crdt: base.crdt.fork(i as u64 + 2),
            text: base.text.clone(),
        };
        let mut edits = Vec::new();
        for p in &b.patches {
            if p.del > 0 {
                edits.push(ColaEdit::Del(doc.crdt.deleted(p.pos..p.pos + p.del)));
                doc.text.remove(p.pos..p.pos + p.del);
            }
            if !p.ins.is_empty() {
                let ins = doc.crdt.inserted(p.pos, p.ins.chars().count());
                doc.text.insert(p.pos, &p.ins);
                edits.push(ColaEdit::Ins(ins, p.ins.clone()));
            }
        }
        if i == 0 {
            first = Some(doc);
        } else {
            others.push(edits);
        }
    }
    (first.expect("at least one agent"), others)
}

fn cola_merge(doc: &mut ColaDoc, edits: &[Vec<ColaEdit>]) {
    for agent in edits {
        for e in agent {
            match e {
                ColaEdit::Ins(ins, text) => {
                    if let Some(at) = doc.crdt.integrate_insertion(ins) {
                        doc.text.insert(at, text);
                    }
                }
                ColaEdit::Del(del) => {
                    for r in doc.crdt.integrate_deletion(del).into_iter().rev() {
                        doc.text.remove(r);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ours.

mod ours {
    //! Everything that touches our engine.

    use engine::{Document, OpLog, RemoteEvent};
    use ropey::Rope;

    use super::dt_import::{DtHistory, DtOp};
    use super::format::SequentialTrace;
    use super::Diverged;

    /// Local replay: every patch is a local edit on one Document.
    pub fn replay(t: &SequentialTrace) -> Document {
        let mut doc = Document::new();
        let agent = doc.agent("trace");
        for txn in &t.txns {
            for p in txn {
                let range = p.pos..p.pos + p.del;
                match (p.del > 0, p.ins.is_empty()) {
                    (true, false) => doc.replace(agent, range, &p.ins),
                    (true, true) => doc.delete(agent, range),
                    (false, _) => doc.insert(agent, p.pos, &p.ins),
                }
                .expect("trace edits are in range");
            }
        }
        doc
    }

    pub fn text(doc: &mut Document) -> String {
        doc.text().to_string()
    }

    /// The whole history, encoded (`Option`: the table prints a note where there is none).
    pub fn encode(doc: &Document) -> Option<Vec<u8>> {
        Some(doc.encode())
    }

    /// Decode + materialise the text.
    pub fn decode(bytes: &[u8]) -> Document {
        let mut doc = Document::decode(bytes).expect("we decode our own encoding");
        doc.text();
        doc
    }

    /// The dt history added to an OpLog with the same agents and parents (dt times = our LVs).
    pub fn import_oplog(h: &DtHistory) -> OpLog {
        let mut log = OpLog::new();
        let ids: Vec<_> = h.agents.iter().map(|a| log.agent(a)).collect();
        for run in &h.runs {
            let last = match &run.op {
                DtOp::Insert { pos, text } => {
                    log.add_insert_at(ids[run.agent], &run.parents, *pos, text)
                }
                DtOp::Delete { range, .. } => {
                    log.add_delete_at(ids[run.agent], &run.parents, range.clone())
                }
            }
            .expect("dt's events are valid");
            assert_eq!(
                last,
                run.start..run.start + run.op.len(),
                "LVs differ from dt times"
            );
        }
        log
    }

    pub fn merge_from_scratch(log: &OpLog) -> Rope {
        log.checkout_tip().expect("the tip is a version of the log")
    }

    /// A Document holding the whole dt history and its text. (`from_oplog`: A1 has authors
    /// committing on concurrent branches, which our wire form of events does not accept.)
    pub fn import_document(h: &DtHistory) -> Document {
        let mut doc =
            Document::from_oplog(import_oplog(h)).expect("the tip is a version of the log");
        doc.text();
        doc
    }

    pub fn diverged_oplog(d: &Diverged) -> OpLog {
        let mut log = OpLog::new();
        let base = log.agent("base");
        let base_v = log
            .add_insert_at(base, &[], 0, &d.base)
            .expect("base insert")
            .end
            - 1;
        for (i, b) in d.branches.iter().enumerate() {
            let agent = log.agent(&format!("agent{i}"));
            let mut parent = base_v;
            for p in &b.patches {
                if p.del > 0 {
                    parent = log
                        .add_delete_at(agent, &[parent], p.pos..p.pos + p.del)
                        .expect("delete")
                        .end
                        - 1;
                }
                if !p.ins.is_empty() {
                    parent = log
                        .add_insert_at(agent, &[parent], p.pos, &p.ins)
                        .expect("insert")
                        .end
                        - 1;
                }
            }
        }
        log
    }

    /// The first agent's replica (base + its own edits, made locally) and everyone else's
    /// events.
    pub fn diverged_first(d: &Diverged) -> Document {
        let mut doc = Document::new();
        let base = doc.agent("base");
        doc.insert(base, 0, &d.base).expect("base insert");
        let agent = doc.agent("agent0");
        for p in &d.branches[0].patches {
            let range = p.pos..p.pos + p.del;
            if p.del > 0 {
                doc.delete(agent, range).expect("delete");
            }
            if !p.ins.is_empty() {
                doc.insert(agent, p.pos, &p.ins).expect("insert");
            }
        }
        doc
    }

    pub fn diverged_incoming(d: &Diverged) -> Vec<RemoteEvent> {
        // Build the other agents' events by replaying their branches on replicas of the base.
        let base_doc = {
            let mut doc = Document::new();
            let base = doc.agent("base");
            doc.insert(base, 0, &d.base).expect("base insert");
            doc
        };
        let base_version = base_doc.remote_version(base_doc.version());
        let base_events = base_doc.events_since(&Default::default());
        let mut incoming = Vec::new();
        for (i, b) in d.branches.iter().enumerate().skip(1) {
            let mut doc = Document::new();
            doc.apply_remote(&base_events).expect("base events");
            let agent = doc.agent(&format!("agent{i}"));
            for p in &b.patches {
                if p.del > 0 {
                    doc.delete(agent, p.pos..p.pos + p.del).expect("delete");
                }
                if !p.ins.is_empty() {
                    doc.insert(agent, p.pos, &p.ins).expect("insert");
                }
            }
            incoming.extend(doc.events_since(&base_version));
        }
        incoming
    }

    /// Merge: the replica receives the others' events and updates its text.
    pub fn merge_into(doc: &mut Document, incoming: &[RemoteEvent]) {
        doc.apply_remote(incoming).expect("valid events");
        doc.text();
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opts = Opts {
        full: args.iter().any(|a| a == "--full"),
        quick: args.iter().any(|a| a == "--quick"),
    };
    // `cargo bench` passes `--bench`; any other filter argument selects sections by letter.
    let sections: String = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .collect();
    let want = |s: char| sections.is_empty() || sections.contains(s);
    let mut rows = Vec::new();
    let started = Instant::now();

    if want('a') || want('d') || want('e') {
        sequential_rows(&opts, &want, &mut rows);
    }
    if want('b') || want('d') || want('e') {
        dt_rows(&opts, &want, &mut rows);
    }
    if want('c') {
        diverged_rows(&opts, &mut rows);
    }
    rows.sort_by(|a, b| a.what.cmp(&b.what));
    println!();
    print_table(&rows);
    println!();
    // Other work on the machine skews the figures; say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    println!(
        "(whole run {:.0} s; {}; {} cores, load average {load} at the end)",
        started.elapsed().as_secs_f64(),
        if opts.quick {
            "--quick: one run per cell"
        } else {
            "median of 3-31 runs after a warm-up"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
}

fn sequential_rows(opts: &Opts, want: &dyn Fn(char) -> bool, rows: &mut Vec<Row>) {
    for name in SEQUENTIAL {
        let t = load_sequential(name);
        eprintln!("sequential {name}...");
        // Correctness first, outside the timings.
        let mut ours_doc = ours::replay(&t);
        assert_eq!(ours::text(&mut ours_doc), t.end_content, "ours: {name}");
        assert_eq!(
            dt_replay(&t).branch.content().to_string(),
            t.end_content,
            "dt: {name}"
        );
        assert_eq!(
            cola_replay(&t).text.to_string(),
            t.end_content,
            "cola: {name}"
        );
        assert_eq!(ropey_replay(&t).to_string(), t.end_content, "ropey: {name}");
        assert_eq!(
            jumprope_replay(&t).to_string(),
            t.end_content,
            "jumprope: {name}"
        );

        if want('a') {
            rows.push(Row {
                what: format!("(a) local replay: {name}"),
                ours: fmt_time(time(opts, || ours::replay(&t))),
                dt: fmt_time(time(opts, || dt_replay(&t))),
                cola: fmt_time(time(opts, || cola_replay(&t))),
                ropey: fmt_time(time(opts, || ropey_replay(&t))),
                jumprope: fmt_time(time(opts, || jumprope_replay(&t))),
                egwalker: NA.into(),
            });
        }
        if want('d') {
            let ours_bytes = ours::encode(&ours_doc);
            let dt_doc = dt_replay(&t);
            let dt_bytes = dt_doc.oplog.encode(ENCODE_FULL);
            let cola_doc = cola_replay(&t);
            let cola_bytes = cola_doc.crdt.encode();
            if let Some(bytes) = &ours_bytes {
                assert_eq!(
                    ours::text(&mut ours::decode(bytes)),
                    t.end_content,
                    "ours decode: {name}"
                );
            }
            rows.push(Row {
                what: format!("(d) encoded size: {name}"),
                ours: ours_bytes
                    .as_ref()
                    .map_or(NO_ENCODING.into(), |b| fmt_bytes(b.len())),
                dt: fmt_bytes(dt_bytes.len()),
                cola: format!("{} (no text)", fmt_bytes(cola_bytes.as_bytes().len())),
                ropey: NA.into(),
                jumprope: NA.into(),
                egwalker: NA.into(),
            });
            rows.push(Row {
                what: format!("(d) load (decode + text): {name}"),
                ours: ours_bytes.as_ref().map_or(NO_ENCODING.into(), |b| {
                    fmt_time(time(opts, || ours::decode(b)))
                }),
                dt: fmt_time(time(opts, || {
                    DtOpLog::load_from(&dt_bytes)
                        .expect("dt decodes its own encoding")
                        .checkout_tip()
                })),
                cola: format!(
                    "{} (no text)",
                    fmt_time(time(opts, || cola::Replica::decode(2, &cola_bytes)
                        .expect("cola decode")))
                ),
                ropey: NA.into(),
                jumprope: NA.into(),
                egwalker: NA.into(),
            });
        }
        if want('e') {
            drop(ours_doc);
            rows.push(Row {
                what: format!("(e) retained heap after replay: {name}"),
                ours: fmt_bytes(retained(|| ours::replay(&t)).1),
                dt: fmt_bytes(retained(|| dt_replay(&t)).1),
                cola: fmt_bytes(retained(|| cola_replay(&t)).1),
                ropey: fmt_bytes(retained(|| ropey_replay(&t)).1),
                jumprope: fmt_bytes(retained(|| jumprope_replay(&t)).1),
                egwalker: NA.into(),
            });
        }
    }
}

fn dt_rows(opts: &Opts, want: &dyn Fn(char) -> bool, rows: &mut Vec<Row>) {
    for name in DT_FILES {
        let path: PathBuf = traces_dir().join("dt").join(format!("{name}.dt"));
        eprintln!("dt {name}...");
        let (dt_oplog, hist) = load(&path);
        let slow_in_dt = dt_published_ms(name).is_some() && !opts.full;
        // Our result is checked against dt's text (or, where dt takes minutes, its recorded hash
        // in tests/dt_files.rs; here we only check our two paths agree).
        let ours_log = ours::import_oplog(&hist);
        let ours_text = ours::merge_from_scratch(&ours_log).to_string();
        // dt on C1/C2 takes minutes: with --full it runs once, timed, instead of a median.
        let mut dt_once = None;
        let dt_text = if slow_in_dt {
            None
        } else if dt_published_ms(name).is_some() {
            let start = Instant::now();
            let text = dt_oplog.checkout_tip().content().to_string();
            dt_once = Some(start.elapsed());
            Some(text)
        } else {
            Some(dt_oplog.checkout_tip().content().to_string())
        };
        if let Some(dt_text) = &dt_text {
            assert_eq!(&ours_text, dt_text, "ours vs dt: {name}");
        }
        let published = |ms: Option<f64>| {
            ms.map(|ms| {
                format!(
                    "{} (published, not rerun)",
                    fmt_time(Duration::from_secs_f64(ms / 1e3))
                )
            })
            .unwrap_or_else(|| NA.into())
        };
        if want('b') {
            rows.push(Row {
                what: format!("(b) merge from scratch: {name}.dt"),
                ours: fmt_time(time(opts, || ours::merge_from_scratch(&ours_log))),
                dt: if slow_in_dt {
                    published(dt_published_ms(name))
                } else if let Some(once) = dt_once {
                    format!("{} (one run)", fmt_time(once))
                } else {
                    fmt_time(time(opts, || dt_oplog.checkout_tip()))
                },
                cola: NA.into(),
                ropey: NA.into(),
                jumprope: NA.into(),
                egwalker: egwalker_merge_ms(name)
                    .map(|ms| fmt_time(Duration::from_secs_f64(ms / 1e3)))
                    .unwrap_or_else(|| NA.into()),
            });
        }
        if want('d') || want('e') {
            let (mut doc, ours_heap) = retained(|| ours::import_document(&hist));
            assert_eq!(
                ours::text(&mut doc),
                ours_text,
                "ours Document vs OpLog import: {name}"
            );
            let ours_bytes = ours::encode(&doc);
            drop(doc);
            if let Some(bytes) = &ours_bytes {
                assert_eq!(
                    ours::text(&mut ours::decode(bytes)),
                    ours_text,
                    "ours decode: {name}"
                );
            }
            let dt_bytes = dt_oplog.encode(ENCODE_FULL);
            if want('d') {
                rows.push(Row {
                    what: format!("(d) encoded size: {name}.dt"),
                    ours: ours_bytes
                        .as_ref()
                        .map_or(NO_ENCODING.into(), |b| fmt_bytes(b.len())),
                    dt: fmt_bytes(dt_bytes.len()),
                    cola: NA.into(),
                    ropey: NA.into(),
                    jumprope: NA.into(),
                    egwalker: NA.into(),
                });
                rows.push(Row {
                    what: format!("(d) load (decode + text): {name}.dt"),
                    ours: ours_bytes.as_ref().map_or(NO_ENCODING.into(), |b| {
                        fmt_time(time(opts, || ours::decode(b)))
                    }),
                    dt: if dt_published_ms(name).is_some() {
                        "minutes (a merge, see (b)); not rerun".into()
                    } else {
                        fmt_time(time(opts, || {
                            DtOpLog::load_from(&dt_bytes)
                                .expect("dt decodes its own encoding")
                                .checkout_tip()
                        }))
                    },
                    cola: NA.into(),
                    ropey: NA.into(),
                    jumprope: NA.into(),
                    egwalker: NA.into(),
                });
            }
            if want('e') {
                let dt_heap = if dt_published_ms(name).is_some() {
                    let heap = retained(|| DtOpLog::load_from(&dt_bytes).expect("dt decode")).1;
                    format!("{} + text (history only; merge not rerun)", fmt_bytes(heap))
                } else {
                    fmt_bytes(
                        retained(|| {
                            let oplog = DtOpLog::load_from(&dt_bytes).expect("dt decode");
                            let branch = oplog.checkout_tip();
                            (oplog, branch)
                        })
                        .1,
                    )
                };
                rows.push(Row {
                    what: format!("(e) retained heap, history + text: {name}.dt"),
                    ours: fmt_bytes(ours_heap),
                    dt: dt_heap,
                    cola: NA.into(),
                    ropey: NA.into(),
                    jumprope: NA.into(),
                    egwalker: egwalker_memory_mb(name)
                        .map(|mb| format!("{mb:.2} MB (steady state)"))
                        .unwrap_or_else(|| NA.into()),
                });
            }
        }
    }
}

fn load(path: &Path) -> (DtOpLog, DtHistory) {
    let oplog = load_dt(path).unwrap_or_else(|e| panic!("{e}"));
    let hist = dt_history(&oplog).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (oplog, hist)
}

fn diverged_rows(opts: &Opts, rows: &mut Vec<Row>) {
    for agents in [2, 3] {
        let edits = 12_000;
        eprintln!("diverged {agents} x {edits}...");
        let d = diverged(agents, edits, 42 + agents as u64);
        let dt = dt_diverged(&d);
        let dt_text = dt.checkout_tip().content().to_string();
        let ours_log = ours::diverged_oplog(&d);
        assert_eq!(
            ours::merge_from_scratch(&ours_log).to_string(),
            dt_text,
            "ours vs dt: diverged {agents}"
        );
        let what = format!("{agents} agents x {edits} edits from one version");
        rows.push(Row {
            what: format!("(c) merge from scratch: {what}"),
            ours: fmt_time(time(opts, || ours::merge_from_scratch(&ours_log))),
            dt: fmt_time(time(opts, || dt.checkout_tip())),
            cola: NA.into(),
            ropey: NA.into(),
            jumprope: NA.into(),
            egwalker: NA.into(),
        });

        // Merge into the first agent's replica (it has its own branch; the others arrive).
        let first_tip = {
            let mut tip = dt.local_version();
            tip.clear();
            // The first agent's last event: base + its own edits.
            let base_len = d.base.chars().count();
            let own: usize = d.branches[0]
                .patches
                .iter()
                .map(|p| p.del + p.ins.chars().count())
                .sum();
            tip.push(base_len + own - 1);
            tip
        };
        let dt_first = dt.checkout(&first_tip);
        let ours_incoming = ours::diverged_incoming(&d);
        {
            let mut doc = ours::diverged_first(&d);
            ours::merge_into(&mut doc, &ours_incoming);
            assert_eq!(
                ours::text(&mut doc),
                dt_text,
                "ours replica merge vs dt: diverged {agents}"
            );
        }
        let (cola_first, cola_incoming) = cola_diverged(&d);
        rows.push(Row {
            what: format!("(c) merge into one replica: {what}"),
            ours: fmt_time(time_with_setup(
                opts,
                || ours::diverged_first(&d),
                |doc| ours::merge_into(doc, &ours_incoming),
            )),
            dt: fmt_time(time_with_setup(
                opts,
                || dt_first.clone(),
                |b| b.merge(&dt, dt.local_version_ref()),
            )),
            cola: fmt_time(time_with_setup(
                opts,
                || ColaDoc {
                    crdt: cola_first.crdt.clone(),
                    text: cola_first.text.clone(),
                },
                |doc| cola_merge(doc, &cola_incoming),
            )),
            ropey: NA.into(),
            jumprope: NA.into(),
            egwalker: NA.into(),
        });
    }
}
