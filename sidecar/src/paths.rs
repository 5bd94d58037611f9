//! Where a workspace's daemon lives: the state folder (`<root>/.dist-space/`: lock, info file,
//! log) and the Unix socket in a per-user runtime folder, named by a hash of the canonical root.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const STATE_DIR: &str = vfs::load::STATE_DIR;
pub const INFO_FILE: &str = "daemon.json";
pub const LOCK_FILE: &str = "daemon.lock";
pub const LOG_FILE: &str = "daemon.log";

/// Contents of `<root>/.dist-space/daemon.json` (mode 0600).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DaemonInfo {
    pub pid: u32,
    pub root: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub version: String,
    /// The agent API endpoint and its bearer token; `None` until that exists.
    #[serde(default)]
    pub agent_endpoint: Option<String>,
    #[serde(default)]
    pub agent_token: Option<String>,
}

/// The workspace root for `start`: the nearest ancestor holding a state folder, else `start`.
pub fn find_root(start: &Path) -> io::Result<PathBuf> {
    let start = fs::canonicalize(start)?;
    let mut at = Some(start.as_path());
    while let Some(d) = at {
        if d.join(STATE_DIR).is_dir() {
            return Ok(d.to_path_buf());
        }
        at = d.parent();
    }
    Ok(start)
}

pub fn state_dir(root: &Path) -> PathBuf {
    root.join(STATE_DIR)
}

pub fn info_path(root: &Path) -> PathBuf {
    state_dir(root).join(INFO_FILE)
}

pub fn log_path(root: &Path) -> PathBuf {
    state_dir(root).join(LOG_FILE)
}

/// The per-user runtime folder for sockets: `$XDG_RUNTIME_DIR/dist-space`, else
/// `/tmp/dist-space-<uid>` (created 0700).
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).is_dir() => PathBuf::from(d).join("dist-space"),
        _ => {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            std::env::temp_dir().join(format!("dist-space-{uid}"))
        }
    }
}

/// Socket path for a canonical root.
pub fn socket_path(root: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let h = Sha256::digest(root.as_os_str().as_bytes());
    let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    runtime_dir().join(format!("{hex}.sock"))
}

pub fn ensure_private_dir(d: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(d)
}

pub fn read_info(root: &Path) -> Option<DaemonInfo> {
    let s = fs::read_to_string(info_path(root)).ok()?;
    serde_json::from_str(&s).ok()
}

/// Write the info file atomically with mode 0600.
pub fn write_info(root: &Path, info: &DaemonInfo) -> io::Result<()> {
    let p = info_path(root);
    let tmp = p.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(serde_json::to_string_pretty(info)?.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &p)
}

/// True if a process with this pid exists.
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// True if the process runs: it exists and is not a zombie (an exited child its parent has not
/// reaped yet still exists for `kill(pid, 0)`).
pub fn pid_running(pid: u32) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold ')'.
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => fs::metadata("/proc/self").is_err(),
    }
}

/// An exclusive `flock` on `<state>/daemon.lock`, held for the daemon's lifetime. The kernel
/// drops it when the process dies, so a lock file left by a crashed daemon is never "held".
pub struct DaemonLock {
    _file: fs::File,
}

impl DaemonLock {
    /// `Ok(None)` when another live process holds the lock.
    pub fn try_acquire(root: &Path) -> io::Result<Option<DaemonLock>> {
        use std::os::fd::AsRawFd;
        fs::create_dir_all(state_dir(root))?;
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(state_dir(root).join(LOCK_FILE))?;
        // SAFETY: flock on a valid fd owned by `f`.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            Ok(Some(DaemonLock { _file: f }))
        } else {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}
