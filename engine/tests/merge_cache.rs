//! The walker state kept between merges (`walker::WalkCache`): participants that keep editing
//! at their own slightly old versions (the history never becoming critical) must get exactly
//! the text a from-scratch merge of the same history gives, whatever the interleaving, with
//! remote batches, failed edits and compaction mixed in.

use engine::{Document, Edit, Frontier};
use proptest::prelude::*;

const PIECES: &[&str] = &["a", "bc", "é", "🙂", "\n", "xyz "];

#[derive(Debug, Clone)]
enum Step {
    /// Participant `who` edits at the version it last had (or, with `fresh`, at the current
    /// one): replace `del` chars at a fraction `pos` of its base text with `text`.
    Edit {
        who: usize,
        fresh: bool,
        pos: u16,
        del: u8,
        text: usize,
    },
    /// An edit out of range (refused: nothing may change, the cache must not go stale).
    Bad { who: usize },
    /// A second replica merges everything it lacks in one batch, then sends its own edit back.
    Remote { pos: u16 },
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..n, prop::bool::weighted(0.1), any::<u16>(), 0u8..4, 0..PIECES.len())
            .prop_map(|(who, fresh, pos, del, text)| Step::Edit { who, fresh, pos, del, text }),
        1 => (0..n).prop_map(|who| Step::Bad { who }),
        1 => any::<u16>().prop_map(|pos| Step::Remote { pos }),
    ]
}

/// `agent` replaces `del` chars at a fraction `pos` of the text at `at` with `PIECES[text]`,
/// at that version; returns the new version.
fn edit_at_fraction(
    d: &mut Document,
    agent: engine::AgentId,
    at: &Frontier,
    (pos, del, text): (u16, u8, usize),
) -> Result<Frontier, engine::EditError> {
    let len = d.checkout(at).unwrap().len_chars();
    let p = (pos as usize * (len + 1)) / 65536;
    let e = (p + del as usize).min(len);
    let edit = Edit {
        range: p..e,
        text: PIECES[text].into(),
    };
    Ok(d.edit_at(agent, at, &[edit])?.version)
}

fn scratch_text(d: &Document) -> String {
    Document::decode(&d.encode()).unwrap().to_rope().to_string()
}

fn run(n: usize, steps: &[Step], compact_at: Option<usize>) {
    let mut d = Document::from_text("start text\n".into());
    let agents: Vec<_> = (0..n).map(|i| d.agent(&format!("p{i}"))).collect();
    let mut at: Vec<Frontier> = vec![d.version().clone(); n];
    let mut other = d.clone();
    let o = other.agent("remote");
    for (i, s) in steps.iter().enumerate() {
        if Some(i) == compact_at {
            let v = d.version().clone();
            d.compact(&v).unwrap();
            at.iter_mut().for_each(|a| *a = v.clone());
        }
        match s {
            Step::Edit {
                who,
                fresh,
                pos,
                del,
                text,
            } => {
                if *fresh {
                    at[*who] = d.version().clone();
                }
                at[*who] = edit_at_fraction(&mut d, agents[*who], &at[*who], (*pos, *del, *text))
                    .unwrap_or_else(|e| {
                        panic!("step {i} {s:?}: {e:?} (compact at {compact_at:?})")
                    });
            }
            Step::Bad { who } => {
                let before = d.to_rope().to_string();
                let v = d.version().clone();
                let len = d.checkout(&at[*who]).unwrap().len_chars();
                assert!(d
                    .edit_at(
                        agents[*who],
                        &at[*who],
                        &[Edit {
                            range: len + 5..len + 6,
                            text: "!".into()
                        }]
                    )
                    .is_err());
                assert_eq!(d.version(), &v);
                assert_eq!(d.to_rope().to_string(), before);
            }
            Step::Remote { pos } => {
                if compact_at.is_some_and(|c| i >= c) {
                    continue; // the other replica predates the horizon
                }
                let have = other.remote_version(other.version());
                other.apply_remote(&d.events_since(&have)).unwrap();
                let len = other.len_chars();
                let p = (*pos as usize * (len + 1)) / 65536;
                other.insert(o, p, "R").unwrap();
                let have = d.remote_version(d.version());
                d.apply_remote(&other.events_since(&have)).unwrap();
            }
        }
        assert_eq!(
            d.to_rope().to_string(),
            scratch_text(&d),
            "after step {i}: {s:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn merges_with_the_kept_walker_state_equal_merges_from_scratch(
        n in 2usize..5,
        steps in prop::collection::vec(step(4), 1..120),
    ) {
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|s| match s {
                Step::Edit { who, fresh, pos, del, text } => Step::Edit { who: who % n, fresh, pos, del, text },
                Step::Bad { who } => Step::Bad { who: who % n },
                r => r,
            })
            .collect();
        run(n, &steps, None);
        let c = steps.len() / 2;
        run(n, &steps, Some(c));
    }
}

/// The pattern that motivated the cache: four participants, each always one edit behind the
/// others, 3,000 edits; the result equals a from-scratch merge.
#[test]
fn a_long_sliding_window_of_concurrency() {
    let steps: Vec<Step> = (0..3000)
        .map(|i| Step::Edit {
            who: i % 4,
            fresh: false,
            pos: ((i * 7919) % 65536) as u16,
            del: (i % 3) as u8,
            text: i % PIECES.len(),
        })
        .collect();
    let mut d = Document::from_text("x".repeat(50).into());
    let agents: Vec<_> = (0..4).map(|i| d.agent(&format!("p{i}"))).collect();
    let mut at = vec![d.version().clone(); 4];
    for s in &steps {
        let Step::Edit {
            who,
            pos,
            del,
            text,
            ..
        } = s
        else {
            unreachable!()
        };
        at[*who] = edit_at_fraction(&mut d, agents[*who], &at[*who], (*pos, *del, *text)).unwrap();
    }
    assert_eq!(d.to_rope().to_string(), scratch_text(&d));
}
