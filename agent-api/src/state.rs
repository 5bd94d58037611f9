//! The agent API's state inside the daemon's single writer, and the dispatch of each request.
//!
//! The server ([`crate::server`]) parses params into a [`Request`] and hands it, with a reply
//! channel, to the writer ([`crate::request::Call`]). The writer calls [`AgentState::handle`]
//! with its `Workspace`: every request is answered against the one current state, in the order
//! of the writer's queue, and an edit is applied with `Workspace::edit` at the version the agent
//! read, exactly like an editor's change. A request that fails changes nothing.

use std::collections::{HashMap, VecDeque};

use engine::{Frontier, Rope};
use serde_json::{json, Value};
use vfs::{FileId, Workspace};

use crate::feed::{ChangeFeed, Published};
use crate::request::{AgentConn, Context, Outcome, Request};

/// The agent API's state inside the writer.
pub struct AgentState {
    run_id: String,
    /// Per connection: engine agent generation (bumped when a base lacks its own last edit).
    pub(crate) gens: HashMap<AgentConn, u32>,
    feed: ChangeFeed,
    published: Published,
    branches: crate::branches::Branches,
    anchors: crate::anchors::Anchors,
    pub(crate) presence: crate::presence::PresenceState,
    held: crate::retention::Held,
    /// The texts of the versions most recently handed out per document (newest last; ropes
    /// share their nodes with the live text), so that an edit at a version an agent read a
    /// moment ago needs no replay of the history.
    pub(crate) recent: HashMap<FileId, VecDeque<(Frontier, Rope)>>,
}

/// Versions per document whose text [`AgentState`] keeps for edits at them.
const RECENT_TEXTS: usize = 16;

impl AgentState {
    /// `run_id` makes the engine agent names of this daemon run unique.
    pub fn new(run_id: &str, feed: ChangeFeed) -> AgentState {
        AgentState {
            run_id: run_id.to_string(),
            gens: HashMap::new(),
            presence: crate::presence::PresenceState::new(feed.1.clone()),
            feed,
            published: Published::default(),
            branches: crate::branches::Branches::new(run_id),
            anchors: crate::anchors::Anchors::default(),
            held: Default::default(),
            recent: HashMap::new(),
        }
    }

    pub(crate) fn remember_text(&mut self, f: FileId, v: Frontier, text: Rope) {
        let q = self.recent.entry(f).or_default();
        if q.back().is_some_and(|(w, _)| *w == v) {
            return;
        }
        q.push_back((v, text));
        if q.len() > RECENT_TEXTS {
            q.pop_front();
        }
    }

    /// Per document, the versions agents may still refer to (compaction keeps them; see
    /// `retention.rs`).
    pub fn retained(&mut self, ws: &Workspace) -> HashMap<FileId, Vec<Frontier>> {
        let mut out: HashMap<FileId, Vec<Frontier>> = HashMap::new();
        self.published.retained(&mut out);
        self.anchors.retained(&mut out);
        self.branches.retained(ws, &mut out);
        self.held.retained(&mut out);
        out
    }

    /// Push what happened to `changed` documents since the last publication to `changes`
    /// subscribers. Called by the writer once per batch, before editors are updated.
    pub fn publish(&mut self, ws: &Workspace, changed: impl IntoIterator<Item = FileId>) {
        self.published.publish(&self.feed, ws, changed);
    }

    pub(crate) fn agent_name(&self, conn: AgentConn) -> String {
        let g = self.gens.get(&conn).copied().unwrap_or(0);
        format!("agent#{}-{conn}.{g}", self.run_id)
    }

    /// Answer one call against the workspace.
    pub fn handle(
        &mut self,
        ws: &mut Workspace,
        ctx: &Context,
        conn: AgentConn,
        req: Request,
    ) -> Outcome {
        let mut changed = Vec::new();
        let mut deferred = None;
        self.presence.seen(conn, &self.agent_name(conn));
        let result = match req {
            Request::Info => Ok(json!({
                "root": ws.root(),
                "version": ws.version(),
                "participants": self.presence.participants(&ctx.participants),
                "files": ws.len(),
            })),
            Request::List(p) => crate::read::list(ws, ctx, p),
            Request::Read(p) => {
                let current = p.version.is_none();
                let r = crate::read::read(ws, p);
                if let (true, Ok(v)) = (current, &r) {
                    // The version read: the next edit will most likely be made at it.
                    let f = v
                        .get("path")
                        .and_then(Value::as_str)
                        .and_then(|p| ws.lookup(p));
                    if let Some((f, doc)) = f.and_then(|f| Some((f, ws.text_file(f)?.doc.built()?)))
                    {
                        let (v, t) = (doc.version().clone(), doc.to_rope());
                        self.remember_text(f, v, t);
                    }
                }
                r
            }
            Request::Edit(p) => self.edit(ws, conn, p, &mut changed),
            Request::Branch(r) => {
                let out = self.branches.handle(ws, conn, r);
                changed = out.changed;
                out.result
            }
            Request::Snapshot(p) => crate::snapshot::snapshot(ws, p, &mut deferred),
            Request::Since(p) => crate::snapshot::since(ws, p),
            Request::Create(p) => crate::files::create(ws, p, &mut changed),
            Request::Delete(p) => crate::files::delete(ws, p),
            Request::Rename(p) => crate::files::rename(ws, p),
            Request::Search(p) => crate::search::search(ws, p, &mut deferred),
            Request::Anchor(r) => self.anchors.handle(ws, r),
            Request::Presence(r) => self.presence.request(conn, r),
        };
        if let Ok(v) = &result {
            self.presence.after_call(ws, conn, v);
            self.held.record(ws, conn, v);
        }
        Outcome {
            result,
            changed,
            deferred,
        }
    }
}
