//! Disk IO: atomic write-back and the debounced file watcher (behind [`DiskWatcher`]).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::load::STATE_DIR;

/// Prefix of the temporary files used by [`atomic_write`]; the watcher ignores them.
pub const TEMP_PREFIX: &str = ".dist-space-tmp-";

/// Write `bytes` to `path` atomically: a temp file in the same folder, fsync, rename over the
/// target, fsync the folder. The target's permissions are kept (new files get the defaults).
/// On error the target is untouched and the temp file removed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let perms = match fs::metadata(path) {
        Ok(md) if md.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "target is a directory",
            ))
        }
        Ok(md) => Some(md.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    if let Some(p) = perms {
        tmp.as_file().set_permissions(p)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A debounced batch of disk changes: every path touched (absolute), renames whose both ends
/// were reported together, and whether events were lost (then the caller must rescan).
#[derive(Clone, Debug, Default)]
pub struct WatchBatch {
    pub paths: BTreeSet<PathBuf>,
    pub renames: Vec<(PathBuf, PathBuf)>,
    pub rescan: bool,
    /// When the last raw event of the batch arrived (latency measurements).
    pub last_event: Option<Instant>,
}

impl WatchBatch {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.renames.is_empty() && !self.rescan
    }
}

/// Source of disk changes. The real one is [`NotifyWatcher`]; anything that can report
/// changed paths (a poller, a test replay) can stand in.
pub trait DiskWatcher: Send {
    /// Wait up to `timeout` for changes, then return them once the disk has been quiet for the
    /// debounce window (bounded by a maximum batch latency). `None` if nothing happened.
    fn next_batch(&mut self, timeout: Duration) -> Option<WatchBatch>;
}

/// Debounce settings.
#[derive(Clone, Copy, Debug)]
pub struct Debounce {
    /// A batch is closed once no event arrived for this long.
    pub quiet: Duration,
    /// ... or once it has been open this long (continuous bursts).
    pub max_wait: Duration,
}

impl Default for Debounce {
    fn default() -> Self {
        Debounce {
            quiet: Duration::from_millis(50),
            max_wait: Duration::from_millis(1000),
        }
    }
}

enum Raw {
    Paths(Vec<PathBuf>, Option<(PathBuf, PathBuf)>),
    Rescan,
}

/// Recursive `notify` watcher on the workspace root with a quiet-window debouncer.
/// Events under `.git`, the state folder and our own temp files are dropped at the source, so a
/// `git checkout` burst only carries the work-tree paths.
pub struct NotifyWatcher {
    _watcher: notify::RecommendedWatcher,
    rx: Receiver<Raw>,
    debounce: Debounce,
}

fn dropped(root: &Path, p: &Path) -> bool {
    let Ok(rel) = p.strip_prefix(root) else {
        return true;
    };
    rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s == ".git" || s == STATE_DIR || s.starts_with(TEMP_PREFIX)
    })
}

impl NotifyWatcher {
    pub fn new(root: &Path, debounce: Debounce) -> notify::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let root_buf = root.to_path_buf();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let raw = match res {
                    Ok(ev) if ev.need_rescan() => Raw::Rescan,
                    Ok(ev) => {
                        if matches!(ev.kind, EventKind::Access(_)) {
                            return;
                        }
                        let rename = match (ev.kind, ev.paths.as_slice()) {
                            (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [a, b]) => {
                                Some((a.clone(), b.clone()))
                            }
                            _ => None,
                        };
                        let paths: Vec<PathBuf> = ev
                            .paths
                            .into_iter()
                            .filter(|p| !dropped(&root_buf, p))
                            .collect();
                        if paths.is_empty() {
                            return;
                        }
                        Raw::Paths(paths, rename)
                    }
                    Err(_) => Raw::Rescan,
                };
                let _ = tx.send(raw);
            })?;
        watcher.watch(root, RecursiveMode::Recursive)?;
        Ok(NotifyWatcher {
            _watcher: watcher,
            rx,
            debounce,
        })
    }
}

impl DiskWatcher for NotifyWatcher {
    fn next_batch(&mut self, timeout: Duration) -> Option<WatchBatch> {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
        };
        let opened = Instant::now();
        let mut batch = WatchBatch::default();
        let add = |batch: &mut WatchBatch, r: Raw| {
            match r {
                Raw::Rescan => batch.rescan = true,
                Raw::Paths(ps, ren) => {
                    batch.paths.extend(ps);
                    if let Some(r) = ren {
                        batch.renames.push(r);
                    }
                }
            }
            batch.last_event = Some(Instant::now());
        };
        add(&mut batch, first);
        loop {
            let left = self.debounce.max_wait.saturating_sub(opened.elapsed());
            if left.is_zero() {
                break;
            }
            match self.rx.recv_timeout(self.debounce.quiet.min(left)) {
                Ok(r) => add(&mut batch, r),
                Err(_) => break,
            }
        }
        Some(batch)
    }
}
