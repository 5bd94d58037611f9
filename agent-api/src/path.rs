//! Confining agent paths to the workspace root.

use std::path::{Component, Path, PathBuf};

use vfs::names::PathRefusal;

use crate::error::{ApiError, BAD_PATH, IGNORED_PATH, NAME_TOO_LONG, PATH_OUTSIDE_ROOT};

/// The workspace-relative, `/`-separated path for `input` (relative to `root`, or absolute
/// under it). Refuses `..`, absolute paths elsewhere, the state folder `.dist-space`, any
/// `.git` folder, and paths whose existing part goes through a symlink that leaves the root
/// (or into one of those folders). `root` must be canonical.
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
                format!(
                    "`{}` is outside the workspace root {}",
                    short(input),
                    root.display()
                ),
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
                    format!("`{}`: `..` is not allowed in paths", short(input)),
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ApiError::new(
                    BAD_PATH,
                    format!("`{}` is malformed", short(input)),
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err(ApiError::new(
            BAD_PATH,
            format!("`{}` names the root folder, not a file", short(input)),
        ));
    }
    if parts[0] == vfs::load::STATE_DIR {
        return Err(ApiError::new(
            PATH_OUTSIDE_ROOT,
            format!("`{}` is in the daemon's state folder", short(input)),
        ));
    }
    if parts.contains(&".git") {
        return Err(ApiError::new(
            PATH_OUTSIDE_ROOT,
            format!(
                "`{}` is inside a `.git` folder, which is not part of the workspace",
                short(input)
            ),
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
                        format!("`{}` goes through a dangling symlink", short(input)),
                    )
                })?;
                let inside = target
                    .strip_prefix(root)
                    .ok()
                    .filter(|r| {
                        r.to_str()
                            .is_some_and(|r| vfs::names::excluded_folder(r).is_none())
                    })
                    .is_some();
                if !inside {
                    return Err(ApiError::new(
                        PATH_OUTSIDE_ROOT,
                        format!(
                            "`{}` goes through a symlink that leaves the workspace",
                            short(input)
                        ),
                    ));
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(parts.join("/"))
}

/// A path as error messages show it (a huge one cut).
pub(crate) fn short(p: &str) -> String {
    vfs::names::shorten(p, 200)
}

/// A new path (`fs.create`, the target of `fs.rename`, `branch.create`) the workspace can
/// hold: within the file system's limits and not ignored; see `Workspace::check_new_path`.
pub fn check_new(ws: &mut vfs::Workspace, rel: &str, is_dir: bool) -> Result<(), ApiError> {
    ws.check_new_path(rel, is_dir).map_err(|r| {
        let code = match r {
            PathRefusal::NameTooLong { .. } | PathRefusal::PathTooLong { .. } => NAME_TOO_LONG,
            PathRefusal::Excluded { .. } => PATH_OUTSIDE_ROOT,
            PathRefusal::Ignored { .. } => IGNORED_PATH,
        };
        ApiError::new(code, r.to_string())
    })
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
            ".git/config",
            "src/.git/HEAD",
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
