//! External writes merged at the disk state they were made from: real files, a real
//! `Workspace`, disk batches as the watcher reports them, real git.
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use vfs::diff::TextEdit;
use vfs::disk::WatchBatch;
use vfs::window::MergeKind;
use vfs::{DiskReport, FileId, Workspace, WorkspaceOptions};

fn load(root: &Path) -> Workspace {
    Workspace::load(root, WorkspaceOptions::default(), &mut |_| {}).unwrap()
}

/// The disk batch the watcher reports after `rel` was written.
fn disk_changed(ws: &mut Workspace, rel: &str) -> DiskReport {
    let batch = WatchBatch {
        paths: BTreeSet::from([ws.root().join(rel)]),
        ..Default::default()
    };
    ws.apply_disk_batch(&batch)
}

fn write_ext(ws: &mut Workspace, rel: &str, text: &str) -> DiskReport {
    fs::write(ws.root().join(rel), text).unwrap();
    disk_changed(ws, rel)
}

fn text(ws: &mut Workspace, f: FileId) -> String {
    ws.text(f).unwrap().to_string()
}

fn disk(ws: &Workspace, rel: &str) -> String {
    fs::read_to_string(ws.root().join(rel)).unwrap()
}

/// Insert `line` before line `n` (0-based; clamped to the end) of the document, by `agent`.
fn insert_line(ws: &mut Workspace, f: FileId, agent: &str, n: usize, line: &str) {
    let t = ws.text(f).unwrap();
    let at = t.line_to_char(n.min(t.len_lines() - 1));
    ws.edit(
        f,
        agent,
        None,
        &[TextEdit {
            range: at..at,
            text: line.into(),
        }],
    )
    .unwrap();
}

fn insert_line_str(s: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = s.split_inclusive('\n').collect();
    let n = n.min(lines.len());
    lines.insert(n, line);
    lines.concat()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

fn git(root: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "init.defaultBranch=main"])
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

fn numbered(n: usize) -> String {
    (0..n).map(|i| format!("line {i:03}\n")).collect()
}

#[test]
fn a_stale_writer_keeps_the_edits_written_after_it_read() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), numbered(6)).unwrap();
    let mut ws = load(dir.path());
    let f = ws.lookup("a.txt").unwrap();
    // A tool reads the file.
    let stale = disk(&ws, "a.txt");
    // An agent's edit reaches the disk.
    insert_line(&mut ws, f, "agent", 1, "<A1>\n");
    assert_eq!(ws.flush().written, ["a.txt"]);
    insert_line(&mut ws, f, "agent", 4, "<A2>\n");
    ws.flush();
    let before = ws.text_file(f).unwrap().document().version().clone();
    // The tool writes back its copy plus its own change.
    let rep = write_ext(
        &mut ws,
        "a.txt",
        &stale.replace("line 005", "LINE 005 (tool)"),
    );
    assert_eq!(rep.modified, ["a.txt"]);
    let m = &rep.merges[0];
    assert_eq!(
        (m.kind, m.base, m.states),
        (MergeKind::Older, 2, 3),
        "{m:?}"
    );
    assert_eq!(m.kept, "<A1>\n<A2>\n".len());
    let want = "line 000\n<A1>\nline 001\nline 002\n<A2>\nline 003\nline 004\nLINE 005 (tool)\n";
    assert_eq!(text(&mut ws, f), want);
    // Written back: the disk gets the merged text; the tool's line replaced the old one.
    assert_eq!(ws.flush().written, ["a.txt"]);
    assert_eq!(disk(&ws, "a.txt"), want);
    let doc = ws.text_file(f).unwrap().document();
    assert!(doc
        .checkout(&before)
        .unwrap()
        .to_string()
        .contains("line 005\n"));
    // The tool, current now, changes the file again: the newest state.
    let rep = write_ext(&mut ws, "a.txt", &want.replace("line 000", "line zero"));
    assert!(rep.merges.is_empty(), "{rep:?}");
    assert_eq!(text(&mut ws, f), want.replace("line 000", "line zero"));
}

#[test]
fn an_editor_open_since_the_load_saves_after_a_hundred_writes_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), numbered(10)).unwrap();
    let mut ws = load(dir.path());
    let f = ws.lookup("a.txt").unwrap();
    let opened = disk(&ws, "a.txt");
    for i in 0..100 {
        insert_line(&mut ws, f, "agent", (i * 7) % 10, &format!("<A{i}>\n"));
        assert_eq!(ws.flush().written, ["a.txt"]);
    }
    let saved = insert_line_str(&opened, 3, "typed in the editor\n");
    let rep = write_ext(&mut ws, "a.txt", &saved);
    let m = &rep.merges[0];
    assert_eq!(m.kind, MergeKind::Older, "{m:?}");
    assert_eq!(m.states, vfs::window::WINDOW_STATES + 1);
    let got = text(&mut ws, f);
    for i in 0..100 {
        assert_eq!(count(&got, &format!("<A{i}>\n")), 1, "{got}");
    }
    assert_eq!(count(&got, "typed in the editor\n"), 1);
}

#[test]
fn a_revert_to_an_exact_older_state_and_a_replacement_give_the_new_text() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), numbered(5)).unwrap();
    let mut ws = load(dir.path());
    let f = ws.lookup("a.txt").unwrap();
    let original = disk(&ws, "a.txt");
    insert_line(&mut ws, f, "agent", 2, "<A1>\n");
    ws.flush();
    let with_agent = ws.text_file(f).unwrap().document().version().clone();
    // Undo-and-save in an editor: exactly the original text.
    let rep = write_ext(&mut ws, "a.txt", &original);
    assert_eq!(rep.merges[0].kind, MergeKind::Revert);
    assert_eq!(text(&mut ws, f), original);
    // The reverted text stays in the history.
    let doc = ws.text_file(f).unwrap().document();
    assert!(doc
        .checkout(&with_agent)
        .unwrap()
        .to_string()
        .contains("<A1>"));
    // Another agent edit, then an unrelated text replaces the file.
    insert_line(&mut ws, f, "agent", 0, "<A2>\n");
    ws.flush();
    let rep = write_ext(&mut ws, "a.txt", "completely different\n");
    assert!(
        rep.merges.is_empty() || rep.merges[0].kind == MergeKind::Replacement,
        "{rep:?}"
    );
    assert_eq!(text(&mut ws, f), "completely different\n");
    // Emptied.
    let rep = write_ext(&mut ws, "a.txt", "");
    assert_eq!(rep.modified, ["a.txt"]);
    assert_eq!(text(&mut ws, f), "");
}

#[test]
fn a_git_checkout_of_another_branch_gives_the_checked_out_text() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    git(r, &["init", "-q"]);
    fs::write(r.join("a.txt"), numbered(8)).unwrap();
    git(r, &["add", "-A"]);
    git(r, &["commit", "-qm", "base"]);
    git(r, &["checkout", "-qb", "other"]);
    let branch_text = numbered(8).replace("line 006", "line 006 on the branch");
    fs::write(r.join("a.txt"), &branch_text).unwrap();
    git(r, &["commit", "-qam", "other"]);
    git(r, &["checkout", "-q", "main"]);

    let mut ws = load(r);
    let f = ws.lookup("a.txt").unwrap();
    insert_line(&mut ws, f, "agent", 1, "<A1>\n");
    ws.flush();
    git(r, &["commit", "-qam", "agent"]);
    git(r, &["checkout", "-q", "other"]);
    let rep = disk_changed(&mut ws, "a.txt");
    assert_eq!(rep.merges[0].kind, MergeKind::Checkout, "{rep:?}");
    assert_eq!(text(&mut ws, f), branch_text);
    // The same text written by a tool (not what git holds) would have been merged.
    git(r, &["checkout", "-q", "main"]);
    disk_changed(&mut ws, "a.txt");
    assert_eq!(text(&mut ws, f), disk(&ws, "a.txt"));
}

#[test]
fn an_untouched_file_stays_lazy_and_a_stale_write_to_it_is_a_plain_change() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), numbered(3)).unwrap();
    fs::write(dir.path().join("b.txt"), numbered(3)).unwrap();
    let mut ws = load(dir.path());
    let b = ws.lookup("b.txt").unwrap();
    let rep = write_ext(&mut ws, "a.txt", &numbered(4));
    assert!(rep.merges.is_empty());
    assert!(!ws.text_file(b).unwrap().is_materialised());
    assert!(ws.text_file(b).unwrap().disk_window().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// For random histories of agent edits written to disk (and current external changes
    /// in between), a writer that read the disk at state `k` and writes back that text with
    /// its own change merges keeping everything: every agent's and external line once, the
    /// writer's line and its modified line.
    #[test]
    fn a_stale_change_made_at_any_window_state_keeps_everything(
        n_lines in 3usize..12,
        steps in prop::collection::vec((0usize..64, 0u8..4), 1..10),
        k in 0usize..64,
        w_line in 0usize..64,
        mod_line in 0usize..64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), numbered(n_lines)).unwrap();
        let mut ws = load(dir.path());
        let f = ws.lookup("a.txt").unwrap();
        let mut disk_states = vec![disk(&ws, "a.txt")];
        let mut markers = Vec::new();
        for (i, (at, what)) in steps.iter().enumerate() {
            let m = format!("<M{i}>\n");
            match what {
                // An agent edit, written back.
                0 | 1 => {
                    insert_line(&mut ws, f, &format!("agent{}", what), *at, &m);
                    ws.flush();
                }
                // An agent edit not written yet.
                2 => insert_line(&mut ws, f, "agent2", *at, &m),
                // A current external change (the tool read the disk just now).
                _ => {
                    let now = insert_line_str(&disk(&ws, "a.txt"), *at, &m);
                    write_ext(&mut ws, "a.txt", &now);
                    ws.flush();
                }
            }
            markers.push(m);
            let d = disk(&ws, "a.txt");
            if disk_states.last() != Some(&d) {
                disk_states.push(d);
            }
        }
        // The stale writer's text: state k plus a new line and one original line changed.
        let read = &disk_states[k % disk_states.len()];
        let target = format!("line {:03}\n", mod_line % n_lines);
        let changed = format!("LINE {:03} changed\n", mod_line % n_lines);
        let mut stale = insert_line_str(read, w_line, "<W>\n").replacen(&target, &changed, 1);
        if &stale == read {
            stale.push_str("tail\n");
        }
        let rep = write_ext(&mut ws, "a.txt", &stale);
        prop_assert!(rep.merges.iter().all(|m| m.kind != MergeKind::Revert), "{:?}", rep);
        let got = text(&mut ws, f);
        for m in &markers {
            prop_assert_eq!(count(&got, m), 1, "{} in {:?} (wrote {:?}) {:?}", m, got, stale, rep);
        }
        prop_assert_eq!(count(&got, "<W>\n"), 1, "{:?}", got);
        prop_assert_eq!(count(&got, &changed), 1, "{:?}", got);
        prop_assert_eq!(count(&got, &target), 0, "{:?}", got);
        ws.flush();
        prop_assert_eq!(disk(&ws, "a.txt"), got);
    }
}
