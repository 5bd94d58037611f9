//! Disk sync edge cases on real directories: a rescan after lost watcher events, a file that
//! grows past the size limit while watched, a watcher started before the load.
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use vfs::diff::TextEdit;
use vfs::disk::{Debounce, DiskWatcher, NotifyWatcher, WatchBatch};
use vfs::load::NotTextReason;
use vfs::{FileState, Workspace, WorkspaceOptions};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn text(ws: &mut Workspace, path: &str) -> String {
    let f = ws
        .lookup(path)
        .unwrap_or_else(|| panic!("{path} not in workspace"));
    ws.text(f).unwrap().to_string()
}

fn insert(ws: &mut Workspace, path: &str, at: usize, s: &str) {
    let f = ws.lookup(path).unwrap();
    ws.edit(
        f,
        "agent",
        None,
        &[TextEdit {
            range: at..at,
            text: s.into(),
        }],
    )
    .unwrap();
}

fn notify_watcher(root: &Path) -> NotifyWatcher {
    NotifyWatcher::new(
        root,
        Debounce {
            quiet: Duration::from_millis(50),
            max_wait: Duration::from_millis(500),
        },
    )
    .unwrap()
}

/// A watcher whose event queue overflowed: it only knows that events were lost (what notify
/// reports as `need_rescan()` after an inotify queue overflow).
struct Overflowed(bool);

impl DiskWatcher for Overflowed {
    fn next_batch(&mut self, _timeout: Duration) -> Option<WatchBatch> {
        std::mem::replace(&mut self.0, false).then(|| WatchBatch {
            rescan: true,
            ..WatchBatch::default()
        })
    }
}

#[test]
fn rescan_after_lost_events_reconciles_everything() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, ".gitignore", "*.log\n");
    write(r, "a.txt", "one\ntwo\nthree\n");
    write(r, "b.txt", "bee\n");
    write(r, "c.txt", "sea\n");
    write(r, "d/keep.txt", "keep\n");
    write(r, "bin.dat", "was text\n");
    let mut ws = Workspace::load(r, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let a = ws.lookup("a.txt").unwrap();
    // Unsaved agent edit.
    insert(&mut ws, "a.txt", 4, "AGENT ");
    // Changes on disk whose events were lost.
    write(r, "a.txt", "one\ntwo\nthree EXTERNAL\n");
    write(r, "b.txt", "bee changed\n");
    fs::remove_file(r.join("c.txt")).unwrap();
    write(r, "new/deep/n.txt", "new\n");
    write(r, "new/x.log", "ignored\n");
    fs::write(r.join("bin.dat"), b"\0\x01binary now").unwrap();
    let v = ws.version();
    let rep = ws.poll_disk(&mut Overflowed(true), Duration::ZERO).unwrap();

    assert_eq!(text(&mut ws, "a.txt"), "one\nAGENT two\nthree EXTERNAL\n");
    assert_eq!(ws.lookup("a.txt"), Some(a), "identity kept");
    assert_eq!(text(&mut ws, "b.txt"), "bee changed\n");
    assert!(ws.lookup("c.txt").is_none());
    assert_eq!(text(&mut ws, "new/deep/n.txt"), "new\n");
    assert!(ws.lookup("new/x.log").is_none(), "ignore rules apply");
    assert_eq!(text(&mut ws, "d/keep.txt"), "keep\n");
    let bin = ws.lookup("bin.dat").unwrap();
    assert_eq!(
        ws.text_file(bin).unwrap().disk_not_text(),
        Some(&NotTextReason::Binary),
        "document kept, disk content flagged"
    );
    let mut modified = rep.modified.clone();
    modified.sort();
    assert_eq!(modified, ["a.txt", "b.txt"]);
    assert_eq!(rep.deleted, ["c.txt"]);
    assert!(rep.created.iter().any(|p| p == "new/deep/n.txt"), "{rep:?}");
    assert_eq!(rep.not_text, ["bin.dat"]);
    assert!(ws.version() > v);
    // The snapshot shows the reconciled state.
    let snap = ws.snapshot();
    assert_eq!(
        snap.text("a.txt").unwrap().to_string(),
        "one\nAGENT two\nthree EXTERNAL\n"
    );
    assert!(snap.get("c.txt").is_none());
    // A second rescan with nothing changed is a no-op.
    let v = ws.version();
    let rep = ws.poll_disk(&mut Overflowed(true), Duration::ZERO).unwrap();
    assert!(
        rep.modified.is_empty() && rep.created.is_empty() && rep.deleted.is_empty(),
        "{rep:?}"
    );
    assert_eq!(ws.version(), v);
    // The merged text is written back (bin.dat's write-back stays suspended).
    let fl = ws.flush();
    assert_eq!(fl.written, ["a.txt"]);
    assert_eq!(
        fs::read_to_string(r.join("a.txt")).unwrap(),
        "one\nAGENT two\nthree EXTERNAL\n"
    );
}

#[test]
fn file_growing_past_the_limit_while_watched_keeps_its_document() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "grow.txt", "small\n");
    let mut opts = WorkspaceOptions::default();
    opts.load.max_file_size = 1024;
    let mut ws = Workspace::load(r, opts, &mut |_| {}).unwrap();
    let mut w = notify_watcher(ws.root());
    let f = ws.lookup("grow.txt").unwrap();
    insert(&mut ws, "grow.txt", 0, "typed ");
    // A tool makes the file larger than the limit.
    let big = "x".repeat(3000);
    fs::write(ws.root().join("grow.txt"), &big).unwrap();
    let start = Instant::now();
    while ws.text_file(f).unwrap().disk_not_text().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "growth not seen");
        ws.poll_disk(&mut w, Duration::from_millis(200));
    }
    assert_eq!(
        ws.text_file(f).unwrap().disk_not_text(),
        Some(&NotTextReason::TooLarge {
            size: 3000,
            limit: 1024
        })
    );
    assert!(ws
        .text_file(f)
        .unwrap()
        .disk_not_text()
        .unwrap()
        .to_string()
        .contains("too large"));
    // The document (with the typed text) is kept and still editable; the large content is
    // not overwritten by a write-back.
    assert_eq!(text(&mut ws, "grow.txt"), "typed small\n");
    insert(&mut ws, "grow.txt", 0, ">");
    let fl = ws.flush();
    assert!(fl.written.is_empty(), "{fl:?}");
    assert_eq!(fs::read_to_string(ws.root().join("grow.txt")).unwrap(), big);
    assert!(matches!(ws.state(f), Some(FileState::Text(_))));
    // Back under the limit: merged again, write-back resumes.
    fs::write(ws.root().join("grow.txt"), "small\nshrunk\n").unwrap();
    let start = Instant::now();
    while ws.text_file(f).unwrap().disk_not_text().is_some() {
        assert!(start.elapsed() < Duration::from_secs(10), "shrink not seen");
        ws.poll_disk(&mut w, Duration::from_millis(200));
    }
    assert_eq!(text(&mut ws, "grow.txt"), ">typed small\nshrunk\n");
    assert_eq!(ws.flush().written, ["grow.txt"]);
    assert_eq!(
        fs::read_to_string(ws.root().join("grow.txt")).unwrap(),
        ">typed small\nshrunk\n"
    );
    // A file that is created too large is tracked, not edited, with the reason visible.
    fs::write(ws.root().join("huge.txt"), &big).unwrap();
    let start = Instant::now();
    while ws.lookup("huge.txt").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "create not seen");
        ws.poll_disk(&mut w, Duration::from_millis(200));
    }
    match ws.state(ws.lookup("huge.txt").unwrap()) {
        Some(FileState::NotText { reason, len }) => {
            assert_eq!(*len, 3000);
            assert!(matches!(reason, NotTextReason::TooLarge { .. }));
        }
        _ => panic!("huge.txt should not be text"),
    }
}

#[test]
fn watcher_started_before_the_load_misses_nothing_and_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    write(&root, "a.txt", "a\n");
    write(&root, "sub/b.txt", "b\n");
    // The watcher runs first, so nothing that happens during the load can be missed.
    let mut w = notify_watcher(&root);
    // Changes that happen before the load: their events are queued, their content is loaded.
    write(&root, "a.txt", "a changed before load\n");
    write(&root, "sub/c.txt", "c\n");
    let mut ws = Workspace::load(&root, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(text(&mut ws, "a.txt"), "a changed before load\n");
    assert_eq!(text(&mut ws, "sub/c.txt"), "c\n");
    let a = ws.lookup("a.txt").unwrap();
    let v = ws.version();
    let files = ws.len();
    // A change after the load (before the first poll).
    write(&root, "sub/b.txt", "b changed after load\n");
    let start = Instant::now();
    let mut modified = Vec::new();
    while text(&mut ws, "sub/b.txt") != "b changed after load\n" {
        assert!(start.elapsed() < Duration::from_secs(10), "change not seen");
        if let Some(rep) = ws.poll_disk(&mut w, Duration::from_millis(200)) {
            assert!(rep.created.is_empty(), "loaded files re-created: {rep:?}");
            modified.extend(rep.modified);
        }
    }
    while let Some(rep) = ws.poll_disk(&mut w, Duration::from_millis(200)) {
        assert!(rep.created.is_empty(), "{rep:?}");
        modified.extend(rep.modified);
    }
    // The queued events about already-loaded content changed nothing.
    assert_eq!(modified, ["sub/b.txt"]);
    assert_eq!(ws.version(), v + 1);
    assert_eq!(ws.len(), files);
    assert_eq!(ws.lookup("a.txt"), Some(a));
    assert_eq!(text(&mut ws, "a.txt"), "a changed before load\n");
    assert!(ws.flush().written.is_empty());
}

/// A refused rename or delete changes nothing, in the workspace or on disk: the disk step
/// comes first, and the workspace step is undone with it. A new path is checked against the
/// file system's limits, `.git` and the ignore rules before anything changes.
#[test]
fn refused_tree_operations_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = &fs::canonicalize(dir.path()).unwrap();
    write(r, "a.txt", "alpha\n");
    write(r, "b.txt", "beta\n");
    write(r, ".gitignore", "gen/\n");
    let mut ws = Workspace::load(r, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let v0 = ws.version();
    let listing = |ws: &mut Workspace| -> Vec<String> {
        ws.snapshot()
            .files()
            .iter()
            .map(|f| f.path.to_string())
            .collect()
    };
    let l0 = listing(&mut ws);
    // Over-long target: the disk rename fails, nothing moved.
    let long = "x".repeat(300);
    assert!(ws.rename("a.txt", &long).is_err());
    // A file on the way (`b.txt` is a file): refused.
    assert!(ws.rename("a.txt", "b.txt/c.txt").is_err());
    assert_eq!(ws.version(), v0);
    assert_eq!(listing(&mut ws), l0);
    assert_eq!(fs::read_to_string(r.join("a.txt")).unwrap(), "alpha\n");
    assert!(!r.join("b.txt/c.txt").exists());
    // New paths.
    use vfs::names::PathRefusal;
    assert!(matches!(
        ws.check_new_path(&long, false),
        Err(PathRefusal::NameTooLong { len: 300, .. })
    ));
    let deep = vec!["d".repeat(200); 21].join("/");
    assert!(matches!(
        ws.check_new_path(&deep, false),
        Err(PathRefusal::PathTooLong { .. })
    ));
    assert!(matches!(
        ws.check_new_path("src/.git/x", false),
        Err(PathRefusal::Excluded { .. })
    ));
    assert!(matches!(
        ws.check_new_path("gen/out.txt", false),
        Err(PathRefusal::Ignored { .. })
    ));
    assert!(ws.check_new_path("src/new.rs", false).is_ok());
    // A delete by someone who saw everything: gone from disk and workspace together.
    ws.delete_seen_now("b.txt").unwrap();
    assert!(!r.join("b.txt").exists());
    assert!(ws.lookup("b.txt").is_none());
    // A rename that works moves both.
    ws.rename("a.txt", "sub/a2.txt").unwrap();
    assert_eq!(fs::read_to_string(r.join("sub/a2.txt")).unwrap(), "alpha\n");
    assert!(ws.lookup("sub/a2.txt").is_some());
}
