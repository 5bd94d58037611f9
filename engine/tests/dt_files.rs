//! The eg-walker paper's datasets (`shared/traces/dt/*.dt`), decoded with diamond-types 1.0.0.

#[path = "common/dt_import.rs"]
mod dt_import;

use std::path::PathBuf;

use diamond_types::list::OpLog as DtOpLog;
use dt_import::{dt_history, load_dt, DtHistory, DtOp};
use sha2::{Digest, Sha256};

fn dt_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces/dt")).join(format!("{name}.dt"))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Rebuilds a dt oplog from the walked runs.
fn rebuild_in_dt(h: &DtHistory) -> DtOpLog {
    let mut oplog = DtOpLog::new();
    let ids: Vec<_> = h.agents.iter().map(|a| oplog.get_or_create_agent_id(a)).collect();
    for run in &h.runs {
        let last = match &run.op {
            DtOp::Insert { pos, text } => oplog.add_insert_at(ids[run.agent], &run.parents, *pos, text),
            DtOp::Delete { range, .. } => oplog.add_delete_at(ids[run.agent], &run.parents, range.clone()),
        };
        assert_eq!(last, run.start + run.op.len() - 1, "dt numbered the run differently");
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
        assert_eq!(h.runs.iter().map(|r| r.op.len()).sum::<usize>(), original.len());
        let rebuilt = rebuild_in_dt(&h);
        assert_eq!(rebuilt.len(), original.len(), "{name}");
        assert_eq!(rebuilt.remote_version(), original.remote_version(), "{name}");
        assert_eq!(
            rebuilt.checkout_tip().content().to_string(),
            original.checkout_tip().content().to_string(),
            "{name}"
        );
    }
}

/// Computes the C1/C2 fixtures with diamond-types 1.0.0 (takes minutes). Run with
/// `cargo test -p dist-space-engine --release --test dt_files -- --ignored --nocapture compute_dt_fixtures`.
#[test]
#[ignore = "takes ~6 minutes: diamond-types 1.0.0 is slow on C1/C2"]
fn compute_dt_fixtures() {
    for name in ["C1", "C2"] {
        let start = std::time::Instant::now();
        let oplog = load_dt(&dt_path(name)).unwrap();
        let text = oplog.checkout_tip().content().to_string();
        println!(
            "{name}: chars {} sha256 {} ({:?})",
            text.chars().count(),
            sha256_hex(&text),
            start.elapsed()
        );
    }
}
