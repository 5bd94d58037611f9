//! The lazy path: a loaded file keeps the string it was read as until something needs its rope
//! or document. Real directories and files; disk changes through the real notify watcher.
use std::collections::BTreeMap;
use std::fs;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use vfs::diff::TextEdit;
use vfs::disk::{Debounce, NotifyWatcher};
use vfs::load::NotTextReason;
use vfs::pos::{self, LspPosition, PositionEncoding};
use vfs::{
    FileId, FileState, SnapContent, SnapText, Workspace, WorkspaceOptions, WorkspaceSnapshot,
};

/// Files with ASCII, 2/3/4-byte chars, CRLF, no final newline, an empty file.
fn files() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("a.txt", "alpha\nbeta\n"),
        ("src/uni.rs", "// é ü\nlet s = \"日本語\"; // 😀 x\n"),
        ("src/crlf.txt", "one\r\ntwo\r\nthree"),
        ("src/deep/empty.txt", ""),
        ("src/deep/z.md", "# title\n\n😀😀\n"),
    ])
}

fn setup() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    for (p, t) in files() {
        let p = dir.path().join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, t).unwrap();
    }
    let ws = Workspace::load(dir.path(), WorkspaceOptions::default(), &mut |_| {}).unwrap();
    (dir, ws)
}

fn id(ws: &Workspace, p: &str) -> FileId {
    ws.lookup(p).unwrap_or_else(|| panic!("{p} not loaded"))
}

fn built(ws: &Workspace, p: &str) -> bool {
    ws.text_file(id(ws, p)).unwrap().is_materialised()
}

fn snap_text<'a>(s: &'a WorkspaceSnapshot, p: &str) -> &'a SnapText {
    s.text_of(p)
        .unwrap_or_else(|| panic!("{p} not a text file"))
}

#[test]
fn load_and_snapshots_never_materialise_untouched_files() {
    let (_dir, mut ws) = setup();
    for p in files().keys() {
        assert!(!built(&ws, p), "{p} materialised by the load");
        let tf = ws.text_file(id(&ws, p)).unwrap();
        // Cheap questions do not build the document either.
        assert!(!tf.is_dirty());
        assert!(tf.doc.version().is_root());
        assert!(!tf.is_materialised());
    }
    let v = ws.version();
    let snaps = [ws.snapshot(), ws.snapshot_at(v).unwrap(), ws.snapshot()];
    for s in &snaps {
        let mut total = 0;
        for (p, want) in files() {
            let t = snap_text(s, p);
            // Exact text, as the loaded string (no rope built).
            assert_eq!(t.as_str(), Some(want), "{p}");
            assert!(!t.has_rope(), "{p}: snapshot built a rope");
            assert_eq!(t.len_bytes(), want.len());
            assert_eq!(t.len_chars(), want.chars().count());
            assert_eq!(t.to_string(), want);
            assert!(*t == *want);
            let mut out = Vec::new();
            t.write_to(&mut out).unwrap();
            assert_eq!(out, want.as_bytes());
            assert!(!t.has_rope());
            let SnapContent::Text { version, .. } = &s.get(p).unwrap().content else {
                panic!("{p} not text in the snapshot")
            };
            assert!(version.is_root());
            total += want.len() as u64;
        }
        assert_eq!(s.text_bytes(), total);
    }
    // Written out: byte for byte, still nothing built.
    let out = tempfile::tempdir().unwrap();
    let n = snaps[0].write_to_dir(out.path(), &mut |_, _| {}).unwrap();
    assert_eq!(n, files().len());
    for (p, want) in files() {
        assert_eq!(fs::read(out.path().join(p)).unwrap(), want.as_bytes());
        assert!(!snap_text(&snaps[0], p).has_rope());
    }
    // A past version (before the load) and the listing after a tree change: still lazy.
    let empty = ws.snapshot_at(0).unwrap();
    assert!(empty.files().is_empty());
    ws.rename("a.txt", "b.txt").unwrap();
    let s = ws.snapshot();
    assert_eq!(snap_text(&s, "b.txt").as_str(), Some("alpha\nbeta\n"));
    // The load's version replayed after the rename: created paths and loaded texts.
    let at_load = ws.snapshot_at(v).unwrap();
    assert!(at_load.get("b.txt").is_none());
    for (p, want) in files() {
        assert_eq!(snap_text(&at_load, p).as_str(), Some(want), "{p}");
    }
    assert_eq!(at_load.files().len(), snaps[0].files().len());
    ws.flush();
    for p in files().keys().filter(|p| **p != "a.txt") {
        assert!(!built(&ws, p), "{p} materialised by rename/snapshot/flush");
    }
    assert!(!built(&ws, "b.txt"));
    // Asking a snapshot for a rope builds the rope (once, shared), not the document.
    let r = s.text("src/uni.rs").unwrap();
    assert_eq!(r.to_string(), files()["src/uni.rs"]);
    assert!(std::ptr::eq(r, s.text("src/uni.rs").unwrap()));
    assert!(!built(&ws, "src/uni.rs"));
}

#[test]
fn first_edit_materialises_from_the_loaded_text() {
    let (dir, mut ws) = setup();
    let before = ws.snapshot();
    let f = id(&ws, "src/uni.rs");
    let want = files()["src/uni.rs"];
    // Insert before the last "x", then replace "日本語" (in sequence; the first edit is after
    // the second's range).
    let start = want[..want.find('日').unwrap()].chars().count();
    let n = want.chars().count();
    ws.edit(
        f,
        "agent",
        None,
        &[
            TextEdit {
                range: n - 2..n - 2,
                text: "!".into(),
            },
            TextEdit {
                range: start..start + 3,
                text: "ÿ".into(),
            },
        ],
    )
    .unwrap();
    let now = want.replace("日本語", "ÿ").replace("x\n", "!x\n");
    assert!(built(&ws, "src/uni.rs"));
    assert_eq!(ws.text(f).unwrap().to_string(), now);
    let tf = ws.text_file(f).unwrap();
    assert!(tf.is_dirty());
    // Events: "!", three deleted chars, "ÿ".
    assert_eq!(tf.doc.oplog().len(), 5);
    assert_eq!(tf.disk_text().to_string(), want);
    // The document's root version is still the loaded text.
    assert_eq!(
        tf.doc
            .checkout(&engine::Frontier::root())
            .unwrap()
            .to_string(),
        want
    );
    // Other files are untouched; the earlier snapshot still shows the loaded text.
    assert!(!built(&ws, "a.txt"));
    assert_eq!(snap_text(&before, "src/uni.rs").as_str(), Some(want));
    let after = ws.snapshot();
    assert_eq!(snap_text(&after, "src/uni.rs").to_string(), now);
    assert!(snap_text(&after, "src/uni.rs").as_str().is_none());
    // Written back and read back.
    let rep = ws.flush();
    assert_eq!(rep.written, vec!["src/uni.rs".to_string()]);
    assert_eq!(
        fs::read_to_string(dir.path().join("src/uni.rs")).unwrap(),
        now
    );
    assert!(!ws.text_file(f).unwrap().is_dirty());
    // A CRLF file edited at the root version (explicit base) stays CRLF.
    let c = id(&ws, "src/crlf.txt");
    ws.edit(
        c,
        "agent",
        Some(&engine::Frontier::root()),
        &[TextEdit {
            range: 5..5,
            text: "2\r\n".into(),
        }],
    )
    .unwrap();
    assert_eq!(ws.text(c).unwrap().to_string(), "one\r\n2\r\ntwo\r\nthree");
}

#[test]
fn disk_change_materialises_and_merges() {
    let (dir, mut ws) = setup();
    let mut w = NotifyWatcher::new(
        ws.root(),
        Debounce {
            quiet: Duration::from_millis(50),
            max_wait: Duration::from_millis(500),
        },
    )
    .unwrap();
    // Same content written again: recognised without building anything.
    fs::write(dir.path().join("a.txt"), files()["a.txt"]).unwrap();
    // A real change of another untouched file.
    let z = dir.path().join("src/deep/z.md");
    fs::write(&z, "# title\n\n😀 and 😀\nmore\n").unwrap();
    let start = Instant::now();
    let mut modified = Vec::new();
    while !modified.contains(&"src/deep/z.md".to_string()) {
        assert!(start.elapsed() < Duration::from_secs(10), "not applied");
        if let Some(rep) = ws.poll_disk(&mut w, Duration::from_millis(200)) {
            modified.extend(rep.modified);
        }
    }
    while let Some(rep) = ws.poll_disk(&mut w, Duration::from_millis(150)) {
        modified.extend(rep.modified);
    }
    assert_eq!(modified, vec!["src/deep/z.md".to_string()]);
    assert!(!built(&ws, "a.txt"), "unchanged content built a document");
    assert!(built(&ws, "src/deep/z.md"));
    let f = id(&ws, "src/deep/z.md");
    assert_eq!(
        ws.text(f).unwrap().to_string(),
        "# title\n\n😀 and 😀\nmore\n"
    );
    let tf = ws.text_file(f).unwrap();
    assert_eq!(tf.disk_text().to_string(), "# title\n\n😀 and 😀\nmore\n");
    assert!(!tf.is_dirty(), "a disk change is what the disk holds");
    // Minimal edits by the disk agent on top of the loaded text.
    assert!(tf.doc.oplog().len() < 12);
    // An edit by an agent after the disk change merges with it.
    ws.edit(
        f,
        "agent",
        Some(&engine::Frontier::root()),
        &[TextEdit {
            range: 0..0,
            text: "> ".into(),
        }],
    )
    .unwrap();
    assert_eq!(
        ws.text(f).unwrap().to_string(),
        "> # title\n\n😀 and 😀\nmore\n"
    );
}

#[test]
fn lsp_style_reads_materialise_correctly() {
    let (_dir, mut ws) = setup();
    let f = id(&ws, "src/uni.rs");
    let want = files()["src/uni.rs"];
    // The current text without building anything.
    let t = ws.text_snap(f).unwrap();
    assert_eq!(t.as_str(), Some(want));
    assert!(!built(&ws, "src/uni.rs"));
    // A rope for position conversion (builds the rope, not the document).
    let rope = ws.text(f).unwrap();
    assert!(!built(&ws, "src/uni.rs"));
    let smile = want.find('😀').unwrap();
    let c = rope.byte_to_char(smile);
    let p = pos::char_to_position(&rope, c, PositionEncoding::Utf16).unwrap();
    assert_eq!(p, LspPosition::new(1, 18));
    assert_eq!(
        pos::position_to_char(&rope, p, PositionEncoding::Utf16).unwrap(),
        c
    );
    // Document questions (as an LSP layer asks them) build it, from the same text.
    let tf = ws.text_file(f).unwrap();
    assert_eq!(tf.doc.len_chars(), want.chars().count());
    assert!(tf.is_materialised());
    assert_eq!(tf.document().to_rope().to_string(), want);
    assert_eq!(tf.doc.oplog().len(), 0);
    let rv = tf.doc.remote_version(tf.doc.version());
    assert!(rv.is_empty());
    // disk_text() of another untouched file: exact text, no document.
    let a = id(&ws, "src/crlf.txt");
    assert_eq!(
        ws.text_file(a).unwrap().disk_text().to_string(),
        files()["src/crlf.txt"]
    );
    assert!(!built(&ws, "src/crlf.txt"));
}

#[test]
fn snapshots_of_untouched_files_are_thread_safe() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SnapText>();
    send_sync::<WorkspaceSnapshot>();
    let (_dir, mut ws) = setup();
    let snap = ws.snapshot();
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let readers: Vec<_> = (0..threads)
        .map(|_| {
            let snap = snap.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut seen = Vec::new();
                for _ in 0..50 {
                    for (p, want) in files() {
                        // Concurrent first use of the same lazily built rope.
                        let r = snap.text(p).unwrap();
                        assert_eq!(r.to_string(), want);
                        assert_eq!(snap_text(&snap, p).to_string(), want);
                        seen.push((p, r as *const _ as usize));
                    }
                }
                seen
            })
        })
        .collect();
    barrier.wait();
    // Edits, disk writes and new snapshots while the readers run.
    let f = id(&ws, "src/uni.rs");
    for i in 0..20 {
        ws.edit(
            f,
            "agent",
            None,
            &[TextEdit {
                range: 0..0,
                text: format!("{i}"),
            }],
        )
        .unwrap();
        let _ = ws.snapshot();
    }
    let mut addr: BTreeMap<&str, usize> = BTreeMap::new();
    for r in readers {
        for (p, a) in r.join().unwrap() {
            // Every thread got the one rope of each entry (built once).
            assert_eq!(*addr.entry(p).or_insert(a), a, "{p}: rope built twice");
        }
    }
    // The snapshot taken before the edits is unchanged.
    for (p, want) in files() {
        assert_eq!(snap_text(&snap, p).to_string(), want);
    }
    assert!(ws.text(f).unwrap().to_string().starts_with("19181716"));
    assert!(!built(&ws, "a.txt"));
}

#[test]
fn not_text_becoming_text_is_loaded_lazily() {
    let (dir, mut ws) = setup();
    let mut w = NotifyWatcher::new(
        ws.root(),
        Debounce {
            quiet: Duration::from_millis(50),
            max_wait: Duration::from_millis(500),
        },
    )
    .unwrap();
    let p = dir.path().join("bin.dat");
    fs::write(&p, b"\0\x01\x02").unwrap();
    let start = Instant::now();
    while ws.lookup("bin.dat").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10));
        ws.poll_disk(&mut w, Duration::from_millis(200));
    }
    assert!(ws.text_file(id(&ws, "bin.dat")).is_none());
    fs::write(&p, "now text\n").unwrap();
    while ws.text_file(id(&ws, "bin.dat")).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10));
        ws.poll_disk(&mut w, Duration::from_millis(200));
    }
    assert!(!built(&ws, "bin.dat"));
    let s = ws.snapshot();
    assert_eq!(snap_text(&s, "bin.dat").as_str(), Some("now text\n"));
    assert!(!built(&ws, "bin.dat"));
}

#[test]
fn loaded_texts_are_exact_across_shared_chunks() {
    // Small texts share per-thread chunks; sizes up to 20 KiB cross the chunk boundaries
    // and the in-chunk limit; binary and invalid UTF-8 files sit between texts.
    let dir = tempfile::tempdir().unwrap();
    let mut want: BTreeMap<String, Option<String>> = BTreeMap::new();
    for i in 0..600usize {
        let rel = format!("d{}/f{i}", i % 7);
        let p = dir.path().join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        match i % 10 {
            3 => {
                fs::write(&p, [b'a', 0, b'b']).unwrap();
                want.insert(rel, None);
            }
            7 => {
                fs::write(&p, [b'x', 0xff, b'y']).unwrap();
                want.insert(rel, None);
            }
            _ => {
                let unit = ["ab\n", "é\r\n", "日本\n", "😀"][i % 4];
                let n = (i * 7919) % (20 * 1024) / unit.len();
                let t = format!("{i}:{}", unit.repeat(n));
                fs::write(&p, &t).unwrap();
                want.insert(rel, Some(t));
            }
        }
    }
    let mut ws = Workspace::load(dir.path(), WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let s = ws.snapshot();
    for (p, w) in &want {
        match w {
            Some(t) => {
                let got = snap_text(&s, p);
                assert_eq!(got.as_str(), Some(t.as_str()), "{p}");
                assert_eq!(got.len_bytes(), t.len());
            }
            None => assert!(s.text_of(p).is_none(), "{p} should not be text"),
        }
    }
    // Editing one file of a chunk leaves its neighbours' texts intact.
    let f = id(&ws, "d1/f1");
    ws.edit(
        f,
        "agent",
        None,
        &[TextEdit {
            range: 0..0,
            text: ">".into(),
        }],
    )
    .unwrap();
    let s2 = ws.snapshot();
    for (p, w) in want.iter().filter(|(_, w)| w.is_some()) {
        let w = w.as_deref().unwrap();
        let got = snap_text(&s2, p).to_string();
        if p == "d1/f1" {
            assert_eq!(got, format!(">{w}"));
        } else {
            assert_eq!(got, w, "{p}");
        }
    }
}

#[test]
fn a_char_split_across_neighbouring_files_is_not_text() {
    // A chunk is checked for UTF-8 once, as a whole: a 2-byte char split between two files
    // read one after the other is valid UTF-8 in the chunk, but neither file is. One walker
    // thread reads all of them into one chunk; whichever order the directory lists them in,
    // the lead byte of `a` is followed by a continuation byte, or ends the chunk.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), b"x\xc3").unwrap();
    fs::write(dir.path().join("b"), b"\xa9y").unwrap();
    fs::write(dir.path().join("c"), b"\xa9z").unwrap();
    fs::write(dir.path().join("d"), "ok é\n").unwrap();
    let mut opts = WorkspaceOptions::default();
    opts.load.threads = 1;
    let mut ws = Workspace::load(dir.path(), opts, &mut |_| {}).unwrap();
    let reason = |p: &str| match ws.state(id(&ws, p)) {
        Some(FileState::NotText { reason, .. }) => Some(reason.clone()),
        _ => None,
    };
    assert_eq!(reason("a"), Some(NotTextReason::NotUtf8 { valid_up_to: 1 }));
    assert_eq!(reason("b"), Some(NotTextReason::NotUtf8 { valid_up_to: 0 }));
    assert_eq!(reason("c"), Some(NotTextReason::NotUtf8 { valid_up_to: 0 }));
    assert_eq!(reason("d"), None);
    let d = id(&ws, "d");
    assert_eq!(
        ws.text_snap(d).map(|t| t.to_string()),
        Some("ok é\n".into())
    );
}
