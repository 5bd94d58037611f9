//! `Workspace::compact_document`: history before a horizon goes, the text and every newer
//! version stay, and the version the disk holds is never compacted away.

use engine::Frontier;
use vfs::diff::TextEdit;
use vfs::{VfsError, Workspace, WorkspaceOptions};

fn load(text: &str) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), text).unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let ws = Workspace::load(&root, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    (dir, ws)
}

fn type_at_end(ws: &mut Workspace, n: usize) -> Vec<Frontier> {
    let f = ws.lookup("f.txt").unwrap();
    (0..n)
        .map(|i| {
            let end = ws.text(f).unwrap().len_chars();
            ws.edit(
                f,
                "typist",
                None,
                &[TextEdit {
                    range: end..end,
                    text: format!("{i} "),
                }],
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn the_disk_base_bounds_the_horizon_and_newer_versions_stay() {
    let (dir, mut ws) = load("start ");
    let f = ws.lookup("f.txt").unwrap();
    let vs = type_at_end(&mut ws, 20);
    let text = ws.text(f).unwrap().to_string();
    // Not written back yet: the disk holds the loaded text (the root version).
    let err = ws.compact_document(f, &vs[10]).unwrap_err();
    assert!(matches!(err, VfsError::DiskBaseBeforeHorizon(_)), "{err}");
    assert_eq!(ws.text(f).unwrap().to_string(), text, "nothing changed");
    // Written back: the disk holds the current version; compact at vs[10].
    ws.flush();
    let dropped = ws.compact_document(f, &vs[10]).unwrap();
    assert!(dropped > 0);
    assert_eq!(ws.text(f).unwrap().to_string(), text);
    let doc = ws.text_file(f).unwrap().document();
    assert!(doc.checkout(&vs[5]).is_err(), "older than the horizon");
    assert!(doc.checkout(&Frontier::root()).is_err());
    assert_eq!(
        doc.checkout(&vs[15]).unwrap().to_string(),
        "start 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 "
    );
    // Edits at a version after the horizon still merge, and the disk stays in sync.
    ws.edit(
        f,
        "late",
        Some(&vs[12]),
        &[TextEdit {
            range: 0..0,
            text: ">".into(),
        }],
    )
    .unwrap();
    ws.flush();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        format!(">{text}")
    );
}
