//! Is a file's content what git's index holds for it? (The sign of a `git checkout`,
//! `git reset`, `git stash`: a text git restored on purpose, see `crate::window`.)
//!
//! Asked only when an external change would be merged at an older disk state, so the cost
//! (one `git ls-files` process) is paid rarely. Anything unexpected (no git, not a repository,
//! an untracked file, a SHA-256 repository, git's own filters changing the text) answers
//! `false`: the change is then merged, which keeps edits rather than dropping them.
use std::path::Path;
use std::process::{Command, Stdio};

use sha1::{Digest, Sha1};

/// Whether the index entry of `rel` (relative to `root`, `/`-separated) is the blob `text`.
pub fn index_holds(root: &Path, rel: &str, text: &[u8]) -> bool {
    let Ok(out) = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "--stage", "-z", "--"])
        .arg(format!(":(literal){rel}"))
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    // "<mode> <object> <stage>\t<path>\0"; one entry unless the file is in conflict.
    let Some(entry) = out.stdout.split(|b| *b == 0).next() else {
        return false;
    };
    let Some(oid) = entry.split(|b| *b == b' ').nth(1) else {
        return false;
    };
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", text.len()).as_bytes());
    h.update(text);
    let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    oid == want.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(root: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(root)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn the_index_blob_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        assert!(!index_holds(r, "a.txt", b"x\n"), "not a repository");
        git(r, &["init", "-q"]);
        std::fs::create_dir(r.join("sub dir")).unwrap();
        std::fs::write(r.join("sub dir/a*.txt"), "one\n").unwrap();
        assert!(!index_holds(r, "sub dir/a*.txt", b"one\n"), "untracked");
        git(r, &["add", "-A"]);
        assert!(index_holds(r, "sub dir/a*.txt", b"one\n"));
        assert!(!index_holds(r, "sub dir/a*.txt", b"one\ntwo\n"));
        assert!(
            !index_holds(r, "sub dir/a?.txt", b"one\n"),
            "no pathspec magic"
        );
    }
}
