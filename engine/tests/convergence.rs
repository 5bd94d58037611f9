//! Property tests: replicas making random edits (multi-byte and astral chars included) and
//! syncing in random orders, with duplicates and partitions, all converge; transforms and the
//! encoding agree with what the replicas hold.

use engine::{Document, RemoteEvent, RemoteVersion};
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "a", "b", "xyz", "é", "日本", "🙂", "🦀🦀", "\n", "\r\n", " ",
];

#[derive(Debug, Clone)]
enum Action {
    /// Replica edits at a fraction of its length.
    Edit {
        r: usize,
        pos: u16,
        del: u8,
        text: Vec<usize>,
    },
    /// Replica `to` receives what `from` has, in a shuffled order (some events twice).
    Sync {
        from: usize,
        to: usize,
        shuffle: u64,
        dup: bool,
    },
    /// Replica `to` receives an encoded chunk of what it lacks from `from`.
    SyncEncoded { from: usize, to: usize },
}

fn action(n: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0..n, any::<u16>(), 0u8..6, prop::collection::vec(0..PIECES.len(), 0..4))
            .prop_map(|(r, pos, del, text)| Action::Edit { r, pos, del, text }),
        2 => (0..n, 0..n, any::<u64>(), any::<bool>())
            .prop_map(|(from, to, shuffle, dup)| Action::Sync { from, to, shuffle, dup }),
        1 => (0..n, 0..n).prop_map(|(from, to)| Action::SyncEncoded { from, to }),
    ]
}

/// Applies an `Action::Edit` at fractions of the replica's current length.
fn edit(d: &mut Document, agent: engine::AgentId, pos: u16, del: u8, text: &[usize]) {
    let len = d.len_chars();
    let pos = (pos as usize * (len + 1)) >> 16;
    let del = (del as usize).min(len - pos);
    let text: String = text.iter().map(|i| PIECES[*i]).collect();
    d.replace(agent, pos..pos + del, &text).unwrap();
}

fn shuffled(mut evs: Vec<RemoteEvent>, seed: u64, dup: bool) -> Vec<RemoteEvent> {
    let mut s = seed | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    if dup && !evs.is_empty() {
        let extra = evs[(next() % evs.len() as u64) as usize].clone();
        evs.push(extra);
    }
    for i in (1..evs.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        evs.swap(i, j);
    }
    evs
}

fn run(n: usize, actions: &[Action]) -> Result<(), TestCaseError> {
    let mut reps: Vec<Document> = (0..n).map(|_| Document::new()).collect();
    let agents: Vec<_> = reps
        .iter_mut()
        .enumerate()
        .map(|(i, d)| d.agent(&format!("replica-{i}")))
        .collect();
    for a in actions {
        match a {
            Action::Edit { r, pos, del, text } => {
                edit(&mut reps[*r], agents[*r], *pos, *del, text);
            }
            Action::Sync {
                from,
                to,
                shuffle,
                dup,
            } => {
                if from == to {
                    continue;
                }
                let have = reps[*to].remote_version(reps[*to].version());
                let evs = shuffled(reps[*from].events_since(&have), *shuffle, *dup);
                // Deliver one by one: parents may arrive after their children.
                for e in evs {
                    reps[*to].apply_remote(&[e]).unwrap();
                }
                prop_assert_eq!(reps[*to].pending_events(), 0);
            }
            Action::SyncEncoded { from, to } => {
                if from == to {
                    continue;
                }
                let have = reps[*to].remote_version(reps[*to].version());
                let bytes = reps[*from].encode_since(&have);
                reps[*to].apply_encoded(&bytes).unwrap();
            }
        }
    }
    // Everyone exchanges everything.
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let evs = reps[i].events_since(&RemoteVersion::new());
                reps[j].apply_remote(&evs).unwrap();
            }
        }
    }
    let text0 = reps[0].text().to_string();
    for d in reps.iter_mut() {
        prop_assert_eq!(d.text().to_string(), text0.clone());
        // The whole log checks out to the same text from scratch.
        let v = d.version().clone();
        prop_assert_eq!(d.checkout(&v).unwrap().to_string(), text0.clone());
    }
    // Encoding round-trips.
    let mut decoded = Document::decode(&reps[0].encode()).unwrap();
    prop_assert_eq!(decoded.text().to_string(), text0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge(n in 3usize..=5, actions in prop::collection::vec(action(5), 1..80)) {
        let actions: Vec<Action> = actions.into_iter().map(|a| match a {
            Action::Edit { r, pos, del, text } => Action::Edit { r: r % n, pos, del, text },
            Action::Sync { from, to, shuffle, dup } => Action::Sync { from: from % n, to: to % n, shuffle, dup },
            Action::SyncEncoded { from, to } => Action::SyncEncoded { from: from % n, to: to % n },
        }).collect();
        run(n, &actions)?;
    }

    /// Two partitions edit for a long time, then heal.
    #[test]
    fn partitions_heal(edits in prop::collection::vec((0usize..4, any::<u16>(), 0u8..4, prop::collection::vec(0..PIECES.len(), 1..3)), 1..120)) {
        let mut actions = Vec::new();
        for (k, (r, pos, del, text)) in edits.into_iter().enumerate() {
            actions.push(Action::Edit { r, pos, del, text });
            if k % 5 == 0 {
                // Sync only inside the partitions {0,1} and {2,3}.
                actions.push(Action::Sync { from: 0, to: 1, shuffle: k as u64, dup: true });
                actions.push(Action::Sync { from: 3, to: 2, shuffle: k as u64 + 1, dup: false });
            }
        }
        run(4, &actions)?;
    }

    /// Transforming from any old version gives the text of the newer one.
    #[test]
    fn transforms_take_old_versions_to_new(actions in prop::collection::vec(action(3), 1..60), pick in any::<u64>()) {
        let mut reps: Vec<Document> = (0..3).map(|_| Document::new()).collect();
        let agents: Vec<_> = reps.iter_mut().enumerate().map(|(i, d)| d.agent(&format!("r{i}"))).collect();
        let mut versions = vec![engine::Frontier::root()];
        for a in &actions {
            match a {
                Action::Edit { r, pos, del, text } => {
                    edit(&mut reps[*r], agents[*r], *pos, *del, text);
                }
                Action::Sync { from, to, .. } | Action::SyncEncoded { from, to } => {
                    if from != to {
                        let evs = reps[*from].events_since(&RemoteVersion::new());
                        reps[*to].apply_remote(&evs).unwrap();
                        versions.push(reps[*to].version().clone());
                    }
                }
            }
        }
        let d = &mut reps[0];
        versions.push(d.version().clone());
        let known: Vec<_> = versions.into_iter().filter(|v| v.as_slice().iter().all(|lv| *lv < d.oplog().len())).collect();
        let from = &known[(pick % known.len() as u64) as usize];
        // LVs are replica-local: only versions of replica 0 are meaningful here, and the root.
        let from = if d.oplog().frontier_contains(d.version().as_slice(), from.as_slice()) { from.clone() } else { engine::Frontier::root() };
        let mut text = d.checkout(&from).unwrap();
        let to = d.version().clone();
        for op in d.transform(&from, &to).unwrap() {
            op.apply(&mut text);
        }
        prop_assert_eq!(text.to_string(), d.text().to_string());
    }
}
