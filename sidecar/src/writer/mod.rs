//! The single writer: one loop owns the [`Workspace`] (and with it every engine document) and
//! consumes one [`Event`] at a time, whatever its source (an editor connection, the disk
//! watcher, the flush timer, a signal; later the agent API and the durable log). Nothing else
//! mutates documents, so the order of events in the channel *is* the order of history.
//!
//! Invariants:
//! * Events from one connection are enqueued by the connection's service `call`, which the
//!   LSP transport invokes in message arrival order; hence per-connection order is preserved.
//! * For every editor with a document open, [`EditorDoc`] records the engine version and text
//!   the sidecar believes the editor's buffer has (`ed_version`/`ed_text`), the last state
//!   confirmed by an editor change, and the edits sent but not yet confirmed. An editor change
//!   is applied with `edit_at` at the version the editor actually had, so nothing is lost or
//!   doubled whatever was in flight (see `proto` for the revision protocol).
//! * Within a batch, consecutive changes of one editor to one document are accumulated
//!   ([`Acc`]) and applied with one `edit_at` (the same events as one call each). Any event that
//!   is not such a change, and every broadcast, applies the accumulations first, so nothing
//!   ever reads a stale editor version.
//! * After each batch of events, every editor whose version lags the document's receives the
//!   engine's transform from its version to the document version (one message per batch;
//!   plain LSP clients when they may be sent to, see [`plain`], else a timer wakes the loop).
//! * Bad input (unknown document, bad position, protocol violation) changes nothing: it is
//!   answered with an error, a logged drop, or a resync of that one editor.

mod agent;
mod editor;
mod plain;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::Frontier;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use vfs::pos::PositionEncoding;
use vfs::{FileId, Workspace};

use crate::proto::{ContentChange, DocMsg};
use editor::{Acc, Conn};

pub type ConnId = u64;

/// Write-back debounce: documents are written once no change came for `FLUSH_QUIET`, and at
/// the latest `FLUSH_MAX` after the first unsaved change (a write costs an fsync on the writer
/// thread, so it should not run between every two keystrokes).
pub const FLUSH_QUIET: Duration = Duration::from_millis(150);
pub const FLUSH_MAX: Duration = Duration::from_millis(1000);
/// At most this many queued events are handled before editors are updated.
const MAX_BATCH: usize = 256;

/// A message for one connection's client.
#[derive(Debug)]
pub enum Outgoing {
    Notify(&'static str, Value),
    /// `workspace/applyEdit` with one versioned document edit; the result comes back as
    /// `Event::ApplyResult { token }`.
    ApplyEdit {
        token: u64,
        uri: String,
        version: i64,
        change: ContentChange,
    },
    /// Close the connection (too slow, protocol violation...).
    Close(String),
}

/// What a connection told the writer when it initialized.
#[derive(Debug)]
pub struct Hello {
    pub name: String,
    pub encoding: PositionEncoding,
    pub revision_protocol: bool,
    /// How the client takes versioned `workspace/applyEdit` (used when not `revision_protocol`).
    pub apply_edits: crate::proto::ApplyEdits,
    /// `initializationOptions.reopen`: what the plugin's buffers are based on (see `reopen`).
    pub reopen: HashMap<String, crate::reopen::Hint>,
    /// Answered with the connection's engine agent (the initialize result carries it).
    pub agent_reply: Option<oneshot::Sender<String>>,
    pub out: mpsc::Sender<Outgoing>,
}

pub type Reply = oneshot::Sender<Result<Value, (i64, String)>>;

/// Every input of the daemon.
#[derive(Debug)]
pub enum Event {
    Hello {
        conn: ConnId,
        hello: Hello,
    },
    Doc {
        conn: ConnId,
        msg: DocMsg,
    },
    Request {
        conn: ConnId,
        method: String,
        params: Value,
        reply: Reply,
    },
    Closed {
        conn: ConnId,
    },
    /// Answer to an `Outgoing::ApplyEdit` (`false` also for errors).
    ApplyResult {
        conn: ConnId,
        token: u64,
        applied: bool,
    },
    Disk(vfs::disk::WatchBatch),
    /// A request of the agent API; answered by [`Writer::agent_call`].
    Agent(agent_api::Call),
    /// Clean shutdown: flush, then answer.
    Shutdown(oneshot::Sender<()>),
}

/// Counters for benchmarks and `dist-space/info`.
#[derive(Default, Clone, Debug)]
pub struct Stats {
    pub editor_changes: u64,
    pub edits_sent: u64,
    pub dropped_messages: u64,
    /// `workspace/applyEdit` round trips to plain clients: sent, answered applied, refused,
    /// not refused but not in the client's next change (skipped as stale, as Neovim does with
    /// `applied: true`), and echoes recognised in a `didChange`.
    pub apply_sent: u64,
    pub apply_applied: u64,
    pub apply_rejected: u64,
    pub apply_skipped: u64,
    pub apply_echoes: u64,
    /// Sum of (broadcast sent - change received) in µs, and count, for changes that caused one.
    pub change_to_broadcast_us: Vec<u32>,
}

pub struct Writer {
    ws: Workspace,
    root: PathBuf,
    socket: PathBuf,
    conns: HashMap<ConnId, Conn>,
    changed: BTreeSet<FileId>,
    flush_at: Option<Instant>,
    /// When plain clients waiting for a quiet moment, a backoff or an echo timeout may be sent
    /// to (see `plain`).
    retry_at: Option<Instant>,
    /// When the oldest unwritten change happened.
    dirty_since: Option<Instant>,
    /// Makes agent names unique across daemon runs: names are never reused.
    run_id: String,
    stats: Stats,
    batch_started: Option<Instant>,
    next_token: u64,
    /// Pending accumulated changes; flushed before anything reads editor versions.
    acc: HashMap<(ConnId, FileId), Acc>,
    /// The agent API's state (engine agent names of agent connections).
    agents: agent_api::AgentState,
    /// The durable history log (`None` in tests that run without one).
    log: Option<crate::store::Durable>,
    /// Reopen bases (see `open`): each text document's version and text when this run
    /// started (after recovery), and the last states of editors that disconnected.
    reopen: crate::reopen::Bases,
    /// Failing write-backs per path: how many failures in a row, and when one is logged next.
    write_failures: HashMap<String, Backoff>,
}

/// A repeated failure logged once, then again after 1 s, 2 s, 4 s... (at most hourly).
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u64,
    next_log: Instant,
    interval: Duration,
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(3600);

    fn new(now: Instant) -> Backoff {
        Backoff {
            failures: 0,
            next_log: now,
            interval: Duration::from_secs(1),
        }
    }

    /// One more failure: `true` when this one is to be logged.
    fn fail(&mut self, now: Instant) -> bool {
        self.failures += 1;
        if now < self.next_log {
            return false;
        }
        self.next_log = now + self.interval;
        self.interval = (self.interval * 2).min(Self::MAX);
        true
    }
}

fn rpc_err<T>(code: i64, msg: impl Into<String>) -> Result<T, (i64, String)> {
    Err((code, msg.into()))
}

impl Writer {
    pub fn new(ws: Workspace, socket: PathBuf, feed: agent_api::ChangeFeed) -> Writer {
        let root = ws.root().to_path_buf();
        let run_id = format!(
            "{:x}{:04x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            std::process::id() & 0xffff
        );
        let mut ws = ws;
        let reopen = crate::reopen::Bases::at_start(&mut ws);
        Writer {
            ws,
            root,
            socket,
            conns: HashMap::new(),
            changed: BTreeSet::new(),
            flush_at: None,
            retry_at: None,
            dirty_since: None,
            run_id: run_id.clone(),
            stats: Stats::default(),
            batch_started: None,
            next_token: 1,
            acc: HashMap::new(),
            agents: agent_api::AgentState::new(&run_id, feed),
            log: None,
            reopen,
            write_failures: HashMap::new(),
        }
    }

    /// Persist every accepted event in `log` (see `crate::store`).
    pub fn with_log(mut self, log: crate::store::Durable) -> Writer {
        self.log = Some(log);
        self
    }

    /// Durable log hook: append what this batch changed (group commit; agent replies wait
    /// for it, see `store::AckMode`).
    fn log_commit(&mut self) {
        if let Some(l) = &mut self.log {
            l.commit(&self.ws, self.changed.iter());
        }
    }

    /// The loop: one event at a time; after each batch, update editors; flush on the timer.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        loop {
            let timer = match (self.flush_at, self.retry_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let ev = match timer {
                Some(t) => tokio::select! {
                    ev = rx.recv() => ev,
                    _ = tokio::time::sleep_until(t.into()) => { self.timers(); continue; }
                },
                None => rx.recv().await,
            };
            let Some(ev) = ev else { break };
            self.batch_started = Some(Instant::now());
            if self.handle(ev) {
                return;
            }
            let mut n = 1;
            while n < MAX_BATCH {
                match rx.try_recv() {
                    Ok(ev) => {
                        if self.handle(ev) {
                            return;
                        }
                        n += 1;
                    }
                    Err(_) => break,
                }
            }
            self.broadcast();
            if self
                .log
                .as_mut()
                .is_some_and(|l| l.compaction_due(Instant::now()))
            {
                self.compact();
            }
        }
        self.broadcast();
        self.flush();
    }

    /// The flush or the plain-client retry timer fired.
    fn timers(&mut self) {
        let now = Instant::now();
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush();
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.plain_retry();
        }
    }

    /// Per document, every version a participant may still send edits from or ask about:
    /// connected editors' states (confirmed, current, every revision in flight, cursors) and
    /// what agents hold (see `agent_api::AgentState::retained`). Compaction keeps them all.
    fn retained(&mut self) -> HashMap<FileId, Vec<Frontier>> {
        self.flush_all_acc();
        let mut out = self.agents.retained(&self.ws);
        for c in self.conns.values() {
            for (f, ed) in &c.docs {
                let v = out.entry(*f).or_default();
                v.push(ed.confirmed.clone());
                v.push(ed.ed_version.clone());
                v.extend(ed.sent.iter().map(|x| x.after.clone()));
                v.extend(
                    ed.plain
                        .pending
                        .iter()
                        .flat_map(|p| p.sends.iter().map(|s| s.after.clone())),
                );
            }
            if let Some((f, v, _)) = &c.presence {
                out.entry(*f).or_default().push(v.clone());
            }
        }
        out
    }

    /// Bounded history: compact documents and rewrite the log (see `store::compact`).
    fn compact(&mut self) -> Option<crate::store::compact::CompactReport> {
        let retained = self.retained();
        let log = self.log.as_mut()?;
        match log.compact(&mut self.ws, &retained) {
            Ok(rep) => Some(rep),
            Err(e) => {
                error!(error = %e, "history compaction failed (the log is unchanged)");
                None
            }
        }
    }

    /// Returns true on shutdown.
    fn handle(&mut self, ev: Event) -> bool {
        let is_change = matches!(
            ev,
            Event::Doc {
                msg: DocMsg::Change(_) | DocMsg::RevChange(_),
                ..
            }
        );
        if !is_change {
            self.flush_all_acc();
        }
        match ev {
            Event::Hello { conn, hello } => self.hello(conn, hello),
            Event::Doc { conn, msg } => self.doc_msg(conn, msg),
            Event::Request {
                conn,
                method,
                params,
                reply,
            } => {
                let r = self.request(conn, &method, params);
                let _ = reply.send(r);
            }
            Event::Closed { conn } => self.closed(conn),
            Event::ApplyResult {
                conn,
                token,
                applied,
            } => self.apply_result(conn, token, applied),
            Event::Disk(batch) => {
                let rep = self.ws.apply_disk_batch(&batch);
                if let Some(l) = &mut self.log {
                    l.touch_disk(&self.ws, &batch);
                }
                if rep != vfs::DiskReport::default() {
                    debug!(?rep, "disk batch");
                }
                for m in &rep.merges {
                    // Counts only: the log never holds file contents.
                    info!(
                        path = %m.path,
                        kind = ?m.kind,
                        base = m.base,
                        closest = m.closest,
                        states = m.states,
                        inserted = m.inserted,
                        dropped = m.dropped,
                        kept = m.kept,
                        "external change merged"
                    );
                }
                for p in rep.modified.iter().chain(rep.created.iter()) {
                    if let Some(f) = self.ws.lookup(p) {
                        self.changed.insert(f);
                    }
                }
                self.schedule_flush();
            }
            Event::Agent(call) => self.agent_call(call),
            Event::Shutdown(done) => {
                self.flush_all_acc();
                self.broadcast();
                self.flush();
                info!("shutdown: documents flushed");
                let _ = done.send(());
                return true;
            }
        }
        false
    }

    fn schedule_flush(&mut self) {
        if self.ws.dirty_files().next().is_none() {
            return;
        }
        let now = Instant::now();
        let since = *self.dirty_since.get_or_insert(now);
        self.flush_at = Some((now + FLUSH_QUIET).min(since + FLUSH_MAX));
    }

    fn flush(&mut self) {
        self.flush_at = None;
        self.dirty_since = None;
        // The log holds every event before the disk does (recovery relies on it).
        self.log_commit();
        let before: Vec<FileId> = self.ws.dirty_files().collect();
        let rep = self.ws.flush();
        if let Some(l) = &mut self.log {
            l.commit(&self.ws, before.iter());
        }
        let now = Instant::now();
        for p in &rep.written {
            if let Some(b) = self.write_failures.remove(p) {
                info!(path = %crate::proto::short(p, 200), failures = b.failures, "write-back succeeded again");
            }
        }
        for (p, e) in &rep.failed {
            let b = self
                .write_failures
                .entry(p.clone())
                .or_insert_with(|| Backoff::new(now));
            if b.fail(now) {
                warn!(
                    path = %crate::proto::short(p, 200),
                    error = %crate::proto::short(e, 200),
                    failures = b.failures,
                    next_log_in_s = b.interval.as_secs() / 2,
                    "write-back failed (retried every second; logged again with backoff)"
                );
            }
        }
        // Paths that are gone (deleted, renamed) fail no more.
        if !self.write_failures.is_empty() {
            let ws = &self.ws;
            self.write_failures.retain(|p, _| ws.lookup(p).is_some());
        }
        if !rep.failed.is_empty() {
            self.flush_at = Some(Instant::now() + Duration::from_secs(1));
        }
    }

    fn request(
        &mut self,
        conn: ConnId,
        method: &str,
        params: Value,
    ) -> Result<Value, (i64, String)> {
        const INVALID_PARAMS: i64 = -32602;
        const NOT_FOUND: i64 = -32601;
        match method {
            "dist-space/info" => {
                let participants: Vec<Value> = self
                    .conns
                    .iter()
                    .map(|(id, c)| {
                        let doc = c
                            .presence
                            .as_ref()
                            .and_then(|(f, _, _)| self.ws.path(*f))
                            .map(str::to_string);
                        json!({"id": id, "name": c.name, "agent": c.agent, "file": doc,
                               "documents": c.docs.len()})
                    })
                    .collect();
                Ok(json!({
                    "root": self.root, "socket": self.socket, "pid": std::process::id(),
                    "version": env!("CARGO_PKG_VERSION"),
                    "me": conn, "participants": participants,
                    "agent": self.conns.get(&conn).map(|c| c.agent.clone()),
                    "files": self.ws.len(),
                }))
            }
            "dist-space/text" => {
                let uri = params
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or((INVALID_PARAMS, "missing uri".to_string()))?;
                let f = self.conn_file(conn, uri).map_err(|e| (INVALID_PARAMS, e))?;
                let text = self.ws.text(f).unwrap_or_default();
                let tf = self.ws.text_file(f).expect("text file");
                let v = tf.doc.remote_version(tf.doc.version());
                Ok(json!({"text": text.to_string(), "version": v, "dirty": tf.is_dirty()}))
            }
            "dist-space/save" => {
                self.flush();
                Ok(json!({"ok": true}))
            }
            "dist-space/compact" => {
                // Write back first: the disk base bounds the horizon.
                self.flush();
                match self.compact() {
                    Some(r) => Ok(json!({
                        "documents": r.documents, "compacted": r.compacted,
                        "eventsDropped": r.events_dropped, "heldBack": r.held_back,
                        "logBefore": r.log_before, "logAfter": r.log_after,
                        "millis": r.millis, "summary": r.summary(),
                    })),
                    None => rpc_err(
                        -32603,
                        "no history log, or compaction failed (see the daemon log)".to_string(),
                    ),
                }
            }
            "dist-space/stats" => {
                let mut v = self.stats.change_to_broadcast_us.clone();
                v.sort_unstable();
                let pct = |p: f64| -> u32 {
                    if v.is_empty() {
                        0
                    } else {
                        v[((v.len() - 1) as f64 * p).round() as usize]
                    }
                };
                let reset = params
                    .get("reset")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let out = json!({
                    "editorChanges": self.stats.editor_changes,
                    "editsSent": self.stats.edits_sent,
                    "dropped": self.stats.dropped_messages,
                    "applyEditSent": self.stats.apply_sent,
                    "applyEditApplied": self.stats.apply_applied,
                    "applyEditRejected": self.stats.apply_rejected,
                    "applyEditSkipped": self.stats.apply_skipped,
                    "applyEditEchoes": self.stats.apply_echoes,
                    "broadcasts": v.len(),
                    "changeToBroadcastP50Us": pct(0.5),
                    "changeToBroadcastP99Us": pct(0.99),
                });
                if reset {
                    self.stats = Stats::default();
                }
                Ok(out)
            }
            _ => rpc_err(NOT_FOUND, format!("unknown method {method}")),
        }
    }
}

/// `p` relative to `root` as a `/` path, resolving symlinks of the parent when needed.
fn rel_under(root: &Path, p: &Path) -> Option<String> {
    let try_rel = |p: &Path| -> Option<String> {
        let r = p.strip_prefix(root).ok()?;
        let s = r.to_str()?;
        if s.is_empty()
            || r.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return None;
        }
        if r.components().next()?.as_os_str() == proto_state_dir() {
            return None;
        }
        Some(s.to_string())
    };
    if let Some(r) = try_rel(p) {
        return Some(r);
    }
    let parent = std::fs::canonicalize(p.parent()?).ok()?;
    try_rel(&parent.join(p.file_name()?))
}

fn proto_state_dir() -> &'static str {
    crate::paths::STATE_DIR
}

/// Shared handle for starting the writer thread.
pub type EventTx = mpsc::UnboundedSender<Event>;

/// Load the workspace and run the writer on its own thread (with a current-thread runtime),
/// so document work never competes with socket IO for the async executor.
pub fn spawn_writer(
    root: &Path,
    socket: PathBuf,
    rx: mpsc::UnboundedReceiver<Event>,
    feed: agent_api::ChangeFeed,
    config: crate::store::Config,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut noop = |_p: vfs::load::Progress| {};
    let mut ws = Workspace::load(root, vfs::WorkspaceOptions::default(), &mut noop)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    info!(files = ws.len(), "workspace loaded");
    let (log, report) = crate::store::recover(&mut ws, config)?;
    if !report.is_clean() {
        eprintln!("dist-space: {}", report.summary());
    }
    let mut writer = Writer::new(ws, socket, feed).with_log(log);
    if !report.unwritten.is_empty()
        || !report.disk_merged.is_empty()
        || !report.recreated.is_empty()
    {
        // Documents must equal the disk again: write back what the disk lacks now.
        writer.flush();
    }
    let h = std::thread::Builder::new()
        .name("dist-space-writer".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime");
            rt.block_on(writer.run(rx));
        })?;
    Ok(h)
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    /// A failure every 100 ms for a minute is logged about 7 times, not 600.
    #[test]
    fn repeated_failures_are_logged_with_backoff() {
        let t0 = Instant::now();
        let mut b = Backoff::new(t0);
        let logged = (0..600)
            .filter(|i| b.fail(t0 + Duration::from_millis(100 * i)))
            .count();
        assert_eq!(b.failures, 600);
        assert!((5..=8).contains(&logged), "{logged}");
    }
}
