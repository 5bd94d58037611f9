//! `Workspace::apply_events`: events made elsewhere (here: on a private copy of a document,
//! as the agent API's branches do) are merged by the engine into the workspace document,
//! and a batch with unknown parents changes nothing.

use engine::{Document, Edit, RemoteId, Rope};
use vfs::diff::TextEdit;
use vfs::{VfsError, Workspace, WorkspaceOptions};

fn load(text: &str) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), text).unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ws = Workspace::load(&root, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    (dir, ws)
}

#[test]
fn events_made_on_a_private_copy_merge_like_the_engine() {
    let (_d, mut ws) = load("fn f() {}\n");
    let f = ws.lookup("f.txt").unwrap();
    // A private copy at the current version (the root: nobody edited yet).
    let fork_text = ws.text(f).unwrap();
    let mut private = Document::from_text(fork_text.clone());
    let a = private.agent("branch-1");
    let root = private.version().clone();
    private
        .edit_at(
            a,
            &root,
            &[Edit {
                range: 8..8,
                text: " x(); ".into(),
            }],
        )
        .unwrap();
    // Meanwhile, in the workspace: someone types at the same place.
    ws.edit(
        f,
        "human",
        None,
        &[TextEdit {
            range: 8..8,
            text: "y();".into(),
        }],
    )
    .unwrap();
    let v_before = ws.version();
    let events = private.all_events();
    let rep = ws.apply_events(f, &events).unwrap();
    assert_eq!(rep.new_events, 6);
    assert!(ws.version() > v_before, "the change is journalled");
    assert!(ws.dirty_files().any(|d| d == f));
    // The reference: the engine itself, merging the same two sets of events.
    let mut reference = Document::from_text(fork_text);
    let h = reference.agent("human");
    reference.insert(h, 8, "y();").unwrap();
    reference.apply_remote(&events).unwrap();
    assert_eq!(ws.text(f).unwrap(), *reference.text());
    // Applying again is a no-op (duplicates).
    let again = ws.apply_events(f, &events).unwrap();
    assert_eq!((again.new_events, again.duplicate_events), (0, 6));
}

#[test]
fn unknown_parents_change_nothing() {
    let (_d, mut ws) = load("abc");
    let f = ws.lookup("f.txt").unwrap();
    let mut private = Document::from_text(Rope::from_str("abc"));
    let a = private.agent("b");
    private.insert(a, 3, "d").unwrap();
    let mut events = private.all_events();
    events[0].parents = vec![RemoteId {
        agent: "nobody".into(),
        seq: 4,
    }];
    let v = ws.version();
    let err = ws.apply_events(f, &events).unwrap_err();
    assert!(matches!(err, VfsError::Remote(_)), "{err}");
    assert_eq!(ws.text(f).unwrap(), "abc");
    assert_eq!(ws.version(), v);
    assert!(ws.dirty_files().next().is_none());
    assert_eq!(ws.text_file(f).unwrap().document().pending_events(), 0);
}
