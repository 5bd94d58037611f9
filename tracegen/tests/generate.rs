//! The generated histories are what they claim: valid files in the concurrent format (read back
//! by the format's own parser), with the concurrency of their profile, multi-byte and astral text
//! and replace patches; `endContent` is diamond-types' text; the same seed makes the same file.

use tracegen::format::{agent_name, parse_trace_gz, parse_trace_json, ConcurrentTrace, Trace};
use tracegen::{dt_replay, generate, to_json, to_json_gz, Config, Profile};

fn parsed(trace: &ConcurrentTrace) -> ConcurrentTrace {
    match parse_trace_gz(&to_json_gz(trace)).expect("the generated file parses") {
        Trace::Concurrent(t) => t,
        Trace::Sequential(_) => panic!("not a concurrent trace"),
    }
}

/// Checks the format's rules the parser does not: one root txn, minimal mutually concurrent
/// parents, each agent's txns totally ordered, only the last txn without patches, and the last
/// txn has every txn. Returns the longest run of one agent's txns between its merges.
fn check_rules(t: &ConcurrentTrace) -> usize {
    let n = t.txns.len();
    // ancestors[x]: the txns x has (itself included), as a bitset.
    let words = n.div_ceil(64);
    let mut anc: Vec<Vec<u64>> = Vec::with_capacity(n);
    let mut last_of_agent: Vec<Option<usize>> = vec![None; t.num_agents];
    let mut longest_offline = 0;
    let mut run = vec![0usize; t.num_agents];
    let has = |anc: &Vec<Vec<u64>>, x: usize, y: usize| anc[x][y / 64] >> (y % 64) & 1 == 1;
    for (i, txn) in t.txns.iter().enumerate() {
        assert_eq!(txn.parents.is_empty(), i == 0, "txn {i}: root parents");
        assert!(!txn.patches.is_empty() || i == n - 1, "txn {i}: no patches");
        let mut a = vec![0u64; words];
        for &p in &txn.parents {
            for (w, x) in a.iter_mut().zip(&anc[p]) {
                *w |= x;
            }
            for &q in &txn.parents {
                assert!(
                    q == p || !has(&anc, q, p),
                    "txn {i}: parents not concurrent"
                );
            }
        }
        if let Some(prev) = last_of_agent[txn.agent] {
            assert!(
                a[prev / 64] >> (prev % 64) & 1 == 1,
                "txn {i}: agent {} concurrent with itself",
                txn.agent
            );
        }
        if txn.parents.len() > 1
            || txn
                .parents
                .first()
                .is_some_and(|&p| t.txns[p].agent != txn.agent)
        {
            run[txn.agent] = 0;
        }
        run[txn.agent] += 1;
        longest_offline = longest_offline.max(run[txn.agent]);
        last_of_agent[txn.agent] = Some(i);
        a[i / 64] |= 1 << (i % 64);
        anc.push(a);
    }
    assert!(
        (0..n).all(|x| has(&anc, n - 1, x)),
        "the last txn does not have every txn"
    );
    longest_offline
}

#[test]
fn every_profile_makes_valid_histories_with_diamond_types_end_content() {
    for (profile, txns) in [
        (Profile::Dense, 3000),
        (Profile::LongOffline, 3000),
        (Profile::Wide, 3000),
    ] {
        let g = generate(&profile.config(), txns, 7);
        let t = parsed(&g.trace);
        let name = profile.name();
        assert_eq!(t.txns.len(), txns, "{name}");
        assert_eq!(t.num_agents, profile.config().agents, "{name}");
        assert_eq!(t.end_content, g.trace.end_content, "{name}: endContent");
        let offline = check_rules(&t);
        // The oracle, replayed from the file alone, agrees with the generator's own branches.
        assert_eq!(
            dt_replay(&t, |i| agent_name(i, t.num_agents)),
            t.end_content,
            "{name}: diamond-types replay of the file"
        );
        let s = &g.stats;
        // Long-offline agents merge once per phase of 100-700 txns.
        let merges = if profile == Profile::LongOffline {
            3
        } else {
            txns / 100
        };
        assert!(s.merge_txns >= merges, "{name}: {s:?}");
        assert!(s.replace_patches > txns / 100, "{name}: {s:?}");
        assert!(s.astral_chars > txns / 100, "{name}: {s:?}");
        assert!(s.multibyte_chars > txns / 100, "{name}: {s:?}");
        assert!(t.end_content.chars().any(|c| c.len_utf16() == 2), "{name}");
        match profile {
            Profile::Dense => {
                assert!(s.same_position_inserts > txns / 100, "{name}: {s:?}");
                assert!(offline < 100, "{name}: offline runs of {offline}");
            }
            Profile::LongOffline => {
                assert_eq!(s.same_position_inserts, 0, "{name}");
                assert!(offline >= 100, "{name}: longest offline run {offline}");
            }
            Profile::Wide => {
                let count = |a: usize| t.txns.iter().filter(|x| x.agent == a).count();
                let tail: usize = (10..20).map(count).sum();
                assert!(count(0) > tail / 10 * 3, "{name}: not Zipf-like");
                let acting = (0..20).filter(|&a| count(a) > 0).count();
                assert!(acting >= 12, "{name}: only {acting} agents act");
            }
        }
    }
}

#[test]
fn same_seed_same_file_other_seed_other_file() {
    let cfg = Profile::Dense.config();
    let a = to_json(&generate(&cfg, 500, 1).trace);
    assert_eq!(a, to_json(&generate(&cfg, 500, 1).trace));
    assert_ne!(a, to_json(&generate(&cfg, 500, 2).trace));
    assert!(matches!(
        parse_trace_json(a.as_bytes()),
        Ok(Trace::Concurrent(_))
    ));
}

#[test]
fn one_agent_and_tiny_sizes_are_valid() {
    let cfg = Config {
        agents: 1,
        ..Profile::Dense.config()
    };
    for txns in [0, 1, 2, 3, 50] {
        let t = parsed(&generate(&cfg, txns, 3).trace);
        check_rules(&t);
        assert_eq!(dt_replay(&t, |i| agent_name(i, 1)), t.end_content);
    }
}
