//! The global git excludes file (`core.excludesFile`, set with real `git config --global` in a
//! temporary HOME / XDG config) applies to the load and to watcher events.
//!
//! Alone in its test binary: it points HOME and XDG_CONFIG_HOME at a temporary directory.
use std::fs;
use std::path::Path;
use std::process::Command;

use vfs::disk::WatchBatch;
use vfs::load::{IgnoreFilter, LoadOptions};
use vfs::{Workspace, WorkspaceOptions};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn git(home: &Path, cwd: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("GIT_CONFIG_GLOBAL")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn global_excludes_file_from_git_config() {
    let home = tempfile::tempdir().unwrap();
    let ws_dir = tempfile::tempdir().unwrap();
    let r = ws_dir.path();
    let excludes = home.path().join("my-global-ignore");
    fs::write(&excludes, "*.swp\nscratch/\n").unwrap();
    git(
        home.path(),
        home.path(),
        &[
            "config",
            "--global",
            "core.excludesFile",
            excludes.to_str().unwrap(),
        ],
    );
    assert!(fs::read_to_string(home.path().join(".gitconfig"))
        .unwrap()
        .contains("my-global-ignore"));
    git(home.path(), r, &["init", "-q"]);
    // git itself agrees on what is ignored.
    write(r, "main.rs", "fn main() {}\n");
    write(r, ".main.rs.swp", "swap\n");
    write(r, "scratch/notes.txt", "notes\n");
    write(r, "src/lib.rs", "\n");
    write(r, "src/.lib.rs.swp", "swap\n");
    let st = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(r)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .output()
        .unwrap();
    let st = String::from_utf8_lossy(&st.stdout).to_string();
    assert!(st.contains("main.rs") && !st.contains(".swp") && !st.contains("scratch"));

    // The ignore crate finds the global config through this process's environment. This
    // binary holds this single test, so no other thread reads the environment meanwhile.
    std::env::set_var("HOME", home.path());
    std::env::set_var("XDG_CONFIG_HOME", home.path().join(".config"));

    let mut ws = Workspace::load(r, WorkspaceOptions::default(), &mut |_| {}).unwrap();
    let mut files: Vec<String> = ws.tree().visible().map(|(_, p)| p.to_string()).collect();
    files.sort();
    assert_eq!(files, ["main.rs", "src", "src/lib.rs"]);

    // Watcher paths go through the same rules.
    let mut filt = IgnoreFilter::new(ws.root(), &LoadOptions::default());
    assert!(filt.is_ignored("src/.new.rs.swp", false));
    assert!(filt.is_ignored("scratch/a.txt", false));
    assert!(!filt.is_ignored("src/new.rs", false));
    write(ws.root(), "src/.new.rs.swp", "swap\n");
    write(ws.root(), "src/new.rs", "new\n");
    let root = ws.root().to_path_buf();
    let rep = ws.apply_disk_batch(&WatchBatch {
        paths: [root.join("src/.new.rs.swp"), root.join("src/new.rs")]
            .into_iter()
            .collect(),
        ..WatchBatch::default()
    });
    assert_eq!(rep.created, ["src/new.rs"]);
    assert!(ws.lookup("src/.new.rs.swp").is_none());
    let f = ws.lookup("src/new.rs").unwrap();
    assert_eq!(ws.text(f).unwrap().to_string(), "new\n");
}
