//! Random interleavings of tree events on several replicas converge to the same tree.
use std::sync::Arc;

use proptest::prelude::*;
use vfs::tree::*;

#[derive(Clone, Debug)]
enum Step {
    Create {
        r: usize,
        parent: usize,
        name: usize,
        dir: bool,
    },
    Move {
        r: usize,
        node: usize,
        parent: usize,
        name: usize,
    },
    Delete {
        r: usize,
        node: usize,
    },
    Sync {
        r: usize,
        seed: u64,
        count: usize,
    },
}

const NAMES: [&str; 3] = ["a", "b", "c"];
const REPLICAS: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..REPLICAS, any::<usize>(), 0..3usize, any::<bool>())
            .prop_map(|(r, parent, name, dir)| Step::Create { r, parent, name, dir }),
        2 => (0..REPLICAS, any::<usize>(), any::<usize>(), 0..3usize)
            .prop_map(|(r, node, parent, name)| Step::Move { r, node, parent, name }),
        1 => (0..REPLICAS, any::<usize>()).prop_map(|(r, node)| Step::Delete { r, node }),
        2 => (0..REPLICAS, any::<u64>(), 0..20usize).prop_map(|(r, seed, count)| Step::Sync { r, seed, count }),
    ]
}

struct Replica {
    tree: FileTree,
    author: TreeAuthor,
    agent: Arc<str>,
}

fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
}

fn receive(rep: &mut Replica, ev: &TreeEvent) {
    rep.author.clock.observe(ev.stamp.hlc);
    rep.author.observe_node(&ev.node);
    rep.tree.apply(ev);
}

fn visible_dirs(t: &FileTree) -> Vec<String> {
    let mut v = vec![String::new()];
    v.extend(
        t.visible()
            .filter(|(f, _)| t.kind(*f) == Some(NodeKind::Dir))
            .map(|(_, p)| p.to_string()),
    );
    v
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn run(steps: &[Step], final_seeds: &[u64]) -> Result<(), TestCaseError> {
    let mut reps: Vec<Replica> = (0..REPLICAS)
        .map(|i| Replica {
            tree: FileTree::new(),
            author: TreeAuthor::new(),
            agent: Arc::from(format!("r{i}")),
        })
        .collect();
    let mut log: Vec<TreeEvent> = Vec::new();
    for s in steps {
        match s {
            Step::Create {
                r,
                parent,
                name,
                dir,
            } => {
                let rep = &mut reps[*r];
                let dirs = visible_dirs(&rep.tree);
                let path = join(&dirs[parent % dirs.len()], NAMES[*name]);
                let kind = if *dir { NodeKind::Dir } else { NodeKind::File };
                if let Ok((_, ev)) =
                    rep.tree
                        .local_create(&mut rep.author, &rep.agent.clone(), &path, kind)
                {
                    log.push(ev);
                }
            }
            Step::Move {
                r,
                node,
                parent,
                name,
            } => {
                let rep = &mut reps[*r];
                let nodes: Vec<String> = rep.tree.visible().map(|(_, p)| p.to_string()).collect();
                if nodes.is_empty() {
                    continue;
                }
                let from = nodes[node % nodes.len()].clone();
                let dirs = visible_dirs(&rep.tree);
                let to = join(&dirs[parent % dirs.len()], NAMES[*name]);
                if let Ok(ev) = rep
                    .tree
                    .local_move(&mut rep.author, &rep.agent.clone(), &from, &to)
                {
                    log.push(ev);
                }
            }
            Step::Delete { r, node } => {
                let rep = &mut reps[*r];
                let nodes: Vec<String> = rep.tree.visible().map(|(_, p)| p.to_string()).collect();
                if nodes.is_empty() {
                    continue;
                }
                let path = nodes[node % nodes.len()].clone();
                if let Ok(evs) =
                    rep.tree
                        .local_delete(&mut rep.author, &rep.agent.clone(), &path, |_| {
                            SeenVersion::new()
                        })
                {
                    rep.tree.refresh();
                    log.extend(evs);
                }
            }
            Step::Sync { r, seed, count } => {
                let mut evs = log.clone();
                shuffle(&mut evs, *seed);
                let rep = &mut reps[*r];
                for ev in evs.iter().take(*count) {
                    receive(rep, ev);
                }
                rep.tree.refresh();
            }
        }
    }
    // Deliver everything to everyone, in different orders, with duplicates.
    for (i, rep) in reps.iter_mut().enumerate() {
        let mut evs = log.clone();
        evs.extend(log.iter().take(3).cloned());
        shuffle(&mut evs, final_seeds[i]);
        for ev in &evs {
            receive(rep, ev);
        }
        rep.tree.refresh();
    }
    // A fresh replica applying the log in order agrees too.
    let mut fresh = FileTree::new();
    for ev in &log {
        fresh.apply(ev);
    }
    fresh.refresh();
    let want = fresh.dump();
    for rep in &reps {
        prop_assert_eq!(&rep.tree.dump(), &want);
        // Invariants: every visible node's parent directory is visible; paths are unique.
        let paths: std::collections::BTreeSet<_> = want.iter().map(|(p, _, _)| p.clone()).collect();
        prop_assert_eq!(paths.len(), want.len());
        for (p, _, _) in &want {
            if let Some(i) = p.rfind('/') {
                let parent = &p[..i];
                prop_assert!(
                    want.iter()
                        .any(|(q, k, _)| q == parent && *k == NodeKind::Dir),
                    "orphan {}",
                    p
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn replicas_converge(steps in prop::collection::vec(step(), 1..60), seeds in prop::array::uniform3(any::<u64>())) {
        run(&steps, &seeds)?;
    }
}

#[test]
fn concurrent_moves_forming_a_cycle_resolve() {
    let agent_a: Arc<str> = Arc::from("a");
    let agent_b: Arc<str> = Arc::from("b");
    let mut a = FileTree::new();
    let mut au = TreeAuthor::new();
    let (_, e1) = a
        .local_create(&mut au, &agent_a, "x", NodeKind::Dir)
        .unwrap();
    let (_, e2) = a
        .local_create(&mut au, &agent_a, "y", NodeKind::Dir)
        .unwrap();
    let mut b = FileTree::new();
    let mut bu = TreeAuthor::new();
    for e in [&e1, &e2] {
        bu.clock.observe(e.stamp.hlc);
        b.apply(e);
    }
    b.refresh();
    let m1 = a.local_move(&mut au, &agent_a, "x", "y/x").unwrap();
    let m2 = b.local_move(&mut bu, &agent_b, "y", "x/y").unwrap();
    a.apply(&m2);
    b.apply(&m1);
    a.refresh();
    b.refresh();
    assert_eq!(a.dump(), b.dump());
    assert_eq!(a.dump().len(), 2, "both dirs stay visible: {:?}", a.dump());
}

#[test]
fn rename_keeps_identity_and_delete_with_unseen_edit_resurrects() {
    let agent: Arc<str> = Arc::from("a");
    let mut t = FileTree::new();
    let mut au = TreeAuthor::new();
    let (f, _) = t
        .local_create(&mut au, &agent, "old.rs", NodeKind::File)
        .unwrap();
    t.local_move(&mut au, &agent, "old.rs", "new.rs").unwrap();
    assert_eq!(t.lookup("new.rs"), Some(f));
    assert_eq!(t.lookup("old.rs"), None);
    let mut seen = SeenVersion::new();
    seen.insert("ed".into(), 3);
    t.local_delete(&mut au, &agent, "new.rs", |_| seen.clone())
        .unwrap();
    // The document has ed:5 > 3: the delete did not see it, the file stays.
    t.refresh_with(|_, s| s.get("ed").is_none_or(|x| *x < 5));
    assert_eq!(t.lookup("new.rs"), Some(f));
}
