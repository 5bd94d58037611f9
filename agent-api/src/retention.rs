//! Retention for bounded history: the document versions agents may still refer to,
//! which the daemon's compaction must keep (`AgentState::retained`).
//!
//! Kept: the version last published to `changes` subscribers per document (notices are made
//! from it), every anchor's version, every open branch's fork versions (its changed files and
//! every file of its snapshot whose live document has history), and the versions handed to
//! each agent connection by a reply (`path` + `version`, or `files: [{path, version}]`: the
//! latest per file and connection) for [`HOLD`] after they were last handed out — agents
//! connect per request over HTTP, so "still connected" cannot tell whether they still hold a
//! version; an agent that edits at an older version than that gets "resync needed" (-32060).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use engine::{Frontier, RemoteVersion};
use serde_json::Value;
use vfs::{FileId, Workspace};

use crate::request::AgentConn;

/// How long a version handed to an agent is kept from compaction.
pub const HOLD: Duration = Duration::from_secs(3600);
/// Versions recorded per reply at most (a listing of a huge workspace is not recorded whole).
const MAX_PER_REPLY: usize = 10_000;

#[derive(Default)]
pub struct Held {
    map: HashMap<(AgentConn, FileId), (Frontier, Instant)>,
}

impl Held {
    /// Record the versions a successful reply hands out.
    pub fn record(&mut self, ws: &Workspace, conn: AgentConn, v: &Value) {
        let now = Instant::now();
        let mut one = |path: Option<&str>, version: Option<&Value>| {
            let (Some(path), Some(version)) = (path, version) else {
                return;
            };
            let Some(f) = ws.lookup(path) else { return };
            let Some(doc) = ws.text_file(f).and_then(|t| t.doc.built()) else {
                return; // never edited: nothing to compact
            };
            let Ok(rv) = serde_json::from_value::<RemoteVersion>(version.clone()) else {
                return;
            };
            if let Ok(fr) = doc.frontier_of(&rv) {
                self.map.insert((conn, f), (fr, now));
            }
        };
        one(v.get("path").and_then(Value::as_str), v.get("version"));
        if let Some(files) = v.get("files").and_then(Value::as_array) {
            for x in files.iter().take(MAX_PER_REPLY) {
                one(x.get("path").and_then(Value::as_str), x.get("version"));
            }
        }
    }

    /// The versions still held (expired ones are dropped).
    pub fn retained(&mut self, out: &mut HashMap<FileId, Vec<Frontier>>) {
        let now = Instant::now();
        self.map.retain(|_, (_, t)| now.duration_since(*t) < HOLD);
        for ((_, f), (v, _)) in &self.map {
            out.entry(*f).or_default().push(v.clone());
        }
    }
}
