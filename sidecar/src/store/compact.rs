//! Bounded history: the horizon policy, and compaction of the documents and of the
//! log file.
//!
//! **Policy** (`ROOT/.dist-space/config.json`, key `"history"`, see [`HistoryConfig`]): every
//! document keeps its full history back to a horizon chosen so that each rule that is set keeps
//! what it asks for — by age (`keepSecs`: everything committed in the last N seconds), by count
//! (`keepEvents`: the newest N events) and by size (`keepBytes`: the newest N bytes of logged
//! history) — and so that every version a participant still holds survives (*retention*: the
//! disk base, every state a connected editor may send changes from, the versions connected
//! agents were handed, anchors and open branches; see the writer's `retained`). The horizon is
//! the newest critical version (`engine::Document::horizon_keeping_last`) at or before all of
//! these.
//!
//! **When**: after a commit, at most every `checkSecs`, once the log file is larger than
//! `compactLogBytes` and has grown by half since the last rewrite; on request
//! (`dist-space/compact`); and at start-up when the recovered log is over the limit.
//!
//! **How**: each document is compacted in memory (`vfs::Workspace::compact_document`), then the
//! log is rewritten: header, a note, and per live document one `DocNew` (the compacted
//! document, its text at the horizon plus the history after it), its `Times` marks and its
//! `DiskBase`. Deleted documents' histories are dropped. The new file replaces the log with
//! `create_log` (written beside it, `fsync`ed, renamed over it, the folder `fsync`ed): a crash
//! at any moment leaves either the old or the new log, both complete. The sync thread switches to the new file in order
//! (see `SyncMsg::Swap`).
//!
//! A request for a version older than a horizon fails with "resync needed" (agent API error
//! -32060, with the horizon and how to get a snapshot; engine `BeforeHorizon`), never with
//! wrong data.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io;
use std::sync::atomic::Ordering;

use engine::{Document, Frontier};
use serde::Deserialize;
use tracing::{info, warn};
use vfs::{FileId, Workspace};

use super::frame::{self, Record};
use super::{create_log, log_path, now_ms, Durable, SyncMsg};

/// One point of a document's logged history: `events` local versions existed at `time` (ms),
/// and the document's records up to there took `bytes` bytes of log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub time: u64,
    pub events: u64,
    pub bytes: u64,
}

/// Most marks kept per document (older ones are thinned, which only ever keeps more).
const MAX_MARKS: usize = 4096;

/// Adds a mark, merging marks of the same second and thinning old ones. Merging stamps
/// the earlier events with the later time: the age rule then keeps them longer, never less.
pub fn push_mark(marks: &mut Vec<Mark>, m: Mark) {
    match marks.last_mut() {
        Some(last) if last.time / 1000 == m.time / 1000 || m.events <= last.events => {
            last.time = last.time.max(m.time);
            last.events = last.events.max(m.events);
            last.bytes = last.bytes.max(m.bytes);
        }
        _ => marks.push(m),
    }
    if marks.len() > MAX_MARKS {
        // Drop every other mark of the older half.
        let half = marks.len() / 2;
        let mut i = 0;
        marks.retain(|_| {
            i += 1;
            i > half || i % 2 == 0
        });
    }
}

fn default_keep_secs() -> Option<u64> {
    Some(7 * 24 * 3600)
}
fn default_keep_events() -> Option<u64> {
    Some(100_000)
}
fn default_compact_log_bytes() -> u64 {
    8 << 20
}
fn default_check_secs() -> u64 {
    60
}

/// `config.json` key `"history"` (all optional; `null` turns a rule off).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryConfig {
    /// Age rule: keep everything committed in the last this many seconds. Default 7 days.
    #[serde(default = "default_keep_secs")]
    pub keep_secs: Option<u64>,
    /// Count rule: keep at least this many newest events per document. Default 100,000.
    #[serde(default = "default_keep_events")]
    pub keep_events: Option<u64>,
    /// Size rule: keep at least this many bytes of newest logged history per document.
    /// Default off.
    #[serde(default)]
    pub keep_bytes: Option<u64>,
    /// Compact once the log file is larger than this (and grew by half since the last
    /// rewrite). Default 8 MiB. 0: at every check.
    #[serde(default = "default_compact_log_bytes")]
    pub compact_log_bytes: u64,
    /// How often (seconds) the writer checks the log size. Default 60.
    #[serde(default = "default_check_secs")]
    pub check_secs: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            keep_secs: default_keep_secs(),
            keep_events: default_keep_events(),
            keep_bytes: None,
            compact_log_bytes: default_compact_log_bytes(),
            check_secs: default_check_secs(),
        }
    }
}

/// What one compaction did.
#[derive(Clone, Debug, Default)]
pub struct CompactReport {
    pub documents: usize,
    /// Documents whose horizon moved, and events dropped in all.
    pub compacted: usize,
    pub events_dropped: usize,
    /// Documents held back by a participant's version (retention).
    pub held_back: usize,
    pub log_before: u64,
    pub log_after: u64,
    pub millis: u64,
}

impl CompactReport {
    pub fn summary(&self) -> String {
        format!(
            "compacted {} of {} documents ({} events dropped, {} held back by participants); log {} -> {} bytes in {} ms",
            self.compacted,
            self.documents,
            self.events_dropped,
            self.held_back,
            self.log_before,
            self.log_after,
            self.millis
        )
    }
}

/// Where a version's history ends: its history is the LV prefix `0..end` when it is critical.
fn end_of(v: &Frontier) -> u64 {
    v.as_slice().iter().max().map_or(0, |x| *x as u64 + 1)
}

/// The marks of a compacted document whose kept history is one chunk of `chunk_bytes` (a
/// rewritten log's `DocNew`): those of compacted events dropped, the bytes spread over the
/// chunk by event count.
pub fn marks_over_chunk(doc: &Document, times: &[(u64, u64)], chunk_bytes: u64) -> Vec<Mark> {
    let first = doc.oplog().first_lv() as u64;
    let span = (doc.oplog().len() as u64).saturating_sub(first).max(1);
    let mut marks = Vec::new();
    for &(time, events) in times.iter().filter(|(_, n)| *n > first) {
        let bytes = chunk_bytes * (events - first) / span;
        push_mark(
            &mut marks,
            Mark {
                time,
                events,
                bytes,
            },
        );
    }
    marks
}

/// The LV boundary the policy allows compacting up to (events before it may go).
fn policy_cut(doc: &Document, marks: &[Mark], cfg: &HistoryConfig, now: u64) -> u64 {
    let n = doc.oplog().len() as u64;
    let mut cut = n;
    if let Some(secs) = cfg.keep_secs {
        let before = now.saturating_sub(secs.saturating_mul(1000));
        let k = marks
            .iter()
            .take_while(|m| m.time <= before)
            .last()
            .map_or(0, |m| m.events);
        cut = cut.min(k);
    }
    if let Some(keep) = cfg.keep_events {
        cut = cut.min(n.saturating_sub(keep));
    }
    if let Some(keep) = cfg.keep_bytes {
        let total = marks.last().map_or(0, |m| m.bytes);
        let k = marks
            .iter()
            .take_while(|m| total.saturating_sub(m.bytes) >= keep)
            .last()
            .map_or(0, |m| m.events);
        cut = cut.min(k);
    }
    cut
}

/// The horizon for `doc`: the newest critical version before the policy's cut and included in
/// every retained version. `None` when it would not move. Also says whether retention held it
/// back.
pub fn choose_horizon(
    doc: &Document,
    marks: &[Mark],
    cfg: &HistoryConfig,
    retained: &[Frontier],
    now: u64,
) -> (Option<Frontier>, bool) {
    let n = doc.oplog().len() as u64;
    let policy = policy_cut(doc, marks, cfg, now);
    let mut cut = policy;
    for r in retained {
        cut = cut.min(end_of(&doc.horizon_candidate(r)));
    }
    let held = cut < policy;
    let current = doc.oplog().first_lv() as u64;
    if cut <= current {
        return (None, held);
    }
    let h = doc.horizon_keeping_last((n - cut) as usize);
    if end_of(&h) <= current {
        return (None, held);
    }
    (Some(h), held)
}

impl Durable {
    /// Is a compaction due (see the module doc)? Cheap; call after commits.
    pub fn compaction_due(&mut self, now: std::time::Instant) -> bool {
        if now < self.next_check {
            return false;
        }
        self.next_check = now + std::time::Duration::from_secs(self.history.check_secs.max(1));
        self.len >= self.history.compact_log_bytes && self.len >= self.len_at_rewrite * 3 / 2
    }

    /// Compacts every tracked document (policy plus `retained`: per file, the versions a
    /// participant still holds) and rewrites the log. Queued replies are flushed first.
    pub fn compact(
        &mut self,
        ws: &mut Workspace,
        retained: &HashMap<FileId, Vec<Frontier>>,
    ) -> io::Result<CompactReport> {
        let t0 = std::time::Instant::now();
        // Everything in memory goes to the log first (it is rewritten from memory below).
        self.commit(ws, std::iter::empty());
        let now = now_ms();
        let mut rep = CompactReport {
            log_before: self.len,
            ..Default::default()
        };
        let files: Vec<FileId> = self.tracked.keys().copied().collect();
        for f in files {
            let Some(tf) = ws.text_file(f) else { continue };
            let Some(doc) = tf.doc.built() else { continue };
            rep.documents += 1;
            let mut keep: Vec<Frontier> = retained.get(&f).cloned().unwrap_or_default();
            keep.push(tf.disk_base().clone());
            let marks = &self.tracked[&f].marks;
            let (h, held) = choose_horizon(doc, marks, &self.history, &keep, now);
            rep.held_back += usize::from(held);
            let Some(h) = h else { continue };
            match ws.compact_document(f, &h) {
                Ok(n) => {
                    rep.compacted += 1;
                    rep.events_dropped += n;
                }
                Err(e) => warn!(file = ?ws.path(f), error = %e, "compaction skipped"),
            }
        }
        self.rewrite(ws, now, &rep)?;
        rep.log_after = self.len;
        rep.millis = t0.elapsed().as_millis() as u64;
        info!(summary = %rep.summary(), "history compacted");
        Ok(rep)
    }

    /// Replace the log with one holding exactly the tracked documents as they are in memory
    /// (see the module doc).
    fn rewrite(&mut self, ws: &Workspace, now: u64, rep: &CompactReport) -> io::Result<()> {
        let path = log_path(ws.root());
        let mut out = frame::encode(&Record::Header {
            version: frame::FORMAT_VERSION,
        });
        out.extend(frame::encode(&Record::Note {
            time: now,
            text: format!(
                "log rewritten: {} ({} documents)",
                rep.summary(),
                self.tracked.len()
            ),
        }));
        let mut keys: Vec<(u64, FileId)> = self.tracked.iter().map(|(f, t)| (t.key, *f)).collect();
        keys.sort();
        for (key, f) in keys {
            let (Some(tf), Some(p)) = (ws.text_file(f), ws.path(f)) else {
                continue;
            };
            let Some(doc) = tf.doc.built() else { continue };
            let chunk = doc.encode();
            let t = self.tracked.get_mut(&f).expect("listed");
            let times: Vec<(u64, u64)> = t.marks.iter().map(|m| (m.time, m.events)).collect();
            t.marks = marks_over_chunk(doc, &times, chunk.len() as u64);
            t.path = p.to_string();
            t.logged = doc.version().clone();
            t.disk = tf.disk_base().clone();
            let time = t.marks.last().map_or(now, |m| m.time);
            out.extend(frame::encode(&Record::DocNew {
                key,
                time,
                path: p.to_string(),
                chunk,
            }));
            out.extend(frame::encode(&Record::Times {
                key,
                time,
                marks: t.marks.iter().map(|m| (m.time, m.events)).collect(),
            }));
            out.extend(frame::encode(&Record::DiskBase {
                key,
                time,
                version: doc.remote_version(&t.disk),
            }));
        }
        create_log(&path, Some(&out))?;
        let file = OpenOptions::new().append(true).open(&path)?;
        let len = out.len() as u64;
        let sf = file.try_clone()?;
        self.file = file;
        self.len = len;
        self.len_at_rewrite = len;
        self.notified = len;
        self.written.store(len, Ordering::Release);
        if let Some(tx) = &self.sync_tx {
            if tx.send(SyncMsg::Swap(sf, len)).is_err() {
                warn!("sync thread gone while swapping the log");
            }
        }
        self.stats.rewrites += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_merge_per_second_and_thin_out() {
        let mut m = Vec::new();
        push_mark(
            &mut m,
            Mark {
                time: 1_000,
                events: 1,
                bytes: 10,
            },
        );
        push_mark(
            &mut m,
            Mark {
                time: 1_500,
                events: 2,
                bytes: 20,
            },
        );
        assert_eq!(
            m,
            vec![Mark {
                time: 1_500,
                events: 2,
                bytes: 20
            }]
        );
        for i in 0..10_000u64 {
            push_mark(
                &mut m,
                Mark {
                    time: 2_000 + i * 1000,
                    events: 3 + i,
                    bytes: 30 + i,
                },
            );
        }
        assert!(m.len() <= MAX_MARKS);
        assert!(m
            .windows(2)
            .all(|w| w[0].events < w[1].events && w[0].time < w[1].time));
        assert_eq!(m.last().unwrap().events, 10_002);
    }

    fn typed(n: usize) -> Document {
        let mut d = Document::new();
        let a = d.agent("a");
        for i in 0..n {
            d.insert(a, i, "x").unwrap();
        }
        d
    }

    #[test]
    fn each_rule_keeps_what_it_asks_and_retention_holds_back() {
        let d = typed(1000);
        let marks: Vec<Mark> = (0..10)
            .map(|i| Mark {
                time: 1_000_000 + i * 60_000,
                events: (i + 1) * 100,
                bytes: (i + 1) * 50,
            })
            .collect();
        let now = 1_000_000 + 10 * 60_000;
        let only = |c: HistoryConfig| {
            choose_horizon(&d, &marks, &c, &[], now)
                .0
                .map(|h| end_of(&h))
        };
        let off = HistoryConfig {
            keep_secs: None,
            keep_events: None,
            keep_bytes: None,
            ..Default::default()
        };
        assert_eq!(only(off.clone()), Some(1000), "no rule: compact everything");
        // Age: marks at or before now - 180 s hold events up to 800.
        assert_eq!(
            only(HistoryConfig {
                keep_secs: Some(180),
                ..off.clone()
            }),
            Some(800)
        );
        assert_eq!(
            only(HistoryConfig {
                keep_events: Some(250),
                ..off.clone()
            }),
            Some(750)
        );
        // Size: the newest 120 bytes go back to the mark at 700 events (bytes 350 of 500).
        assert_eq!(
            only(HistoryConfig {
                keep_bytes: Some(120),
                ..off.clone()
            }),
            Some(700)
        );
        // Several rules: the most conservative wins.
        assert_eq!(
            only(HistoryConfig {
                keep_secs: Some(180),
                keep_events: Some(250),
                keep_bytes: None,
                ..off.clone()
            }),
            Some(750)
        );
        // Retention: a participant at version 499 holds the horizon back there.
        let (h, held) = choose_horizon(&d, &marks, &off, &[Frontier::single(499)], now);
        assert_eq!(h.map(|h| end_of(&h)), Some(500));
        assert!(held);
        // Nothing older than the age: no move.
        assert_eq!(
            only(HistoryConfig {
                keep_secs: Some(100_000),
                ..off
            }),
            None
        );
    }
}
