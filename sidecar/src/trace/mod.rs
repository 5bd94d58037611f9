//! `dist-space trace FILE.json.gz`: replays an editing trace through the engine.
//!
//! * Sequential traces: every patch is a local edit on one [`Document`].
//! * Concurrent traces: every agent is its own replica (its own [`Document`]). Before a txn is
//!   applied, its agent's replica receives (via `events_since` / `apply_remote`) the events of the
//!   txns named by `parents` that it lacks, then its version must be exactly the parents' version;
//!   the txn's patches are local edits there. Agent `i` is named [`format::agent_name`]
//!   (`agent-00`, `agent-01`, ...: names sort as the indexes, so concurrent inserts at one
//!   position are ordered as in diamond-types replaying the trace with the same names). At the end every replica receives everything and all
//!   must hold the same text.
//!
//! Exit codes: 0 = final text equals `endContent`, 1 = it differs, 2 = the file is unusable.

pub mod format;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use engine::{Document, RemoteEvent, RemoteVersion};
use sha2::{Digest, Sha256};

use format::{check_patch_range, ConcurrentTrace, Patch, SequentialTrace, Trace, TraceError};

/// Arguments of `dist-space trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Editing trace in the editing-traces format (sequential or concurrent), gzipped JSON.
    pub file: PathBuf,
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// The file breaks the format (exit 2).
    Trace(TraceError),
    /// The engine failed on a valid file (exit 1, like a wrong result).
    Engine(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Trace(e) => e.fmt(f),
            ReplayError::Engine(msg) => write!(f, "engine failure: {msg}"),
        }
    }
}

impl From<TraceError> for ReplayError {
    fn from(e: TraceError) -> Self {
        ReplayError::Trace(e)
    }
}

/// Result of a replay.
pub struct Replayed {
    pub text: String,
    pub replay_time: Duration,
}

/// Runs the subcommand; prints a report on stdout, errors on stderr.
pub fn run(args: &TraceArgs) -> ExitCode {
    let shown = args.file.display();
    let load_start = Instant::now();
    let trace = match format::load_trace(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {shown}: {e}");
            return ExitCode::from(2);
        }
    };
    let load_time = load_start.elapsed();
    let replayed = match replay(&trace) {
        Ok(r) => r,
        Err(e @ ReplayError::Trace(_)) => {
            eprintln!("error: {shown}: {e}");
            return ExitCode::from(2);
        }
        Err(e @ ReplayError::Engine(_)) => {
            eprintln!("error: {shown}: {e}");
            return ExitCode::from(1);
        }
    };
    let chars = replayed.text.chars().count();
    println!(
        "trace:   {shown} ({}, {} txns, {} patches)",
        trace.kind(),
        trace.num_txns(),
        trace.num_patches()
    );
    println!("chars:   {chars}");
    println!("sha256:  {}", sha256_hex(&replayed.text));
    println!(
        "time:    {:.3} ms replay ({:.3} ms to load the file)",
        ms(replayed.replay_time),
        ms(load_time)
    );
    let expected = trace.end_content();
    if replayed.text == expected {
        println!("result:  OK, equals endContent");
        ExitCode::SUCCESS
    } else {
        println!(
            "result:  MISMATCH, endContent has {} chars, sha256 {}{}",
            expected.chars().count(),
            sha256_hex(expected),
            first_difference(&replayed.text, expected)
        );
        ExitCode::from(1)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn first_difference(got: &str, want: &str) -> String {
    let at = got
        .chars()
        .zip(want.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let context = |s: &str| s.chars().skip(at).take(40).collect::<String>();
    format!(
        "; first difference at char {at}: got {:?}, expected {:?}",
        context(got),
        context(want)
    )
}

/// Replays a loaded trace; errors describe the txn/patch the engine refused.
pub fn replay(trace: &Trace) -> Result<Replayed, ReplayError> {
    match trace {
        Trace::Sequential(t) => replay_sequential(t),
        Trace::Concurrent(t) => replay_concurrent(t),
    }
}

fn engine_error(txn: usize, patch: usize, e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Engine(format!(
        "txn {txn} patch {patch}: the engine refused it: {e}"
    ))
}

/// Applies one patch as local edits of `agent`.
fn apply_patch(
    doc: &mut Document,
    agent: engine::AgentId,
    txn: usize,
    idx: usize,
    p: &Patch,
) -> Result<(), ReplayError> {
    check_patch_range(txn, idx, p, doc.len_chars())?;
    let range = p.pos..p.pos + p.del;
    let res = match (p.del > 0, p.ins.is_empty()) {
        (true, false) => doc.replace(agent, range, &p.ins),
        (true, true) => doc.delete(agent, range),
        (false, false) => doc.insert(agent, p.pos, &p.ins),
        (false, true) => return Ok(()),
    };
    res.map(|_| ()).map_err(|e| engine_error(txn, idx, e))
}

fn replay_sequential(t: &SequentialTrace) -> Result<Replayed, ReplayError> {
    let start = Instant::now();
    let mut doc = Document::new();
    let agent = doc.agent("trace");
    if !t.start_content.is_empty() {
        doc.insert(agent, 0, &t.start_content)
            .map_err(|e| ReplayError::Engine(format!("startContent: {e}")))?;
    }
    for (ti, txn) in t.txns.iter().enumerate() {
        for (pi, p) in txn.iter().enumerate() {
            apply_patch(&mut doc, agent, ti, pi, p)?;
        }
    }
    let text = doc.text().to_string();
    Ok(Replayed {
        text,
        replay_time: start.elapsed(),
    })
}

/// Pointwise max of remote versions.
fn union_into(acc: &mut RemoteVersion, other: &RemoteVersion) {
    for (agent, &seq) in other {
        let e = acc.entry(agent.clone()).or_insert(seq);
        *e = (*e).max(seq);
    }
}

struct Replica {
    doc: Document,
    agent: engine::AgentId,
    /// `known[txn]`: this replica holds the txn's events.
    known: Vec<bool>,
}

fn replay_concurrent(t: &ConcurrentTrace) -> Result<Replayed, ReplayError> {
    let start = Instant::now();
    let n = t.txns.len();
    let mut replicas: Vec<Replica> = (0..t.num_agents)
        .map(|i| {
            let mut doc = Document::new();
            let agent = doc.agent(&format::agent_name(i, t.num_agents));
            Replica {
                doc,
                agent,
                known: vec![false; n],
            }
        })
        .collect();
    // Events and remote version (version after the txn) of every txn replayed so far.
    let mut txn_events: Vec<Vec<RemoteEvent>> = Vec::with_capacity(n);
    let mut txn_version: Vec<RemoteVersion> = Vec::with_capacity(n);
    let mut stack = Vec::new();
    let mut missing = Vec::new();

    for (ti, txn) in t.txns.iter().enumerate() {
        let r = &mut replicas[txn.agent];
        // The txns in the parents' history this replica lacks, oldest first.
        stack.extend(txn.parents.iter().copied());
        while let Some(x) = stack.pop() {
            if !r.known[x] {
                r.known[x] = true;
                missing.push(x);
                stack.extend(t.txns[x].parents.iter().copied());
            }
        }
        missing.sort_unstable();
        let incoming: Vec<RemoteEvent> = missing
            .drain(..)
            .flat_map(|x| txn_events[x].iter().cloned())
            .collect();
        if !incoming.is_empty() {
            r.doc.apply_remote(&incoming).map_err(|e| {
                ReplayError::Engine(format!("txn {ti}: merging its parents failed: {e}"))
            })?;
        }
        let mut parents_version = RemoteVersion::new();
        for &p in &txn.parents {
            union_into(&mut parents_version, &txn_version[p]);
        }
        let expected = r
            .doc
            .frontier_of(&parents_version)
            .map_err(|e| ReplayError::Engine(format!("txn {ti}: parents' version unknown: {e}")))?;
        if r.doc.version() != &expected {
            return Err(ReplayError::Trace(TraceError::Invalid(format!(
                "txn {ti}: agent {} has changes its parents do not include \
                 (an agent's txns must be totally ordered)",
                txn.agent
            ))));
        }
        let before = r.doc.remote_version(r.doc.version());
        for (pi, p) in txn.patches.iter().enumerate() {
            apply_patch(&mut r.doc, r.agent, ti, pi, p)?;
        }
        r.known[ti] = true;
        txn_events.push(r.doc.events_since(&before));
        txn_version.push(r.doc.remote_version(r.doc.version()));
    }

    // Everyone receives everything; all replicas must agree.
    let mut text: Option<String> = None;
    for (i, r) in replicas.iter_mut().enumerate() {
        let incoming: Vec<RemoteEvent> = (0..n)
            .filter(|&x| !r.known[x])
            .flat_map(|x| txn_events[x].iter().cloned())
            .collect();
        if !incoming.is_empty() {
            r.doc
                .apply_remote(&incoming)
                .map_err(|e| ReplayError::Engine(format!("final sync of agent {i} failed: {e}")))?;
        }
        let this = r.doc.text().to_string();
        match &text {
            None => text = Some(this),
            Some(first) if *first != this => {
                return Err(ReplayError::Engine(format!(
                    "replicas diverged: agent 0 and agent {i} hold different texts"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(Replayed {
        text: text.unwrap_or_default(),
        replay_time: start.elapsed(),
    })
}
