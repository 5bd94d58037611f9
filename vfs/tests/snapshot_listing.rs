//! The persistent snapshot listing is kept up to date incrementally. Property: after any
//! sequence of local edits, creates, renames, deletes and disk changes (real files), the
//! snapshot equals the listing computed from scratch from the workspace, and every snapshot
//! taken earlier still shows exactly what it showed when it was taken.
use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;
use vfs::diff::TextEdit;
use vfs::disk::WatchBatch;
use vfs::{FileState, SnapContent, Workspace, WorkspaceOptions, WorkspaceSnapshot};

const PATHS: &[&str] = &[
    "a.txt",
    "b.txt",
    "d/c.txt",
    "d/e.txt",
    "d/f/g.txt",
    "h.txt",
    "d2/x.txt",
];

#[derive(Clone, Debug)]
enum Op {
    Create(usize, String),
    Edit(usize, String),
    Rename(usize, usize),
    RenameDir(bool),
    Delete(usize),
    DiskWrite(usize, String),
    DiskBinary(usize),
    DiskDelete(usize),
    Flush,
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        (p.clone(), "[a-z\n]{0,6}").prop_map(|(i, t)| Op::Create(i, t)),
        (p.clone(), "[a-z\n]{1,4}").prop_map(|(i, t)| Op::Edit(i, t)),
        (p.clone(), p.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        any::<bool>().prop_map(Op::RenameDir),
        p.clone().prop_map(Op::Delete),
        (p.clone(), "[a-z\n]{0,6}").prop_map(|(i, t)| Op::DiskWrite(i, t)),
        p.clone().prop_map(Op::DiskBinary),
        p.clone().prop_map(Op::DiskDelete),
        Just(Op::Flush),
        Just(Op::Snapshot),
        Just(Op::Snapshot),
    ]
}

type Rendered = Vec<(String, String)>;

fn render_content(c: &SnapContent) -> String {
    match c {
        SnapContent::Dir => "dir".into(),
        SnapContent::Text { text, version } => format!("text {version:?} {text}"),
        SnapContent::NotText { reason, len } => format!("not text {len} {reason}"),
    }
}

fn render(s: &WorkspaceSnapshot) -> Rendered {
    let files = s.files();
    assert_eq!(files.iter().len(), files.len());
    let out: Rendered = files
        .iter()
        .map(|f| (f.path.to_string(), render_content(&f.content)))
        .collect();
    // Sorted, and `get` finds every entry.
    for w in out.windows(2) {
        assert!(w[0].0 < w[1].0, "not sorted: {w:?}");
    }
    for f in files {
        assert_eq!(s.get(&f.path).map(|g| g.id), Some(f.id));
    }
    out
}

/// The listing computed from scratch from the workspace's public state.
fn expected(ws: &mut Workspace) -> Rendered {
    let visible: Vec<_> = ws
        .tree()
        .visible()
        .map(|(f, p)| (f, p.to_string()))
        .collect();
    let mut out: Rendered = visible
        .into_iter()
        .map(|(f, p)| {
            let c = match ws.state(f) {
                Some(FileState::Text(t)) => {
                    let v = t.doc.version().clone();
                    format!("text {v:?} {}", ws.text(f).unwrap())
                }
                Some(FileState::NotText { reason, len }) => format!("not text {len} {reason}"),
                Some(FileState::Dir) | None => "dir".into(),
            };
            (p, c)
        })
        .collect();
    out.sort();
    out
}

fn disk_batch(ws: &mut Workspace, rels: &[&str]) {
    let paths = rels.iter().map(|r| ws.root().join(r)).collect();
    ws.apply_disk_batch(&WatchBatch {
        paths,
        ..WatchBatch::default()
    });
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), "alpha\n").unwrap();
    fs::create_dir_all(dir.path().join("d/f")).unwrap();
    fs::write(dir.path().join("d/c.txt"), "gamma\n").unwrap();
    fs::write(dir.path().join("d/f/g.txt"), "g\n").unwrap();
    let mut ws = Workspace::load(dir.path(), WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let root: PathBuf = ws.root().to_path_buf();
    let mut taken: Vec<(WorkspaceSnapshot, Rendered)> = Vec::new();
    for op in ops {
        match op {
            Op::Create(i, t) => {
                let _ = ws.create_file(PATHS[i], &t);
            }
            Op::Edit(i, t) => {
                if let Some(f) = ws.lookup(PATHS[i]) {
                    let _ = ws.edit(
                        f,
                        "agent",
                        None,
                        &[TextEdit {
                            range: 0..0,
                            text: t,
                        }],
                    );
                }
            }
            Op::Rename(a, b) => {
                let _ = ws.rename(PATHS[a], PATHS[b]);
            }
            Op::RenameDir(back) => {
                let (a, b) = if back { ("d2", "d") } else { ("d", "d2") };
                if ws.lookup(b).is_none() {
                    let _ = ws.rename(a, b);
                }
            }
            Op::Delete(i) => {
                let _ = ws.delete(PATHS[i]);
            }
            Op::DiskWrite(i, t) => {
                let p = root.join(PATHS[i]);
                if fs::create_dir_all(p.parent().unwrap()).is_ok() && fs::write(&p, t).is_ok() {
                    disk_batch(&mut ws, &[PATHS[i]]);
                }
            }
            Op::DiskBinary(i) => {
                let p = root.join(PATHS[i]);
                if p.is_file() && fs::write(&p, b"\0bin").is_ok() {
                    disk_batch(&mut ws, &[PATHS[i]]);
                }
            }
            Op::DiskDelete(i) => {
                if fs::remove_file(root.join(PATHS[i])).is_ok() {
                    disk_batch(&mut ws, &[PATHS[i]]);
                }
            }
            Op::Flush => {
                ws.flush();
            }
            Op::Snapshot => {
                let s = ws.snapshot();
                let r = render(&s);
                taken.push((s, r));
            }
        }
        let s = ws.snapshot();
        assert_eq!(s.version(), ws.version());
        assert_eq!(render(&s), expected(&mut ws));
    }
    // Earlier snapshots are unaffected by everything that happened since.
    for (s, r) in &taken {
        assert_eq!(&render(s), r);
    }
    // A snapshot taken now is usable from another thread.
    let s = ws.snapshot();
    let want = render(&s);
    let got = std::thread::spawn(move || render(&s)).join().unwrap();
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn snapshot_listing_matches_a_full_recomputation(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

#[test]
fn snapshot_of_a_loaded_workspace_shares_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        let p = dir.path().join(format!("m{}/f{i}.rs", i % 7));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, format!("fn f{i}() {{}}\n")).unwrap();
    }
    let mut ws = Workspace::load(dir.path(), WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let a = ws.snapshot();
    assert_eq!(a.files().len(), 207);
    assert_eq!(render(&a), expected(&mut ws));
    // Nothing changed: the same listing again.
    let b = ws.snapshot();
    assert_eq!(render(&a), render(&b));
    let f = ws.lookup("m3/f3.rs").unwrap();
    ws.edit(
        f,
        "agent",
        None,
        &[TextEdit {
            range: 0..0,
            text: "// x\n".into(),
        }],
    )
    .unwrap();
    let c = ws.snapshot();
    assert_eq!(
        c.text("m3/f3.rs").unwrap().to_string(),
        "// x\nfn f3() {}\n"
    );
    assert_eq!(a.text("m3/f3.rs").unwrap().to_string(), "fn f3() {}\n");
    assert_eq!(render(&c), expected(&mut ws));
}

#[test]
fn snapshots_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<WorkspaceSnapshot>();
    send_sync::<vfs::SnapFile>();
}
