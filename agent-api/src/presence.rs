//! Presence: who is where. Editors report cursors (the writer hands them over with
//! [`AgentState::presence_update`]); an agent's place is where it last edited (the ranges its
//! edits landed on). Each entry carries the document version its selections refer to and the
//! text at that version, so every `presence` subscriber gets them in its own encoding.
//!
//! Agents are participants while they have an open subscription (a WebSocket agent following
//! the workspace) and for [`AGENT_LINGER`] after their last edit (HTTP agents have no
//! connection to follow).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{RemoteVersion, Rope};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use vfs::pos::{self, PositionEncoding};
use vfs::Workspace;

use crate::error::ApiError;
use crate::request::{AgentConn, Participant};
use crate::state::AgentState;
use crate::types::{encoding_of, pos_json};

/// How long an agent without a subscription stays listed after its last edit.
pub const AGENT_LINGER: Duration = Duration::from_secs(60);

/// One participant's place: file, version, selections (anchor, head) in chars at `version`
/// of `text`. `path: None` means "in no file"; `left` means the participant is gone.
#[derive(Clone, Debug)]
pub struct PresenceEntry {
    pub kind: &'static str,
    pub id: u64,
    pub name: String,
    pub path: Option<String>,
    pub version: RemoteVersion,
    pub text: Option<Rope>,
    pub selections: Vec<(usize, usize)>,
    pub left: bool,
}

impl PresenceEntry {
    /// The notice for a subscriber using `enc`.
    pub fn to_json(&self, enc: PositionEncoding) -> Value {
        let sels: Vec<Value> = match &self.text {
            Some(t) => self
                .selections
                .iter()
                .filter_map(|&(a, h)| {
                    let conv = |c: usize| {
                        pos::char_to_position(t, c.min(t.len_chars()), enc)
                            .ok()
                            .map(pos_json)
                    };
                    Some(json!({"anchor": conv(a)?, "head": conv(h)?}))
                })
                .collect(),
            None => vec![],
        };
        json!({
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "version": if self.path.is_some() { json!(self.version) } else { Value::Null },
            "selections": sels,
            "left": self.left,
        })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeParams {
    /// Unit of `character` in the notices (default utf-16).
    #[serde(default)]
    pub encoding: Option<String>,
}

#[derive(Clone, Debug)]
pub enum PresenceRequest {
    /// Everyone's current entry, in `encoding`.
    Now {
        encoding: Option<String>,
    },
    /// A subscription of this connection started / ended (keeps an agent listed).
    SubOpened,
    SubClosed,
}

struct AgentSeen {
    name: String,
    subs: u32,
    last_edit: Option<Instant>,
}

pub struct PresenceState {
    feed: broadcast::Sender<Arc<PresenceEntry>>,
    latest: BTreeMap<(&'static str, u64), Arc<PresenceEntry>>,
    agents: HashMap<AgentConn, AgentSeen>,
}

impl PresenceState {
    pub fn new(feed: broadcast::Sender<Arc<PresenceEntry>>) -> PresenceState {
        PresenceState {
            feed,
            latest: BTreeMap::new(),
            agents: HashMap::new(),
        }
    }

    fn live(&self, conn: AgentConn) -> bool {
        self.agents
            .get(&conn)
            .is_some_and(|a| a.subs > 0 || a.last_edit.is_some_and(|t| t.elapsed() < AGENT_LINGER))
    }

    fn publish(&mut self, e: PresenceEntry) {
        let e = Arc::new(e);
        if e.left {
            self.latest.remove(&(e.kind, e.id));
        } else {
            self.latest.insert((e.kind, e.id), e.clone());
        }
        let _ = self.feed.send(e);
    }

    /// A call from `conn`, whose engine agent is `name`.
    pub(crate) fn seen(&mut self, conn: AgentConn, name: &str) {
        let a = self.agents.entry(conn).or_insert_with(|| AgentSeen {
            name: String::new(),
            subs: 0,
            last_edit: None,
        });
        if a.name != name {
            a.name = name.to_string();
        }
        // Every HTTP request is a connection of its own: forget those no longer listed.
        if self.agents.len() > 1024 {
            let live: Vec<AgentConn> = self
                .agents
                .keys()
                .copied()
                .filter(|c| *c == conn || self.live(*c))
                .collect();
            self.agents.retain(|c, _| live.contains(c));
            self.latest
                .retain(|(k, id), _| *k != "agent" || live.contains(id));
        }
    }

    /// The participants for `workspace.info`: `editors`, then live agents.
    pub(crate) fn participants(&self, editors: &[Participant]) -> Vec<Participant> {
        let mut out = editors.to_vec();
        let mut ids: Vec<&AgentConn> = self.agents.keys().filter(|c| self.live(**c)).collect();
        ids.sort();
        for c in ids {
            out.push(Participant {
                id: *c,
                kind: "agent",
                name: self.agents[c].name.clone(),
                file: self.latest.get(&("agent", *c)).and_then(|e| e.path.clone()),
            });
        }
        out
    }

    /// After a successful call: an `fs.edit` answer (`path`, `version`, landed `edits`) moves
    /// the agent there.
    pub(crate) fn after_call(&mut self, ws: &Workspace, conn: AgentConn, v: &Value) {
        let (Some(path), Some(edits), Some(version)) = (
            v.get("path").and_then(Value::as_str),
            v.get("edits").and_then(Value::as_array),
            v.get("version"),
        ) else {
            return;
        };
        let Some(f) = ws.lookup(path) else { return };
        let Some(doc) = ws.text_file(f).and_then(|t| t.doc.built()) else {
            return;
        };
        let Ok(version) = serde_json::from_value::<RemoteVersion>(version.clone()) else {
            return;
        };
        let sels = edits
            .iter()
            .filter_map(|e| {
                let o = e.get("offsets")?;
                let s = o.get("start")?.as_u64()? as usize;
                let t = o.get("end")?.as_u64()? as usize;
                Some((s, t))
            })
            .collect();
        let Some(a) = self.agents.get_mut(&conn) else {
            return;
        };
        a.last_edit = Some(Instant::now());
        let name = a.name.clone();
        self.publish(PresenceEntry {
            kind: "agent",
            id: conn,
            name,
            path: Some(path.to_string()),
            version,
            text: Some(doc.to_rope()),
            selections: sels,
            left: false,
        });
    }

    pub(crate) fn request(
        &mut self,
        conn: AgentConn,
        r: PresenceRequest,
    ) -> Result<Value, ApiError> {
        match r {
            PresenceRequest::Now { encoding } => {
                let enc = encoding_of(encoding.as_deref())?;
                let all: Vec<Value> = self
                    .latest
                    .values()
                    .filter(|e| e.kind != "agent" || self.live(e.id))
                    .map(|e| e.to_json(enc))
                    .collect();
                Ok(json!(all))
            }
            PresenceRequest::SubOpened => {
                if let Some(a) = self.agents.get_mut(&conn) {
                    a.subs += 1;
                }
                Ok(Value::Null)
            }
            PresenceRequest::SubClosed => {
                let gone = match self.agents.get_mut(&conn) {
                    Some(a) => {
                        a.subs = a.subs.saturating_sub(1);
                        a.subs == 0
                    }
                    None => false,
                };
                if gone {
                    if let Some(a) = self.agents.remove(&conn) {
                        self.publish(PresenceEntry {
                            kind: "agent",
                            id: conn,
                            name: a.name,
                            path: None,
                            version: RemoteVersion::new(),
                            text: None,
                            selections: vec![],
                            left: true,
                        });
                    }
                }
                Ok(Value::Null)
            }
        }
    }
}

impl AgentState {
    /// An editor's place changed (or it connected: `path: None`; or it left: `left: true`).
    /// Called by the writer; pushed to `presence` subscribers.
    pub fn presence_update(&mut self, e: PresenceEntry) {
        self.presence.publish(e);
    }
}
