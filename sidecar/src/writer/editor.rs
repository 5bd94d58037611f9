//! Editor connections in the writer: `initialize`/close, `didOpen` reconciliation, changes
//! (revision protocol and plain LSP clients), cursors and presence, and the broadcast that brings
//! every editor's buffer up to the document version after a batch.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use engine::{Bias, Frontier, Rope, XfOp};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use vfs::diff::{diff_edits, TextEdit};
use vfs::names::PathRefusal;
use vfs::pos::{self, PositionEncoding};
use vfs::FileId;

use super::plain::{self, PlainDoc};
use super::{rel_under, ConnId, Hello, Outgoing, Writer};
use crate::proto::{
    self, ApplyEdits, ChangeParams, ContentChange, Cursor, CursorParams, DocMsg, EditNotice, Pos,
    PresenceNotice,
};

pub(super) struct Sent {
    pub(super) rev: u64,
    pub(super) after: Frontier,
    pub(super) text: Rope,
}

/// Consecutive changes of one editor to one document within a batch, applied with one
/// `edit_at` call (the same events as one call per change, at a fraction of the merge cost).
pub(super) struct Acc {
    pub(super) agent: String,
    pub(super) base: Frontier,
    pub(super) seen: Option<u64>,
    pub(super) edits: Vec<TextEdit>,
}

/// One editor's view of one document.
pub(super) struct EditorDoc {
    pub(super) uri: String,
    pub(super) ed_version: Frontier,
    pub(super) ed_text: Rope,
    pub(super) confirmed_seen: u64,
    pub(super) confirmed: Frontier,
    pub(super) confirmed_text: Rope,
    pub(super) sent: VecDeque<Sent>,
    pub(super) next_rev: u64,
    pub(super) ed_rev: u64,
    /// Plain clients: the version they reported, the applies in flight, retry timing.
    pub(super) plain: PlainDoc,
    /// The wire version last announced in a `dist-space/edit` (notices carry only changes).
    pub(super) wire_sent: engine::RemoteVersion,
}

impl EditorDoc {
    pub(super) fn new(uri: String, v: Frontier, text: Rope) -> Self {
        EditorDoc {
            uri,
            ed_version: v.clone(),
            ed_text: text.clone(),
            confirmed_seen: 0,
            confirmed: v,
            confirmed_text: text,
            sent: VecDeque::new(),
            next_rev: 1,
            ed_rev: 0,
            plain: PlainDoc::default(),
            wire_sent: engine::RemoteVersion::new(),
        }
    }
}

/// Where a participant's cursors are: document, the version they refer to, (anchor, head) chars.
pub(super) type Presence = (FileId, Frontier, Vec<(usize, usize)>);

pub(super) struct Conn {
    pub(super) name: String,
    pub(super) agent: String,
    pub(super) enc: PositionEncoding,
    pub(super) revision: bool,
    pub(super) apply: ApplyEdits,
    pub(super) out: mpsc::Sender<Outgoing>,
    pub(super) docs: HashMap<FileId, EditorDoc>,
    /// Last reported cursors: document, version they refer to, char positions (anchor, head).
    pub(super) presence: Option<Presence>,
    /// Reported bases of the editor's buffers (uri -> hint), used by `open`.
    pub(super) reopen: HashMap<String, crate::reopen::Hint>,
    /// Documents this editor opened that are not shared (outside the workspace, inside `.git`,
    /// ignored, a name the disk cannot hold): their later messages are dropped quietly, until
    /// the editor closes them.
    pub(super) unshared: std::collections::HashSet<String>,
}

impl Writer {
    pub(super) fn hello(&mut self, conn: ConnId, mut h: Hello) {
        // A fresh agent per connection, never reused (the run id makes it unique across runs).
        let clean: String = h
            .name
            .chars()
            .filter(|c| !c.is_control())
            .take(40)
            .collect();
        let agent = format!("{clean}#{}-{conn}", self.run_id);
        info!(conn, name = %clean, %agent, enc = h.encoding.lsp_name(), revision = h.revision_protocol, "editor connected");
        if let Some(r) = h.agent_reply.take() {
            let _ = r.send(agent.clone());
        }
        self.conns.insert(
            conn,
            Conn {
                name: clean,
                agent,
                enc: h.encoding,
                revision: h.revision_protocol,
                apply: h.apply_edits,
                out: h.out,
                docs: HashMap::new(),
                presence: None,
                reopen: h.reopen,
                unshared: Default::default(),
            },
        );
        self.agent_presence(conn, false);
        // Tell the newcomer where everyone is.
        let others: Vec<ConnId> = self.conns.keys().copied().filter(|c| *c != conn).collect();
        for o in others {
            self.send_presence_of(o, Some(conn));
        }
    }

    pub(super) fn closed(&mut self, conn: ConnId) {
        self.agent_presence(conn, true);
        let pending: Vec<FileId> = self
            .acc
            .keys()
            .filter(|(c, _)| *c == conn)
            .map(|(_, f)| *f)
            .collect();
        for f in pending {
            self.flush_acc(conn, f);
        }
        if let Some(c) = self.conns.remove(&conn) {
            for (f, ed) in &c.docs {
                let mut states = vec![
                    (ed.confirmed.clone(), ed.confirmed_text.clone()),
                    (ed.ed_version.clone(), ed.ed_text.clone()),
                ];
                states.extend(ed.sent.iter().map(|x| (x.after.clone(), x.text.clone())));
                if let Some(p) = &ed.plain.pending {
                    states.extend(p.sends.iter().map(|x| (x.after.clone(), x.text.clone())));
                }
                self.reopen.left(*f, &c.name, states);
            }
            info!(conn, name = %c.name, "editor disconnected");
            let notice = PresenceNotice {
                id: conn,
                name: c.name,
                uri: None,
                cursors: vec![],
            };
            self.send_all(conn, "dist-space/presence", json!(notice));
        }
        self.schedule_flush();
    }

    pub(super) fn send(&mut self, conn: ConnId, method: &'static str, v: Value) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if let Err(e) = c.out.try_send(Outgoing::Notify(method, v)) {
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    warn!(conn, "outgoing queue full: closing the connection");
                    let _ = c.out.try_send(Outgoing::Close("too slow".into()));
                    self.stats.dropped_messages += 1;
                }
                mpsc::error::TrySendError::Closed(_) => {}
            }
        }
    }

    pub(super) fn send_all(&mut self, except: ConnId, method: &'static str, v: Value) {
        let ids: Vec<ConnId> = self
            .conns
            .keys()
            .copied()
            .filter(|c| *c != except)
            .collect();
        for id in ids {
            self.send(id, method, v.clone());
        }
    }

    /// Map a URI to a workspace-relative path.
    pub(super) fn rel_path(&self, uri: &str) -> Result<String, String> {
        let p = proto::uri_to_path(uri).ok_or_else(|| {
            format!(
                "not a local file URI (file:// with no host or localhost): {}",
                proto::short(uri, 200)
            )
        })?;
        rel_under(&self.root, &p)
            .ok_or_else(|| format!("outside the workspace: {}", proto::short(uri, 200)))
    }

    /// Why a document an editor opens is not shared with anyone, if it is not: outside the
    /// workspace, or a new path inside `.git` or ignored by the workspace (`.gitignore`). Such
    /// a buffer stays the editor's own (e.g. `.git/COMMIT_EDITMSG`), as the loader leaves
    /// those files out.
    fn unshared_why(&mut self, uri: &str) -> Option<String> {
        let rel = match self.rel_path(uri) {
            Ok(r) => r,
            Err(e) => return Some(e),
        };
        if self.ws.lookup(&rel).is_some() {
            return None;
        }
        match self.ws.check_new_path(&rel, false) {
            Err(r @ (PathRefusal::Excluded { .. } | PathRefusal::Ignored { .. })) => {
                Some(r.to_string())
            }
            _ => None,
        }
    }

    pub(super) fn file_of(&self, uri: &str) -> Result<FileId, String> {
        let rel = self.rel_path(uri)?;
        self.ws
            .lookup(&rel)
            .filter(|f| self.ws.text_file(*f).is_some())
            .ok_or_else(|| format!("unknown document: {uri}"))
    }

    /// The document a connection opened under `uri`: found by identity, so it keeps working
    /// after the file is renamed on disk; else by path.
    pub(super) fn conn_file(&self, conn: ConnId, uri: &str) -> Result<FileId, String> {
        if let Some(c) = self.conns.get(&conn) {
            if let Some((f, _)) = c.docs.iter().find(|(_, ed)| ed.uri == uri) {
                if self.ws.text_file(*f).is_some() {
                    return Ok(*f);
                }
            }
        }
        self.file_of(uri)
    }

    /// Remember the document version a plain client reported (for versioned applyEdit).
    pub(super) fn note_lsp_version(&mut self, conn: ConnId, uri: &str, v: Option<i64>) {
        let Ok(f) = self.conn_file(conn, uri) else {
            return;
        };
        if let Some(ed) = self.conns.get_mut(&conn).and_then(|c| c.docs.get_mut(&f)) {
            ed.plain.version = v.or(ed.plain.version);
        }
    }

    pub(super) fn doc_msg(&mut self, conn: ConnId, msg: DocMsg) {
        if !self.conns.contains_key(&conn) {
            warn!(conn, "document notification before initialize: dropped");
            return;
        }
        if let Some(uri) = msg.uri() {
            let unshared = self
                .conns
                .get(&conn)
                .is_some_and(|c| c.unshared.contains(uri));
            if unshared && !matches!(msg, DocMsg::Open(_)) {
                if matches!(msg, DocMsg::Close(_)) {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.unshared.remove(uri);
                    }
                }
                return;
            }
        }
        let res = match msg {
            DocMsg::Open(p) => {
                let uri = p.text_document.uri.clone();
                if let Some(why) = self.unshared_why(&uri) {
                    debug!(conn, why = %why, "document not shared");
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.unshared.insert(uri);
                    }
                    return;
                }
                let r = self.open(conn, &uri, &p.text_document.text);
                if r.is_err() {
                    // Its later changes cannot apply either: one log line, not one per key.
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.unshared.insert(uri.clone());
                    }
                } else if let Some(c) = self.conns.get_mut(&conn) {
                    c.unshared.remove(&uri);
                }
                self.note_lsp_version(conn, &uri, p.text_document.version);
                r
            }
            DocMsg::Change(p) => {
                let uri = p.text_document.uri.clone();
                let r = self.change(conn, &uri, None, p.content_changes);
                self.note_lsp_version(conn, &uri, p.text_document.version);
                r
            }
            DocMsg::RevChange(ChangeParams { uri, seen, changes }) => {
                self.change(conn, &uri, Some(seen), changes)
            }
            DocMsg::Close(p) => {
                let f = self.conn_file(conn, &p.text_document.uri);
                if let (Ok(f), Some(c)) = (f, self.conns.get_mut(&conn)) {
                    c.docs.remove(&f);
                }
                Ok(())
            }
            DocMsg::Save(p) => {
                // The sidecar owns write-back: a save flushes now.
                let _ = p;
                self.flush();
                Ok(())
            }
            DocMsg::Cursor(p) => self.cursor(conn, p),
        };
        if let Err(e) = res {
            self.stats.dropped_messages += 1;
            warn!(conn, error = %e, "document notification dropped");
        }
    }

    pub(super) fn open(&mut self, conn: ConnId, uri: &str, text: &str) -> Result<(), String> {
        let rel = self.rel_path(uri)?;
        let f = match self.ws.lookup(&rel) {
            Some(f) => f,
            None => {
                self.ws
                    .check_new_path(&rel, false)
                    .map_err(|e| format!("cannot share a new document: {e}"))?;
                if self.root.join(&rel).exists() {
                    return Err(format!("not a text document: {}", proto::short(uri, 200)));
                }
                // A new file (e.g. `:e new.rs`): created empty, the editor text is its edit.
                self.ws
                    .create_file(&rel, "")
                    .map_err(|e| format!("cannot create {rel}: {e}"))?
            }
        };
        let Some(tf) = self.ws.text_file(f) else {
            return Err(format!("not a text document: {uri}"));
        };
        let doc_v = tf.doc.version().clone();
        let disk_text = tf.disk_text().clone();
        let disk_base = tf.disk_base().clone();
        let doc_text = self.ws.text(f).unwrap_or_default();
        let agent = self.conns[&conn].agent.clone();
        // The hint describes the buffer as it was when the connection started: only its first
        // open of `uri` may use it (a later reopen's buffer has applied edits since).
        let hint = self.conns.get_mut(&conn).and_then(|c| c.reopen.remove(uri));
        // Reconcile (see `crate::reopen`): the editor's text is the document's (nothing to
        // do), the disk's (it loaded the file), or holds edits we never saw. Those become its
        // edit, diffed from and applied at the base that explains the text best: its own last
        // state if it was connected earlier in this run, this run's start (an editor that was
        // offline while the daemon restarted), the disk (a file edited before attaching), and
        // only then the document. Applied at an older base, the engine keeps everything others
        // did since (another editor's reopen a moment earlier included): never replaced.
        let (base, base_text) = if doc_text == text {
            (doc_v, doc_text)
        } else if disk_text == text {
            (disk_base, disk_text)
        } else {
            let name = self.conns[&conn].name.clone();
            // The editor's own account of its buffer's version first (see `crate::reopen`).
            let hinted = hint.as_ref().and_then(|h| {
                let doc = self.ws.text_file(f)?.document();
                let r = crate::reopen::hinted_base(doc, h)
                    .and_then(|v| doc.checkout(&v).map(|t| (v, t)).map_err(|e| e.to_string()));
                if let Err(e) = &r {
                    info!(conn, uri, error = %e, "reported base unusable: guessing");
                }
                r.ok()
            });
            let (base, edits, which) = match hinted {
                Some((v, t)) => (v, vfs::diff::merge_diff(&t.to_string(), text), "reported"),
                None => {
                    let mut cands = match self.ws.text_file(f) {
                        Some(t) => self.reopen.candidates(f, &name, t.document()),
                        None => Vec::new(),
                    };
                    cands.push((disk_base, disk_text, "disk"));
                    cands.push((doc_v, doc_text, "document"));
                    crate::reopen::best(cands, text)
                }
            };
            info!(
                conn,
                uri,
                edits = edits.len(),
                deleted = edits.iter().map(|e| e.range.len()).sum::<usize>(),
                base = which,
                "didOpen text differs: applied as an edit"
            );
            if which == "reported" {
                if let Some(h) = &hint {
                    debug!(conn, uri, base_agents = h.base.len(), agents = ?h.agents, "reported base");
                }
            }
            if edits.is_empty() {
                // Exactly a state it had: the editor is at that version.
                let c = self.conns.get_mut(&conn).expect("checked");
                c.docs.insert(
                    f,
                    EditorDoc::new(uri.to_string(), base, Rope::from_str(text)),
                );
                self.changed.insert(f);
                return Ok(());
            }
            self.ws
                .edit(f, &agent, Some(&base), &edits)
                .map_err(|e| e.to_string())?;
            let lv = self
                .ws
                .text_file(f)
                .map(|t| t.doc.oplog().len())
                .unwrap_or(1)
                - 1;
            self.changed.insert(f);
            self.schedule_flush();
            (Frontier::single(lv), Rope::from_str(text))
        };
        let c = self.conns.get_mut(&conn).expect("checked");
        c.docs
            .insert(f, EditorDoc::new(uri.to_string(), base, base_text));
        self.changed.insert(f);
        Ok(())
    }

    pub(super) fn change(
        &mut self,
        conn: ConnId,
        uri: &str,
        seen: Option<u64>,
        changes: Vec<ContentChange>,
    ) -> Result<(), String> {
        let received = Instant::now();
        let f = self.conn_file(conn, uri)?;
        let has_pending_apply = self
            .conns
            .get(&conn)
            .and_then(|c| c.docs.get(&f))
            .is_some_and(|ed| ed.plain.pending.is_some());
        let continues = match self.acc.get(&(conn, f)) {
            Some(a) => a.seen == seen && !has_pending_apply,
            None => false,
        };
        if !continues {
            self.flush_acc(conn, f);
        }
        let c = self.conns.get_mut(&conn).expect("checked");
        let enc = c.enc;
        let agent = c.agent.clone();
        let ed = c
            .docs
            .get_mut(&f)
            .ok_or_else(|| format!("change for a document not opened: {uri}"))?;
        // The state the editor's change was made on (when continuing an accumulation: the
        // text after its previous change; the frontier is only known after the flush).
        let (mut base, base_text) = match seen {
            _ if continues => (Frontier::root(), ed.confirmed_text.clone()),
            None => (ed.ed_version.clone(), ed.ed_text.clone()),
            Some(s) if s == ed.confirmed_seen => (ed.confirmed.clone(), ed.confirmed_text.clone()),
            Some(s) => match ed.sent.iter().find(|x| x.rev == s) {
                Some(x) => (x.after.clone(), x.text.clone()),
                None => {
                    let msg = format!(
                        "change based on unknown revision {s} (confirmed {}, sent up to {})",
                        ed.confirmed_seen,
                        ed.next_rev - 1
                    );
                    self.resync(conn, f);
                    return Err(msg);
                }
            },
        };
        // Positions -> chars against the editor's text, change by change: each change's edits
        // and the text after it.
        let mut text = base_text;
        let mut steps: Vec<(Vec<TextEdit>, Rope)> = Vec::with_capacity(changes.len());
        for ch in &changes {
            let mut es = Vec::new();
            match ch.range {
                Some(r) => {
                    let lr = r.to_lsp().map_err(|e| e.to_string())?;
                    let cr = pos::range_to_chars(&text, lr, enc).map_err(|e| e.to_string())?;
                    text.remove(cr.clone());
                    text.insert(cr.start, &ch.text);
                    es.push(TextEdit {
                        range: cr,
                        text: ch.text.clone(),
                    });
                }
                None => {
                    let old = text.to_string();
                    es = diff_edits(&old, &ch.text);
                    text = Rope::from_str(&ch.text);
                }
            }
            steps.push((es, text.clone()));
        }
        let ed = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.docs.get_mut(&f))
            .expect("checked");
        // A plain client's first change after the applies in flight settles them all (see
        // `plain`): its echo of one of them is not a new edit; what follows it is the user's
        // edit on that apply's result.
        let mut skip = 0;
        let mut fixup = None;
        if seen.is_none() {
            ed.plain.last_change = Some(received);
            ed.plain.hold_until = None;
            if let Some(p) = ed.plain.pending.take() {
                let texts: Vec<Rope> = steps.iter().map(|s| s.1.clone()).collect();
                match plain::find_echo(&texts, &p.sends) {
                    Some(e) => {
                        self.stats.apply_echoes += 1;
                        self.stats.apply_skipped += p.sends.len() as u64 - 1;
                        ed.plain.backoff = plain::BACKOFF_MIN;
                        let s = &p.sends[e.send];
                        base = s.after.clone();
                        ed.ed_version = s.after.clone();
                        ed.ed_text = s.text.clone();
                        ed.confirmed = s.after.clone();
                        ed.confirmed_text = s.text.clone();
                        skip = e.change + 1;
                        fixup = e.fixup;
                        debug!(
                            conn,
                            send = e.send,
                            change = e.change,
                            changes = changes.len(),
                            fixup = fixup.is_some(),
                            "applyEdit echo"
                        );
                    }
                    None => {
                        self.stats.apply_skipped += p.sends.len() as u64;
                        debug!(
                            conn,
                            sends = p.sends.len(),
                            "no applyEdit echo: none was applied"
                        );
                    }
                }
                if skip == steps.len() && fixup.is_none() {
                    return Ok(());
                }
            }
        }
        let edits: Vec<TextEdit> = fixup
            .into_iter()
            .chain(steps.drain(..).skip(skip).flat_map(|s| s.0))
            .collect();
        ed.ed_rev += 1;
        self.stats.editor_changes += 1;
        let nonempty = edits
            .iter()
            .any(|e| !(e.range.is_empty() && e.text.is_empty()));
        if continues {
            if let Some(a) = self.acc.get_mut(&(conn, f)) {
                a.edits.extend(
                    edits
                        .into_iter()
                        .filter(|e| !(e.range.is_empty() && e.text.is_empty())),
                );
            }
        } else if nonempty {
            self.acc.insert(
                (conn, f),
                Acc {
                    agent,
                    base: base.clone(),
                    seen,
                    edits,
                },
            );
        }
        let ed = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.docs.get_mut(&f))
            .expect("checked");
        if let Some(s) = seen {
            ed.confirmed_seen = s;
        }
        if !continues && !nonempty {
            // Nothing to apply: the editor is at `base`.
            ed.confirmed = base.clone();
            ed.ed_version = base;
        }
        ed.confirmed_text = text.clone();
        ed.ed_text = text;
        // Edits sent after `seen` are dropped by the editor (they name an older editor rev).
        ed.sent.clear();
        if self.batch_started.is_none() {
            self.batch_started = Some(received);
        }
        Ok(())
    }

    pub(super) fn flush_all_acc(&mut self) {
        if self.acc.is_empty() {
            return;
        }
        let keys: Vec<(ConnId, FileId)> = self.acc.keys().copied().collect();
        for (c, f) in keys {
            self.flush_acc(c, f);
        }
    }

    /// Apply one editor's accumulated changes to a document.
    pub(super) fn flush_acc(&mut self, conn: ConnId, f: FileId) {
        let Some(acc) = self.acc.remove(&(conn, f)) else {
            return;
        };
        match self.ws.edit(f, &acc.agent, Some(&acc.base), &acc.edits) {
            Ok(_) => {
                let lv = self
                    .ws
                    .text_file(f)
                    .map(|t| t.doc.oplog().len())
                    .unwrap_or(1)
                    - 1;
                let v = Frontier::single(lv);
                if let Some(ed) = self.conns.get_mut(&conn).and_then(|c| c.docs.get_mut(&f)) {
                    ed.confirmed = v.clone();
                    ed.ed_version = v;
                }
                self.changed.insert(f);
                self.schedule_flush();
            }
            Err(e) => {
                // Cannot happen for edits converted against the editor's own text; if it does,
                // the editor's buffer no longer matches: give it the document's text.
                warn!(conn, error = %e, "editor changes rejected by the engine: resync");
                self.resync(conn, f);
            }
        }
    }

    /// Replace an editor's buffer with the document's text (protocol violation recovery).
    pub(super) fn resync(&mut self, conn: ConnId, f: FileId) {
        let Some(text) = self.ws.text(f) else { return };
        let Some(v) = self.ws.text_file(f).map(|t| t.doc.version().clone()) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(ed) = c.docs.get_mut(&f) else { return };
        let uri = ed.uri.clone();
        *ed = EditorDoc::new(uri.clone(), v.clone(), text.clone());
        let base = self
            .ws
            .text_file(f)
            .map(|t| t.doc.remote_version(&v))
            .unwrap_or_default();
        self.send(
            conn,
            "dist-space/resync",
            json!({"uri": uri, "text": text.to_string(), "base": base}),
        );
    }

    pub(super) fn cursor(&mut self, conn: ConnId, p: CursorParams) -> Result<(), String> {
        let f = self.conn_file(conn, &p.uri)?;
        let c = self.conns.get_mut(&conn).expect("checked");
        let enc = c.enc;
        let ed = c
            .docs
            .get(&f)
            .ok_or_else(|| format!("cursor in a document not opened: {}", p.uri))?;
        let mut cs = Vec::new();
        for cur in p.cursors.iter().take(64) {
            let a = pos::position_to_char(
                &ed.ed_text,
                cur.anchor.to_lsp().map_err(|e| e.to_string())?,
                enc,
            )
            .map_err(|e| e.to_string())?;
            let h = pos::position_to_char(
                &ed.ed_text,
                cur.head.to_lsp().map_err(|e| e.to_string())?,
                enc,
            )
            .map_err(|e| e.to_string())?;
            cs.push((a, h));
        }
        c.presence = Some((f, ed.ed_version.clone(), cs));
        self.agent_presence(conn, false);
        let others: Vec<ConnId> = self.conns.keys().copied().filter(|o| *o != conn).collect();
        for o in others {
            self.send_presence_of(o, Some(conn));
        }
        Ok(())
    }

    /// Send `to` the presence of `of` (all others when `None`), in `to`'s coordinates.
    pub(super) fn send_presence_of(&mut self, to: ConnId, of: Option<ConnId>) {
        let ids: Vec<ConnId> = match of {
            Some(o) => vec![o],
            None => self.conns.keys().copied().filter(|c| *c != to).collect(),
        };
        for id in ids {
            let Some(n) = self.presence_for(to, id) else {
                continue;
            };
            self.send(to, "dist-space/presence", json!(n));
        }
    }

    pub(super) fn presence_for(&self, to: ConnId, of: ConnId) -> Option<PresenceNotice> {
        let src = self.conns.get(&of)?;
        let dst = self.conns.get(&to)?;
        let Some((f, v, cs)) = &src.presence else {
            return Some(PresenceNotice {
                id: of,
                name: src.name.clone(),
                uri: None,
                cursors: vec![],
            });
        };
        let ed = dst.docs.get(f);
        let path = self.ws.path(*f)?;
        let uri = match ed {
            Some(ed) => ed.uri.clone(),
            None => proto::path_to_uri(&self.root.join(path)),
        };
        let mut cursors = Vec::new();
        if let Some(ed) = ed {
            let doc = &self.ws.text_file(*f)?.doc;
            let ops: Vec<XfOp> = if *v == ed.ed_version {
                vec![]
            } else {
                doc.transform(v, &ed.ed_version).unwrap_or_default()
            };
            for (a, h) in cs {
                let conv = |x: usize| {
                    let x = engine::shift_pos(x, &ops, Bias::Right).min(ed.ed_text.len_chars());
                    pos::char_to_position(&ed.ed_text, x, dst.enc)
                        .ok()
                        .map(Pos::from_lsp)
                };
                if let (Some(anchor), Some(head)) = (conv(*a), conv(*h)) {
                    cursors.push(Cursor { anchor, head });
                }
            }
        }
        Some(PresenceNotice {
            id: of,
            name: src.name.clone(),
            uri: Some(uri),
            cursors,
        })
    }

    /// Bring every revision-protocol editor of every changed document up to date.
    pub(super) fn broadcast(&mut self) {
        self.flush_all_acc();
        self.log_commit();
        // Agent API `changes` subscribers.
        self.agents.publish(&self.ws, self.changed.iter().copied());
        let changed = std::mem::take(&mut self.changed);
        self.update_editors(changed);
    }

    /// Send every editor of `files` that lags the document what it lacks (plain clients only
    /// when they may be sent to now; otherwise the retry timer is set).
    pub(super) fn update_editors(&mut self, files: impl IntoIterator<Item = FileId>) {
        let started = self.batch_started.take();
        let mut sent_any = false;
        let now = Instant::now();
        for f in files {
            let Some(tf) = self.ws.text_file(f) else {
                continue;
            };
            let doc_v = tf.doc.version().clone();
            // The wire version editors' buffers are at after this edit (see `crate::reopen`).
            let mut wire: Option<engine::RemoteVersion> = None;
            let ids: Vec<ConnId> = self.conns.keys().copied().collect();
            for id in ids {
                let (enc, revision) = match self.conns.get(&id) {
                    Some(c) => (c.enc, c.revision),
                    None => continue,
                };
                let apply = self.conns.get(&id).map_or(ApplyEdits::None, |c| c.apply);
                if !revision && apply == ApplyEdits::None {
                    continue;
                }
                let Some(ed) = self.conns.get(&id).and_then(|c| c.docs.get(&f)) else {
                    continue;
                };
                if ed.ed_version == doc_v {
                    continue;
                }
                if !revision {
                    match plain::gate(&ed.plain, now) {
                        plain::Gate::Go => {}
                        plain::Gate::Wait(t) => {
                            self.wake_at(t);
                            continue;
                        }
                        plain::Gate::No => continue,
                    }
                }
                let tf = self.ws.text_file(f).expect("checked");
                let ops = match tf.doc.transform(&ed.ed_version, &doc_v) {
                    Ok(ops) => ops,
                    Err(e) => {
                        warn!(conn = id, error = %e, "transform failed: resync");
                        self.resync(id, f);
                        continue;
                    }
                };
                let mut text = ed.ed_text.clone();
                let mut edits = Vec::with_capacity(ops.len());
                let mut ok = true;
                for op in &ops {
                    let (range, new_text) = match op {
                        XfOp::Insert { pos, text } => (*pos..*pos, text.clone()),
                        XfOp::Delete { pos, len } => (*pos..*pos + *len, String::new()),
                    };
                    match pos::chars_to_range(&text, range, enc) {
                        Ok(r) => edits.push(ContentChange {
                            range: Some(proto::Range::from_lsp(r)),
                            text: new_text,
                        }),
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                    op.apply(&mut text);
                }
                if !ok {
                    self.resync(id, f);
                    continue;
                }
                if !revision {
                    self.send_apply_edit(id, f, &ops, text, doc_v.clone());
                    sent_any = true;
                    continue;
                }
                let ed = self
                    .conns
                    .get_mut(&id)
                    .and_then(|c| c.docs.get_mut(&f))
                    .expect("checked");
                let rev = ed.next_rev;
                ed.next_rev += 1;
                ed.ed_version = doc_v.clone();
                ed.ed_text = text.clone();
                ed.sent.push_back(Sent {
                    rev,
                    after: doc_v.clone(),
                    text,
                });
                if wire.is_none() {
                    let tf = self.ws.text_file(f).expect("checked");
                    wire = Some(tf.doc.remote_version(&doc_v));
                }
                let ed = self
                    .conns
                    .get_mut(&id)
                    .and_then(|c| c.docs.get_mut(&f))
                    .expect("checked");
                // Only what changed since the last notice (the version grows with history).
                let mut base_delta = engine::RemoteVersion::new();
                for (k, v) in wire.iter().flatten() {
                    if ed.wire_sent.get(k) != Some(v) {
                        base_delta.insert(k.clone(), *v);
                        ed.wire_sent.insert(k.clone(), *v);
                    }
                }
                let notice = EditNotice {
                    uri: ed.uri.clone(),
                    rev,
                    editor_rev: ed.ed_rev,
                    edits,
                    base_delta,
                };
                self.stats.edits_sent += 1;
                sent_any = true;
                self.send(id, "dist-space/edit", json!(notice));
            }
        }
        if let (true, Some(t)) = (sent_any, started) {
            let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
            if self.stats.change_to_broadcast_us.len() < 1_000_000 {
                self.stats.change_to_broadcast_us.push(us);
            }
        }
    }
}
