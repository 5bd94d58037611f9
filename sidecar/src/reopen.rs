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
//! Invariant: a reopen never deletes text that was inserted after the chosen base; the base
//! is the document itself only when no older candidate explains `T` at least as well.
use std::collections::HashMap;

use engine::{Document, Frontier, Rope};
use vfs::diff::{diff_edits, TextEdit};
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

fn cost(es: &[TextEdit]) -> usize {
    es.iter()
        .map(|e| e.range.len() + e.text.chars().count())
        .sum()
}

/// The candidate whose text needs the smallest diff to `text` (the first on ties), and that
/// diff. `cands` must not be empty.
pub fn best(cands: Vec<Candidate>, text: &str) -> (Frontier, Vec<TextEdit>, &'static str) {
    let mut best: Option<(usize, Frontier, Vec<TextEdit>, &'static str)> = None;
    for (v, t, which) in cands {
        if best.as_ref().is_some_and(|b| b.0 == 0) {
            break;
        }
        let es = diff_edits(&t.to_string(), text);
        let c = cost(&es);
        if best.as_ref().is_none_or(|b| c < b.0) {
            best = Some((c, v, es, which));
        }
    }
    let (_, v, es, which) = best.expect("at least one candidate");
    (v, es, which)
}
