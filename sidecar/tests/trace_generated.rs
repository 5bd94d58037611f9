//! `dist-space trace` on generated concurrent histories (`tracegen`): every profile, replayed
//! through the real binary (one replica per agent), ends at diamond-types 1.0.0's text, including
//! same-position concurrent inserts, whose order is the agent names' order.

use std::path::Path;
use std::process::Command;

use tracegen::format::agent_name;
use tracegen::{dt_replay, generate, to_json_gz, Config, Generated, Profile};

/// Writes the trace, runs `dist-space trace` on it, and checks it reports endContent.
fn replays_to_dt_end_content(dir: &Path, label: &str, g: &Generated) {
    let path = dir.join(format!("{label}.json.gz"));
    std::fs::write(&path, to_json_gz(&g.trace)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dist-space"))
        .arg("trace")
        .arg(&path)
        .output()
        .expect("run dist-space");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("result:  OK, equals endContent"),
        "{label}: exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let chars = g.trace.end_content.chars().count();
    assert!(
        stdout.contains(&format!("chars:   {chars}\n")),
        "{label}: {stdout}"
    );
}

#[test]
fn every_profile_replays_to_diamond_types_end_content() {
    let dir = tempfile::tempdir().unwrap();
    for (profile, txns, seed) in [
        (Profile::Dense, 2500, 11),
        (Profile::LongOffline, 3000, 12),
        (Profile::Wide, 2500, 13),
    ] {
        let g = generate(&profile.config(), txns, seed);
        if profile == Profile::Dense {
            assert!(g.stats.same_position_inserts > 50, "{:?}", g.stats);
        }
        replays_to_dt_end_content(dir.path(), profile.name(), &g);
    }
}

/// With 12 or more agents, names that do not sort as the indexes (`agent10` < `agent2`) order
/// same-position inserts differently; the replay must match diamond-types with `agent-00` ..
/// `agent-13`.
#[test]
fn many_agents_tie_break_as_diamond_types() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        agents: 14,
        conflict_prob: 0.08,
        ..Profile::Wide.config()
    };
    let g = generate(&cfg, 1500, 21);
    let t = &g.trace;
    assert_eq!(dt_replay(t, |i| agent_name(i, t.num_agents)), t.end_content);
    // The history is one where the names' order matters: unpadded names give another text.
    assert_ne!(
        dt_replay(t, |i| format!("agent{i}")),
        t.end_content,
        "the generated history does not tell the two name orders apart"
    );
    let acting = (10..14)
        .filter(|&a| t.txns.iter().any(|x| x.agent == a))
        .count();
    assert!(acting > 0, "no agent with a two-digit index acts");
    replays_to_dt_end_content(dir.path(), "fourteen-agents", &g);
}
