//! Confining agent paths to the workspace root.

use std::path::{Component, Path, PathBuf};

use crate::error::{ApiError, BAD_PATH, PATH_OUTSIDE_ROOT};

/// The workspace-relative, `/`-separated path for `input` (relative to `root`, or absolute
/// under it). Refuses `..`, absolute paths elsewhere, the state folder `.dist-space`, and
/// paths whose existing part goes through a symlink that leaves the root. `root` must be
/// canonical.
pub fn resolve(root: &Path, input: &str) -> Result<String, ApiError> {
    if input.is_empty() {
        return Err(ApiError::new(BAD_PATH, "empty path"));
    }
    if input.contains('\0') {
        return Err(ApiError::new(BAD_PATH, "path contains a NUL character"));
    }
    let p = Path::new(input);
    let rel: &Path = if p.is_absolute() {
        p.strip_prefix(root).map_err(|_| {
            ApiError::new(
                PATH_OUTSIDE_ROOT,
                format!("`{input}` is outside the workspace root {}", root.display()),
            )
        })?
    } else {
        p
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| ApiError::new(BAD_PATH, "path is not UTF-8"))?,
            ),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ApiError::new(
                    PATH_OUTSIDE_ROOT,
                    format!("`{input}`: `..` is not allowed in paths"),
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ApiError::new(BAD_PATH, format!("`{input}` is malformed")))
            }
        }
    }
    if parts.is_empty() {
        return Err(ApiError::new(
            BAD_PATH,
            format!("`{input}` names the root folder, not a file"),
        ));
    }
    if parts[0] == vfs::load::STATE_DIR {
        return Err(ApiError::new(
            PATH_OUTSIDE_ROOT,
            format!("`{input}` is in the daemon's state folder"),
        ));
    }
    // Symlinks on the way (only the part that exists on disk can be one).
    let mut at = PathBuf::from(root);
    for part in &parts {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::canonicalize(&at).map_err(|_| {
                    ApiError::new(
                        PATH_OUTSIDE_ROOT,
                        format!("`{input}` goes through a dangling symlink"),
                    )
                })?;
                let inside = target
                    .strip_prefix(root)
                    .ok()
                    .filter(|r| {
                        r.components().next().map(|c| c.as_os_str())
                            != Some(std::ffi::OsStr::new(vfs::load::STATE_DIR))
                    })
                    .is_some();
                if !inside {
                    return Err(ApiError::new(
                        PATH_OUTSIDE_ROOT,
                        format!("`{input}` goes through a symlink that leaves the workspace"),
                    ));
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confines_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("src"), root.join("in")).unwrap();
        assert_eq!(resolve(&root, "src/a.rs").unwrap(), "src/a.rs");
        assert_eq!(resolve(&root, "./src//a.rs").unwrap(), "src/a.rs");
        let abs = root.join("src/a.rs");
        assert_eq!(resolve(&root, abs.to_str().unwrap()).unwrap(), "src/a.rs");
        assert_eq!(resolve(&root, "in/a.rs").unwrap(), "in/a.rs");
        for bad in [
            "../x",
            "src/../../x",
            "/etc/passwd",
            ".dist-space/daemon.json",
            "out/passwd",
        ] {
            assert_eq!(
                resolve(&root, bad).unwrap_err().code,
                PATH_OUTSIDE_ROOT,
                "{bad}"
            );
        }
        for bad in ["", ".", "a\0b"] {
            assert_eq!(resolve(&root, bad).unwrap_err().code, BAD_PATH, "{bad:?}");
        }
    }
}
