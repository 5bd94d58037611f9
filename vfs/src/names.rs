//! Which new paths the workspace accepts from editors and agents: names the file system can
//! hold (checked against its limits before anything changes, so that a file never exists
//! only in the workspace because its write-back can never succeed), and never a path the
//! loader leaves out (`.git`, the state folder, ignored paths).

use std::path::Path;

/// Longest name of one path component in bytes where `pathconf` cannot tell (Linux
/// `NAME_MAX`, the limit of ext4, xfs, btrfs, tmpfs).
pub const DEFAULT_NAME_MAX: usize = 255;
/// Longest absolute path in bytes, terminating NUL included (Linux `PATH_MAX`; `pathconf`
/// answers the same on Linux for every file system). Longer paths cannot be passed to
/// `open(2)` at all.
pub const PATH_MAX: usize = 4096;

/// Why a new path is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// A component longer than the file system's `NAME_MAX`.
    #[error("the name `{name}` is {len} bytes long; the file system allows at most {max}")]
    NameTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    /// The absolute path is longer than `PATH_MAX`.
    #[error(
        "the path `{path}` is {len} bytes long as an absolute path; at most {max} are allowed"
    )]
    PathTooLong {
        path: String,
        len: usize,
        max: usize,
    },
    /// Inside `.git` or the daemon's state folder (never part of the workspace).
    #[error("`{path}` is inside `{folder}`, which is not part of the workspace")]
    Excluded { path: String, folder: String },
    /// Matched by `.gitignore`, `.ignore` or the global excludes.
    #[error("`{path}` is ignored by the workspace (.gitignore, .ignore or global excludes)")]
    Ignored { path: String },
}

/// At most `n` chars of `s`, with the length said when cut (error messages and logs never
/// carry a huge path in full).
pub fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        None => s.to_string(),
        Some((at, _)) => format!("{}… ({} bytes)", &s[..at], s.len()),
    }
}

/// The file system's `NAME_MAX` for names in `dir` (`pathconf`), else [`DEFAULT_NAME_MAX`].
pub fn name_max(dir: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return DEFAULT_NAME_MAX;
    };
    // SAFETY: `c` is a valid NUL-terminated string; pathconf only reads it.
    let n = unsafe { libc::pathconf(c.as_ptr(), libc::_PC_NAME_MAX) };
    if n > 0 {
        n as usize
    } else {
        DEFAULT_NAME_MAX
    }
}

/// `rel` (workspace-relative, `/`-separated) under `root` fits the file system's limits:
/// every component at most `name_max` bytes, the absolute path under `PATH_MAX`.
pub fn check_limits(root: &Path, rel: &str, name_max: usize) -> Result<(), PathRefusal> {
    for c in rel.split('/') {
        if c.len() > name_max {
            return Err(PathRefusal::NameTooLong {
                name: shorten(c, 60),
                len: c.len(),
                max: name_max,
            });
        }
    }
    // `root/rel` plus the terminating NUL.
    let len = root.as_os_str().len() + 1 + rel.len();
    if len + 1 > PATH_MAX {
        return Err(PathRefusal::PathTooLong {
            path: shorten(rel, 80),
            len,
            max: PATH_MAX - 1,
        });
    }
    Ok(())
}

/// The folder of `rel` that is never part of the workspace (`.git`, the state folder), if any.
pub fn excluded_folder(rel: &str) -> Option<&str> {
    rel.split('/')
        .find(|c| *c == ".git" || *c == crate::load::STATE_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let root = Path::new("/tmp/ws");
        assert!(check_limits(root, "a/b.txt", 255).is_ok());
        assert!(check_limits(root, &"x".repeat(255), 255).is_ok());
        let e = check_limits(root, &format!("d/{}", "x".repeat(256)), 255).unwrap_err();
        assert!(
            matches!(e, PathRefusal::NameTooLong { len: 256, .. }),
            "{e}"
        );
        assert!(e.to_string().len() < 200, "{e}");
        let deep = vec!["y".repeat(200); 25].join("/");
        let e = check_limits(root, &deep, 255).unwrap_err();
        assert!(matches!(e, PathRefusal::PathTooLong { .. }), "{e}");
        assert!(e.to_string().len() < 200, "{e}");
        // Multi-byte names count bytes.
        assert!(check_limits(root, &"é".repeat(128), 255).is_err());
        assert_eq!(excluded_folder("src/.git/x"), Some(".git"));
        assert_eq!(excluded_folder(".dist-space/y"), Some(".dist-space"));
        assert_eq!(excluded_folder(".github/x"), None);
        assert!(name_max(Path::new("/tmp")) >= 14);
        assert_eq!(shorten("abcdef", 3), "abc… (6 bytes)");
    }
}
