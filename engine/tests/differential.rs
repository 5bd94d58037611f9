//! Differential test against diamond-types 1.0.0 (the eg-walker authors' implementation).
//!
//! A case is a list of steps by 2-4 agents: insert / delete at the agent's own version, or merge
//! another agent's version (or everything) into it. The steps are played in diamond-types (each
//! agent has a dt `Branch`), which fixes every event's parents; the same events (same agent names,
//! same parents, same positions) are then added to our `OpLog`. Our text must be byte-identical to
//! dt's, at the tip and at every agent's version.
//!
//! Steps hold raw numbers that are clamped when played, so every shrunk case is still valid and
//! proptest can shrink a failure to a minimal reproducer (printed as the event list).
//! Seeded: `PROPTEST_RNG_SEED` / `PROPTEST_CASES` override the fixed seed and the case count.

use std::fmt;

use diamond_types::list::{Branch, OpLog as DtOpLog};
use engine::{Frontier, OpLog};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Names sort differently from their index, one is a prefix of another, one is not ASCII.
const AGENT_NAMES: [&str; 4] = ["seph", "alice", "zoë", "al"];

/// Chars of 1, 2, 3 and 4 UTF-8 bytes (the last two are astral: 2 UTF-16 units).
const CHARS: [char; 10] = ['a', 'b', 'c', ' ', '\n', 'é', 'ñ', '中', '😀', '𝄞'];

#[derive(Clone, Debug)]
enum Step {
    Insert {
        agent: usize,
        pos: usize,
        text: String,
    },
    Delete {
        agent: usize,
        pos: usize,
        len: usize,
    },
    /// `agent` merges `from`'s version; `from == agent` merges everything.
    Merge { agent: usize, from: usize },
}

#[derive(Clone)]
struct Case {
    agents: usize,
    steps: Vec<Step>,
}

/// One event run as both engines get it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PlanOp {
    Insert { pos: usize, text: String },
    Delete { start: usize, end: usize },
}

#[derive(Clone, Debug)]
struct PlanEvent {
    agent: usize,
    parents: Vec<usize>,
    op: PlanOp,
}

/// The case played in diamond-types.
struct Played {
    events: Vec<PlanEvent>,
    dt: DtOpLog,
    /// Each agent's final version and text in dt.
    branches: Vec<Branch>,
}

fn play_in_dt(case: &Case) -> Played {
    let mut dt = DtOpLog::new();
    let ids: Vec<_> = AGENT_NAMES[..case.agents]
        .iter()
        .map(|n| dt.get_or_create_agent_id(n))
        .collect();
    let mut branches: Vec<Branch> = (0..case.agents).map(|_| Branch::new()).collect();
    let mut events = Vec::new();
    for step in &case.steps {
        match *step {
            Step::Insert {
                agent,
                pos,
                ref text,
            } => {
                let a = agent % case.agents;
                let b = &mut branches[a];
                let pos = pos % (b.len() + 1);
                let parents = b.local_version().to_vec();
                b.insert(&mut dt, ids[a], pos, text);
                events.push(PlanEvent {
                    agent: a,
                    parents,
                    op: PlanOp::Insert {
                        pos,
                        text: text.clone(),
                    },
                });
            }
            Step::Delete { agent, pos, len } => {
                let a = agent % case.agents;
                let b = &mut branches[a];
                if b.is_empty() {
                    continue;
                }
                let start = pos % b.len();
                let end = start + 1 + len % (b.len() - start).min(8);
                let parents = b.local_version().to_vec();
                b.delete_without_content(&mut dt, ids[a], start..end);
                events.push(PlanEvent {
                    agent: a,
                    parents,
                    op: PlanOp::Delete { start, end },
                });
            }
            Step::Merge { agent, from } => {
                let (a, f) = (agent % case.agents, from % case.agents);
                let target = if a == f {
                    dt.local_version()
                } else {
                    dt.version_union(
                        branches[a].local_version_ref(),
                        branches[f].local_version_ref(),
                    )
                };
                branches[a].merge(&dt, &target);
            }
        }
    }
    Played {
        events,
        dt,
        branches,
    }
}

impl fmt::Debug for Case {
    /// The reproducer: the events both engines get, in order (LVs are one per char, from 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let played = play_in_dt(self);
        writeln!(
            f,
            "agents {:?}, events (lv: agent @ parents op):",
            &AGENT_NAMES[..self.agents]
        )?;
        let mut lv = 0;
        for e in &played.events {
            let len = match &e.op {
                PlanOp::Insert { text, .. } => text.chars().count(),
                PlanOp::Delete { start, end } => end - start,
            };
            writeln!(
                f,
                "  {lv}..{}: {} @ {:?} {:?}",
                lv + len,
                AGENT_NAMES[e.agent],
                e.parents,
                e.op
            )?;
            lv += len;
        }
        for (i, b) in played.branches.iter().enumerate() {
            writeln!(
                f,
                "  {} ends at {:?}",
                AGENT_NAMES[i],
                b.local_version_ref()
            )?;
        }
        write!(
            f,
            "  dt text: {:?}",
            played.dt.checkout_tip().content().to_string()
        )
    }
}

fn step() -> impl Strategy<Value = Step> {
    let text = prop::collection::vec(
        prop::sample::select(CHARS.to_vec()),
        prop::collection::SizeRange::from(1..=6),
    )
    .prop_map(|cs| cs.into_iter().collect::<String>());
    prop_oneof![
        5 => (0..4usize, 0..64usize, text).prop_map(|(agent, pos, text)| Step::Insert { agent, pos, text }),
        3 => (0..4usize, 0..64usize, 0..8usize).prop_map(|(agent, pos, len)| Step::Delete { agent, pos, len }),
        2 => (0..4usize, 0..4usize).prop_map(|(agent, from)| Step::Merge { agent, from }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (2..=4usize, prop::collection::vec(step(), 1..48))
        .prop_map(|(agents, steps)| Case { agents, steps })
}

/// Adds the played events to our OpLog and compares texts with dt's.
fn check(case: &Case) -> Result<(), TestCaseError> {
    let played = play_in_dt(case);
    let mut ours = OpLog::new();
    let ids: Vec<_> = AGENT_NAMES[..case.agents]
        .iter()
        .map(|n| ours.agent(n))
        .collect();
    let mut next_lv = 0usize;
    for (i, e) in played.events.iter().enumerate() {
        let res = match &e.op {
            PlanOp::Insert { pos, text } => {
                next_lv += text.chars().count();
                ours.add_insert_at(ids[e.agent], &e.parents, *pos, text)
            }
            PlanOp::Delete { start, end } => {
                next_lv += end - start;
                ours.add_delete_at(ids[e.agent], &e.parents, *start..*end)
            }
        };
        match res {
            Ok(lvs) => prop_assert_eq!(lvs.end, next_lv, "event {} got other LVs than in dt", i),
            Err(err) => {
                return Err(TestCaseError::fail(format!(
                    "our OpLog refused event {i}: {err}"
                )))
            }
        }
    }
    let want = played.dt.checkout_tip().content().to_string();
    let got = ours
        .checkout_tip()
        .map_err(|e| TestCaseError::fail(format!("checkout_tip failed: {e}")))?
        .to_string();
    prop_assert_eq!(&got, &want, "tip text differs from diamond-types");
    for (i, b) in played.branches.iter().enumerate() {
        let v = Frontier::from_unsorted(b.local_version_ref());
        let got = ours
            .checkout(&v)
            .map_err(|e| TestCaseError::fail(format!("checkout {v:?} failed: {e}")))?
            .to_string();
        let want = b.content().to_string();
        prop_assert_eq!(
            &got,
            &want,
            "text at {}'s version {:?} differs",
            AGENT_NAMES[i],
            v
        );
    }
    Ok(())
}

fn config() -> Config {
    let mut config = Config {
        failure_persistence: None,
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 4000;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0xd15_7a5e);
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn same_text_as_diamond_types(case in case()) {
        check(&case)?;
    }
}

/// The generator does make the histories the test is about (guards against a generator that
/// silently stops producing concurrency).
#[test]
fn generator_makes_concurrent_histories() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let (mut merges, mut concurrent, mut astral) = (0, 0, 0);
    for _ in 0..200 {
        let case = case().new_tree(&mut runner).unwrap().current();
        let played = play_in_dt(&case);
        merges += played.events.iter().filter(|e| e.parents.len() > 1).count();
        let mut lv = 0usize;
        for e in &played.events {
            if e.parents.last().is_some_and(|&p| p + 1 != lv) || (e.parents.is_empty() && lv > 0) {
                concurrent += 1;
            }
            lv += match &e.op {
                PlanOp::Insert { text, .. } => text.chars().count(),
                PlanOp::Delete { start, end } => end - start,
            };
            if let PlanOp::Insert { text, .. } = &e.op {
                astral += text.chars().filter(|c| c.len_utf16() == 2).count();
            }
        }
    }
    assert!(merges > 100, "only {merges} merge events");
    assert!(concurrent > 500, "only {concurrent} events not at the tip");
    assert!(astral > 100, "only {astral} astral chars");
}
