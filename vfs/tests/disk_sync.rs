//! Real directories, real files, real notify watcher, real git.
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use vfs::diff::TextEdit;
use vfs::disk::{Debounce, NotifyWatcher};
use vfs::load::{IgnoreFilter, LoadOptions, NotTextReason};
use vfs::{FileId, FileState, SnapContent, Workspace, WorkspaceOptions};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn load(root: &Path) -> Workspace {
    Workspace::load(root, WorkspaceOptions::default(), &mut |_| {}).unwrap()
}

fn watcher(ws: &Workspace) -> NotifyWatcher {
    NotifyWatcher::new(
        ws.root(),
        Debounce {
            quiet: Duration::from_millis(50),
            max_wait: Duration::from_millis(500),
        },
    )
    .unwrap()
}

/// Apply disk batches until `done` holds (or 10 s pass).
fn settle(ws: &mut Workspace, w: &mut NotifyWatcher, mut done: impl FnMut(&mut Workspace) -> bool) {
    let start = Instant::now();
    while !done(ws) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "disk changes not applied in time"
        );
        ws.poll_disk(w, Duration::from_millis(200));
    }
    // Drain whatever else is pending (e.g. our own writes).
    while ws.poll_disk(w, Duration::from_millis(150)).is_some() {}
}

/// An insert by the agent "agent" at the document's current version.
fn agent_insert(ws: &mut Workspace, f: FileId, at: usize, text: &str) {
    ws.edit(
        f,
        "agent",
        None,
        &[TextEdit {
            range: at..at,
            text: text.into(),
        }],
    )
    .unwrap();
}

fn text(ws: &mut Workspace, path: &str) -> String {
    let f = ws
        .lookup(path)
        .unwrap_or_else(|| panic!("{path} not in workspace"));
    ws.text(f).unwrap().to_string()
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn load_honours_nested_ignores_and_classifies() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    git(r, &["init", "-q"]);
    write(r, ".git/info/exclude", "excluded.txt\n");
    write(r, ".gitignore", "*.log\nbuild/\n");
    write(r, ".ignore", "tmp/\n");
    write(r, "a.txt", "a\n");
    write(r, "x.log", "log\n");
    write(r, "excluded.txt", "no\n");
    write(r, "build/out.txt", "out\n");
    write(r, "tmp/t.txt", "t\n");
    write(r, "sub/.gitignore", "!keep.log\nsecret.txt\n");
    write(r, "sub/keep.log", "keep\n");
    write(r, "sub/secret.txt", "s\n");
    write(r, "sub/deep/secret.txt", "s\n");
    write(r, "sub/deep/ok.rs", "fn main() {}\n");
    write(r, ".dist-space/state", "state\n");
    write(r, ".github/ci.yml", "on: push\n");
    fs::write(r.join("bin.dat"), b"ab\0cd").unwrap();
    fs::write(r.join("latin1.txt"), b"caf\xe9\n").unwrap();
    write(r, "big.txt", &"x".repeat(2000));

    let mut opts = WorkspaceOptions::default();
    opts.load.max_file_size = 1024;
    let mut last = None;
    let mut ws = Workspace::load(r, opts, &mut |p| last = Some(p)).unwrap();
    let mut files: Vec<String> = ws
        .tree()
        .visible()
        .filter(|(f, _)| !matches!(ws.state(*f), Some(FileState::Dir)))
        .map(|(_, p)| p.to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".github/ci.yml",
            ".gitignore",
            ".ignore",
            "a.txt",
            "big.txt",
            "bin.dat",
            "latin1.txt",
            "sub/.gitignore",
            "sub/deep/ok.rs",
            "sub/keep.log"
        ]
    );
    let last = last.unwrap();
    assert!(last.done);
    assert_eq!(last.files, 10);
    let reason = |ws: &Workspace, p: &str| match ws.state(ws.lookup(p).unwrap()) {
        Some(FileState::NotText { reason, .. }) => Some(reason.clone()),
        _ => None,
    };
    assert_eq!(reason(&ws, "bin.dat"), Some(NotTextReason::Binary));
    assert_eq!(
        reason(&ws, "latin1.txt"),
        Some(NotTextReason::NotUtf8 { valid_up_to: 3 })
    );
    assert_eq!(
        reason(&ws, "big.txt"),
        Some(NotTextReason::TooLarge {
            size: 2000,
            limit: 1024
        })
    );
    assert!(reason(&ws, "big.txt")
        .unwrap()
        .to_string()
        .contains("too large"));
    assert_eq!(text(&mut ws, "sub/deep/ok.rs"), "fn main() {}\n");

    // The single-path filter used for watcher events agrees with the walk.
    let mut filt = IgnoreFilter::new(ws.root(), &LoadOptions::default());
    for (p, ignored) in [
        ("x.log", true),
        ("build/new.txt", true),
        ("tmp/a", true),
        ("sub/keep.log", false),
        ("sub/other.log", true),
        ("sub/secret.txt", true),
        ("sub/deep/secret.txt", true),
        ("sub/deep/new.rs", false),
        (".git/config", true),
        (".dist-space/x", true),
        ("excluded.txt", true),
        ("a.txt", false),
    ] {
        assert_eq!(filt.is_ignored(p, false), ignored, "{p}");
    }
}

#[test]
fn external_edit_while_agent_edits_keeps_both() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "line1\nline2\nline3\n");
    let mut ws = load(dir.path());
    let mut w = watcher(&ws);
    let f = ws.lookup("a.txt").unwrap();
    // Agent types at the start of line 3 (not yet written to disk).
    agent_insert(&mut ws, f, 12, "AGENT ");
    // Meanwhile a tool rewrites the file from what it saw on disk.
    fs::write(ws.root().join("a.txt"), "line1 EXTERNAL\nline2\nline3\n").unwrap();
    settle(&mut ws, &mut w, |ws| text(ws, "a.txt").contains("EXTERNAL"));
    assert_eq!(
        text(&mut ws, "a.txt"),
        "line1 EXTERNAL\nline2\nAGENT line3\n"
    );
    assert_eq!(ws.lookup("a.txt"), Some(f));
    // Write back the merged text; our own write is recognised, not re-applied.
    let rep = ws.flush();
    assert_eq!(rep.written, ["a.txt"]);
    let v = ws.version();
    while let Some(r) = ws.poll_disk(&mut w, Duration::from_millis(300)) {
        assert!(r.modified.is_empty(), "own write re-read as an edit: {r:?}");
    }
    assert_eq!(ws.version(), v);
    assert_eq!(
        fs::read_to_string(ws.root().join("a.txt")).unwrap(),
        "line1 EXTERNAL\nline2\nAGENT line3\n"
    );
    // Nothing to write when the content is unchanged.
    assert!(ws.flush().written.is_empty());
}

#[test]
fn git_checkout_while_editing() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    git(r, &["init", "-q"]);
    for i in 0..300 {
        write(
            r,
            &format!("src/m{}/f{i}.rs", i % 10),
            &format!("// file {i}\nfn f{i}() {{\n    {i}\n}}\n"),
        );
    }
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "base"]);
    git(r, &["checkout", "-qb", "other"]);
    for i in 0..150 {
        write(
            r,
            &format!("src/m{}/f{i}.rs", i % 10),
            &format!("// file {i}\nfn f{i}() {{\n    {i} + 1\n}}\n"),
        );
    }
    for i in 0..20 {
        write(r, &format!("src/new/n{i}.rs",), &format!("// new {i}\n"));
    }
    for i in 280..300 {
        fs::remove_file(r.join(format!("src/m{}/f{i}.rs", i % 10))).unwrap();
    }
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "other"]);
    git(r, &["checkout", "-q", "main"]);

    let mut ws = load(r);
    let mut w = watcher(&ws);
    assert!(ws.lookup("src/m5/f285.rs").is_some());
    // An agent edits a file the branch changes (another line) and one it does not touch.
    let changed = ws.lookup("src/m3/f3.rs").unwrap();
    agent_insert(&mut ws, changed, 0, "// agent\n");
    let untouched = ws.lookup("src/m0/f200.rs").unwrap();
    agent_insert(&mut ws, untouched, 0, "// agent\n");

    git(r, &["checkout", "-q", "other"]);
    // An edit lands while the checkout's events are still being applied.
    ws.poll_disk(&mut w, Duration::from_millis(100));
    ws.edit(
        untouched,
        "agent2",
        None,
        &[TextEdit {
            range: 0..0,
            text: "// agent2\n".into(),
        }],
    )
    .unwrap();
    settle(&mut ws, &mut w, |ws| {
        ws.lookup("src/new/n19.rs").is_some()
            && ws.lookup("src/m9/f299.rs").is_none()
            && ws
                .text(ws.lookup("src/m9/f149.rs").unwrap())
                .unwrap()
                .to_string()
                .contains("+ 1")
    });
    for i in 0..280 {
        let p = format!("src/m{}/f{i}.rs", i % 10);
        let want = fs::read_to_string(r.join(&p)).unwrap();
        let got = text(&mut ws, &p);
        match i {
            3 => assert_eq!(got, format!("// agent\n{want}")),
            200 => assert_eq!(got, format!("// agent2\n// agent\n{want}")),
            _ => assert_eq!(got, want, "{p}"),
        }
    }
    for i in 280..300 {
        assert!(ws.lookup(&format!("src/m{}/f{i}.rs", i % 10)).is_none());
    }
    for i in 0..20 {
        assert_eq!(
            text(&mut ws, &format!("src/new/n{i}.rs")),
            format!("// new {i}\n")
        );
    }
    assert_eq!(
        ws.lookup("src/m3/f3.rs"),
        Some(changed),
        "file identity kept"
    );
    let rep = ws.flush();
    assert_eq!(rep.written.len(), 2, "{rep:?}");
    assert!(fs::read_to_string(r.join("src/m3/f3.rs"))
        .unwrap()
        .starts_with("// agent\n// file 3\n"));
}

#[test]
fn rename_on_disk_while_editing_keeps_identity() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "dir/a.txt", "hello\n");
    let mut ws = load(dir.path());
    let mut w = watcher(&ws);
    let f = ws.lookup("dir/a.txt").unwrap();
    let base = ws.text_file(f).unwrap().doc.version().clone();
    fs::rename(ws.root().join("dir/a.txt"), ws.root().join("dir/b.txt")).unwrap();
    // An edit made against the old path/version while the rename is in flight.
    ws.edit(
        f,
        "agent",
        Some(&base),
        &[TextEdit {
            range: 5..5,
            text: " world".into(),
        }],
    )
    .unwrap();
    settle(&mut ws, &mut w, |ws| ws.lookup("dir/b.txt").is_some());
    assert_eq!(ws.lookup("dir/b.txt"), Some(f));
    assert_eq!(ws.lookup("dir/a.txt"), None);
    // A second, stale edit (made at the pre-rename version) still lands in the renamed file.
    ws.edit(
        f,
        "agent2",
        Some(&base),
        &[TextEdit {
            range: 0..0,
            text: ">".into(),
        }],
    )
    .unwrap();
    ws.flush();
    assert_eq!(
        fs::read_to_string(ws.root().join("dir/b.txt")).unwrap(),
        ">hello world\n"
    );
    assert!(!ws.root().join("dir/a.txt").exists());
    // Renaming a whole directory moves everything under it.
    fs::rename(ws.root().join("dir"), ws.root().join("dir2")).unwrap();
    settle(&mut ws, &mut w, |ws| ws.lookup("dir2/b.txt").is_some());
    assert_eq!(ws.lookup("dir2/b.txt"), Some(f));
}

#[test]
fn editor_save_via_temp_and_rename() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.rs", "fn main() {\n}\n");
    let mut ws = load(dir.path());
    let mut w = watcher(&ws);
    let f = ws.lookup("main.rs").unwrap();
    agent_insert(&mut ws, f, 14, "// end\n");
    // VS Code / formatter style: write a temp file next to it, rename over the original.
    let tmp = ws.root().join(".main.rs.tmp.1234");
    fs::write(&tmp, "fn main() {\n    run();\n}\n").unwrap();
    fs::rename(&tmp, ws.root().join("main.rs")).unwrap();
    settle(&mut ws, &mut w, |ws| text(ws, "main.rs").contains("run()"));
    assert_eq!(
        text(&mut ws, "main.rs"),
        "fn main() {\n    run();\n}\n// end\n"
    );
    assert_eq!(ws.lookup("main.rs"), Some(f));
    assert!(ws.lookup(".main.rs.tmp.1234").is_none());
    // Vim style: move the original to a backup, write a new file.
    fs::rename(ws.root().join("main.rs"), ws.root().join("main.rs~")).unwrap();
    fs::write(
        ws.root().join("main.rs"),
        "fn main() {\n    run();\n}\n// vim\n",
    )
    .unwrap();
    settle(&mut ws, &mut w, |ws| {
        ws.lookup("main.rs")
            .is_some_and(|g| ws.text(g).unwrap().to_string().contains("vim"))
    });
    assert_eq!(
        ws.lookup("main.rs"),
        Some(f),
        "the document stays with main.rs"
    );
    assert!(text(&mut ws, "main.rs").contains("// end"));
}

#[test]
fn write_back_error_keeps_the_document() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.txt", "x\n");
    write(dir.path(), "sub/y.txt", "y\n");
    let mut ws = load(dir.path());
    let root = ws.root().to_path_buf();
    let x = ws.lookup("x.txt").unwrap();
    let y = ws.lookup("sub/y.txt").unwrap();
    agent_insert(&mut ws, x, 0, "edited ");
    agent_insert(&mut ws, y, 0, "edited ");
    // Make both writes fail even for root: the target is now a directory, and the parent
    // directory of the other file is now a regular file. (No watcher: the disk stays broken.)
    fs::remove_file(root.join("x.txt")).unwrap();
    fs::create_dir(root.join("x.txt")).unwrap();
    fs::remove_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub"), "not a dir").unwrap();
    let rep = ws.flush();
    assert!(rep.written.is_empty());
    assert_eq!(rep.failed.len(), 2, "{rep:?}");
    assert!(ws.text_file(x).unwrap().write_error().is_some());
    assert_eq!(text(&mut ws, "x.txt"), "edited x\n");
    assert_eq!(text(&mut ws, "sub/y.txt"), "edited y\n");
    assert_eq!(ws.dirty_files().count(), 2);
    // Once the disk is fixed, the next flush writes everything.
    fs::remove_dir(root.join("x.txt")).unwrap();
    fs::remove_file(root.join("sub")).unwrap();
    let rep = ws.flush();
    assert_eq!(rep.written.len(), 2, "{rep:?}");
    assert_eq!(
        fs::read_to_string(root.join("sub/y.txt")).unwrap(),
        "edited y\n"
    );
    assert!(ws.text_file(x).unwrap().write_error().is_none());
}

#[test]
fn write_back_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "run.sh", "echo hi\n");
    fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o751)).unwrap();
    let mut ws = load(dir.path());
    let f = ws.lookup("run.sh").unwrap();
    agent_insert(&mut ws, f, 0, "#!/bin/sh\n");
    assert_eq!(ws.flush().written, ["run.sh"]);
    let md = fs::metadata(ws.root().join("run.sh")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o751);
    assert_eq!(
        fs::read_to_string(ws.root().join("run.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    // No temp file left behind.
    assert_eq!(fs::read_dir(ws.root()).unwrap().count(), 1);
}

#[test]
fn delete_on_disk_keeps_unsaved_text_only() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "keep.txt", "k\n");
    write(dir.path(), "gone.txt", "g\n");
    let mut ws = load(dir.path());
    let mut w = watcher(&ws);
    let keep = ws.lookup("keep.txt").unwrap();
    agent_insert(&mut ws, keep, 0, "typed ");
    fs::remove_file(ws.root().join("keep.txt")).unwrap();
    fs::remove_file(ws.root().join("gone.txt")).unwrap();
    settle(&mut ws, &mut w, |ws| ws.lookup("gone.txt").is_none());
    // The delete did not see the typed text: the file is resurrected, and written back.
    assert_eq!(ws.lookup("keep.txt"), Some(keep));
    ws.flush();
    assert_eq!(
        fs::read_to_string(ws.root().join("keep.txt")).unwrap(),
        "typed k\n"
    );
    // Deleting it again, now saved, removes it.
    fs::remove_file(ws.root().join("keep.txt")).unwrap();
    settle(&mut ws, &mut w, |ws| ws.lookup("keep.txt").is_none());
}

#[test]
fn ten_thousand_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for i in 0..10_000 {
        write(
            r,
            &format!("d{}/e{}/f{i}.txt", i % 50, i % 7),
            &format!("file {i}\n"),
        );
    }
    let mut ws = load(r);
    let n_files = ws
        .tree()
        .visible()
        .filter(|(f, _)| ws.text_file(*f).is_some())
        .count();
    assert_eq!(n_files, 10_000);
    let mut w = watcher(&ws);
    // One external edit, one new directory full of files, one deleted directory.
    fs::write(ws.root().join("d7/e0/f7.txt"), "changed\n").unwrap();
    for i in 0..100 {
        write(ws.root(), &format!("fresh/sub/g{i}.txt"), "g\n");
    }
    fs::remove_dir_all(ws.root().join("d49")).unwrap();
    settle(&mut ws, &mut w, |ws| {
        ws.lookup("fresh/sub/g99.txt").is_some()
            && ws.lookup("d49").is_none()
            && text(ws, "d7/e0/f7.txt") == "changed\n"
    });
    let fresh = ws
        .tree()
        .visible()
        .filter(|(_, p)| p.starts_with("fresh/sub/g"))
        .count();
    assert_eq!(fresh, 100);
    let n_files = ws
        .tree()
        .visible()
        .filter(|(f, _)| ws.text_file(*f).is_some())
        .count();
    assert_eq!(n_files, 10_000 - 200 + 100);
}

#[test]
fn snapshots_are_immutable_shareable_and_versioned() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "one\n");
    write(dir.path(), "b/c.txt", "two\n");
    let mut ws = load(dir.path());
    let v0 = ws.version();
    let snap = ws.snapshot();
    let a = ws.lookup("a.txt").unwrap();
    let reader = std::thread::spawn({
        let snap = snap.clone();
        move || {
            (
                snap.text("a.txt").unwrap().to_string(),
                snap.text("b/c.txt").unwrap().to_string(),
            )
        }
    });
    ws.edit(
        a,
        "agent",
        None,
        &[TextEdit {
            range: 0..3,
            text: "ONE".into(),
        }],
    )
    .unwrap();
    ws.create_file("new/n.txt", "new\n").unwrap();
    ws.rename("b/c.txt", "b/d.txt").unwrap();
    assert_eq!(
        reader.join().unwrap(),
        ("one\n".to_string(), "two\n".to_string())
    );
    assert_eq!(snap.text("a.txt").unwrap().to_string(), "one\n");
    let now = ws.snapshot();
    assert_eq!(now.text("a.txt").unwrap().to_string(), "ONE\n");
    assert_eq!(now.text("new/n.txt").unwrap().to_string(), "new\n");
    assert!(now.get("b/d.txt").is_some() && now.get("b/c.txt").is_none());
    // Past version: tree and texts as they were.
    let past = ws.snapshot_at(v0).unwrap();
    assert_eq!(past.text("a.txt").unwrap().to_string(), "one\n");
    assert!(past.get("b/c.txt").is_some() && past.get("new/n.txt").is_none());
    let mid = ws.snapshot_at(v0 + 1).unwrap();
    assert_eq!(mid.text("a.txt").unwrap().to_string(), "ONE\n");
    assert!(mid.get("new/n.txt").is_none());
    assert!(ws.snapshot_at(ws.version() + 1).is_err());
    // Written out as a directory.
    let out = tempfile::tempdir().unwrap();
    let n = past.write_to_dir(out.path(), &mut |_, _| {}).unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        fs::read_to_string(out.path().join("b/c.txt")).unwrap(),
        "two\n"
    );
    assert!(matches!(past.get("b").unwrap().content, SnapContent::Dir));
    // Local create is written by flush (with its new directory).
    ws.flush();
    assert_eq!(
        fs::read_to_string(ws.root().join("new/n.txt")).unwrap(),
        "new\n"
    );
    assert!(ws.root().join("b/d.txt").exists());
}

/// An editor saves (from its own buffer) text that already reached the document through the
/// sidecar: the disk caught up, nothing is applied twice, and the file is clean.
#[test]
fn saving_the_document_text_from_outside_is_not_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.txt", "hello\n");
    let mut ws = load(dir.path());
    let mut w = watcher(&ws);
    let f = ws.lookup("s.txt").unwrap();
    ws.edit(
        f,
        "editor",
        None,
        &[TextEdit {
            range: 5..5,
            text: " world".into(),
        }],
    )
    .unwrap();
    assert!(ws.text_file(f).unwrap().is_dirty());
    // The editor writes the same text itself (not through `flush`).
    write(dir.path(), "s.txt", "hello world\n");
    settle(&mut ws, &mut w, |ws| {
        *ws.text_file(f).unwrap().disk_text() == "hello world\n"
    });
    assert_eq!(text(&mut ws, "s.txt"), "hello world\n");
    assert!(!ws.text_file(f).unwrap().is_dirty());
}

/// Local (API) create, rename into a folder that does not exist yet, and delete: the disk
/// follows, the watcher's echo of our own operations changes nothing (identity and text kept),
/// and a delete by someone who saw the unsaved text removes it too.
#[test]
fn local_create_rename_delete_reach_disk_and_their_echo_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", "a\n");
    write(dir.path(), "b.txt", "b\n");
    let mut ws = load(dir.path());
    let mut w = watcher(&ws);
    let root = ws.root().to_path_buf();
    // Create: written on flush.
    let c = ws.create_file("new/c.txt", "fresh\n").unwrap();
    assert!(!root.join("new/c.txt").exists());
    ws.flush();
    assert_eq!(
        fs::read_to_string(root.join("new/c.txt")).unwrap(),
        "fresh\n"
    );
    // Rename into a folder only the tree knows of so far.
    let a = ws.lookup("a.txt").unwrap();
    agent_insert(&mut ws, a, 0, "typed ");
    ws.rename("a.txt", "deep/er/a2.txt").unwrap();
    assert!(!root.join("a.txt").exists());
    assert_eq!(
        fs::read_to_string(root.join("deep/er/a2.txt")).unwrap(),
        "a\n"
    );
    // Delete of a file with unsaved text, by someone who saw it.
    let b = ws.lookup("b.txt").unwrap();
    agent_insert(&mut ws, b, 0, "unsaved ");
    ws.delete_seen_now("b.txt").unwrap();
    assert!(ws.lookup("b.txt").is_none());
    assert!(!root.join("b.txt").exists());
    // The watcher reports all of it; nothing changes.
    let v = ws.version();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        ws.poll_disk(&mut w, Duration::from_millis(100));
    }
    assert_eq!(ws.lookup("deep/er/a2.txt"), Some(a));
    assert_eq!(ws.lookup("new/c.txt"), Some(c));
    assert!(ws.lookup("a.txt").is_none() && ws.lookup("b.txt").is_none());
    assert_eq!(text(&mut ws, "deep/er/a2.txt"), "typed a\n");
    assert_eq!(
        ws.version(),
        v,
        "the echo of our own operations changed the workspace"
    );
    ws.flush();
    assert_eq!(
        fs::read_to_string(root.join("deep/er/a2.txt")).unwrap(),
        "typed a\n"
    );
    assert!(!root.join("b.txt").exists());
}
