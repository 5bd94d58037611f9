//! Bases for an editor's `didOpen` whose text differs from the document (writer `open`).
//!
//! An editor that reopens a document after being offline (its connection dropped, or the
//! daemon restarted) sends its whole buffer `T`: the text it last had from the daemon plus
//! what it typed meanwhile. That difference must be merged as the editor's own edits, made at
//! the version the editor's text is based on, so the engine keeps everything others did since.
//! Diffing against the current document instead (a replacement) deletes whatever others added
//! meanwhile, e.g. the offline text of another editor that reopened a moment earlier.
//!
//! The writer does not learn the editor's version from `didOpen`, so it picks, among bases
//! that the editor's text can be based on, the one whose text needs the smallest diff to `T`
//! (ties go to the earlier candidate):
//! 1. the last states of editors with the same display name that disconnected from this run
//!    (what the daemon last believed their buffer was: a within-run reconnect);
//! 2. the document as this run started (after recovery): an editor that was offline while
//!    the daemon restarted. Applied there, the diff never deletes anything added in this run;
//! 3. the disk (a file loaded and edited before attaching), then the document itself.
//!
//! ## The editor's own account (plugins): `initializationOptions.reopen`
//! Picking by smallest diff is a guess, and it guesses wrong exactly when it matters most: a
//! buffer that never received an acknowledged edit (broadcast lost in a `kill -9`) looks like
//! the run start plus the editor deleting that edit. So the plugins tell the daemon what their
//! buffer holds: every `dist-space/edit` notice carries the wire version (agent name -> highest
//! seq, stable across restarts) of the editor's buffer after that edit, as changes since the
//! previous notice (`baseDelta`; `dist-space/resync`: whole, `base`; see `crate::proto`); the
//! initialize result names the connection's engine agent. A
//! plugin remembers, per buffer, the `base` of the last remote edit it applied and the agents
//! it had (one per connection, the last 16), and on each (re)connection sends
//! `initializationOptions.reopen = { [uri] = { base, agents } }` ([`Hint`]).
//!
//! The buffer's version is then [`hinted_base`]: the union of
//! * `base`, clamped to what the document holds (an agent whose reported seq is beyond the
//!   document's latest event of it: that edit was broadcast but never made durable; its text
//!   is in the buffer and comes back as the editor's edit), and
//! * the latest event each reported agent has in the document: the editor's own changes that
//!   the daemon received (its buffer holds them). An own event's parents are what the editor
//!   had seen when it made it (the `seen` protocol), so this adds nothing the buffer lacks.
//!
//! Everything the buffer holds that the document knows is in that version, and nothing else:
//! the diff from its text to `T` is exactly the editor's typing the daemon never received.
//! When the hint is unusable (no agent known, a version that does not resolve, or one compacted
//! away: checkout fails) the candidates above are used. Plain LSP clients send no hint.
//!
//! With the right base, the diff's shape still matters: it is merged with what others did
//! since, and a heuristic diff moves text around (deletes characters, inserts equal ones
//! elsewhere) and starts insertions mid-word, so a concurrent insertion lands inside the
//! editor's text. [`merge_diff`] is a minimal char diff whose insertions are slid to natural
//! places (`vfs::diff::merge_diff`; found by the Neovim crash test: markers split by an
//! agent's marker).
//!
//! Invariant: a reopen never deletes text that was inserted after the chosen base; the base
//! is the document itself only when no older candidate explains `T` at least as well. With a
//! usable hint, an edit the buffer never received is never read as the editor deleting it.
use std::collections::HashMap;

use engine::{Document, Frontier, RemoteId, RemoteVersion, Rope};
use serde::Deserialize;
use serde_json::Value;
use vfs::diff::{merge_diff, TextEdit};
use vfs::{FileId, Workspace};

/// Departed editor states kept per document (newest first).
const KEEP_LEFT: usize = 16;

/// A candidate base: version, its text, and a label for the log.
pub type Candidate = (Frontier, Rope, &'static str);

#[derive(Default)]
pub struct Bases {
    /// Documents built when the run started (the others start at their root, the text loaded).
    start: HashMap<FileId, (Frontier, Rope)>,
    left: HashMap<FileId, Vec<(String, Frontier, Rope)>>,
}

impl Bases {
    /// Every text document's version and text now (call when the run starts).
    pub fn at_start(ws: &mut Workspace) -> Bases {
        let ids: Vec<FileId> = ws.tree().visible().map(|(f, _)| f).collect();
        let mut start = HashMap::new();
        for f in ids {
            // Not building documents nobody touched yet (they start at their root).
            let Some(v) = ws
                .text_file(f)
                .filter(|t| t.is_materialised())
                .map(|t| t.doc.version().clone())
            else {
                continue;
            };
            if let Some(text) = ws.text(f) {
                start.insert(f, (v, text));
            }
        }
        Bases {
            start,
            left: HashMap::new(),
        }
    }

    /// An editor named `name` left with these possible buffer states of `f`.
    pub fn left(&mut self, f: FileId, name: &str, states: Vec<(Frontier, Rope)>) {
        let l = self.left.entry(f).or_default();
        for (v, t) in states.into_iter().rev() {
            l.retain(|(n, v2, _)| !(n == name && *v2 == v));
            l.insert(0, (name.to_string(), v, t));
        }
        l.truncate(KEEP_LEFT);
    }

    /// The bases to try for an editor named `name` reopening `f`, best first (disk and
    /// document excluded: the caller appends them).
    pub fn candidates(&self, f: FileId, name: &str, doc: &Document) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self
            .left
            .get(&f)
            .into_iter()
            .flatten()
            .filter(|(n, _, _)| n == name)
            .map(|(_, v, t)| (v.clone(), t.clone(), "own last state"))
            .collect();
        match self.start.get(&f) {
            Some((v, t)) => out.push((v.clone(), t.clone(), "run start")),
            None => {
                if let Ok(t) = doc.checkout(&Frontier::root()) {
                    out.push((Frontier::root(), t, "run start"));
                }
            }
        }
        // Bases compacted away since (bounded history) cannot take an edit any more.
        out.retain(|(v, _, _)| doc.includes_horizon(v));
        out
    }
}

/// The candidate whose text needs the smallest diff to `text` (the first on ties), and that
/// diff (a [`merge_diff`]). `cands` must not be empty.
pub fn best(cands: Vec<Candidate>, text: &str) -> (Frontier, Vec<TextEdit>, &'static str) {
    let (i, _) = vfs::diff::closest(cands.iter().map(|(_, t, _)| t.to_string().into()), text)
        .expect("at least one candidate");
    let (v, t, which) = cands.into_iter().nth(i).expect("in range");
    (v, merge_diff(&t.to_string(), text), which)
}

/// Most documents and agents per document accepted in one `initializationOptions.reopen`.
const MAX_HINT_DOCS: usize = 4096;
const MAX_HINT_AGENTS: usize = 64;

/// What a plugin reported for one document when it (re)connected: the wire version of the
/// last remote edit it applied to the buffer, and the engine agents it has had.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Hint {
    #[serde(default)]
    pub base: RemoteVersion,
    #[serde(default)]
    pub agents: Vec<String>,
}

/// `initializationOptions.reopen` (uri -> [`Hint`]). Lenient: a malformed entry is left out
/// (the document falls back to the candidates); absent or malformed as a whole: no hints.
pub fn parse_hints(opts: Option<&Value>) -> HashMap<String, Hint> {
    let Some(Value::Object(m)) = opts.and_then(|o| o.get("reopen")) else {
        return HashMap::new();
    };
    m.iter()
        .take(MAX_HINT_DOCS)
        .filter_map(|(uri, v)| {
            let mut h: Hint = serde_json::from_value(v.clone()).ok()?;
            h.agents.truncate(MAX_HINT_AGENTS);
            Some((uri.clone(), h))
        })
        .collect()
}

/// The version an editor's buffer is based on, from its [`Hint`] (see the module doc):
/// `base` clamped to the document's events, joined with the latest event of each of the
/// editor's agents. Errors when nothing in the hint is known to `doc` or it does not resolve.
pub fn hinted_base(doc: &Document, h: &Hint) -> Result<Frontier, String> {
    let log = doc.oplog();
    let latest = |name: &str| -> Option<u64> {
        let a = log.find_agent(name)?;
        log.next_seq(a).checked_sub(1)
    };
    let mut ids: Vec<RemoteId> = Vec::new();
    let mut unknown = 0usize;
    for (name, seq) in &h.base {
        match latest(name) {
            Some(last) => ids.push(RemoteId {
                agent: name.clone(),
                seq: (*seq).min(last),
            }),
            None => unknown += 1,
        }
    }
    for name in &h.agents {
        if let Some(last) = latest(name) {
            ids.push(RemoteId {
                agent: name.clone(),
                seq: last,
            });
        }
    }
    if ids.is_empty() {
        return Err(format!(
            "no event of the reported version is known ({unknown} agents unknown)"
        ));
    }
    doc.frontier_from_ids(&ids).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// "ab" by `run1`, then the editor `ed1` (which had seen "ab") types "E" at 0 while the
    /// agent `ag` inserts "X" at the end without the editor having seen it.
    fn doc() -> (Document, RemoteVersion) {
        let mut d = Document::new();
        let r = d.agent("run1");
        d.insert(r, 0, "ab").unwrap();
        let seen = d.remote_version(&d.version().clone());
        let ed = d.agent("ed1");
        d.insert(ed, 0, "E").unwrap();
        let ag = d.agent("ag");
        d.insert(ag, 3, "X").unwrap();
        (d, seen)
    }

    fn hint(base: &RemoteVersion, agents: &[&str]) -> Hint {
        Hint {
            base: base.clone(),
            agents: agents.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_base_joins_the_reported_version_and_the_editors_own_events() {
        let (d, seen) = doc();
        let v = hinted_base(&d, &hint(&seen, &["ed1", "gone-agent"])).unwrap();
        // The editor's buffer holds "ab" and its own "E", never the agent's "X".
        assert_eq!(d.checkout(&v).unwrap().to_string(), "Eab");
        let v = hinted_base(&d, &hint(&seen, &[])).unwrap();
        assert_eq!(d.checkout(&v).unwrap().to_string(), "ab");
    }

    #[test]
    fn a_reported_event_the_document_lacks_is_clamped_to_the_last_it_holds() {
        let (d, mut seen) = doc();
        // The editor applied run1's events up to seq 7 (broadcast, then lost in a crash).
        seen.insert("run1".into(), 7);
        let v = hinted_base(&d, &hint(&seen, &["ed1"])).unwrap();
        assert_eq!(d.checkout(&v).unwrap().to_string(), "Eab");
    }

    #[test]
    fn a_hint_naming_nothing_the_document_knows_is_unusable() {
        let (d, _) = doc();
        let mut other = RemoteVersion::new();
        other.insert("other-run".into(), 3);
        assert!(hinted_base(&d, &hint(&other, &["nobody"])).is_err());
        assert!(hinted_base(&d, &Hint::default()).is_err());
    }

    #[test]
    fn hints_parse_leniently() {
        let opts = json!({"reopen": {
            "file:///a": {"base": {"x#1": 3}, "agents": ["me#1", "me#2"]},
            "file:///b": {"base": [1, 2]},
            "file:///c": "nonsense",
            "file:///d": {"base": {"x#1": -1}},
        }});
        let h = parse_hints(Some(&opts));
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["file:///a"].base["x#1"], 3);
        assert_eq!(h["file:///a"].agents, ["me#1", "me#2"]);
        assert!(parse_hints(Some(&json!({"reopen": [1]}))).is_empty());
        assert!(parse_hints(Some(&json!({"name": "x"}))).is_empty());
        assert!(parse_hints(None).is_empty());
    }
}
