//! The workspace: the file tree + one engine [`Document`] per text file, kept in agreement with
//! the disk in both directions.
//!
//! Invariants (one writer owns a `Workspace`; readers take [`WorkspaceSnapshot`]s):
//! * For every text file, `disk_text` is the content the sidecar last read from or wrote to
//!   disk, and `disk_base` is a version of the document whose text is exactly `disk_text`.
//! * The disk states before it (texts the sidecar recently wrote or read, with their
//!   versions) are kept in a bounded window ([`crate::window`]). An external change is
//!   applied by a disk agent at the state it most plausibly derives from (the smallest diff;
//!   usually `disk_base`, an older state for a tool that wrote back a stale copy plus its own
//!   change) with `Document::edit_at`, so edits made after that state by editors and agents
//!   are transformed, not overwritten. Exact older states (reverts), replacements and texts
//!   git checked out are applied at `disk_base`. Afterwards `disk_base` is the version "that
//!   base + the disk agent's edits" (the disk agent's last event), whose text is the new disk
//!   content.
//! * The sidecar's own writes are recognised by content: reading back a file whose content
//!   equals `disk_text` is a no-op. No timing window, no lost external edit.
//! * A file is *dirty* when its document version differs from `disk_base`; [`Workspace::flush`]
//!   writes dirty files whose text differs from `disk_text` (atomically), and a failed write
//!   leaves the document and the dirty mark as they were and reports the error.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::{AgentId, Document, Edit, Frontier, RemoteVersion, Rope};

use crate::diff::{diff_edits, edit_cost, inserted_chars, TextEdit};
use crate::disk::{atomic_write, DiskWatcher, WatchBatch, TEMP_PREFIX};
use crate::load::{
    self, IgnoreFilter, LoadError, LoadOptions, NotTextReason, Progress, RawContent, RawEntry,
};
use crate::names::{self, PathRefusal};
use crate::snapshot::{SnapContent, SnapFile, WorkspaceSnapshot};
use crate::text::{LazyDoc, SnapText};
use crate::tree::{
    FileId, FileTree, NodeId, NodeKind, SeenVersion, Stamp, TreeAuthor, TreeError, TreeEvent,
    TreeOp,
};
use crate::window::{DiskState, DiskWindow, MergeKind};

/// Workspace settings.
#[derive(Clone, Debug)]
pub struct WorkspaceOptions {
    pub load: LoadOptions,
    /// Agent name used for edits that come from the disk.
    pub disk_agent: String,
    /// Agent name of this replica for tree events made locally (disk or API).
    pub replica: String,
}

impl Default for WorkspaceOptions {
    fn default() -> Self {
        WorkspaceOptions {
            load: LoadOptions::default(),
            disk_agent: "disk".into(),
            replica: "local".into(),
        }
    }
}

/// A workspace version: counts every change (tree event or document edit) made to this replica.
pub type WsVersion = u64;

#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("no such file: {0}")]
    NoFile(String),
    #[error("`{path}` is not edited as text: {reason}")]
    NotText { path: String, reason: NotTextReason },
    #[error("edit rejected: {0}")]
    Edit(#[from] engine::EditError),
    #[error("bad version: {0}")]
    Version(#[from] engine::VersionError),
    #[error("events rejected: {0}")]
    Remote(#[from] engine::RemoteError),
    #[error("unknown workspace version {0} (current is {1})")]
    UnknownWsVersion(WsVersion, WsVersion),
    #[error("`{0}`: the disk holds a version older than the horizon (write it back first)")]
    DiskBaseBeforeHorizon(String),
    #[error("io error on `{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A walked entry turned into workspace state (on the walker threads, with its shared path
/// and its name, so that the main thread only links it in).
struct Loaded {
    path: Arc<str>,
    name: String,
    kind: NodeKind,
    state: FileState,
    /// What a snapshot shows for `state` (used when loading into an empty workspace).
    snap: SnapContent,
}

impl Loaded {
    fn new(path: Arc<str>, kind: NodeKind, mut state: FileState) -> Loaded {
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        let snap = snap_content(&mut state);
        Loaded {
            path,
            name,
            kind,
            state,
            snap,
        }
    }
    fn from_entry(e: RawEntry) -> Loaded {
        let state = match e.content {
            None => FileState::Dir,
            Some(RawContent::Text(text)) => FileState::Text(Box::new(TextFile::loaded(text))),
            Some(RawContent::NotText(reason)) => FileState::NotText { reason, len: e.len },
        };
        Loaded::new(e.path, e.kind, state)
    }
    fn path_of(l: &Loaded) -> &str {
        &l.path
    }
}

/// A text file: its document plus what the disk holds.
///
/// A file as loaded keeps the string it was read as; its engine [`Document`] (and rope) is
/// built on first use: `doc` dereferences to the document, building it (see [`LazyDoc`]).
/// Loading and snapshots never build it; the first edit, disk change, `disk_text()`,
/// [`Workspace::text`] or any `doc` call other than [`LazyDoc::version`] does.
pub struct TextFile {
    pub doc: LazyDoc,
    /// `None` until the disk side differs from "the base text, at the root version, no
    /// errors" (the state of every file as loaded: 8 bytes instead of a hundred).
    disk: Option<Box<DiskSide>>,
}

/// The disk side of a text file (see [`TextFile`]).
#[derive(Default)]
struct DiskSide {
    /// The disk agent's id in `doc`, registered on the first change read from disk (a file as
    /// loaded is the document's base text, with no events and no agents).
    agent: Option<AgentId>,
    /// `None`: the disk holds the document's base text (the file as loaded or created).
    text: Option<Rope>,
    base: Frontier,
    /// Set when the disk content stopped being text (binary, too large...): the document is
    /// kept, write-back is suspended until the disk holds text again.
    not_text: Option<NotTextReason>,
    write_error: Option<String>,
    /// The disk states before `text`/`base`, newest first (bounded; in memory only).
    window: DiskWindow,
}

impl TextFile {
    /// A document whose root version holds `text` (no events): the rope is shared by the
    /// log's base, the live text and `disk_text`, so a file costs one copy of its text.
    fn new(text: Rope) -> TextFile {
        TextFile::with_base(SnapText::from(text))
    }
    /// A file as read from disk: the string is kept until the document is first needed.
    fn loaded(text: SnapText) -> TextFile {
        TextFile::with_base(text)
    }
    fn with_base(base: SnapText) -> TextFile {
        TextFile {
            doc: LazyDoc::new(base),
            disk: None,
        }
    }
    fn side_mut(&mut self) -> &mut DiskSide {
        self.disk.get_or_insert_with(Default::default)
    }
    /// The engine document (built on first use; same as `&*self.doc`).
    pub fn document(&self) -> &Document {
        self.doc.get()
    }
    /// Has the engine document been built? (A loaded file's is built on first use.)
    pub fn is_materialised(&self) -> bool {
        self.doc.is_built()
    }
    /// The last write-back error, if the last attempt failed.
    pub fn write_error(&self) -> Option<&str> {
        self.disk.as_ref()?.write_error.as_deref()
    }
    /// Why the disk content is not text any more (binary, grew past the size limit...), if so:
    /// the document is kept and write-back is suspended until the disk holds text again.
    pub fn disk_not_text(&self) -> Option<&NotTextReason> {
        self.disk.as_ref()?.not_text.as_ref()
    }
    /// A version of the document whose text is exactly [`TextFile::disk_text`].
    pub fn disk_base(&self) -> &Frontier {
        match &self.disk {
            Some(d) => &d.base,
            None => crate::text::root_frontier(),
        }
    }
    /// Content as last read from / written to disk (builds the rope of a loaded file that
    /// has none yet; see [`TextFile::disk_snap_text`] for a way that does not).
    pub fn disk_text(&self) -> &Rope {
        match self.disk.as_ref().and_then(|d| d.text.as_ref()) {
            Some(r) => r,
            None => self.doc.base().rope(),
        }
    }
    /// Content as last read from / written to disk, without building a rope.
    pub fn disk_snap_text(&self) -> SnapText {
        match self.disk.as_ref().and_then(|d| d.text.as_ref()) {
            Some(r) => SnapText::from(r.clone()),
            None => self.doc.base().clone(),
        }
    }
    pub fn is_dirty(&self) -> bool {
        self.doc.version() != self.disk_base()
    }
    /// The disk states before the current one (newest first): texts the sidecar wrote to or
    /// read from disk, with a version whose text each is. Empty until the disk side moves.
    pub fn disk_window(&self) -> Option<&DiskWindow> {
        self.disk.as_ref().map(|d| &d.window)
    }
    /// The disk now holds `text`, the text of `version`: the current disk state moves into
    /// the window.
    fn set_disk_state(&mut self, version: Frontier, text: Rope) {
        let old = DiskState {
            version: self.disk_base().clone(),
            text: self.disk_text().clone(),
        };
        let side = self.side_mut();
        side.window.push(old);
        side.text = Some(text);
        side.base = version;
    }
    fn has_unseen(&self, seen: &SeenVersion) -> bool {
        let Some(doc) = self.doc.built() else {
            return false; // no events
        };
        let mine = doc.remote_version(doc.version());
        mine.iter()
            .any(|(agent, seq)| seen.get(agent).is_none_or(|s| seq > s))
    }
}

/// What the workspace holds for a node.
pub enum FileState {
    Dir,
    Text(Box<TextFile>),
    NotText { reason: NotTextReason, len: u64 },
}

/// An external change that was not simply applied at the newest disk state: merged at an older
/// one (a stale writer), or applied at the newest although an older one was closer (revert,
/// replacement, checkout). Counts only, never text (this is logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskMerge {
    pub path: String,
    pub kind: MergeKind,
    /// The disk state the change was applied at: 0 = the newest, `k` = `k` states older.
    pub base: usize,
    /// The disk state the new text was closest to (same numbering).
    pub closest: usize,
    /// Disk states there were to choose from (the newest included).
    pub states: usize,
    /// Chars the change inserted.
    pub inserted: usize,
    /// Chars the change removed (they stay in the history, readable at earlier versions).
    pub dropped: usize,
    /// Chars by which the document now differs from the new disk text: edits made after the
    /// base that the merge kept (written back next).
    pub kept: usize,
}

/// What one batch of disk changes did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskReport {
    pub created: Vec<String>,
    pub deleted: Vec<String>,
    pub renamed: Vec<(String, String)>,
    /// Text files whose content changed on disk and was merged.
    pub modified: Vec<String>,
    /// Files that stopped being text on disk (their document is kept).
    pub not_text: Vec<String>,
    /// Events about our own writes or unchanged content.
    pub unchanged: usize,
    /// Changes merged other than at the newest disk state (see [`DiskMerge`]).
    pub merges: Vec<DiskMerge>,
}

/// Result of a write-back pass.
#[derive(Debug, Default)]
pub struct FlushReport {
    pub written: Vec<String>,
    pub failed: Vec<(String, String)>,
}

struct JournalEntry {
    version: WsVersion,
    change: Change,
}

enum Change {
    Tree(TreeEvent),
    Doc(FileId, Frontier),
    /// The create events of one batch of walked entries (a load), in the order they were
    /// applied, all with `stamp`. Each is rebuilt on replay from its node (see
    /// [`CreatedNode`]): 32 bytes per node instead of a stored event and name.
    Created {
        stamp: Stamp,
        nodes: Vec<CreatedNode>,
    },
}

/// One create event of a [`Change::Created`] batch: node `f`, created as `kind` under
/// `parent` with the last component of `path` as its name. Node ids never change, so the
/// event is `Create { kind, parent: node_id(parent), name }` by `node_id(f)`.
struct CreatedNode {
    f: FileId,
    parent: FileId,
    kind: NodeKind,
    /// The path the node was created at (shared with the tree view while it is unchanged).
    path: Arc<str>,
}

impl CreatedNode {
    fn event(&self, stamp: &Stamp, tree: &FileTree) -> Option<TreeEvent> {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        Some(TreeEvent {
            stamp: stamp.clone(),
            node: tree.node_id(self.f)?.clone(),
            op: TreeOp::Create {
                kind: self.kind,
                parent: tree.node_id(self.parent)?.clone(),
                name: name.to_string(),
            },
        })
    }
}

/// The whole workspace. Owned by one thread; share [`WorkspaceSnapshot`]s with others.
pub struct Workspace {
    root: PathBuf,
    opts: WorkspaceOptions,
    tree: FileTree,
    author: TreeAuthor,
    replica: Arc<str>,
    files: Vec<Option<FileState>>,
    dirty: BTreeSet<FileId>,
    ignore: IgnoreFilter,
    version: WsVersion,
    journal: Vec<JournalEntry>,
    listing: Listing,
}

/// The persistent, path-sorted listing that snapshots share (see [`Workspace::snapshot`]).
///
/// Invariant: after [`Workspace::sync_listing`], `files` holds one entry per visible node
/// (root excluded), sorted by path, with the node's current content; `paths[f]` is the path
/// under which `f` appears in `files`. Between syncs, every file whose content changed is in
/// `stale` (once, `marked[f]` set), and any view change bumps the tree's generation.
#[derive(Default)]
struct Listing {
    files: imbl::Vector<SnapFile>,
    paths: Vec<Option<Arc<str>>>,
    stale: Vec<FileId>,
    marked: Vec<bool>,
    tree_gen: u64,
}

impl Listing {
    fn mark(&mut self, f: FileId) {
        let i = f.0 as usize;
        if self.marked.len() <= i {
            self.marked.resize(i + 1, false);
        }
        if !self.marked[i] {
            self.marked[i] = true;
            self.stale.push(f);
        }
    }
    fn set_path(&mut self, f: FileId, p: Option<Arc<str>>) {
        let i = f.0 as usize;
        if self.paths.len() <= i {
            self.paths.resize(i + 1, None);
        }
        self.paths[i] = p;
    }
}

fn seen_of(v: RemoteVersion) -> SeenVersion {
    v
}

impl Workspace {
    /// Load `root` (see [`crate::load::walk`]).
    pub fn load(
        root: &Path,
        opts: WorkspaceOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Workspace, VfsError> {
        let root = fs::canonicalize(root).map_err(|e| {
            VfsError::Load(LoadError::Root {
                path: root.to_path_buf(),
                source: e,
            })
        })?;
        // Documents are built on the walker threads (cheap: the loaded rope is the base text).
        let (entries, _skipped) = load::walk_map(
            &root,
            &root,
            &opts.load,
            progress,
            &Loaded::from_entry,
            &Loaded::path_of,
        )?;
        let ignore = IgnoreFilter::new(&root, &opts.load);
        let replica: Arc<str> = Arc::from(opts.replica.as_str());
        let mut ws = Workspace {
            root,
            opts,
            tree: FileTree::new(),
            author: TreeAuthor::new(),
            replica,
            files: vec![Some(FileState::Dir)],
            dirty: BTreeSet::new(),
            ignore,
            version: 0,
            journal: Vec::new(),
            listing: Listing::default(),
        };
        ws.add_entries(entries, false);
        Ok(ws)
    }

    /// Add walked entries as created nodes (parents before children).
    fn add_entries(&mut self, mut entries: Vec<Loaded>, report: bool) -> Vec<String> {
        // Parents before children: a path sorts before every path it is a prefix of
        // (entries from `load::walk` are sorted already, which this sort detects in O(n)).
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let mut created = Vec::new();
        // One stamp and one workspace version for the whole batch (a load is one step of
        // history), journaled as one compact entry.
        let stamp = Stamp {
            hlc: self.author.clock.tick(),
            agent: self.replica.clone(),
        };
        let mut nodes: Vec<CreatedNode> = Vec::with_capacity(entries.len());
        // Loading into an empty workspace: the walk's paths are unique and sorted, so the
        // listing is built by appending, and no path can exist yet.
        let fresh = self.tree.len_nodes() == 1 && self.listing.files.is_empty();
        self.files.reserve(entries.len());
        self.tree.reserve(entries.len());
        if fresh {
            self.listing.paths.reserve(entries.len() + 1);
        }
        // Node ids of this replica, taken in a row (see `TreeAuthor::new_node`).
        let mut seq = *self.author.next_seq_mut(&self.replica);
        // Consecutive entries mostly share their directory: remember the last one.
        let mut last_dir: Option<(Arc<str>, FileId)> = None;
        for e in entries {
            if !fresh && self.tree.lookup(&e.path).is_some() {
                continue;
            }
            let name = e.name.as_str();
            if name.is_empty() || name == "." || name == ".." {
                continue;
            }
            let dir = &e.path[..(e.path.len() - name.len()).saturating_sub(1)];
            let parent = match &last_dir {
                Some((d, f)) if **d == *dir => *f,
                _ => {
                    let Some(parent) = self.tree.lookup(dir) else {
                        continue;
                    };
                    if self.tree.kind(parent) != Some(NodeKind::Dir) {
                        continue;
                    }
                    let d = self.tree.path_arc(parent).unwrap_or_else(|| Arc::from(dir));
                    last_dir = Some((d, parent));
                    parent
                }
            };
            let node = NodeId {
                agent: self.replica.clone(),
                seq,
            };
            seq += 1;
            let f = self
                .tree
                .create_visible(node, &stamp, e.kind, parent, e.name, e.path.clone());
            let state = e.state;
            if fresh {
                self.listing.files.push_back(SnapFile {
                    id: f,
                    path: e.path.clone(),
                    content: e.snap,
                });
                self.listing.set_path(f, Some(e.path.clone()));
                self.files_resize(f);
                self.files[f.0 as usize] = Some(state);
            } else {
                self.set_state(f, state);
            }
            if report {
                created.push(e.path.to_string());
            }
            nodes.push(CreatedNode {
                f,
                parent,
                kind: e.kind,
                path: e.path,
            });
        }
        *self.author.next_seq_mut(&self.replica) = seq;
        if !nodes.is_empty() {
            self.record(Change::Created { stamp, nodes });
        }
        let gen = self.tree.view_generation();
        self.refresh_tree();
        if fresh && gen == self.tree.view_generation() {
            // No refresh was needed: the listing built above is the view.
            self.listing.tree_gen = gen;
        }
        created
    }

    fn files_resize(&mut self, f: FileId) {
        let i = f.0 as usize;
        if self.files.len() <= i {
            self.files.resize_with(i + 1, || None);
        }
    }

    fn set_state(&mut self, f: FileId, s: FileState) {
        self.files_resize(f);
        self.files[f.0 as usize] = Some(s);
        self.listing.mark(f);
    }

    fn record(&mut self, change: Change) {
        if let Change::Doc(f, _) = &change {
            self.listing.mark(*f);
        }
        self.version += 1;
        self.journal.push(JournalEntry {
            version: self.version,
            change,
        });
    }

    fn refresh_tree(&mut self) {
        let files = &self.files;
        self.tree
            .refresh_with(|f, seen| match files.get(f.0 as usize) {
                Some(Some(FileState::Text(t))) => t.has_unseen(seen),
                _ => false,
            });
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn tree(&self) -> &FileTree {
        &self.tree
    }
    pub fn version(&self) -> WsVersion {
        self.version
    }
    /// Whether `rel` may be created (or renamed to) by an editor or agent: a name the file
    /// system can hold (see [`crate::names`]), not inside `.git` or the state folder, and not
    /// a path the workspace ignores (`.gitignore`, `.ignore`, global excludes). Checked before
    /// anything changes.
    pub fn check_new_path(&mut self, rel: &str, is_dir: bool) -> Result<(), PathRefusal> {
        if let Some(folder) = names::excluded_folder(rel) {
            return Err(PathRefusal::Excluded {
                path: names::shorten(rel, 200),
                folder: folder.to_string(),
            });
        }
        names::check_limits(&self.root, rel, names::name_max(&self.root))?;
        if self.ignore.is_ignored(rel, is_dir) {
            return Err(PathRefusal::Ignored {
                path: names::shorten(rel, 200),
            });
        }
        Ok(())
    }

    pub fn lookup(&self, path: &str) -> Option<FileId> {
        self.tree.lookup(path)
    }
    pub fn path(&self, f: FileId) -> Option<&str> {
        self.tree.path(f)
    }
    pub fn state(&self, f: FileId) -> Option<&FileState> {
        self.files.get(f.0 as usize).and_then(|s| s.as_ref())
    }
    /// The text file behind `f`, if it is one.
    pub fn text_file(&self, f: FileId) -> Option<&TextFile> {
        match self.state(f)? {
            FileState::Text(t) => Some(t),
            _ => None,
        }
    }
    fn text_file_mut(&mut self, f: FileId) -> Result<&mut TextFile, VfsError> {
        let path = self.tree.path(f).unwrap_or("?").to_string();
        match self.files.get_mut(f.0 as usize).and_then(|s| s.as_mut()) {
            Some(FileState::Text(t)) => Ok(t),
            Some(FileState::NotText { reason, .. }) => Err(VfsError::NotText {
                path,
                reason: reason.clone(),
            }),
            _ => Err(VfsError::NoFile(path)),
        }
    }
    /// Current text of a text file (O(1) clone; builds the rope of a loaded file that has
    /// none yet, not its document).
    pub fn text(&mut self, f: FileId) -> Option<Rope> {
        self.text_snap(f).map(|t| t.to_rope())
    }
    /// Current text of a text file without building a rope or document (O(1) clone).
    pub fn text_snap(&mut self, f: FileId) -> Option<SnapText> {
        match self.files.get_mut(f.0 as usize)?.as_mut()? {
            FileState::Text(t) => Some(t.doc.current()),
            _ => None,
        }
    }
    /// Number of visible files and directories.
    pub fn len(&self) -> usize {
        self.tree.visible().count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Files with unsaved changes.
    pub fn dirty_files(&self) -> impl Iterator<Item = FileId> + '_ {
        self.dirty.iter().copied()
    }

    /// Edits by `agent` made in sequence at `base` (`None`: the current version), transformed
    /// over everything since (see `engine::Document::edit_at`). Returns the new version.
    pub fn edit(
        &mut self,
        f: FileId,
        agent: &str,
        base: Option<&Frontier>,
        edits: &[TextEdit],
    ) -> Result<Frontier, VfsError> {
        self.edit_ops(f, agent, base, edits).map(|o| o.version)
    }

    /// [`Workspace::edit`] that also returns the edits as applied to the live text
    /// (transformed; what `transform(previous version, new version)` would give, at no cost).
    pub fn edit_ops(
        &mut self,
        f: FileId,
        agent: &str,
        base: Option<&Frontier>,
        edits: &[TextEdit],
    ) -> Result<engine::EditOutcome, VfsError> {
        let t = self.text_file_mut(f)?;
        let a = t.doc.agent(agent);
        let base = base.cloned().unwrap_or_else(|| t.doc.version().clone());
        let edits: Vec<Edit> = edits
            .iter()
            .map(|e| Edit {
                range: e.range.clone(),
                text: e.text.clone(),
            })
            .collect();
        let out = t.doc.edit_at(a, &base, &edits)?;
        self.dirty.insert(f);
        self.record(Change::Doc(f, out.version.clone()));
        Ok(out)
    }

    /// Adds engine events made elsewhere (another replica, or an agent's private branch) to
    /// the document of `f` with `Document::apply_remote`: the engine merges them with
    /// everything the document has, exactly as if they had been made here. Atomic: an invalid
    /// event changes nothing. Events whose parents this document lacks are refused (and
    /// nothing changes) rather than left waiting.
    pub fn apply_events(
        &mut self,
        f: FileId,
        events: &[engine::RemoteEvent],
    ) -> Result<engine::ApplyReport, VfsError> {
        let t = self.text_file_mut(f)?;
        let doc = t.doc.get_mut();
        // Every parent must be known here or be an event of the batch.
        let batch: BTreeMap<(&str, u64), u64> = events
            .iter()
            .map(|e| ((e.agent.as_str(), e.seq), e.seq + e.len() as u64))
            .collect();
        for e in events {
            for p in &e.parents {
                let in_batch = batch
                    .range(..=(p.agent.as_str(), p.seq))
                    .next_back()
                    .is_some_and(|((a, _), end)| *a == p.agent && p.seq < *end);
                if !in_batch && doc.frontier_from_ids(std::slice::from_ref(p)).is_err() {
                    return Err(VfsError::Remote(engine::RemoteError::MissingParents {
                        agent: e.agent.clone(),
                        seq: e.seq,
                        missing: vec![(p.agent.clone(), p.seq)],
                    }));
                }
            }
        }
        let report = doc.apply_remote(events)?;
        if report.new_events > 0 {
            let v = doc.version().clone();
            self.dirty.insert(f);
            self.record(Change::Doc(f, v));
        }
        Ok(report)
    }

    /// Bounded history: drop `f`'s history before `horizon` (see `engine::Document::compact`;
    /// a critical version). The text, the version and every version that includes the horizon
    /// are unchanged, so nothing is recorded in the journal; older versions (e.g. past
    /// workspace versions of this file) fail with `BeforeHorizon` from now on. The disk base
    /// must include the horizon (else its text would be lost): refused with `BeforeHorizon`
    /// otherwise, and nothing changes. Returns the number of events dropped.
    pub fn compact_document(&mut self, f: FileId, horizon: &Frontier) -> Result<usize, VfsError> {
        let path = self.tree.path(f).unwrap_or("?").to_string();
        let t = self.text_file_mut(f)?;
        let disk_base = t.disk_base().clone();
        let Some(doc) = t.doc.built_mut() else {
            return Ok(0); // no events: nothing to drop
        };
        if !doc
            .oplog()
            .frontier_contains(disk_base.as_slice(), horizon.as_slice())
        {
            return Err(VfsError::DiskBaseBeforeHorizon(path));
        }
        let dropped = doc.compact(horizon)?;
        if dropped > 0 {
            let doc = t.doc.get();
            if let Some(d) = t.disk.as_mut() {
                d.window.retain(|s| doc.includes_horizon(&s.version));
            }
        }
        if dropped > 0 && t.disk.as_ref().is_none_or(|d| d.text.is_none()) {
            // The disk text was the loaded base (shared with the document's old root); keep
            // it explicitly now that the document's base is the horizon's text.
            let base = t.doc.base().to_rope();
            t.side_mut().text = Some(base);
        }
        Ok(dropped)
    }

    /// Durable-log recovery: `f`'s document becomes `doc` (its history restored from the log),
    /// whose version `disk_base` holds what the disk had when the log last knew it. With
    /// `merge_disk`, the file's content as loaded now is then merged like any external change
    /// (diffed against the text at `disk_base`, applied at `disk_base`, so edits the disk never
    /// got are kept and changes made on disk meanwhile are added); without, the document is
    /// written back on the next flush (the file is missing). `disk_agent` must be a name not
    /// used before in `doc` (edits of an agent must chain). Returns the new version if the
    /// disk added edits.
    pub fn restore_document(
        &mut self,
        f: FileId,
        doc: Document,
        disk_base: Frontier,
        disk_agent: &str,
        merge_disk: bool,
    ) -> Result<Option<Frontier>, VfsError> {
        let disk_text = doc.checkout(&disk_base)?;
        let (root, rel) = (
            self.root.clone(),
            self.tree.path(f).unwrap_or("").to_string(),
        );
        let t = self.text_file_mut(f)?;
        let now = t.disk_snap_text();
        let mut fresh = TextFile {
            doc: LazyDoc::from_document(doc),
            disk: None,
        };
        let agent = fresh.doc.agent(disk_agent);
        {
            let side = fresh.side_mut();
            side.agent = Some(agent);
            side.text = Some(disk_text);
            side.base = disk_base;
        }
        *t = fresh;
        let added = if merge_disk {
            apply_disk_text(t, disk_agent, now, |b| {
                crate::git::index_holds(&root, &rel, b)
            })
            .map(|a| a.version)
        } else {
            None
        };
        let dirty = !merge_disk || t.is_dirty();
        let v = t.doc.version().clone();
        if dirty {
            self.dirty.insert(f);
        }
        self.record(Change::Doc(f, v));
        Ok(added)
    }

    /// Local create of a text file (written on the next flush).
    pub fn create_file(&mut self, path: &str, text: &str) -> Result<FileId, VfsError> {
        self.ensure_dirs(path)?;
        let (f, ev) =
            self.tree
                .local_create(&mut self.author, &self.replica, path, NodeKind::File)?;
        self.set_state(f, FileState::Text(Box::new(TextFile::new(Rope::new()))));
        self.record(Change::Tree(ev));
        if !text.is_empty() {
            self.edit(
                f,
                &self.opts.replica.clone(),
                None,
                &[TextEdit {
                    range: 0..0,
                    text: text.to_string(),
                }],
            )?;
        }
        self.dirty.insert(f);
        Ok(f)
    }

    /// Local rename/move (also done on disk right away). The disk rename comes first: when it
    /// fails, the workspace is unchanged; when the tree refuses the move afterwards, the disk
    /// rename is undone. Either way a refused rename changes nothing.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), VfsError> {
        if self.tree.lookup(from).is_none() {
            return Err(VfsError::Tree(crate::tree::TreeError::NotFound(
                from.to_string(),
            )));
        }
        crate::tree::split_path(to)?;
        let (a, b) = (self.root.join(from), self.root.join(to));
        let on_disk = a.symlink_metadata().is_ok();
        let mut made: Vec<PathBuf> = Vec::new();
        if on_disk {
            // The target folder may exist only in the tree so far (`ensure_dirs`).
            if let Some(dir) = b.parent() {
                let mut d = dir.to_path_buf();
                while d.symlink_metadata().is_err() && d.starts_with(&self.root) {
                    made.push(d.clone());
                    if !d.pop() {
                        break;
                    }
                }
                if let Err(e) = fs::create_dir_all(dir) {
                    remove_made_dirs(&made);
                    return Err(VfsError::Io {
                        path: dir.to_path_buf(),
                        source: e,
                    });
                }
            }
            if let Err(e) = fs::rename(&a, &b) {
                remove_made_dirs(&made);
                return Err(VfsError::Io { path: b, source: e });
            }
        }
        let moved = self.ensure_dirs(to).and_then(|()| {
            self.tree
                .local_move(&mut self.author, &self.replica, from, to)
                .map_err(VfsError::from)
        });
        match moved {
            Ok(ev) => {
                self.record(Change::Tree(ev));
                Ok(())
            }
            Err(e) => {
                if on_disk {
                    let _ = fs::rename(&b, &a);
                    remove_made_dirs(&made);
                }
                Err(e)
            }
        }
    }

    /// Local delete of a file or directory tree (also on disk right away). Unsaved text is not
    /// lost: the delete only covers what was on disk (see [`crate::tree`]); a file with edits
    /// newer than its disk content stays.
    pub fn delete(&mut self, path: &str) -> Result<(), VfsError> {
        self.delete_with(path, false)
    }

    /// Local delete by someone who saw the current text of every file under `path` (an agent
    /// of the daemon's API reads the documents, unsaved edits included), so the delete covers
    /// unsaved edits too; only edits made after it (by other replicas, concurrently) keep a
    /// file. Also on disk right away.
    pub fn delete_seen_now(&mut self, path: &str) -> Result<(), VfsError> {
        self.delete_with(path, true)
    }

    fn delete_with(&mut self, path: &str, seen_now: bool) -> Result<(), VfsError> {
        let p = self.root.join(path);
        if seen_now {
            // Everything under `path` is covered: remove it on disk first, so that a failing
            // disk step leaves the workspace as it was.
            if self.tree.lookup(path).is_none() {
                return Err(VfsError::Tree(crate::tree::TreeError::NotFound(
                    path.to_string(),
                )));
            }
            remove_on_disk(&p)?;
        }
        let files = &self.files;
        let evs = self
            .tree
            .local_delete(&mut self.author, &self.replica, path, |f| {
                if seen_now {
                    seen_current(files, f)
                } else {
                    seen_for_delete(files, f)
                }
            })?;
        for ev in evs {
            self.record(Change::Tree(ev));
        }
        self.refresh_tree();
        match self.tree.lookup(path) {
            None if !seen_now => remove_on_disk(&p)?,
            Some(f) if seen_now => {
                // Kept by edits the delete did not see: written back again.
                for g in std::iter::once(f).chain(self.tree.descendants(f)) {
                    if self.text_file(g).is_some() {
                        self.dirty.insert(g);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn ensure_dirs(&mut self, path: &str) -> Result<(), VfsError> {
        let (dir, _) = crate::tree::split_path(path)?;
        if dir.is_empty() || self.tree.lookup(dir).is_some() {
            return Ok(());
        }
        let mut acc = String::new();
        for c in dir.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            if self.tree.lookup(&acc).is_none() {
                let (f, ev) =
                    self.tree
                        .local_create(&mut self.author, &self.replica, &acc, NodeKind::Dir)?;
                self.set_state(f, FileState::Dir);
                self.record(Change::Tree(ev));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ disk -> documents

    /// Wait for one debounced batch from `watcher` and apply it.
    pub fn poll_disk(
        &mut self,
        watcher: &mut dyn DiskWatcher,
        timeout: Duration,
    ) -> Option<DiskReport> {
        let batch = watcher.next_batch(timeout)?;
        Some(self.apply_disk_batch(&batch))
    }

    fn rel(&self, p: &Path) -> Option<String> {
        load::rel_path(&self.root, p).filter(|r| !r.is_empty())
    }

    /// Apply a batch of disk changes: renames first (keeping file identity), then every touched
    /// path is reconciled with what the disk holds now.
    pub fn apply_disk_batch(&mut self, batch: &WatchBatch) -> DiskReport {
        let mut rep = DiskReport::default();
        if batch.paths.iter().any(|p| {
            self.rel(p)
                .is_some_and(|r| IgnoreFilter::is_ignore_file(&r))
        }) {
            self.ignore.reload();
        }
        if batch.rescan {
            self.rescan(&mut rep);
            self.refresh_tree();
            return rep;
        }
        let mut done: BTreeSet<String> = BTreeSet::new();
        for (from, to) in &batch.renames {
            let (Some(fr), Some(tr)) = (self.rel(from), self.rel(to)) else {
                continue;
            };
            let Some(f) = self.tree.lookup(&fr) else {
                continue;
            };
            if from.symlink_metadata().is_ok() || to.symlink_metadata().is_err() {
                continue; // not a plain move any more (e.g. a backup rename then a re-create)
            }
            if self
                .ignore
                .is_ignored(&tr, self.tree.kind(f) == Some(NodeKind::Dir))
            {
                continue; // handled as a delete below
            }
            if let Some(existing) = self.tree.lookup(&tr) {
                // Moved over an existing file: that one is deleted (keeping unsaved text).
                let files = &self.files;
                if let Ok(evs) = self
                    .tree
                    .local_delete(&mut self.author, &self.replica, &tr, |g| {
                        seen_for_delete(files, g)
                    })
                {
                    for ev in evs {
                        self.record(Change::Tree(ev));
                    }
                }
                let _ = existing;
                self.refresh_tree();
            }
            if self.ensure_dirs(&tr).is_err() {
                continue;
            }
            match self
                .tree
                .local_move(&mut self.author, &self.replica, &fr, &tr)
            {
                Ok(ev) => {
                    self.record(Change::Tree(ev));
                    rep.renamed.push((fr.clone(), tr.clone()));
                    done.insert(fr);
                }
                Err(_) => continue,
            }
        }
        for p in &batch.paths {
            let Some(rel) = self.rel(p) else { continue };
            if done.contains(&rel) {
                continue;
            }
            self.reconcile_path(&rel, p, &mut rep);
        }
        self.refresh_tree();
        rep
    }

    /// Bring one path in line with the disk.
    fn reconcile_path(&mut self, rel: &str, abs: &Path, rep: &mut DiskReport) {
        if rel
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX))
        {
            return;
        }
        let md = abs.symlink_metadata();
        let tracked = self.tree.lookup(rel);
        match (md, tracked) {
            (Err(_), None) => {}
            (Err(_), Some(f)) => {
                // Gone from disk. Only delete if the parent still agrees (a rename we handled
                // moved it away already, then `lookup` would not find it).
                let files = &self.files;
                if let Ok(evs) = self
                    .tree
                    .local_delete(&mut self.author, &self.replica, rel, |g| {
                        seen_for_delete(files, g)
                    })
                {
                    for ev in evs {
                        self.record(Change::Tree(ev));
                    }
                    let _ = f;
                    rep.deleted.push(rel.to_string());
                }
                self.refresh_tree();
            }
            (Ok(md), tracked) => {
                let is_dir = md.is_dir();
                if self.ignore.is_ignored(rel, is_dir) {
                    return;
                }
                let kind_now = if is_dir {
                    NodeKind::Dir
                } else {
                    NodeKind::File
                };
                if let Some(f) = tracked {
                    if self.tree.kind(f) != Some(kind_now) {
                        // Type changed: delete the old node, then treat as new.
                        let files = &self.files;
                        if let Ok(evs) =
                            self.tree
                                .local_delete(&mut self.author, &self.replica, rel, |g| {
                                    seen_for_delete(files, g)
                                })
                        {
                            for ev in evs {
                                self.record(Change::Tree(ev));
                            }
                        }
                        self.refresh_tree();
                        return self.reconcile_path(rel, abs, rep);
                    }
                    if !is_dir {
                        self.reread_file(f, rel, abs, rep);
                    }
                    return;
                }
                if self.ensure_dirs(rel).is_err() {
                    return;
                }
                if is_dir {
                    // Walk it: files created before the watch on it was added have no event.
                    let mut noop = |_p: Progress| {};
                    if let Ok((mut all, _)) = load::walk_map(
                        &self.root.clone(),
                        abs,
                        &self.opts.load,
                        &mut noop,
                        &Loaded::from_entry,
                        &Loaded::path_of,
                    ) {
                        all.push(Loaded::new(Arc::from(rel), NodeKind::Dir, FileState::Dir));
                        let created = self.add_entries(all, true);
                        rep.created.extend(created);
                    }
                } else {
                    let (content, len, mtime) =
                        load::read_classified_raw(abs, self.opts.load.max_file_size);
                    let created = self.add_entries(
                        vec![Loaded::from_entry(RawEntry {
                            path: Arc::from(rel),
                            kind: NodeKind::File,
                            content: Some(content),
                            len,
                            mtime,
                        })],
                        true,
                    );
                    rep.created.extend(created);
                }
            }
        }
    }

    fn reread_file(&mut self, f: FileId, rel: &str, abs: &Path, rep: &mut DiskReport) {
        let (content, len, _) = load::read_classified_raw(abs, self.opts.load.max_file_size);
        let disk_agent = self.opts.disk_agent.clone();
        let root = self.root.clone();
        let Some(state) = self.files.get_mut(f.0 as usize).and_then(|s| s.as_mut()) else {
            return;
        };
        match (state, content) {
            (FileState::Text(t), RawContent::Text(new)) => {
                if let Some(d) = &mut t.disk {
                    d.not_text = None;
                }
                match apply_disk_text(t, &disk_agent, new, |b| {
                    crate::git::index_holds(&root, rel, b)
                }) {
                    Some(Applied { version: v, merge }) => {
                        if let Some(mut m) = merge {
                            m.path = rel.to_string();
                            rep.merges.push(m);
                        }
                        rep.modified.push(rel.to_string());
                        if t.is_dirty() {
                            self.dirty.insert(f);
                        }
                        self.record(Change::Doc(f, v));
                    }
                    None => rep.unchanged += 1,
                }
            }
            (FileState::Text(t), RawContent::NotText(reason)) => {
                t.side_mut().not_text = Some(reason);
                rep.not_text.push(rel.to_string());
            }
            (st @ FileState::NotText { .. }, RawContent::Text(new)) => {
                *st = FileState::Text(Box::new(TextFile::loaded(new)));
                rep.modified.push(rel.to_string());
                self.record(Change::Doc(f, Frontier::root()));
            }
            (FileState::NotText { reason, len: l }, RawContent::NotText(r)) => {
                if *reason == r && *l == len {
                    rep.unchanged += 1;
                } else {
                    *reason = r;
                    *l = len;
                    rep.not_text.push(rel.to_string());
                    self.record(Change::Doc(f, Frontier::root()));
                }
            }
            (FileState::Dir, _) => {}
        }
    }

    /// Full rescan after lost events: reconcile every tracked path and every path on disk.
    fn rescan(&mut self, rep: &mut DiskReport) {
        let mut noop = |_p: Progress| {};
        let root = self.root.clone();
        let Ok((entries, _)) = load::walk_map(
            &root,
            &root,
            &self.opts.load,
            &mut noop,
            &|e: RawEntry| e.path.to_string(),
            &|p: &String| p,
        ) else {
            return;
        };
        let on_disk: BTreeSet<String> = entries.into_iter().collect();
        let tracked: Vec<String> = self.tree.visible().map(|(_, p)| p.to_string()).collect();
        let mut paths: BTreeSet<String> = on_disk;
        paths.extend(tracked);
        for rel in paths {
            let abs = root.join(&rel);
            self.reconcile_path(&rel, &abs, rep);
        }
    }

    // ------------------------------------------------------------------ documents -> disk

    /// Write every dirty file whose text differs from the disk (atomically). Failures keep the
    /// document and the dirty mark and are reported (retried on the next flush).
    /// Nothing is written while the root folder itself is gone (removed or moved away): a
    /// write-back never re-creates a workspace; the files stay dirty.
    pub fn flush(&mut self) -> FlushReport {
        let mut rep = FlushReport::default();
        if !self.root.is_dir() {
            return rep;
        }
        let dirty: Vec<FileId> = self.dirty.iter().copied().collect();
        for f in dirty {
            let Some(path) = self.tree.path(f).map(str::to_string) else {
                // Not visible (deleted): nothing to write.
                self.dirty.remove(&f);
                continue;
            };
            let abs = self.root.join(&path);
            let Some(Some(FileState::Text(t))) = self.files.get_mut(f.0 as usize) else {
                self.dirty.remove(&f);
                continue;
            };
            if t.disk_not_text().is_some() {
                continue;
            }
            let text = t.doc.snapshot();
            let version = t.doc.version().clone();
            if text == *t.disk_text() && abs.exists() {
                t.side_mut().base = version;
                self.dirty.remove(&f);
                continue;
            }
            let res = abs
                .parent()
                .map(fs::create_dir_all)
                .unwrap_or(Ok(()))
                .and_then(|_| atomic_write(&abs, text.to_string().as_bytes()));
            match res {
                Ok(()) => {
                    t.set_disk_state(version, text);
                    t.side_mut().write_error = None;
                    self.dirty.remove(&f);
                    rep.written.push(path);
                }
                Err(e) => {
                    t.side_mut().write_error = Some(e.to_string());
                    rep.failed.push((path, e.to_string()));
                }
            }
        }
        rep
    }

    // ------------------------------------------------------------------ snapshots

    /// A consistent snapshot of the whole workspace now (one workspace version for every
    /// file). O(1) plus the catch-up of the persistent listing: O(log n) per file changed since
    /// the last snapshot, and one pointer comparison per node if the tree changed. No text,
    /// path or entry is copied; the snapshot is `Send + Sync` and unaffected by later edits.
    pub fn snapshot(&mut self) -> WorkspaceSnapshot {
        self.sync_listing();
        WorkspaceSnapshot::shared(self.version, &self.listing.files)
    }

    /// Bring the persistent listing up to date (see [`Listing`]).
    fn sync_listing(&mut self) {
        let mut changed = std::mem::take(&mut self.listing.stale);
        let gen = self.tree.view_generation();
        if gen != self.listing.tree_gen {
            self.listing.tree_gen = gen;
            let n = self.tree.len_nodes().max(self.listing.paths.len());
            for i in 1..n {
                let f = FileId(i as u32);
                let now = self.tree.path_arc(f);
                let before = self.listing.paths.get(i).and_then(|p| p.as_ref());
                let same = match (before, &now) {
                    (None, None) => true,
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                    _ => false,
                };
                if !same && !self.listing.marked.get(i).copied().unwrap_or(false) {
                    changed.push(f);
                }
            }
        }
        for f in &changed {
            if let Some(m) = self.listing.marked.get_mut(f.0 as usize) {
                *m = false;
            }
        }
        if changed.is_empty() {
            return;
        }
        // 1. Entries whose path changed leave their old place first (a path can pass from one
        //    node to another within one batch: a -> b, c -> a).
        for f in &changed {
            let i = f.0 as usize;
            let now = self.tree.path_arc(*f);
            let Some(old) = self.listing.paths.get(i).cloned().flatten() else {
                continue;
            };
            if now.as_deref() == Some(&*old) {
                continue;
            }
            if let Ok(ix) = crate::snapshot::search(&self.listing.files, &old) {
                if self.listing.files[ix].id == *f {
                    self.listing.files.remove(ix);
                }
            }
            self.listing.set_path(*f, None);
        }
        // 2. Current entries of the changed nodes.
        for f in changed {
            let Some(path) = self.tree.path_arc(f).filter(|_| f != FileId::ROOT) else {
                continue;
            };
            let content = match self.files.get_mut(f.0 as usize).and_then(|s| s.as_mut()) {
                Some(st) => snap_content(st),
                None => SnapContent::Dir,
            };
            let entry = SnapFile {
                id: f,
                path: path.clone(),
                content,
            };
            match crate::snapshot::search(&self.listing.files, &path) {
                Ok(ix) => {
                    self.listing.files.set(ix, entry);
                }
                Err(ix) => self.listing.files.insert(ix, entry),
            }
            self.listing.set_path(f, Some(path));
        }
    }

    /// Snapshot at a past workspace version: the tree replayed up to `v`, each document checked
    /// out at its version as of `v`. Costs a replay; use [`Workspace::snapshot`] for "now".
    pub fn snapshot_at(&mut self, v: WsVersion) -> Result<WorkspaceSnapshot, VfsError> {
        if v > self.version {
            return Err(VfsError::UnknownWsVersion(v, self.version));
        }
        if v == self.version {
            return Ok(self.snapshot());
        }
        let mut tree = FileTree::new();
        let mut doc_at: BTreeMap<FileId, Frontier> = BTreeMap::new();
        for j in self.journal.iter().take_while(|j| j.version <= v) {
            match &j.change {
                Change::Tree(ev) => tree.apply(ev),
                Change::Doc(f, fr) => {
                    doc_at.insert(*f, fr.clone());
                }
                Change::Created { stamp, nodes } => {
                    for n in nodes {
                        if let Some(ev) = n.event(stamp, &self.tree) {
                            tree.apply(&ev);
                        }
                    }
                }
            }
        }
        // The journal replays every tree event in the order it was applied, so the replayed
        // tree interns the same FileIds as the live one.
        let files = &self.files;
        tree.refresh_with(|f, seen| match files.get(f.0 as usize) {
            Some(Some(FileState::Text(t))) => {
                let Some(doc) = t.doc.built() else {
                    return false; // no events
                };
                let fr = doc_at.get(&f).cloned().unwrap_or_else(Frontier::root);
                let rv = doc.remote_version(&fr);
                rv.iter().any(|(a, s)| seen.get(a).is_none_or(|x| s > x))
            }
            _ => false,
        });
        let mut out = Vec::new();
        for (own, path) in tree.visible() {
            let content = match self.files.get(own.0 as usize).and_then(|s| s.as_ref()) {
                Some(FileState::Text(t)) => {
                    let fr = doc_at.get(&own).cloned().unwrap_or_else(Frontier::root);
                    let text = match t.doc.built() {
                        Some(doc) => SnapText::from(doc.checkout(&fr)?),
                        // Not built: no events, the root version is the only one.
                        None => t.doc.base().clone(),
                    };
                    SnapContent::Text { text, version: fr }
                }
                Some(FileState::NotText { reason, len }) => SnapContent::NotText {
                    reason: reason.clone(),
                    len: *len,
                },
                _ => SnapContent::Dir,
            };
            out.push(SnapFile {
                id: own,
                path: Arc::from(path),
                content,
            });
        }
        Ok(WorkspaceSnapshot::new(v, out))
    }
}

/// What a snapshot shows for a node's state (text and version shared, not copied; a file
/// whose document is not built shows its loaded text, and stays not built).
fn snap_content(st: &mut FileState) -> SnapContent {
    match st {
        FileState::Text(t) => SnapContent::Text {
            text: t.doc.current(),
            version: t.doc.version().clone(),
        },
        FileState::NotText { reason, len } => SnapContent::NotText {
            reason: reason.clone(),
            len: *len,
        },
        FileState::Dir => SnapContent::Dir,
    }
}

/// The version a delete by this replica has "seen" for file `f`: what is on disk.
fn seen_for_delete(files: &[Option<FileState>], f: FileId) -> SeenVersion {
    match files.get(f.0 as usize) {
        Some(Some(FileState::Text(t))) => match t.doc.built() {
            Some(doc) => seen_of(doc.remote_version(t.disk_base())),
            None => SeenVersion::new(), // no events
        },
        _ => SeenVersion::new(),
    }
}

/// The current version of file `f`, as a delete's "seen" version.
/// Remove `p` (a file or a folder tree) on disk; a path that cannot exist there (not found,
/// a file on the way, a name too long) is nothing to remove.
fn remove_on_disk(p: &Path) -> Result<(), VfsError> {
    let r = match p.symlink_metadata() {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => return Ok(()),
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(VfsError::Io {
            path: p.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Undo `create_dir_all`: remove the (empty) folders it made, innermost first.
fn remove_made_dirs(made: &[PathBuf]) {
    for d in made {
        let _ = fs::remove_dir(d);
    }
}

fn seen_current(files: &[Option<FileState>], f: FileId) -> SeenVersion {
    match files.get(f.0 as usize) {
        Some(Some(FileState::Text(t))) => match t.doc.built() {
            Some(doc) => seen_of(doc.remote_version(doc.version())),
            None => SeenVersion::new(), // no events
        },
        _ => SeenVersion::new(),
    }
}

/// The text as one string (borrowed when it is a loaded string).
fn str_of(t: &SnapText) -> std::borrow::Cow<'_, str> {
    match t.as_str() {
        Some(s) => s.into(),
        None => t.to_string().into(),
    }
}

/// What merging new disk content did.
struct Applied {
    /// The document's new version.
    version: Frontier,
    /// Set unless the change was simply applied at the newest disk state (`path` empty).
    merge: Option<DiskMerge>,
}

/// Merge new disk content into a text file, at the disk state it most plausibly derives from
/// (see [`crate::window`]). `git_restored(bytes)` tells whether the new content is what git's
/// index holds for the file (asked only when an older state would be chosen). Returns `None`
/// when the content is what we already knew (e.g. our own write).
fn apply_disk_text(
    t: &mut TextFile,
    disk_agent: &str,
    new: SnapText,
    git_restored: impl FnOnce(&[u8]) -> bool,
) -> Option<Applied> {
    let old = t.disk_snap_text();
    if old == new {
        return None;
    }
    if let Some(doc) = t.doc.built() {
        if new == doc.to_rope() {
            // The disk caught up with the document (e.g. an editor saved the text it shows,
            // which already went through the document): not an edit, or it would be applied
            // twice. (An unbuilt document's text is the old disk text, which `new` is not.)
            let v = doc.version().clone();
            t.set_disk_state(v, new.to_rope());
            return None;
        }
    }
    let new_s = str_of(&new);
    let newest = t.disk_text().clone();
    let doc = t.doc.get();
    if let Some(d) = t.disk.as_mut() {
        // States compacted away cannot take an edit any more.
        d.window.retain(|s| doc.includes_horizon(&s.version));
    }
    let empty = DiskWindow::default();
    let window = t.disk.as_ref().map_or(&empty, |d| &d.window);
    let choice = crate::window::choose(&newest, window, &new_s, || git_restored(new_s.as_bytes()));
    let states = window.len() + 1;
    let base = match choice.base {
        0 => t.disk_base().clone(),
        k => window
            .get(k - 1)
            .expect("chosen from the window")
            .version
            .clone(),
    };
    let edits: Vec<Edit> = choice
        .edits
        .iter()
        .map(|e| Edit {
            range: e.range.clone(),
            text: e.text.clone(),
        })
        .collect();
    let before = t.doc.oplog().len();
    let agent = match t.disk.as_ref().and_then(|d| d.agent) {
        Some(a) => a,
        None => {
            let a = t.doc.agent(disk_agent);
            t.side_mut().agent = Some(a);
            a
        }
    };
    let mut res = t.doc.edit_at(agent, &base, &edits);
    if matches!(res, Err(engine::EditError::AgentNotInBase)) {
        // An older base lacks the disk agent's last edit (a later external change): the
        // edit is made by a fresh disk agent (an agent's edits must form a chain).
        let name = (1..)
            .map(|n| format!("{disk_agent}~{n}"))
            .find(|n| t.doc.oplog().find_agent(n).is_none())
            .expect("a free name");
        let a = t.doc.agent(&name);
        t.side_mut().agent = Some(a);
        res = t.doc.edit_at(a, &base, &edits);
    }
    match res {
        Ok(out) => {
            let after = t.doc.oplog().len();
            let version = if after > before {
                Frontier::single(after - 1)
            } else {
                base
            };
            t.set_disk_state(version, new.to_rope());
            let merge = (choice.kind != MergeKind::Newest).then(|| {
                let now = t.doc.to_rope().to_string();
                DiskMerge {
                    path: String::new(),
                    kind: choice.kind,
                    base: choice.base,
                    closest: choice.closest,
                    states,
                    inserted: inserted_chars(&choice.edits),
                    dropped: edit_cost(&choice.edits) - inserted_chars(&choice.edits),
                    kept: edit_cost(&diff_edits(&new_s, &now)),
                }
            });
            Some(Applied {
                version: out.version,
                merge,
            })
        }
        Err(_) => {
            // Cannot happen for a diff against the text at the chosen base; be safe: reload
            // fully.
            let mut fresh = TextFile::loaded(new);
            std::mem::swap(t, &mut fresh);
            Some(Applied {
                version: t.doc.version().clone(),
                merge: None,
            })
        }
    }
}
