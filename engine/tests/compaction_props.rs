//! Property tests for compaction: random histories across replicas; one replica is compacted
//! (then again, later) while everyone keeps editing and syncing. The compacted replica answers
//! exactly like an uncompacted mirror for every version that includes its horizon, refuses
//! everything older with `BeforeHorizon` (never a panic, never a change), and all replicas
//! converge.

use engine::{
    Document, Edit, EditError, Frontier, RemoteError, RemoteEvent, RemoteVersion, VersionError,
};
use proptest::prelude::*;

const PIECES: &[&str] = &["a", "xyz", "é", "日本", "🙂", "\n", " "];
const N: usize = 3;

#[derive(Debug, Clone)]
enum Action {
    Edit {
        r: usize,
        pos: u16,
        del: u8,
        text: Vec<usize>,
    },
    /// `to` receives what `from` has, shuffled, one event at a time.
    Sync {
        from: usize,
        to: usize,
        shuffle: u64,
    },
    /// Replica 0 edits at one of its recorded versions, as a fresh agent.
    EditAt { pick: u64, pos: u16, del: u8 },
    /// Replica 0 compacts, keeping about `keep` events.
    Compact { keep: u16 },
    /// Every replica receives everything.
    SyncAll,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => (0..N, any::<u16>(), 0u8..5, prop::collection::vec(0..PIECES.len(), 0..3))
            .prop_map(|(r, pos, del, text)| Action::Edit { r, pos, del, text }),
        3 => (0..N, 0..N, any::<u64>())
            .prop_map(|(from, to, shuffle)| Action::Sync { from, to, shuffle }),
        1 => (any::<u64>(), any::<u16>(), 0u8..4)
            .prop_map(|(pick, pos, del)| Action::EditAt { pick, pos, del }),
        1 => any::<u16>().prop_map(|keep| Action::Compact { keep }),
        1 => Just(Action::SyncAll),
    ]
}

fn frac(x: u16, len: usize) -> usize {
    (x as usize * (len + 1)) >> 16
}

fn shuffled(mut evs: Vec<RemoteEvent>, seed: u64) -> Vec<RemoteEvent> {
    let mut s = seed | 1;
    for i in (1..evs.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        evs.swap(i, (s % (i as u64 + 1)) as usize);
    }
    evs
}

/// The version every replica has (per agent, the lowest seq all of them have).
fn meet(reps: &[Document]) -> RemoteVersion {
    let vs: Vec<RemoteVersion> = reps.iter().map(|d| d.remote_version(d.version())).collect();
    let mut out = RemoteVersion::new();
    for (agent, seq) in &vs[0] {
        let m = vs.iter().map(|v| v.get(agent).copied()).min().flatten();
        if let Some(m) = m {
            out.insert(agent.clone(), m.min(*seq));
        }
    }
    out
}

/// The newest horizon at or before `want` (a version of replica 0) that every replica has
/// and that is critical in every replica's graph (so no replica holds events concurrent with
/// compacted history): what automatic retention must pick.
fn safe_horizon(reps: &[Document], want: &Frontier) -> Frontier {
    let m = reps[0].frontier_of(&meet(reps)).unwrap();
    let want = if reps[0]
        .oplog()
        .frontier_contains(m.as_slice(), want.as_slice())
    {
        want.clone()
    } else {
        m
    };
    let mut h = reps[0].horizon_candidate(&want);
    'again: loop {
        let hv = reps[0].remote_version(&h);
        for p in &reps[1..] {
            let hp = p.frontier_of(&hv).unwrap();
            let cp = p.horizon_candidate(&hp);
            if cp != hp {
                // (A critical version of p older than replica 0's horizon: stay there.)
                let Ok(lower) = reps[0].frontier_of(&p.remote_version(&cp)) else {
                    return reps[0].horizon().clone();
                };
                h = reps[0].horizon_candidate(&lower);
                continue 'again;
            }
        }
        return h;
    }
}

/// Replica 0 (compacted) against its uncompacted mirror `u` (same events, same LVs).
fn check_against_mirror(
    c: &Document,
    u: &Document,
    versions: &[Frontier],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.version(), u.version());
    prop_assert_eq!(c.to_rope().to_string(), u.to_rope().to_string());
    let top = c.version().clone();
    let h = c.horizon().clone();
    for v in versions {
        let rv = u.remote_version(v);
        if u.oplog().frontier_contains(v.as_slice(), h.as_slice()) {
            prop_assert!(c.includes_horizon(v));
            prop_assert_eq!(c.checkout(v).unwrap(), u.checkout(v).unwrap());
            prop_assert_eq!(c.transform(v, &top).unwrap(), u.transform(v, &top).unwrap());
            prop_assert_eq!(c.transform(&top, v).unwrap(), u.transform(&top, v).unwrap());
            prop_assert_eq!(c.remote_version(v), rv.clone());
            prop_assert_eq!(c.frontier_of(&rv).unwrap(), u.frontier_of(&rv).unwrap());
            prop_assert_eq!(c.frontier_ids(v), u.frontier_ids(v));
            // (Runs may be split differently: count the events.)
            let count = |evs: Vec<RemoteEvent>| evs.iter().map(|e| e.len()).sum::<usize>();
            prop_assert_eq!(
                count(c.try_events_since(&rv).unwrap()),
                count(u.events_since(&rv))
            );
        } else {
            let before = |e: VersionError| matches!(e, VersionError::BeforeHorizon { .. });
            // (prop_assert! formats its condition: keep braces out of it.)
            prop_assert!(!c.includes_horizon(v));
            prop_assert!(before(c.checkout(v).unwrap_err()));
            prop_assert!(before(c.transform(v, &top).unwrap_err()));
            prop_assert!(before(c.frontier_of(&rv).unwrap_err()));
            prop_assert!(before(c.frontier_from_ids(&u.frontier_ids(v)).unwrap_err()));
            prop_assert!(before(c.try_events_since(&rv).unwrap_err()));
        }
    }
    // The encoding round-trips the compacted document.
    let mut back = Document::decode(&c.encode()).unwrap();
    prop_assert_eq!(back.text().to_string(), c.to_rope().to_string());
    prop_assert_eq!(back.version(), c.version());
    prop_assert_eq!(back.horizon(), c.horizon());
    prop_assert_eq!(back.horizon_version(), c.horizon_version());
    Ok(())
}

/// Brings the mirror up to date with replica 0.
fn mirror(c: &Document, u: &mut Document) -> Result<(), TestCaseError> {
    let have = u.remote_version(u.version());
    u.apply_remote(&c.try_events_since(&have).unwrap()).unwrap();
    prop_assert_eq!(u.version(), c.version(), "the mirror has the same LVs");
    Ok(())
}

/// Every replica receives everything (the compacted one serves all: they have its horizon).
fn sync_all(reps: &mut [Document]) {
    for i in 0..N {
        for j in 0..N {
            if i != j {
                let have = reps[j].remote_version(reps[j].version());
                let evs = reps[i].try_events_since(&have).unwrap();
                reps[j].apply_remote(&evs).unwrap();
            }
        }
    }
}

fn run(first: &[Action], second: &[Action], want: u64) -> Result<(), TestCaseError> {
    let mut reps: Vec<Document> = (0..N).map(|_| Document::new()).collect();
    for (i, d) in reps.iter_mut().enumerate() {
        d.agent(&format!("replica-{i}"));
    }
    let mut versions = vec![Frontier::root()];
    let mut late = 0;
    let mut compacted = false;
    let mut u = Document::new();
    for (phase, actions) in [first, second].into_iter().enumerate() {
        if phase == 1 {
            // Compact replica 0 at a safe horizon; an unsafe one is tried on a copy.
            // Horizon wanted: the newest version, a recorded one, or "keep the last N events";
            // mostly after a full exchange (retention only compacts what everyone has).
            if want % 4 != 3 {
                sync_all(&mut reps);
                versions.push(reps[0].version().clone());
            }
            u = reps[0].clone();
            let want = match want % 4 {
                0 => reps[0].version().clone(),
                2 => reps[0].horizon_keeping_last((want >> 8) as usize % 32),
                _ => versions[((want >> 8) % versions.len() as u64) as usize].clone(),
            };
            let h = safe_horizon(&reps, &want);
            let unsafe_h = reps[0].horizon_candidate(&want);
            let mut c2 = reps[0].compacted(&unsafe_h).unwrap();
            for p in &reps[1..] {
                let text = c2.to_rope();
                let v = c2.version().clone();
                let have = c2.remote_version(&v);
                match c2.apply_remote(&p.events_since(&have)) {
                    Ok(_) => {}
                    Err(RemoteError::BeforeHorizon { .. }) => {
                        prop_assert_eq!(c2.to_rope(), text);
                        prop_assert_eq!(c2.version(), &v);
                    }
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            reps[0].compact(&h).unwrap();
            compacted = true;
            check_against_mirror(&reps[0], &u, &versions)?;
        }
        for a in actions {
            match a {
                Action::Edit { r, pos, del, text } => {
                    let d = &mut reps[*r];
                    let agent = d.agent(&format!("replica-{r}"));
                    let len = d.len_chars();
                    let pos = frac(*pos, len);
                    let del = (*del as usize).min(len - pos);
                    let text: String = text.iter().map(|i| PIECES[*i]).collect();
                    d.replace(agent, pos..pos + del, &text).unwrap();
                }
                Action::Sync { from, to, shuffle } => {
                    if from == to {
                        continue;
                    }
                    let have = reps[*to].remote_version(reps[*to].version());
                    // Every replica has the (safe) horizon, so the compacted one serves all.
                    let evs = reps[*from].try_events_since(&have).unwrap();
                    for e in shuffled(evs, *shuffle) {
                        reps[*to].apply_remote(&[e]).unwrap();
                    }
                    prop_assert_eq!(reps[*to].pending_events(), 0);
                }
                Action::EditAt { pick, pos, del } => {
                    let base = versions[(*pick % versions.len() as u64) as usize].clone();
                    late += 1;
                    let d = &mut reps[0];
                    let agent = d.agent(&format!("late-{late}"));
                    if !compacted || d.includes_horizon(&base) {
                        let len = d.checkout(&base).unwrap().len_chars();
                        let pos = frac(*pos, len);
                        let edit = Edit {
                            range: pos..pos + (*del as usize).min(len - pos),
                            text: "<late>".into(),
                        };
                        let mut uu = compacted.then(|| u.clone());
                        d.edit_at(agent, &base, std::slice::from_ref(&edit))
                            .unwrap();
                        if let Some(uu) = uu.as_mut() {
                            // The same edit on the uncompacted mirror lands the same way.
                            let ua = uu.agent(&format!("late-{late}"));
                            uu.edit_at(ua, &base, &[edit]).unwrap();
                            prop_assert_eq!(uu.to_rope(), d.to_rope());
                        }
                    } else {
                        let text = d.to_rope();
                        let e = d.edit_at(agent, &base, &[]).unwrap_err();
                        let is_before = matches!(e, EditError::BeforeHorizon { .. });
                        prop_assert!(is_before, "{}", e);
                        prop_assert_eq!(d.to_rope(), text);
                    }
                }
                Action::SyncAll => sync_all(&mut reps),
                Action::Compact { keep } => {
                    if !compacted {
                        continue;
                    }
                    if keep & 1 == 0 {
                        sync_all(&mut reps);
                    }
                    // The mirror is a participant too: it must have the horizon.
                    mirror(&reps[0], &mut u)?;
                    let want = reps[0].horizon_keeping_last((*keep >> 1) as usize % 64);
                    let h = safe_horizon(&reps, &want);
                    reps[0].compact(&h).unwrap();
                }
            }
            versions.push(reps[0].version().clone());
            if compacted {
                mirror(&reps[0], &mut u)?;
            }
        }
    }
    check_against_mirror(&reps[0], &u, &versions)?;
    sync_all(&mut reps);
    mirror(&reps[0], &mut u)?;
    let text = u.to_rope().to_string();
    for d in &reps {
        prop_assert_eq!(d.to_rope().to_string(), text.clone());
        prop_assert_eq!(d.checkout(d.version()).unwrap().to_string(), text.clone());
    }
    // Compacted history is gone: asking for it fails cleanly.
    if reps[0].is_compacted() {
        prop_assert!(reps[0].try_events_since(&RemoteVersion::new()).is_err());
        prop_assert!(reps[0].checkout(&Frontier::root()).is_err());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn compacted_replica_converges_with_uncompacted_ones(
        first in prop::collection::vec(action(), 1..40),
        second in prop::collection::vec(action(), 1..40),
        want in any::<u64>(),
    ) {
        run(&first, &second, want)?;
    }
}
