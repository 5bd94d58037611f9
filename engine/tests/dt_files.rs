//! The eg-walker paper's datasets (`shared/traces/dt/*.dt`), decoded with diamond-types 1.0.0.

#[path = "common/dt_import.rs"]
mod dt_import;

use std::path::PathBuf;

use diamond_types::list::OpLog as DtOpLog;
use dt_import::{dt_history, load_dt, DtHistory, DtOp};
use sha2::{Digest, Sha256};

fn dt_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/traces/dt"
    ))
    .join(format!("{name}.dt"))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rebuilds a dt oplog from the walked runs.
fn rebuild_in_dt(h: &DtHistory) -> DtOpLog {
    let mut oplog = DtOpLog::new();
    let ids: Vec<_> = h
        .agents
        .iter()
        .map(|a| oplog.get_or_create_agent_id(a))
        .collect();
    for run in &h.runs {
        let last = match &run.op {
            DtOp::Insert { pos, text } => {
                oplog.add_insert_at(ids[run.agent], &run.parents, *pos, text)
            }
            DtOp::Delete { range, .. } => {
                oplog.add_delete_at(ids[run.agent], &run.parents, range.clone())
            }
        };
        assert_eq!(
            last,
            run.start + run.op.len() - 1,
            "dt numbered the run differently"
        );
    }
    oplog
}

/// The walk over dt's run-length lists is checked against dt itself: the runs, added back into a
/// fresh dt oplog with the same agents and parents, give the same ids and the same text.
#[test]
fn dt_walk_rebuilds_the_same_history_in_dt() {
    for name in ["friendsforever", "clownschool", "S1", "A1"] {
        let original = load_dt(&dt_path(name)).unwrap();
        let h = dt_history(&original).unwrap();
        assert_eq!(
            h.runs.iter().map(|r| r.op.len()).sum::<usize>(),
            original.len()
        );
        let rebuilt = rebuild_in_dt(&h);
        assert_eq!(rebuilt.len(), original.len(), "{name}");
        assert_eq!(
            rebuilt.remote_version(),
            original.remote_version(),
            "{name}"
        );
        assert_eq!(
            rebuilt.checkout_tip().content().to_string(),
            original.checkout_tip().content().to_string(),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Our engine against dt.

/// C1/C2 final text, computed once with diamond-types 1.0.0 (`cargo run --release -p dist-space-engine
/// --example dt_fixtures`, ~2 and ~4 minutes): (chars, SHA-256 of the UTF-8 text).
const DT_FIXTURES: [(&str, usize, &str); 2] = [
    (
        "C1",
        534_050,
        "0740f4cf919bb5c878a06b1da9f2292661a224c89e96e79e62a372357696416f",
    ),
    (
        "C2",
        528_700,
        "f0e63a1dc9bedbeb98682f7f66dc1371d7fdf5c15c739192e5fa53ccdb3f8196",
    ),
];

/// The dt history added to our OpLog with the same agent names, parents and ops.
fn import_oplog(h: &DtHistory) -> engine::OpLog {
    let mut log = engine::OpLog::new();
    let ids: Vec<_> = h.agents.iter().map(|a| log.agent(a)).collect();
    for (i, run) in h.runs.iter().enumerate() {
        let last = match &run.op {
            DtOp::Insert { pos, text } => {
                log.add_insert_at(ids[run.agent], &run.parents, *pos, text)
            }
            DtOp::Delete { range, .. } => {
                log.add_delete_at(ids[run.agent], &run.parents, range.clone())
            }
        }
        .unwrap_or_else(|e| panic!("run {i} ({run:?}) refused: {e}"));
        assert_eq!(
            last,
            run.start..run.start + run.op.len(),
            "run {i}: our LVs differ from dt's times"
        );
    }
    log
}

/// The dt history as remote events (explicit ids), for `Document::apply_remote`.
fn remote_events(h: &DtHistory) -> Vec<engine::RemoteEvent> {
    let id_of = |t: usize| {
        let r = &h.runs[h.runs.partition_point(|r| r.start <= t) - 1];
        engine::RemoteId {
            agent: h.agents[r.agent].clone(),
            seq: (r.seq + t - r.start) as u64,
        }
    };
    h.runs
        .iter()
        .map(|run| engine::RemoteEvent {
            agent: h.agents[run.agent].clone(),
            seq: run.seq as u64,
            parents: run.parents.iter().map(|&p| id_of(p)).collect(),
            op: match &run.op {
                DtOp::Insert { pos, text } => engine::RemoteOp::Insert {
                    pos: *pos,
                    text: text.clone(),
                },
                DtOp::Delete { range, backwards } => engine::RemoteOp::Delete {
                    pos: range.start,
                    len: range.len(),
                    backwards: *backwards,
                },
            },
        })
        .collect()
}

/// Our two ways in (OpLog with explicit parents; Document receiving the events as remote
/// events) must give the same text; returns it.
fn merge_ours(name: &str, h: &DtHistory) -> String {
    let t = std::time::Instant::now();
    let log = import_oplog(h);
    assert_eq!(log.len(), h.len, "{name}: event count");
    let from_oplog = log.checkout_tip().expect("checkout_tip").to_string();
    eprintln!("{name}: OpLog import + checkout_tip {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let mut doc = engine::Document::new();
    match doc.apply_remote(&remote_events(h)) {
        Ok(_) => {
            let from_doc = doc.text().to_string();
            assert!(
                from_doc == from_oplog,
                "{name}: Document (remote events) and OpLog disagree"
            );
        }
        // Our wire model needs every agent's events causally chained (an agent is one replica);
        // A1 (git history) has authors committing on concurrent branches. The rejection must be
        // exactly that, and the OpLog path above still merges it.
        Err(engine::RemoteError::NotAfterOwnPrevious { .. }) if name == "A1" => {}
        Err(e) => panic!("{name}: apply_remote: {e}"),
    }
    eprintln!("{name}: Document::apply_remote {:?}", t.elapsed());
    from_oplog
}

#[test]
fn dt_files_merge_to_the_same_text_as_diamond_types() {
    for name in ["S1", "S2", "S3", "A1", "friendsforever", "clownschool"] {
        let dt = load_dt(&dt_path(name)).unwrap();
        let h = dt_history(&dt).unwrap();
        let ours = merge_ours(name, &h);
        let want = dt.checkout_tip().content().to_string();
        assert!(
            ours == want,
            "{name}: our text ({} chars) differs from dt's ({} chars)",
            ours.chars().count(),
            want.chars().count()
        );
    }
}

#[test]
fn c1_c2_merge_to_diamond_types_recorded_text() {
    for (name, chars, sha) in DT_FIXTURES {
        let dt = load_dt(&dt_path(name)).unwrap();
        let h = dt_history(&dt).unwrap();
        let ours = merge_ours(name, &h);
        assert_eq!(
            (ours.chars().count(), sha256_hex(&ours).as_str()),
            (chars, sha),
            "{name}"
        );
    }
}
