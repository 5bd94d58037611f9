//! The file tree as replicated state: an LWW element dictionary keyed by node identity.
//!
//! Every file or directory is a *node* with a globally unique [`NodeId`] (the agent that created
//! it + a sequence number). Paths are derived, never stored as identity: a rename or move only
//! changes the node's `(parent, name)` register, so the file keeps its id and its document, and
//! edits made concurrently "to the old path" land in the renamed file.
//!
//! State per node (each register merged last-writer-wins by [`Stamp`] = hybrid logical clock,
//! then agent name as tie-break):
//! * `kind` (file or dir; fixed at creation),
//! * `loc` = `(parent, name)`, set by create and by rename/move,
//! * `live` = alive or deleted, set by create (alive) and delete (deleted).
//!
//! Merging takes the max stamp per register, so it is commutative, associative and idempotent:
//! replicas that saw the same set of events agree, whatever the order ([`FileTree::apply`]
//! accepts events in any order, even a move before the create it refers to).
//!
//! The visible tree is a pure function of that state (plus, for files, the document state):
//! 1. **Delete vs concurrent edit — no typed text is lost.** A delete event carries `seen`, the
//!    document version the deleter had observed. A deleted file stays visible ("the edit
//!    resurrects the file") while its document holds any edit not covered by the winning delete's
//!    `seen`. This is decided by a callback ([`FileTree::refresh_with`]) so it converges as soon
//!    as the documents converge.
//! 2. **Directories are add-wins.** A directory is visible if it is alive or if any node under it
//!    is visible (a file created or resurrected inside a concurrently deleted directory brings
//!    its ancestors back). Deleting a directory emits a delete for every node under it.
//! 3. **Move cycles** (A moved into B while B moved into A): the node of the cycle with the
//!    greatest `loc` stamp is placed at the root instead. Deterministic from the state alone.
//! 4. **Name clashes** (two visible nodes with the same parent and name): the one with the
//!    greatest `loc` stamp keeps the name; each other one is shown as `name~agent-seq`.
//! 5. Nodes whose parent is unknown (its create not yet received) are placed at the root until it
//!    arrives.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// The id and path maps: foldhash (fast, randomly seeded) instead of SipHash; a load inserts
/// every node into both.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Document version as the wire form used by the engine: agent name -> highest seq included.
pub type SeenVersion = BTreeMap<String, u64>;

/// A hybrid logical clock timestamp: physical milliseconds + logical counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hlc {
    pub wall_ms: u64,
    pub counter: u32,
}

/// A hybrid logical clock (one per replica).
#[derive(Debug, Default)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    pub fn new() -> Self {
        Self::default()
    }
    fn wall_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
    /// A new timestamp for a local event: greater than every timestamp seen so far.
    pub fn tick(&mut self) -> Hlc {
        self.tick_at(Self::wall_now())
    }
    /// `tick` with an explicit wall clock (tests, deterministic replays).
    pub fn tick_at(&mut self, wall_ms: u64) -> Hlc {
        if wall_ms > self.last.wall_ms {
            self.last = Hlc {
                wall_ms,
                counter: 0,
            };
        } else {
            self.last.counter = self.last.counter.saturating_add(1);
        }
        self.last
    }
    /// Merge a timestamp received from another replica.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > self.last {
            self.last = remote;
        }
    }
    pub fn last(&self) -> Hlc {
        self.last
    }
}

/// An event timestamp: HLC, then agent name as the tie-break.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stamp {
    pub hlc: Hlc,
    pub agent: Arc<str>,
}

/// Global identity of a tree node: the agent that created it and its per-agent sequence number.
/// The root directory is `NodeId::root()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub agent: Arc<str>,
    pub seq: u64,
}

impl NodeId {
    pub fn root() -> Self {
        NodeId {
            agent: Arc::from(""),
            seq: 0,
        }
    }
    pub fn is_root(&self) -> bool {
        self.agent.is_empty() && self.seq == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    File,
    Dir,
}

/// A tree event, as replicated between replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEvent {
    pub stamp: Stamp,
    pub node: NodeId,
    pub op: TreeOp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeOp {
    Create {
        kind: NodeKind,
        parent: NodeId,
        name: String,
    },
    /// Rename and/or move.
    Move { parent: NodeId, name: String },
    /// `seen`: the document version the deleter had observed (empty for directories).
    Delete { seen: SeenVersion },
}

/// Small copyable per-replica handle for a node (interned [`NodeId`]). Stable across renames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

impl FileId {
    /// The root directory always has id 0.
    pub const ROOT: FileId = FileId(0);
}

#[derive(Clone, Debug)]
struct Node {
    id: NodeId,
    kind: Option<NodeKind>,
    loc: Option<(Stamp, FileId, String)>,
    /// `(stamp, alive, seen)`: `seen` is meaningful when deleted.
    live: Option<(Stamp, bool, SeenVersion)>,
}

#[derive(Clone, Debug, Default)]
struct View {
    /// Visible path of each visible node ("" for the root), indexed by FileId.
    path: Vec<Option<Arc<str>>>,
    by_path: FastMap<Arc<str>, FileId>,
}

/// Errors for local tree operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("no visible file or directory at `{0}`")]
    NotFound(String),
    #[error("`{0}` already exists")]
    Exists(String),
    #[error("parent of `{0}` is not a directory")]
    ParentNotDir(String),
    #[error("invalid path `{0}`")]
    InvalidPath(String),
    #[error("cannot move `{0}` into itself")]
    IntoItself(String),
}

/// The replicated file tree. Paths are `/`-separated and relative to the workspace root.
#[derive(Clone, Debug)]
pub struct FileTree {
    nodes: Vec<Node>,
    ids: FastMap<NodeId, FileId>,
    view: View,
    dirty: bool,
    /// Bumped whenever the visible view may have changed.
    generation: u64,
}

impl Default for FileTree {
    fn default() -> Self {
        Self::new()
    }
}

impl FileTree {
    pub fn new() -> Self {
        let root = Node {
            id: NodeId::root(),
            kind: Some(NodeKind::Dir),
            loc: None,
            live: None,
        };
        let mut ids = FastMap::default();
        ids.insert(NodeId::root(), FileId::ROOT);
        let mut t = FileTree {
            nodes: vec![root],
            ids,
            view: View::default(),
            dirty: true,
            generation: 0,
        };
        t.refresh();
        t
    }

    /// Intern a node id (creating an empty entry if unknown).
    pub fn intern(&mut self, id: &NodeId) -> FileId {
        if let Some(f) = self.ids.get(id) {
            return *f;
        }
        let f = FileId(self.nodes.len() as u32);
        self.nodes.push(Node {
            id: id.clone(),
            kind: None,
            loc: None,
            live: None,
        });
        self.ids.insert(id.clone(), f);
        f
    }

    pub fn file_id(&self, id: &NodeId) -> Option<FileId> {
        self.ids.get(id).copied()
    }
    pub fn node_id(&self, f: FileId) -> Option<&NodeId> {
        self.nodes.get(f.0 as usize).map(|n| &n.id)
    }
    pub fn kind(&self, f: FileId) -> Option<NodeKind> {
        self.nodes.get(f.0 as usize).and_then(|n| n.kind)
    }
    /// Number of interned nodes (including the root and invisible ones).
    pub fn len_nodes(&self) -> usize {
        self.nodes.len()
    }
    /// The `seen` version of the winning delete, if the node's live register says deleted.
    pub fn deleted_seen(&self, f: FileId) -> Option<&SeenVersion> {
        match &self.nodes.get(f.0 as usize)?.live {
            Some((_, false, seen)) => Some(seen),
            _ => None,
        }
    }

    /// Merge one event (any order, idempotent). Call [`FileTree::refresh`] (or
    /// [`FileTree::refresh_with`]) after a batch to update the visible view.
    pub fn apply(&mut self, ev: &TreeEvent) {
        let f = self.intern(&ev.node);
        if f == FileId::ROOT {
            return; // the root cannot be created, moved or deleted
        }
        let parent = match &ev.op {
            TreeOp::Create { parent, .. } | TreeOp::Move { parent, .. } => {
                Some(self.intern(parent))
            }
            TreeOp::Delete { .. } => None,
        };
        let node = &mut self.nodes[f.0 as usize];
        let newer = |old: Option<&Stamp>| old.is_none_or(|s| ev.stamp > *s);
        match &ev.op {
            TreeOp::Create { kind, name, .. } => {
                node.kind = Some(*kind);
                if newer(node.loc.as_ref().map(|l| &l.0)) {
                    node.loc = Some((
                        ev.stamp.clone(),
                        parent.unwrap_or(FileId::ROOT),
                        name.clone(),
                    ));
                }
                if newer(node.live.as_ref().map(|l| &l.0)) {
                    node.live = Some((ev.stamp.clone(), true, SeenVersion::new()));
                }
            }
            TreeOp::Move { name, .. } => {
                if newer(node.loc.as_ref().map(|l| &l.0)) {
                    node.loc = Some((
                        ev.stamp.clone(),
                        parent.unwrap_or(FileId::ROOT),
                        name.clone(),
                    ));
                }
            }
            TreeOp::Delete { seen } => {
                if newer(node.live.as_ref().map(|l| &l.0)) {
                    node.live = Some((ev.stamp.clone(), false, seen.clone()));
                }
            }
        }
        self.dirty = true;
    }

    /// Recompute the visible view, with no document state (deleted files stay deleted).
    pub fn refresh(&mut self) {
        self.refresh_with(|_, _| false);
    }

    /// Recompute the visible view. `has_unseen_edits(file, seen)` must say whether the file's
    /// document holds edits not covered by `seen` (then the deleted file is resurrected).
    /// O(number of nodes); a no-op when nothing changed since the last refresh.
    pub fn refresh_with(&mut self, mut has_unseen_edits: impl FnMut(FileId, &SeenVersion) -> bool) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.generation += 1;
        let n = self.nodes.len();
        // 1. effective parent of each node (cycles broken, unknown parents -> root).
        let mut parent: Vec<u32> = vec![0; n];
        for (i, node) in self.nodes.iter().enumerate() {
            parent[i] = match &node.loc {
                Some((_, p, _)) if self.nodes[p.0 as usize].kind == Some(NodeKind::Dir) => p.0,
                _ => 0,
            };
        }
        parent[0] = 0;
        break_cycles(&mut parent, |i| self.nodes[i].loc.as_ref().map(|l| &l.0));
        // 2. own visibility, then propagate to ancestors (add-wins dirs).
        let mut visible = vec![false; n];
        visible[0] = true;
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            let (Some(kind), Some(_)) = (node.kind, &node.loc) else {
                continue;
            };
            visible[i] = match &node.live {
                Some((_, true, _)) => true,
                Some((_, false, seen)) => {
                    kind == NodeKind::File && has_unseen_edits(FileId(i as u32), seen)
                }
                None => false,
            };
        }
        for i in 1..n {
            if visible[i] {
                let mut p = parent[i] as usize;
                while p != 0 && !visible[p] {
                    visible[p] = true;
                    p = parent[p] as usize;
                }
            }
        }
        // 3. names with clash resolution: children grouped by (parent, name).
        let mut winners: HashMap<(u32, &str), usize> = HashMap::new();
        for i in 1..n {
            if !visible[i] {
                continue;
            }
            let (stamp, _, name) = self.nodes[i]
                .loc
                .as_ref()
                .expect("visible nodes have a loc");
            winners
                .entry((parent[i], name.as_str()))
                .and_modify(|w| {
                    let ws = &self.nodes[*w].loc.as_ref().expect("loc").0;
                    if stamp > ws {
                        *w = i;
                    }
                })
                .or_insert(i);
        }
        let mut names: Vec<Option<Cow<'_, str>>> = vec![None; n];
        for i in 1..n {
            if !visible[i] {
                continue;
            }
            let (_, _, name) = self.nodes[i].loc.as_ref().expect("loc");
            let id = &self.nodes[i].id;
            names[i] = Some(if winners.get(&(parent[i], name.as_str())) == Some(&i) {
                Cow::Borrowed(name.as_str())
            } else {
                Cow::Owned(format!("{name}~{}-{}", id.agent, id.seq))
            });
        }
        // 4. paths (memoised walk up). A path that did not change keeps its shared string, so
        //    holders of the previous view (snapshots) can compare by pointer.
        let old = std::mem::take(&mut self.view.path);
        let mut paths: Vec<Option<Arc<str>>> = vec![None; n];
        paths[0] = Some(Arc::from(""));
        let mut stack = Vec::new();
        for i in 1..n {
            if !visible[i] || paths[i].is_some() {
                continue;
            }
            let mut j = i;
            while paths[j].is_none() {
                stack.push(j);
                j = parent[j] as usize;
            }
            while let Some(k) = stack.pop() {
                let pp = paths[parent[k] as usize].as_deref().unwrap_or("");
                let name = names[k].as_deref().unwrap_or("");
                let same = old.get(k).and_then(|o| o.as_ref()).filter(|o| {
                    if pp.is_empty() {
                        ***o == *name
                    } else {
                        o.len() == pp.len() + 1 + name.len()
                            && o.starts_with(pp)
                            && o.as_bytes()[pp.len()] == b'/'
                            && o.ends_with(name)
                    }
                });
                paths[k] = Some(match same {
                    Some(o) => o.clone(),
                    None if pp.is_empty() => Arc::from(name),
                    None => Arc::from(format!("{pp}/{name}")),
                });
            }
        }
        let mut by_path = FastMap::with_capacity_and_hasher(n, Default::default());
        for (i, p) in paths.iter().enumerate() {
            if let Some(p) = p {
                by_path.insert(p.clone(), FileId(i as u32));
            }
        }
        self.view = View {
            path: paths,
            by_path,
        };
    }

    /// Make room for `n` more nodes (bulk loading).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
        self.ids.reserve(n);
        self.view.path.reserve(n);
        self.view.by_path.reserve(n);
    }

    /// Apply the create event of node `node` (`stamp`, `kind`, `name`) under `parent` (a
    /// visible directory) where `name` is free, and make it visible at `path` without a full
    /// refresh (bulk loading). Under those conditions the view is exactly what
    /// [`FileTree::refresh`] would compute, so a tree that was up to date stays up to date.
    /// Takes the name and path by value (built by the caller, e.g. on the walker threads).
    /// Returns the node's id.
    pub(crate) fn create_visible(
        &mut self,
        node: NodeId,
        stamp: &Stamp,
        kind: NodeKind,
        parent: FileId,
        name: String,
        path: Arc<str>,
    ) -> FileId {
        let next = FileId(self.nodes.len() as u32);
        let f = match self.ids.entry(node) {
            std::collections::hash_map::Entry::Vacant(v) => {
                let id = v.key().clone();
                v.insert(next);
                self.nodes.push(Node {
                    id,
                    kind: Some(kind),
                    loc: Some((stamp.clone(), parent, name)),
                    live: Some((stamp.clone(), true, SeenVersion::new())),
                });
                next
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                // Known node (its events arrived before): the general path, and a full
                // refresh later.
                let (node, f) = (o.key().clone(), *o.get());
                let ev = TreeEvent {
                    stamp: stamp.clone(),
                    node,
                    op: TreeOp::Create {
                        kind,
                        parent: self.nodes[parent.0 as usize].id.clone(),
                        name,
                    },
                };
                self.apply(&ev);
                self.dirty = true;
                f
            }
        };
        let i = f.0 as usize;
        if self.view.path.len() <= i {
            self.view.path.resize(i + 1, None);
        }
        self.view.path[i] = Some(path.clone());
        self.view.by_path.insert(path, f);
        self.generation += 1;
        f
    }

    /// A counter bumped whenever the visible view may have changed (cheap change detection
    /// for holders of derived state, e.g. the workspace's persistent snapshot).
    pub fn view_generation(&self) -> u64 {
        self.generation
    }

    /// Visible path of a node (`""` is the root); `None` if not visible.
    pub fn path(&self, f: FileId) -> Option<&str> {
        self.view.path.get(f.0 as usize).and_then(|p| p.as_deref())
    }
    /// Same as [`FileTree::path`], as a shared string.
    pub fn path_arc(&self, f: FileId) -> Option<Arc<str>> {
        self.view.path.get(f.0 as usize).and_then(|p| p.clone())
    }
    /// The visible node at `path`.
    pub fn lookup(&self, path: &str) -> Option<FileId> {
        self.view.by_path.get(path).copied()
    }
    /// Visible nodes (excluding the root), in id order.
    pub fn visible(&self) -> impl Iterator<Item = (FileId, &str)> + '_ {
        self.view
            .path
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(i, p)| p.as_deref().map(|p| (FileId(i as u32), p)))
    }
    /// Visible nodes strictly under the directory `f`.
    pub fn descendants(&self, f: FileId) -> Vec<FileId> {
        let Some(p) = self.path(f) else {
            return Vec::new();
        };
        if f == FileId::ROOT {
            return self.visible().map(|(id, _)| id).collect();
        }
        let prefix = format!("{p}/");
        self.visible()
            .filter(|(_, q)| q.starts_with(&prefix))
            .map(|(id, _)| id)
            .collect()
    }
    /// A canonical dump of the visible tree: sorted `(path, kind, node id)`.
    pub fn dump(&self) -> Vec<(String, NodeKind, NodeId)> {
        let mut v: Vec<_> = self
            .visible()
            .map(|(f, p)| {
                (
                    p.to_string(),
                    self.kind(f).unwrap_or(NodeKind::File),
                    self.nodes[f.0 as usize].id.clone(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// Break parent cycles: in each cycle, the node with the greatest loc stamp goes to the root.
fn break_cycles<'a>(parent: &mut [u32], stamp: impl Fn(usize) -> Option<&'a Stamp>) {
    let n = parent.len();
    // 0 = unvisited, 1 = on current path, 2 = done
    let mut state = vec![0u8; n];
    state[0] = 2;
    let mut path = Vec::new();
    for start in 1..n {
        if state[start] != 0 {
            continue;
        }
        let mut i = start;
        while state[i] == 0 {
            state[i] = 1;
            path.push(i);
            i = parent[i] as usize;
        }
        if state[i] == 1 {
            // cycle: from i around to i
            let pos = path.iter().position(|&x| x == i).unwrap_or(0);
            let cycle = &path[pos..];
            let best = cycle
                .iter()
                .copied()
                .max_by(|&a, &b| stamp(a).cmp(&stamp(b)).then(a.cmp(&b)));
            if let Some(b) = best {
                parent[b] = 0;
            }
        }
        for &k in &path {
            state[k] = 2;
        }
        path.clear();
    }
}

/// Validate and split a relative `/`-separated path: no empty, `.` or `..` components.
pub fn split_path(path: &str) -> Result<(&str, &str), TreeError> {
    if path.is_empty()
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || path.contains('\0')
    {
        return Err(TreeError::InvalidPath(path.to_string()));
    }
    Ok(match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    })
}

/// A replica's local author of tree events: its clock, agent name, and node sequence.
#[derive(Debug)]
pub struct TreeAuthor {
    pub clock: HlcClock,
    next_seq: HashMap<Arc<str>, u64>,
}

impl Default for TreeAuthor {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeAuthor {
    pub fn new() -> Self {
        TreeAuthor {
            clock: HlcClock::new(),
            next_seq: HashMap::new(),
        }
    }
    /// The next sequence number of `agent`'s node ids, to take several in a row (`*seq` is
    /// the next one; add one per node taken): one map lookup for a whole load.
    pub(crate) fn next_seq_mut(&mut self, agent: &Arc<str>) -> &mut u64 {
        self.next_seq.entry(agent.clone()).or_insert(1)
    }
    /// A fresh node id for `agent`.
    pub fn new_node(&mut self, agent: &Arc<str>) -> NodeId {
        let s = self.next_seq.entry(agent.clone()).or_insert(1);
        let id = NodeId {
            agent: agent.clone(),
            seq: *s,
        };
        *s += 1;
        id
    }
    pub fn stamp(&mut self, agent: &Arc<str>) -> Stamp {
        Stamp {
            hlc: self.clock.tick(),
            agent: agent.clone(),
        }
    }
    /// Make sure later node ids for `node.agent` do not reuse `node.seq` (after receiving events).
    pub fn observe_node(&mut self, node: &NodeId) {
        let s = self.next_seq.entry(node.agent.clone()).or_insert(1);
        if *s <= node.seq {
            *s = node.seq + 1;
        }
    }
}

impl FileTree {
    /// Local create of `path` (its parent must be a visible dir, the path must be free).
    pub fn local_create(
        &mut self,
        author: &mut TreeAuthor,
        agent: &Arc<str>,
        path: &str,
        kind: NodeKind,
    ) -> Result<(FileId, TreeEvent), TreeError> {
        let (dir, name) = split_path(path)?;
        if self.lookup(path).is_some() {
            return Err(TreeError::Exists(path.to_string()));
        }
        let parent = self.dir_at(dir, path)?;
        let node = author.new_node(agent);
        let ev = TreeEvent {
            stamp: author.stamp(agent),
            node,
            op: TreeOp::Create {
                kind,
                parent: self.nodes[parent.0 as usize].id.clone(),
                name: name.to_string(),
            },
        };
        self.apply(&ev);
        self.refresh();
        let f = self.file_id(&ev.node).expect("just interned");
        Ok((f, ev))
    }

    /// Local rename/move of the node at `from` to `to` (`to` must be free, its parent a dir).
    pub fn local_move(
        &mut self,
        author: &mut TreeAuthor,
        agent: &Arc<str>,
        from: &str,
        to: &str,
    ) -> Result<TreeEvent, TreeError> {
        let f = self
            .lookup(from)
            .filter(|f| *f != FileId::ROOT)
            .ok_or_else(|| TreeError::NotFound(from.to_string()))?;
        let (dir, name) = split_path(to)?;
        if self.lookup(to).is_some() {
            return Err(TreeError::Exists(to.to_string()));
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(TreeError::IntoItself(to.to_string()));
        }
        let parent = self.dir_at(dir, to)?;
        let ev = TreeEvent {
            stamp: author.stamp(agent),
            node: self.nodes[f.0 as usize].id.clone(),
            op: TreeOp::Move {
                parent: self.nodes[parent.0 as usize].id.clone(),
                name: name.to_string(),
            },
        };
        self.apply(&ev);
        self.refresh();
        Ok(ev)
    }

    /// Local delete of the node at `path` and of everything under it. `seen` gives the
    /// document version observed for each file (see the module docs).
    pub fn local_delete(
        &mut self,
        author: &mut TreeAuthor,
        agent: &Arc<str>,
        path: &str,
        mut seen: impl FnMut(FileId) -> SeenVersion,
    ) -> Result<Vec<TreeEvent>, TreeError> {
        let f = self
            .lookup(path)
            .filter(|f| *f != FileId::ROOT)
            .ok_or_else(|| TreeError::NotFound(path.to_string()))?;
        let mut targets = self.descendants(f);
        targets.push(f);
        let mut evs = Vec::with_capacity(targets.len());
        for t in targets {
            let s = if self.kind(t) == Some(NodeKind::File) {
                seen(t)
            } else {
                SeenVersion::new()
            };
            let ev = TreeEvent {
                stamp: author.stamp(agent),
                node: self.nodes[t.0 as usize].id.clone(),
                op: TreeOp::Delete { seen: s },
            };
            self.apply(&ev);
            evs.push(ev);
        }
        Ok(evs)
    }

    fn dir_at(&self, dir: &str, full: &str) -> Result<FileId, TreeError> {
        let parent = self
            .lookup(dir)
            .ok_or_else(|| TreeError::NotFound(dir.to_string()))?;
        if self.kind(parent) != Some(NodeKind::Dir) {
            return Err(TreeError::ParentNotDir(full.to_string()));
        }
        Ok(parent)
    }
}
