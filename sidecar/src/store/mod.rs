//! The durable history log: every event the writer accepts is appended to
//! `ROOT/.dist-space/history.log` (format: [`frame`]) before anyone is told about it.
//!
//! * [`Durable`] is the writer's side: [`Durable::commit`] is called once per writer batch
//!   (and before every write-back); it appends one frame per changed document (the engine's
//!   encoding of the events since the last frame), per moved disk base, per rename and delete,
//!   with a single `write(2)`, then hands the batch's agent replies to the sync thread, which
//!   `fdatasync`s once for every batch that arrived meanwhile (group commit) and only then
//!   sends them (default [`AckMode::Durable`]).
//! * [`recover`] runs at start-up, before the writer: it scans the log, cuts a torn tail,
//!   quarantines a corrupt log (renamed aside, the good prefix kept), rebuilds every document
//!   with its history, and reconciles it with the disk as loaded (see `recover.rs`).
//!
//! Identity: a document is a [`frame::DocKey`], given when its first event is logged and kept
//! across renames (tracked through the workspace tree's view: a path change of the same
//! `FileId` is a `Rename` record); a file that left the tree is a `Delete` record.

pub mod compact;
pub mod frame;
mod recover;

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as smpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::Frontier;
use serde::Deserialize;
use tracing::{error, warn};
use vfs::{FileId, Workspace};

use frame::{DocKey, Record};
pub use recover::{recover, replay as recover_replay};

pub const LOG_FILE: &str = "history.log";
pub const CONFIG_FILE: &str = "config.json";

pub fn log_path(root: &Path) -> PathBuf {
    crate::paths::state_dir(root).join(LOG_FILE)
}

/// When an agent's reply (the acknowledgement of its edit) is sent, relative to durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// After `fdatasync` of the log holding the edit (survives power loss). Default.
    Durable,
    /// After `write(2)` of the log (survives a crash of the daemon, not of the machine);
    /// `fdatasync` follows within `sync_window_ms`.
    Written,
}

/// `ROOT/.dist-space/config.json`, key `"log"` (all optional), overridden by the environment
/// variables `DIST_SPACE_LOG_ACK` (`durable`/`written`) and `DIST_SPACE_LOG_SYNC_WINDOW_MS`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub ack: AckMode,
    /// Durable mode: how long the sync thread may wait after the first unsynced batch to
    /// gather more before it syncs (0 = sync at once; batches arriving during an `fdatasync`
    /// share the next one anyway). Written mode: the bound on how late the sync follows.
    /// At most 50.
    pub sync_window_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            ack: AckMode::Durable,
            sync_window_ms: 0,
        }
    }
}

#[derive(Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    log: Option<LogConfig>,
    #[serde(default)]
    history: Option<compact::HistoryConfig>,
    /// Missing: the default; `null`: never.
    #[serde(default, rename = "idleSecs", deserialize_with = "present")]
    idle_secs: Option<Option<u64>>,
}

/// A present key (`null` included) as `Some`, so that a missing key keeps its default.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// How long a daemon started on demand stays with nobody connected (`"idleSecs"`).
pub const DEFAULT_IDLE_SECS: u64 = 600;

/// A workspace's configuration: `ROOT/.dist-space/config.json` (keys `"log"`, `"history"`
/// and `"idleSecs"`), read once, then the environment. A bad file is reported and the
/// defaults are used.
#[derive(Clone, Debug)]
pub struct Config {
    pub log: LogConfig,
    pub history: compact::HistoryConfig,
    /// Seconds a daemon started on demand (`serve --auto`) stays with no editor or agent
    /// connected; `None` (`null` or 0): until stopped.
    pub idle_secs: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log: LogConfig::default(),
            history: compact::HistoryConfig::default(),
            idle_secs: Some(DEFAULT_IDLE_SECS),
        }
    }
}

impl LogConfig {
    pub const MAX_WINDOW_MS: u64 = 50;
}

impl Config {
    pub fn load(root: &Path) -> Config {
        let p = crate::paths::state_dir(root).join(CONFIG_FILE);
        let f = match fs::read_to_string(&p) {
            Ok(s) => serde_json::from_str::<ConfigFile>(&s).unwrap_or_else(|e| {
                warn!(file = %p.display(), error = %e, "bad config file: defaults used");
                ConfigFile::default()
            }),
            Err(_) => ConfigFile::default(),
        };
        let mut c = f.log.unwrap_or_default();
        if let Ok(v) = std::env::var("DIST_SPACE_LOG_ACK") {
            match v.as_str() {
                "durable" => c.ack = AckMode::Durable,
                "written" => c.ack = AckMode::Written,
                _ => warn!(value = %v, "DIST_SPACE_LOG_ACK must be durable or written"),
            }
        }
        if let Some(ms) = std::env::var("DIST_SPACE_LOG_SYNC_WINDOW_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            c.sync_window_ms = ms;
        }
        c.sync_window_ms = c.sync_window_ms.min(LogConfig::MAX_WINDOW_MS);
        Config {
            log: c,
            history: f.history.unwrap_or_default(),
            idle_secs: match f.idle_secs {
                None => Some(DEFAULT_IDLE_SECS),
                Some(Some(0)) | Some(None) => None,
                Some(s) => s,
            },
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the log knows of one workspace file.
#[derive(Clone, Debug)]
pub(crate) struct Tracked {
    pub key: DocKey,
    pub path: String,
    /// The document version the log holds up to.
    pub logged: Frontier,
    /// The disk base the log last recorded.
    pub disk: Frontier,
    /// When its logged history was made (for the age and size rules of compaction).
    pub marks: Vec<compact::Mark>,
}

type AgentReply = (
    tokio::sync::oneshot::Sender<Result<serde_json::Value, agent_api::ApiError>>,
    Result<serde_json::Value, agent_api::ApiError>,
);

enum SyncMsg {
    /// Sync what was written, then send these replies.
    Sync(Vec<AgentReply>),
    /// The log was rewritten (compaction): from now on sync this file, which is synced up to
    /// this length already.
    Swap(File, u64),
}

/// Counters for `dist-space/stats` and the benchmark.
#[derive(Default, Debug, Clone)]
pub struct LogStats {
    pub records: u64,
    pub bytes: u64,
    pub commits: u64,
    pub write_errors: u64,
    /// Log rewrites (compactions).
    pub rewrites: u64,
}

/// The writer's handle on the log (see the module doc).
pub struct Durable {
    file: File,
    len: u64,
    tracked: HashMap<FileId, Tracked>,
    next_key: DocKey,
    tree_gen: u64,
    buf: Vec<u8>,
    replies: Vec<AgentReply>,
    /// Files whose disk base may have moved without a document change (disk batches).
    touched: BTreeSet<FileId>,
    cfg: LogConfig,
    sync_tx: Option<smpsc::Sender<SyncMsg>>,
    sync_thread: Option<std::thread::JoinHandle<()>>,
    written: Arc<AtomicU64>,
    /// Log length last handed to the sync thread.
    notified: u64,
    pub stats: LogStats,
    /// Bounded history (see [`compact`]).
    history: compact::HistoryConfig,
    next_check: Instant,
    /// The log's length after the last rewrite (or at start).
    len_at_rewrite: u64,
}

fn sync_loop(
    mut file: File,
    rx: smpsc::Receiver<SyncMsg>,
    written: Arc<AtomicU64>,
    cfg: LogConfig,
) {
    let mut synced = 0u64;
    let window = Duration::from_millis(cfg.sync_window_ms);
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        if !window.is_zero() {
            let until = Instant::now() + window;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(m) => batches.push(m),
                    Err(_) => break,
                }
            }
        }
        while let Ok(m) = rx.try_recv() {
            batches.push(m);
        }
        for m in batches {
            match m {
                SyncMsg::Sync(replies) => {
                    // Everything written before this message was sent is covered.
                    let w = written.load(Ordering::Acquire);
                    if w > synced {
                        if let Err(e) = file.sync_data() {
                            error!(error = %e, "fdatasync of the history log failed");
                        }
                        synced = w;
                    }
                    for (tx, r) in replies {
                        let _ = tx.send(r);
                    }
                }
                SyncMsg::Swap(f, len) => {
                    // Everything before the swap is in the new file, which is synced.
                    file = f;
                    synced = len;
                }
            }
        }
    }
    let _ = file.sync_data();
}

impl Durable {
    fn start(
        file: File,
        len: u64,
        tracked: HashMap<FileId, Tracked>,
        next_key: DocKey,
        cfg: LogConfig,
        history: compact::HistoryConfig,
    ) -> io::Result<Durable> {
        let written = Arc::new(AtomicU64::new(len));
        let (tx, rx) = smpsc::channel();
        let sf = file.try_clone()?;
        let w2 = written.clone();
        let c2 = cfg.clone();
        let h = std::thread::Builder::new()
            .name("dist-space-sync".into())
            .spawn(move || sync_loop(sf, rx, w2, c2))?;
        Ok(Durable {
            file,
            len,
            tracked,
            next_key,
            tree_gen: u64::MAX,
            buf: Vec::new(),
            replies: Vec::new(),
            touched: BTreeSet::new(),
            cfg,
            sync_tx: Some(tx),
            sync_thread: Some(h),
            written,
            notified: len,
            stats: LogStats::default(),
            // The first check comes with the first commit: a log recovered over the limit is
            // compacted at start-up.
            next_check: Instant::now(),
            history,
            len_at_rewrite: 0,
        })
    }

    /// The files of a disk batch: their disk base may move with no new event (the disk
    /// caught up with the document), which the next commit must record.
    pub fn touch_disk(&mut self, ws: &Workspace, batch: &vfs::disk::WatchBatch) {
        if batch.rescan {
            self.touched.extend(self.tracked.keys().copied());
        }
        let paths = batch
            .paths
            .iter()
            .chain(batch.renames.iter().map(|(_, b)| b));
        for p in paths {
            if let Some(f) = vfs::load::rel_path(ws.root(), p).and_then(|r| ws.lookup(&r)) {
                self.touched.insert(f);
            }
        }
    }

    /// Queue an agent's reply: sent once the batch's events are durable (see [`AckMode`]).
    pub fn defer_reply(&mut self, reply: AgentReply) {
        self.replies.push(reply);
    }

    pub(crate) fn push(&mut self, r: &Record) {
        self.buf.extend_from_slice(&frame::encode(r));
        self.stats.records += 1;
    }

    /// Log what changed in `changed` (and in the tree) since the last commit, with one
    /// `write(2)`, then release the queued replies per the ack mode.
    pub fn commit<'a>(&mut self, ws: &Workspace, changed: impl IntoIterator<Item = &'a FileId>) {
        let time = now_ms();
        let gen = ws.tree().view_generation();
        if gen != self.tree_gen {
            self.tree_gen = gen;
            self.log_tree(ws, time);
        }
        let mut files: BTreeSet<FileId> = std::mem::take(&mut self.touched);
        files.extend(changed);
        files.extend(ws.dirty_files());
        for f in files {
            self.log_file(ws, f, time);
        }
        self.write_out();
    }

    /// Renames and deletes of tracked files.
    fn log_tree(&mut self, ws: &Workspace, time: u64) {
        let mut recs = Vec::new();
        self.tracked.retain(|f, t| match ws.path(*f) {
            Some(p) if ws.text_file(*f).is_some() => {
                if p != t.path {
                    t.path = p.to_string();
                    recs.push(Record::Rename {
                        key: t.key,
                        time,
                        path: t.path.clone(),
                    });
                }
                true
            }
            _ => {
                recs.push(Record::Delete { key: t.key, time });
                false
            }
        });
        for r in &recs {
            self.push(r);
        }
    }

    fn log_file(&mut self, ws: &Workspace, f: FileId, time: u64) {
        let Some(tf) = ws.text_file(f) else { return };
        let Some(doc) = tf.doc.built() else { return };
        let Some(path) = ws.path(f) else { return };
        let v = doc.version();
        let t = match self.tracked.get_mut(&f) {
            Some(t) => {
                if *v != t.logged {
                    let chunk = doc.encode_since(&doc.remote_version(&t.logged));
                    t.logged = v.clone();
                    let key = t.key;
                    let bytes = t.marks.last().map_or(0, |m| m.bytes) + chunk.len() as u64;
                    compact::push_mark(
                        &mut t.marks,
                        compact::Mark {
                            time,
                            events: doc.oplog().len() as u64,
                            bytes,
                        },
                    );
                    self.push(&Record::Events { key, time, chunk });
                }
                self.tracked.get_mut(&f).expect("present")
            }
            None => {
                if v.as_slice().is_empty() {
                    return; // no events: the disk holds it
                }
                let key = self.next_key;
                self.next_key += 1;
                let chunk = doc.encode();
                let mark = compact::Mark {
                    time,
                    events: doc.oplog().len() as u64,
                    bytes: chunk.len() as u64,
                };
                self.push(&Record::DocNew {
                    key,
                    time,
                    path: path.to_string(),
                    chunk,
                });
                self.tracked.insert(
                    f,
                    Tracked {
                        key,
                        path: path.to_string(),
                        logged: v.clone(),
                        disk: Frontier::root(),
                        marks: vec![mark],
                    },
                );
                self.tracked.get_mut(&f).expect("inserted")
            }
        };
        if *tf.disk_base() != t.disk {
            t.disk = tf.disk_base().clone();
            let r = Record::DiskBase {
                key: t.key,
                time,
                version: doc.remote_version(&t.disk),
            };
            self.push(&r);
        }
    }

    fn write_out(&mut self) {
        if !self.buf.is_empty() {
            match self.file.write_all(&self.buf) {
                Ok(()) => {
                    self.len += self.buf.len() as u64;
                    self.stats.bytes += self.buf.len() as u64;
                    self.stats.commits += 1;
                    self.buf.clear();
                    self.written.store(self.len, Ordering::Release);
                }
                Err(e) => {
                    // Cut a partial frame off so later appends stay readable; retried on the
                    // next commit (the events are still in memory and on their way to disk).
                    self.stats.write_errors += 1;
                    error!(error = %e, pending = self.buf.len(), "history log append failed (will retry)");
                    let _ = self.file.set_len(self.len);
                }
            }
        }
        if self.replies.is_empty() && self.len == self.notified {
            return; // nothing new to sync or acknowledge
        }
        self.notified = self.len;
        let replies = std::mem::take(&mut self.replies);
        match self.cfg.ack {
            AckMode::Durable => self.send_sync(replies),
            AckMode::Written => {
                for (tx, r) in replies {
                    let _ = tx.send(r);
                }
                self.send_sync(Vec::new());
            }
        }
    }

    fn send_sync(&mut self, replies: Vec<AgentReply>) {
        if let Some(tx) = &self.sync_tx {
            if let Err(smpsc::SendError(SyncMsg::Sync(rs))) = tx.send(SyncMsg::Sync(replies)) {
                for (tx, r) in rs {
                    let _ = tx.send(r);
                }
            }
        }
    }

    /// Append a note (recovery reports) and commit it.
    pub fn note(&mut self, text: &str) {
        self.push(&Record::Note {
            time: now_ms(),
            text: text.to_string(),
        });
        self.write_out();
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.sync_tx = None;
        if let Some(h) = self.sync_thread.take() {
            let _ = h.join();
        }
    }
}

/// fsync a folder (after creating or renaming a file in it).
pub(crate) fn sync_dir(d: &Path) {
    if let Ok(f) = File::open(d) {
        let _ = f.sync_all();
    }
}

/// Where [`create_log`] writes before renaming over the log.
pub(crate) fn tmp_path(log: &Path) -> PathBuf {
    log.with_extension("log.tmp")
}

/// Replace the log at `path` atomically (write beside it, `fsync`, rename, `fsync` the
/// folder) by `prefix` (a whole log image, header included), or by an empty log (header only).
pub(crate) fn create_log(path: &Path, prefix: Option<&[u8]>) -> io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        match prefix {
            Some(p) if !p.is_empty() => f.write_all(p)?,
            _ => f.write_all(&frame::encode(&Record::Header {
                version: frame::FORMAT_VERSION,
            }))?,
        }
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(d) = path.parent() {
        sync_dir(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_secs_missing_null_zero_and_set() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(crate::paths::STATE_DIR)).unwrap();
        let file = crate::paths::state_dir(dir.path()).join(CONFIG_FILE);
        assert_eq!(Config::load(dir.path()).idle_secs, Some(DEFAULT_IDLE_SECS));
        for (json, want) in [
            ("{}", Some(DEFAULT_IDLE_SECS)),
            (r#"{"idleSecs": null}"#, None),
            (r#"{"idleSecs": 0}"#, None),
            (r#"{"idleSecs": 5, "history": {"keepEvents": 10}}"#, Some(5)),
            // A bad file gives the defaults.
            (r#"{"idleSecs": "soon"}"#, Some(DEFAULT_IDLE_SECS)),
        ] {
            fs::write(&file, json).unwrap();
            assert_eq!(Config::load(dir.path()).idle_secs, want, "{json}");
        }
    }
}
