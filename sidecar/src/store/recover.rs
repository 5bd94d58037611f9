//! Start-up recovery: log -> documents with history -> reconciled with the disk.
//!
//! 1. Scan `history.log` ([`frame::scan`]). A torn tail (crash mid-append) is cut off. A corrupt
//!    frame (bad magic, checksum, payload, or events the engine rejects) makes the whole file
//!    *quarantined*: renamed to `history.log.corrupt-<ms>` (never deleted) and replaced by a
//!    copy of its good prefix. What was dropped is reported (log, stderr, a `Note` record).
//! 2. Replay the good records: `DocNew` decodes a whole document (`engine::Document::decode`,
//!    every event validated), `Events` applies a chunk (`apply_encoded`, atomic), `DiskBase`,
//!    `Rename`, `Delete` update the document's disk base and path.
//! 3. Reconcile every live document with the workspace as just loaded from disk
//!    ([`vfs::Workspace::restore_document`]): the document (with its history) replaces the
//!    loaded one, and what the disk holds now is merged as an edit of a fresh disk agent made
//!    at the logged disk base, so edits the disk never got (write-back is debounced) are kept
//!    and changes made on disk while the daemon was down are added. A missing file whose
//!    document has unwritten edits is re-created; one without is looked for under another
//!    path (same text as the logged disk text: a rename while down), else it was deleted.
//! 4. The new events and disk bases are logged by the first commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;

use engine::{Document, Frontier, RemoteVersion};
use tracing::{info, warn};
use vfs::{FileId, Workspace};

use super::compact::{marks_over_chunk, push_mark, Mark};
use super::frame::{self, Damage, DocKey, Record};
use super::{create_log, log_path, now_ms, Config, Durable, Tracked};

/// One document as the log describes it.
pub struct Replayed {
    pub path: Option<String>,
    pub doc: Document,
    pub disk: RemoteVersion,
    /// Sizes for `dist-space log`: frame bytes and events per record kind.
    pub bytes: u64,
    /// When its history was made (see `compact::Mark`).
    pub marks: Vec<Mark>,
}

/// Replays records in order. Stops at the first record the engine rejects and returns its
/// offset and the reason (everything before it is applied; engine calls are atomic).
pub fn replay(records: &[(u64, Record)]) -> (BTreeMap<DocKey, Replayed>, Option<(u64, String)>) {
    let mut docs: BTreeMap<DocKey, Replayed> = BTreeMap::new();
    for (off, r) in records {
        let bad = |why: String| Some((*off, why));
        match r {
            Record::DocNew {
                key,
                path,
                chunk,
                time,
            } => {
                if docs.contains_key(key) {
                    return (docs, bad(format!("document {key} created twice")));
                }
                match Document::decode(chunk) {
                    Ok(doc) => {
                        let mark = Mark {
                            time: *time,
                            events: doc.oplog().len() as u64,
                            bytes: chunk.len() as u64,
                        };
                        docs.insert(
                            *key,
                            Replayed {
                                path: Some(path.clone()),
                                doc,
                                disk: RemoteVersion::new(),
                                bytes: chunk.len() as u64,
                                marks: vec![mark],
                            },
                        );
                    }
                    Err(e) => return (docs, bad(format!("document {key}: {e}"))),
                }
            }
            Record::Events { key, chunk, time } => {
                let Some(d) = docs.get_mut(key) else {
                    return (docs, bad(format!("events for unknown document {key}")));
                };
                match d.doc.apply_encoded(chunk) {
                    Ok(_) if d.doc.pending_events() == 0 => {
                        d.bytes += chunk.len() as u64;
                        let m = Mark {
                            time: *time,
                            events: d.doc.oplog().len() as u64,
                            bytes: d.bytes,
                        };
                        push_mark(&mut d.marks, m);
                    }
                    Ok(_) => {
                        d.doc.reject_pending();
                        return (
                            docs,
                            bad(format!("document {key}: events with missing parents")),
                        );
                    }
                    Err(e) => return (docs, bad(format!("document {key}: {e}"))),
                }
            }
            Record::DiskBase { key, version, .. } => {
                let Some(d) = docs.get_mut(key) else {
                    return (docs, bad(format!("disk base of unknown document {key}")));
                };
                if let Err(e) = d.doc.frontier_of(version) {
                    return (docs, bad(format!("document {key}: disk base {e}")));
                }
                d.disk = version.clone();
            }
            Record::Rename { key, path, .. } => match docs.get_mut(key) {
                Some(d) => d.path = Some(path.clone()),
                None => return (docs, bad(format!("rename of unknown document {key}"))),
            },
            Record::Delete { key, .. } => match docs.get_mut(key) {
                Some(d) => d.path = None,
                None => return (docs, bad(format!("delete of unknown document {key}"))),
            },
            Record::Times { key, marks, .. } => {
                let Some(d) = docs.get_mut(key) else {
                    return (docs, bad(format!("times of unknown document {key}")));
                };
                d.marks = marks_over_chunk(&d.doc, marks, d.bytes);
            }
            Record::Header { .. } | Record::Note { .. } => {}
        }
    }
    (docs, None)
}

/// What recovery did (printed by `serve`, logged, and kept as a `Note` record).
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub records: usize,
    pub documents: usize,
    pub events: usize,
    /// Torn tail cut off / corrupt data dropped.
    pub damage: Option<String>,
    pub quarantined: Option<std::path::PathBuf>,
    /// Documents into which disk changes made while the daemon was down were merged.
    pub disk_merged: Vec<String>,
    /// Documents whose unwritten edits were written back (the disk lacked them).
    pub unwritten: Vec<String>,
    pub recreated: Vec<String>,
    pub renamed: Vec<(String, String)>,
    pub deleted: Vec<String>,
    pub problems: Vec<String>,
}

impl RecoveryReport {
    pub fn is_clean(&self) -> bool {
        self.damage.is_none() && self.problems.is_empty()
    }
    pub fn summary(&self) -> String {
        let mut s = format!(
            "history: {} records, {} documents, {} events restored",
            self.records, self.documents, self.events
        );
        if let Some(d) = &self.damage {
            s += &format!("; DAMAGE: {d}");
        }
        if let Some(q) = &self.quarantined {
            s += &format!("; damaged log kept as {}", q.display());
        }
        for (what, v) in [
            ("changed on disk while down", &self.disk_merged),
            ("unwritten edits written back", &self.unwritten),
            ("re-created", &self.recreated),
            ("deleted while down", &self.deleted),
            ("problems", &self.problems),
        ] {
            if !v.is_empty() {
                s += &format!("; {what}: {}", v.join(", "));
            }
        }
        for (a, b) in &self.renamed {
            s += &format!("; renamed while down: {a} -> {b}");
        }
        s
    }
}

/// Open (or create) the log for `ws`'s root, recover it into `ws`, and return the writer's
/// handle with everything recovered already committed.
pub fn recover(ws: &mut Workspace, cfg: Config) -> std::io::Result<(Durable, RecoveryReport)> {
    let root = ws.root().to_path_buf();
    let path = log_path(&root);
    let mut rep = RecoveryReport::default();
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    // A rewrite interrupted by a crash leaves its unfinished copy beside the intact log.
    let _ = fs::remove_file(super::tmp_path(&path));
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut scan = frame::scan(&data);
    let (docs, bad) = replay(&scan.records);
    if let Some((off, reason)) = bad {
        scan.records.retain(|(o, _)| *o < off);
        scan.damage = Some(Damage::Corrupt {
            offset: off,
            bytes: data.len() as u64 - off,
            reason,
        });
        scan.good_len = off;
    }
    let good = scan.good_len as usize;
    match &scan.damage {
        _ if data.is_empty() => create_log(&path, None)?,
        None => {}
        Some(d @ Damage::TornTail { .. }) => {
            warn!(damage = %d, "history log: cutting off a torn tail");
            rep.damage = Some(d.to_string());
            if good == 0 {
                create_log(&path, None)?;
            } else {
                let f = fs::OpenOptions::new().write(true).open(&path)?;
                f.set_len(good as u64)?;
                f.sync_all()?;
            }
        }
        Some(d @ Damage::Corrupt { .. }) => {
            let q = path.with_file_name(format!("{}.corrupt-{}", super::LOG_FILE, now_ms()));
            warn!(damage = %d, quarantine = %q.display(), "history log is damaged: quarantined");
            fs::rename(&path, &q)?;
            rep.damage = Some(d.to_string());
            rep.quarantined = Some(q);
            create_log(&path, Some(&data[..good]))?;
        }
    }
    rep.records = scan.records.len();
    let file = fs::OpenOptions::new().append(true).open(&path)?;
    let len = file.metadata()?.len();

    let next_key = docs.keys().next_back().map_or(1, |k| k + 1);
    let disk_agent = format!(
        "disk@{:x}{:04x}",
        now_ms() / 1000,
        std::process::id() & 0xffff
    );
    let mut tracked: HashMap<FileId, Tracked> = HashMap::new();
    let mut claimed: HashSet<FileId> = HashSet::new();
    let mut missing: Vec<(DocKey, String, Replayed)> = Vec::new();
    let mut deletes: Vec<DocKey> = Vec::new();
    let mut live: Vec<(DocKey, String, Replayed)> = Vec::new();
    for (key, d) in docs {
        rep.events += d.doc.oplog().len();
        if let Some(p) = d.path.clone() {
            live.push((key, p, d));
        }
    }
    rep.documents = live.len();
    // Files that are where the log left them.
    for (key, p, d) in live {
        match ws.lookup(&p).filter(|f| ws.text_file(*f).is_some()) {
            Some(f) if claimed.insert(f) => {
                restore(ws, f, key, &p, d, &disk_agent, true, &mut tracked, &mut rep);
            }
            _ => missing.push((key, p, d)),
        }
    }
    // Files that are not: renamed (same text elsewhere), deleted, or to be re-created.
    if !missing.is_empty() {
        let unclaimed: Vec<(FileId, String)> = ws
            .tree()
            .visible()
            .filter(|(f, _)| !claimed.contains(f) && ws.text_file(*f).is_some())
            .map(|(f, p)| (f, p.to_string()))
            .collect();
        for (key, p, d) in missing {
            let disk_v = d
                .doc
                .frontier_of(&d.disk)
                .unwrap_or_else(|_| Frontier::root());
            let disk_text = d.doc.checkout(&disk_v).unwrap_or_default();
            let found = unclaimed.iter().find(|(f, _)| {
                !claimed.contains(f)
                    && ws.text_file(*f).is_some_and(|t| {
                        let s = t.disk_snap_text();
                        s.len_chars() == disk_text.len_chars() && s.to_rope() == disk_text
                    })
            });
            if let Some((f, np)) = found.cloned() {
                claimed.insert(f);
                rep.renamed.push((p.clone(), np.clone()));
                restore(ws, f, key, &p, d, &disk_agent, true, &mut tracked, &mut rep);
                continue;
            }
            let unwritten = d.doc.version() != &disk_v;
            if !unwritten {
                rep.deleted.push(p.clone());
                deletes.push(key);
                continue;
            }
            match ws.create_file(&p, "") {
                Ok(f) => {
                    claimed.insert(f);
                    rep.recreated.push(p.clone());
                    restore(
                        ws,
                        f,
                        key,
                        &p,
                        d,
                        &disk_agent,
                        false,
                        &mut tracked,
                        &mut rep,
                    );
                }
                Err(e) => {
                    rep.problems.push(format!(
                        "{p}: cannot re-create ({e}); history kept in the log"
                    ));
                }
            }
        }
    }
    let mut dur = Durable::start(file, len, tracked, next_key, cfg.log, cfg.history)?;
    // Log the deletes, merged disk edits, new disk bases and path changes now.
    for key in deletes {
        dur.push(&Record::Delete {
            key,
            time: now_ms(),
        });
    }
    dur.commit(ws, std::iter::empty());
    if !(rep.disk_merged.is_empty()
        && rep.renamed.is_empty()
        && rep.deleted.is_empty()
        && rep.recreated.is_empty()
        && rep.is_clean())
    {
        dur.note(&rep.summary());
    }
    info!(summary = %rep.summary(), "history recovered");
    Ok((dur, rep))
}

#[allow(clippy::too_many_arguments)]
fn restore(
    ws: &mut Workspace,
    f: FileId,
    key: DocKey,
    old_path: &str,
    d: Replayed,
    disk_agent: &str,
    merge_disk: bool,
    tracked: &mut HashMap<FileId, Tracked>,
    rep: &mut RecoveryReport,
) {
    let disk_v = match d.doc.frontier_of(&d.disk) {
        Ok(v) => v,
        Err(e) => {
            rep.problems
                .push(format!("{old_path}: disk base unknown ({e})"));
            Frontier::root()
        }
    };
    let logged = d.doc.version().clone();
    let unwritten = logged != disk_v;
    let marks = d.marks;
    match ws.restore_document(f, d.doc, disk_v.clone(), disk_agent, merge_disk) {
        Ok(added) => {
            if added.is_some() {
                rep.disk_merged.push(old_path.to_string());
            } else if unwritten && merge_disk {
                rep.unwritten.push(old_path.to_string());
            }
            tracked.insert(
                f,
                Tracked {
                    key,
                    // The path the log knows: a different current path is logged as a rename.
                    path: old_path.to_string(),
                    logged,
                    disk: disk_v,
                    marks,
                },
            );
        }
        Err(e) => rep.problems.push(format!(
            "{old_path}: cannot restore ({e}); history kept in the log"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vfs::diff::TextEdit;
    use vfs::WorkspaceOptions;

    fn load(root: &std::path::Path) -> Workspace {
        let mut noop = |_p: vfs::load::Progress| {};
        Workspace::load(root, WorkspaceOptions::default(), &mut noop).unwrap()
    }

    fn ins(ws: &mut Workspace, path: &str, agent: &str, at: usize, text: &str) {
        let f = ws.lookup(path).unwrap();
        ws.edit(
            f,
            agent,
            None,
            &[TextEdit {
                range: at..at,
                text: text.into(),
            }],
        )
        .unwrap();
    }

    fn text(ws: &mut Workspace, path: &str) -> String {
        let f = ws.lookup(path).unwrap();
        ws.text(f).unwrap().to_string()
    }

    /// Logged edits the disk never got come back; a change made on disk meanwhile is merged
    /// (not overwritten, not overwriting); the history (agents) is restored.
    #[test]
    fn unwritten_edits_and_disk_changes_both_survive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
        {
            let mut ws = load(dir.path());
            let (mut dur, rep) = recover(&mut ws, Config::default()).unwrap();
            assert!(rep.is_clean() && rep.documents == 0);
            ins(&mut ws, "a.txt", "ed#1", 5, " world");
            let f = ws.lookup("a.txt").unwrap();
            dur.commit(&ws, [f].iter());
            // Crash: no write-back.
        }
        std::fs::write(dir.path().join("a.txt"), "hello!\n").unwrap();
        let mut ws = load(dir.path());
        let (_dur, rep) = recover(&mut ws, Config::default()).unwrap();
        assert_eq!(rep.disk_merged, vec!["a.txt".to_string()]);
        let t = text(&mut ws, "a.txt");
        assert!(t == "hello world!\n" || t == "hello! world\n", "{t}");
        let f = ws.lookup("a.txt").unwrap();
        let doc = ws.text_file(f).unwrap().document();
        assert!(doc.remote_version(doc.version()).contains_key("ed#1"));
        assert!(ws.text_file(f).unwrap().is_dirty());
    }

    /// A torn tail is cut, the file stays (no quarantine), the events before it are kept.
    #[test]
    fn torn_tail_is_cut_and_the_prefix_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "x").unwrap();
        {
            let mut ws = load(dir.path());
            let (mut dur, _) = recover(&mut ws, Config::default()).unwrap();
            let f = ws.lookup("a.txt").unwrap();
            ins(&mut ws, "a.txt", "ed#1", 1, "1");
            dur.commit(&ws, [f].iter());
            ins(&mut ws, "a.txt", "ed#1", 2, "2");
            dur.commit(&ws, [f].iter());
        }
        let p = log_path(dir.path());
        let len = fs::metadata(&p).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut ws = load(dir.path());
        let (_d, rep) = recover(&mut ws, Config::default()).unwrap();
        assert!(rep.damage.as_deref().unwrap().contains("torn tail"));
        assert!(rep.quarantined.is_none());
        assert_eq!(text(&mut ws, "a.txt"), "x1");
        let s = frame::scan(&fs::read(&p).unwrap());
        assert!(s.damage.is_none(), "the cut log is whole again");
    }

    /// A file deleted while down with nothing unwritten stays deleted; one with unwritten
    /// edits is re-created.
    #[test]
    fn deleted_while_down() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gone.txt"), "g").unwrap();
        std::fs::write(dir.path().join("keep.txt"), "k").unwrap();
        {
            let mut ws = load(dir.path());
            let (mut dur, _) = recover(&mut ws, Config::default()).unwrap();
            let fs_: Vec<FileId> = ["gone.txt", "keep.txt"]
                .iter()
                .map(|p| ws.lookup(p).unwrap())
                .collect();
            // gone.txt is written back, keep.txt not.
            ins(&mut ws, "gone.txt", "ed#1", 1, "!");
            dur.commit(&ws, fs_.iter());
            assert_eq!(ws.flush().written, vec!["gone.txt".to_string()]);
            dur.commit(&ws, fs_.iter());
            ins(&mut ws, "keep.txt", "ed#1", 1, "!");
            dur.commit(&ws, fs_.iter());
        }
        std::fs::remove_file(dir.path().join("gone.txt")).unwrap();
        std::fs::remove_file(dir.path().join("keep.txt")).unwrap();
        let mut ws = load(dir.path());
        let (_d, rep) = recover(&mut ws, Config::default()).unwrap();
        assert_eq!(rep.deleted, vec!["gone.txt".to_string()]);
        assert_eq!(rep.recreated, vec!["keep.txt".to_string()]);
        assert!(ws.lookup("gone.txt").is_none());
        assert_eq!(text(&mut ws, "keep.txt"), "k!");
    }
}
