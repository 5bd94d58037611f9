//! Live replay of generated concurrent histories: one replica per agent, as `dist-space trace`
//! replays a concurrent trace (before each txn its agent's replica merges the txns it lacks, then
//! makes the txn's edits locally). Ours, diamond-types 1.0.0 (one `Branch` per agent over one
//! `OpLog`, `Branch::merge`) and cola 0.5 (one `Replica` per agent, + a jumprope buffer for the
//! text), side by side, on `tracegen`'s profiles (dense, long-offline, wide).
//!
//! `cargo bench -p dist-space-engine --bench live_replay` (sizes 5000, 10000 and 30000 txns);
//! `-- --sizes 2000,5000` picks others, `-- --profiles dense,wide` some profiles. The walk table
//! (an emulation that itself walks the history per merge) covers sizes up to 10,000 txns;
//! `-- --walks-all` adds the larger ones.
//!
//! Per merge (a replica receiving txns) the times of the first and the last tenth of the history
//! show whether a merge's cost stays flat as the history grows. A second table measures, outside
//! the engine (from the history alone), what the engine's merge walks over: how many merges come
//! after local edits (which leave the engine's kept walk state unusable), how many events each
//! merge brings, and how far back the common-ancestor walk (conflict mode: until one event every
//! path passes through) goes — emulated on the txn graph, counting events (chars) it visits.
//!
//! One run per cell (these take seconds to minutes); every result is checked against the
//! generated endContent (diamond-types') before it is reported.

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use engine::{Document, RemoteEvent, RemoteVersion};
use jumprope::JumpRope;
use tracegen::format::{self, agent_name, ConcurrentTrace, Trace};
use tracegen::{dt_replay_timed, generate, to_json_gz, Profile};

/// For each txn, the txns its agent's replica lacks of the parents' history, oldest first.
fn plan(t: &ConcurrentTrace) -> Vec<Vec<usize>> {
    let n = t.txns.len();
    let mut known = vec![vec![false; n]; t.num_agents];
    let mut out = Vec::with_capacity(n);
    let mut stack = Vec::new();
    for (ti, txn) in t.txns.iter().enumerate() {
        let k = &mut known[txn.agent];
        let mut missing = Vec::new();
        stack.extend(txn.parents.iter().copied());
        while let Some(x) = stack.pop() {
            if !k[x] {
                k[x] = true;
                missing.push(x);
                stack.extend(t.txns[x].parents.iter().copied());
            }
        }
        missing.sort_unstable();
        k[ti] = true;
        out.push(missing);
    }
    out
}

/// A replay's result: the last txn's replica's text and the time of each merge (txn, time).
struct Replayed {
    text: String,
    total: Duration,
    merges: Vec<(usize, Duration)>,
}

fn union_into(acc: &mut RemoteVersion, other: &RemoteVersion) {
    for (agent, &seq) in other {
        let e = acc.entry(agent.clone()).or_insert(seq);
        *e = (*e).max(seq);
    }
}

/// Ours: the replay of `dist-space trace` (sidecar/src/trace/mod.rs), with the merges timed.
fn ours(t: &ConcurrentTrace, plan: &[Vec<usize>]) -> Replayed {
    let start = Instant::now();
    let mut docs: Vec<(Document, engine::AgentId)> = (0..t.num_agents)
        .map(|i| {
            let mut doc = Document::new();
            let agent = doc.agent(&agent_name(i, t.num_agents));
            (doc, agent)
        })
        .collect();
    let mut txn_events: Vec<Vec<RemoteEvent>> = Vec::with_capacity(t.txns.len());
    let mut txn_version: Vec<RemoteVersion> = Vec::with_capacity(t.txns.len());
    let mut merges = Vec::new();
    for (ti, txn) in t.txns.iter().enumerate() {
        let (doc, agent) = &mut docs[txn.agent];
        let incoming: Vec<RemoteEvent> = plan[ti]
            .iter()
            .flat_map(|&x| txn_events[x].iter().cloned())
            .collect();
        if !incoming.is_empty() {
            let m = Instant::now();
            doc.apply_remote(&incoming).expect("valid events");
            merges.push((ti, m.elapsed()));
        }
        let mut parents_version = RemoteVersion::new();
        for &p in &txn.parents {
            union_into(&mut parents_version, &txn_version[p]);
        }
        let expected = doc.frontier_of(&parents_version).expect("known version");
        assert_eq!(doc.version(), &expected, "txn {ti}: not at its parents");
        let before = doc.remote_version(doc.version());
        for p in &txn.patches {
            let range = p.pos..p.pos + p.del;
            match (p.del > 0, p.ins.is_empty()) {
                (true, false) => doc.replace(*agent, range, &p.ins).map(|_| ()),
                (true, true) => doc.delete(*agent, range).map(|_| ()),
                (false, false) => doc.insert(*agent, p.pos, &p.ins).map(|_| ()),
                (false, true) => Ok(()),
            }
            .expect("valid patch");
        }
        txn_events.push(doc.events_since(&before));
        txn_version.push(doc.remote_version(doc.version()));
    }
    let last = t.txns.last().map_or(0, |x| x.agent);
    let text = docs[last].0.text().to_string();
    Replayed {
        text,
        total: start.elapsed(),
        merges,
    }
}

fn dt(t: &ConcurrentTrace) -> Replayed {
    let start = Instant::now();
    let mut merges = Vec::new();
    let (text, _) = dt_replay_timed(t, |i| agent_name(i, t.num_agents), &mut |ti, d| {
        merges.push((ti, d))
    });
    Replayed {
        text,
        total: start.elapsed(),
        merges,
    }
}

enum ColaEdit {
    Ins(cola::Insertion, String),
    Del(cola::Deletion),
}

/// cola's replay and the number of patches whose position had to be clamped.
fn cola(t: &ConcurrentTrace, plan: &[Vec<usize>]) -> (Replayed, usize) {
    let start = Instant::now();
    let mut clamped = 0usize;
    let base = cola::Replica::new(1, 0);
    let mut replicas: Vec<(cola::Replica, JumpRope)> = (0..t.num_agents)
        .map(|i| (base.fork(i as u64 + 2), JumpRope::new()))
        .collect();
    let mut txn_edits: Vec<Vec<ColaEdit>> = Vec::with_capacity(t.txns.len());
    let mut merges = Vec::new();
    for (ti, txn) in t.txns.iter().enumerate() {
        let (crdt, text) = &mut replicas[txn.agent];
        if !plan[ti].is_empty() {
            let m = Instant::now();
            for &x in &plan[ti] {
                for e in &txn_edits[x] {
                    match e {
                        ColaEdit::Ins(ins, s) => {
                            if let Some(at) = crdt.integrate_insertion(ins) {
                                text.insert(at, s);
                            }
                        }
                        ColaEdit::Del(del) => {
                            for r in crdt.integrate_deletion(del).into_iter().rev() {
                                text.remove(r);
                            }
                        }
                    }
                }
            }
            merges.push((ti, m.elapsed()));
        }
        let mut edits = Vec::with_capacity(txn.patches.len());
        for p in &txn.patches {
            // cola orders same-position concurrent inserts its own way: after such a conflict
            // its text can differ from diamond-types' (then a later delete can remove another
            // char, and lengths differ too); positions past its end are clamped and counted.
            let len = crdt.len();
            let (pos, del) = (p.pos.min(len), p.del.min(len - p.pos.min(len)));
            if (pos, del) != (p.pos, p.del) {
                clamped += 1;
            }
            if del > 0 {
                edits.push(ColaEdit::Del(crdt.deleted(pos..pos + del)));
                text.remove(pos..pos + del);
            }
            if !p.ins.is_empty() {
                let n = p.ins.chars().count();
                edits.push(ColaEdit::Ins(crdt.inserted(pos, n), p.ins.clone()));
                text.insert(pos, &p.ins);
            }
        }
        txn_edits.push(edits);
    }
    let last = t.txns.last().map_or(0, |x| x.agent);
    let r = Replayed {
        text: replicas[last].1.to_string(),
        total: start.elapsed(),
        merges,
    };
    (r, clamped)
}

// ---------------------------------------------------------------------------------------------
// What a merge walks over, from the history alone.

fn txn_events(t: &ConcurrentTrace, x: usize) -> usize {
    t.txns[x]
        .patches
        .iter()
        .map(|p| p.del + p.ins.chars().count())
        .sum()
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Old,
    New,
    Shared,
}

/// Events (chars) only in the merge's new txns, and those the conflict-mode walk visits on the
/// replica's side and in shared history before all paths meet in one txn (None: at the root).
fn conflict_walk(t: &ConcurrentTrace, from: &[usize], to_new: &[usize]) -> (usize, usize, bool) {
    let mut heap: BinaryHeap<(usize, Side)> = BinaryHeap::new();
    let mut unshared = 0usize;
    for &v in from {
        heap.push((v, Side::Old));
        unshared += 1;
    }
    for &v in to_new {
        heap.push((v, Side::New));
        unshared += 1;
    }
    let (mut new, mut walked) = (0, 0);
    let mut reached_root = false;
    while let Some((x, mut side)) = heap.pop() {
        if side != Side::Shared {
            unshared -= 1;
        }
        while let Some(&(y, s2)) = heap.peek() {
            if y != x {
                break;
            }
            heap.pop();
            if s2 != Side::Shared {
                unshared -= 1;
            }
            if s2 != side {
                side = Side::Shared;
            }
        }
        if side == Side::Shared && unshared == 0 && heap.is_empty() && !reached_root {
            return (new, walked, false);
        }
        match side {
            Side::New => new += txn_events(t, x),
            _ => walked += txn_events(t, x),
        }
        reached_root |= t.txns[x].parents.is_empty();
        for &p in &t.txns[x].parents {
            heap.push((p, side));
            if side != Side::Shared {
                unshared += 1;
            }
        }
    }
    (new, walked, true)
}

struct WalkStats {
    merges: usize,
    after_local_edits: usize,
    new_events: Vec<(usize, usize)>,
    walked: Vec<(usize, usize)>,
    to_root: usize,
}

fn walk_stats(t: &ConcurrentTrace, plan: &[Vec<usize>]) -> WalkStats {
    // Each replica's version (txn frontier) and whether it made edits since its last merge.
    let mut version: Vec<Vec<usize>> = vec![Vec::new(); t.num_agents];
    let mut edited = vec![false; t.num_agents];
    let mut merged_before = vec![false; t.num_agents];
    let mut s = WalkStats {
        merges: 0,
        after_local_edits: 0,
        new_events: Vec::new(),
        walked: Vec::new(),
        to_root: 0,
    };
    for (ti, txn) in t.txns.iter().enumerate() {
        let a = txn.agent;
        if !plan[ti].is_empty() {
            s.merges += 1;
            if merged_before[a] && edited[a] {
                s.after_local_edits += 1;
            }
            // The new side: the parents not already in the replica's version.
            let new_tips: Vec<usize> = txn
                .parents
                .iter()
                .copied()
                .filter(|p| !version[a].contains(p))
                .collect();
            let (new, walked, root) = conflict_walk(t, &version[a], &new_tips);
            s.new_events.push((ti, new));
            s.walked.push((ti, walked));
            s.to_root += root as usize;
            merged_before[a] = true;
            edited[a] = false;
        }
        if !txn.patches.is_empty() {
            edited[a] = true;
        }
        version[a] = vec![ti];
    }
    s
}

// ---------------------------------------------------------------------------------------------

fn fmt_time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn fmt_us(d: f64) -> String {
    if d >= 1000.0 {
        format!("{:.2} ms", d / 1000.0)
    } else {
        format!("{d:.1} µs")
    }
}

/// Mean of the values whose txn is in the first and in the last tenth of `n` txns.
fn tenths(values: &[(usize, f64)], n: usize) -> (f64, f64) {
    let mean = |keep: &dyn Fn(usize) -> bool| {
        let v: Vec<f64> = values
            .iter()
            .filter(|(t, _)| keep(*t))
            .map(|x| x.1)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    (mean(&|t| t < n / 10), mean(&|t| t >= n - n / 10))
}

fn merge_tenths(r: &Replayed, n: usize) -> String {
    let us: Vec<(usize, f64)> = r
        .merges
        .iter()
        .map(|(t, d)| (*t, d.as_secs_f64() * 1e6))
        .collect();
    let (first, last) = tenths(&us, n);
    format!("{} → {}", fmt_us(first), fmt_us(last))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = value("--sizes")
        .map(|s| {
            s.split(',')
                .map(|x| x.parse().expect("--sizes: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![5000, 10_000, 30_000]);
    let profiles: Vec<Profile> = match value("--profiles") {
        Some(list) => list
            .split(',')
            .map(|p| {
                *Profile::ALL
                    .iter()
                    .find(|x| x.name() == p)
                    .unwrap_or_else(|| panic!("unknown profile {p}"))
            })
            .collect(),
        None => Profile::ALL.to_vec(),
    };
    let walks_all = args.iter().any(|a| a == "--walks-all");
    let started = Instant::now();
    let mut times = Vec::new();
    let mut walks = Vec::new();
    for &profile in &profiles {
        for &n in &sizes {
            let label = format!("{} {n}", profile.name());
            eprintln!("{label}: generating...");
            let gen_start = Instant::now();
            let g = generate(&profile.config(), n, 1);
            let gen_time = gen_start.elapsed();
            // Through the file format, as `dist-space trace` reads it.
            let t = match format::parse_trace_gz(&to_json_gz(&g.trace)).expect("parses") {
                Trace::Concurrent(t) => t,
                Trace::Sequential(_) => unreachable!(),
            };
            let plan = plan(&t);
            let agents = t.num_agents;
            eprintln!("{label}: ours...");
            let o = ours(&t, &plan);
            assert_eq!(o.text, t.end_content, "ours: {label}");
            eprintln!("{label}: diamond-types...");
            let d = dt(&t);
            assert_eq!(d.text, t.end_content, "dt: {label}");
            eprintln!("{label}: cola...");
            let (c, clamped) = cola(&t, &plan);
            // cola orders same-position concurrent inserts its own way.
            let cola_same = match (c.text == t.end_content, clamped) {
                (true, _) => String::new(),
                (false, 0) => " (other text: own tie-break)".into(),
                (false, k) => format!(" (other text: own tie-break; {k} positions clamped)"),
            };
            eprintln!(
                "{label}: ours {}, dt {}, cola {}",
                fmt_time(o.total),
                fmt_time(d.total),
                fmt_time(c.total)
            );
            times.push(format!(
                "| {} | {n} | {agents} | {} | {} | {}{cola_same} | {} | {} | {} | {} |",
                profile.name(),
                fmt_time(o.total),
                fmt_time(d.total),
                fmt_time(c.total),
                merge_tenths(&o, n),
                merge_tenths(&d, n),
                merge_tenths(&c, n),
                fmt_time(gen_time),
            ));
            if n > 10_000 && !walks_all {
                continue;
            }
            let w = walk_stats(&t, &plan);
            let f = |v: &[(usize, usize)]| {
                let v: Vec<(usize, f64)> = v.iter().map(|(t, x)| (*t, *x as f64)).collect();
                tenths(&v, n)
            };
            let (new_a, new_b) = f(&w.new_events);
            let (walk_a, walk_b) = f(&w.walked);
            let max_walk = w.walked.iter().map(|x| x.1).max().unwrap_or(0);
            // Our merge time per event walked or applied: if it grows, so does the cost of each
            // tracker operation (not only the length of the walk).
            let per_event = |keep: &dyn Fn(usize) -> bool| {
                let time: f64 = o
                    .merges
                    .iter()
                    .filter(|m| keep(m.0))
                    .map(|m| m.1.as_secs_f64() * 1e9)
                    .sum();
                let events: usize = w
                    .walked
                    .iter()
                    .zip(&w.new_events)
                    .filter(|(x, _)| keep(x.0))
                    .map(|(x, y)| x.1 + y.1)
                    .sum();
                time / events.max(1) as f64
            };
            let (ns_a, ns_b) = (per_event(&|t| t < n / 10), per_event(&|t| t >= n - n / 10));
            walks.push(format!(
                "| {} | {n} | {} | {} ({:.0} %) | {new_a:.1} → {new_b:.1} | {walk_a:.0} → {walk_b:.0} | {max_walk} | {} | {ns_a:.0} → {ns_b:.0} ns |",
                profile.name(),
                w.merges,
                w.after_local_edits,
                100.0 * w.after_local_edits as f64 / w.merges.max(1) as f64,
                w.to_root,
            ));
        }
    }
    println!();
    println!("| profile | txns | agents | ours | diamond-types 1.0.0 | cola 0.5 (+jumprope) | ours per merge, first → last tenth | dt per merge | cola per merge | generating (dt oracle) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &times {
        println!("{r}");
    }
    println!();
    println!("| profile | txns | merges | merges after the replica's own edits (kept walk state unusable) | new events per merge, first → last tenth | events the common-ancestor walk visits on the replica's side and shared history, first → last tenth | most in one merge | walks to the root | our merge time per event walked or new, first → last tenth |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &walks {
        println!("{r}");
    }
    println!();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    println!(
        "(whole run {:.0} s; one run per cell; {} cores, load average {load} at the end)",
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
}
