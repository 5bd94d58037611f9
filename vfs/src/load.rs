//! Loading a workspace from disk: a parallel `ignore` walk, classification of each file as text
//! or not (binary, not UTF-8, too large, unreadable), progress reporting.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ignore::{ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};
use ropey::Rope;

use crate::text::SnapText;
use crate::tree::NodeKind;

/// Default size limit for text files (8 MiB).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 8 * 1024 * 1024;
/// The sidecar's own state folder, never part of the workspace.
pub const STATE_DIR: &str = ".dist-space";

/// How a workspace is walked and which files are edited as text.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Files larger than this are tracked but not edited as text.
    pub max_file_size: u64,
    /// Walker threads (0 = ignore's default, based on available cores).
    pub threads: usize,
    /// Extra folder names always excluded (in addition to `.git` and [`STATE_DIR`]).
    pub extra_excludes: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            threads: 0,
            extra_excludes: Vec::new(),
        }
    }
}

impl LoadOptions {
    fn always_excluded(&self, name: &str) -> bool {
        name == ".git" || name == STATE_DIR || self.extra_excludes.iter().any(|e| e == name)
    }
}

/// Why a tracked file is not edited as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotTextReason {
    /// Contains a NUL byte in its first 8000 bytes (git's heuristic).
    Binary,
    /// Not valid UTF-8.
    NotUtf8 { valid_up_to: usize },
    /// Larger than the configured limit.
    TooLarge { size: u64, limit: u64 },
    /// A symbolic link (not followed).
    Symlink,
    /// Not a regular file (fifo, socket, device).
    Special,
    /// Could not be read.
    Unreadable(String),
}

impl fmt::Display for NotTextReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotTextReason::Binary => write!(f, "binary file"),
            NotTextReason::NotUtf8 { valid_up_to } => {
                write!(
                    f,
                    "not valid UTF-8 (first invalid byte at offset {valid_up_to})"
                )
            }
            NotTextReason::TooLarge { size, limit } => {
                write!(f, "too large ({size} bytes, limit {limit} bytes)")
            }
            NotTextReason::Symlink => write!(f, "symbolic link"),
            NotTextReason::Special => write!(f, "not a regular file"),
            NotTextReason::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

/// What a file holds, as far as the VFS is concerned.
#[derive(Clone, Debug)]
pub enum Content {
    Text(Rope),
    NotText(NotTextReason),
}

impl Content {
    fn from_raw(c: RawContent) -> Content {
        match c {
            RawContent::Text(s) => Content::Text(s.to_rope()),
            RawContent::NotText(r) => Content::NotText(r),
        }
    }
}

/// [`Content`] as read, before any rope is built: text is kept as the string it was read as
/// (exactly its bytes, one allocation).
#[derive(Clone, Debug)]
pub(crate) enum RawContent {
    Text(SnapText),
    NotText(NotTextReason),
}

/// A walked entry as read (see [`RawContent`]).
#[derive(Clone, Debug)]
pub(crate) struct RawEntry {
    /// Built once on the walker thread, shared with the tree, the listing and the journal.
    pub path: Arc<str>,
    pub kind: NodeKind,
    pub content: Option<RawContent>,
    pub len: u64,
    pub mtime: Option<SystemTime>,
}

impl RawEntry {
    fn into_loaded(self) -> LoadedEntry {
        LoadedEntry {
            path: self.path.to_string(),
            kind: self.kind,
            content: self.content.map(Content::from_raw),
            len: self.len,
            mtime: self.mtime,
        }
    }
}

/// One walked entry.
#[derive(Clone, Debug)]
pub struct LoadedEntry {
    /// Relative `/`-separated path.
    pub path: String,
    pub kind: NodeKind,
    /// `None` for directories.
    pub content: Option<Content>,
    /// File size in bytes as read.
    pub len: u64,
    pub mtime: Option<SystemTime>,
}

/// Progress of a load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub files: u64,
    pub bytes: u64,
    pub done: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("workspace root `{0}` is not a directory")]
    NotADir(PathBuf),
    #[error("cannot read workspace root `{path}`: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Classify raw bytes: text (as a rope) or the reason it is not text.
pub fn classify(bytes: Vec<u8>, limit: u64) -> Content {
    Content::from_raw(classify_raw(bytes, limit))
}

/// [`classify`] keeping the text as the string it was read as (no copy).
pub(crate) fn classify_raw(bytes: Vec<u8>, limit: u64) -> RawContent {
    if let Err(r) = check_binary(&bytes, limit) {
        return RawContent::NotText(r);
    }
    // The one UTF-8 validation of the file.
    match String::from_utf8(bytes) {
        Ok(s) => RawContent::Text(SnapText::loaded(s.into_boxed_str())),
        Err(e) => RawContent::NotText(NotTextReason::NotUtf8 {
            valid_up_to: e.utf8_error().valid_up_to(),
        }),
    }
}

/// The text checks short of UTF-8: size limit, no NUL in the first 8000 bytes.
fn check_binary(bytes: &[u8], limit: u64) -> Result<(), NotTextReason> {
    if bytes.len() as u64 > limit {
        return Err(NotTextReason::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    // `memchr` (SIMD): core's `contains` scans a word at a time.
    if memchr::memchr(0, &bytes[..bytes.len().min(8000)]).is_some() {
        return Err(NotTextReason::Binary);
    }
    Ok(())
}

/// Read and classify one file (does not follow symlinks).
pub fn read_classified(path: &Path, limit: u64) -> (Content, u64, Option<SystemTime>) {
    let (c, len, mtime) = read_classified_raw(path, limit);
    (Content::from_raw(c), len, mtime)
}

/// [`read_classified`] keeping the text as read (see [`RawContent`]).
pub(crate) fn read_classified_raw(
    path: &Path,
    limit: u64,
) -> (RawContent, u64, Option<SystemTime>) {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) => return unreadable(e, 0, None),
    };
    let mtime = md.modified().ok();
    if md.file_type().is_symlink() {
        return (RawContent::NotText(NotTextReason::Symlink), md.len(), mtime);
    }
    if !md.is_file() {
        return (RawContent::NotText(NotTextReason::Special), md.len(), mtime);
    }
    if md.len() > limit {
        return too_large(md.len(), limit, mtime);
    }
    match fs::File::open(path) {
        Ok(f) => read_open(f, md.len(), limit, mtime),
        Err(e) => unreadable(e, md.len(), mtime),
    }
}

/// A walked entry, opened: classified already, or a regular file within the size limit.
enum Walked {
    Done(RawContent, u64, Option<SystemTime>),
    Open(fs::File, u64, Option<SystemTime>),
}

/// [`read_classified`] up to the read, for a walked entry whose directory listing already
/// says what it is: a regular file is opened directly (one `fstat` on the open file instead
/// of a path lookup).
fn open_walked(path: &Path, ft: Option<fs::FileType>, limit: u64) -> Walked {
    if !ft.is_some_and(|t| t.is_file()) {
        let (c, len, mtime) = read_classified_raw(path, limit);
        return Walked::Done(c, len, mtime);
    }
    let done = |(c, len, mtime)| Walked::Done(c, len, mtime);
    let f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return done(unreadable(e, 0, None)),
    };
    let md = match f.metadata() {
        Ok(md) => md,
        Err(e) => return done(unreadable(e, 0, None)),
    };
    let mtime = md.modified().ok();
    if !md.is_file() {
        // Replaced since the directory was listed.
        return done((RawContent::NotText(NotTextReason::Special), md.len(), mtime));
    }
    if md.len() > limit {
        return done(too_large(md.len(), limit, mtime));
    }
    Walked::Open(f, md.len(), mtime)
}

/// Walked files up to this size are read into their thread's current text chunk.
const IN_CHUNK_MAX: u64 = 16 * 1024;
/// Size of a text chunk (above glibc's mmap threshold: one `mmap` per chunk, no heap growth).
const CHUNK: usize = 256 * 1024;

fn unreadable(
    e: std::io::Error,
    len: u64,
    mtime: Option<SystemTime>,
) -> (RawContent, u64, Option<SystemTime>) {
    (
        RawContent::NotText(NotTextReason::Unreadable(e.to_string())),
        len,
        mtime,
    )
}

fn too_large(
    size: u64,
    limit: u64,
    mtime: Option<SystemTime>,
) -> (RawContent, u64, Option<SystemTime>) {
    (
        RawContent::NotText(NotTextReason::TooLarge { size, limit }),
        size,
        mtime,
    )
}

/// Read an open file of size `len` into a buffer of that capacity (kept as the text, no
/// copy) and classify it.
fn read_open(
    f: fs::File,
    len: u64,
    limit: u64,
    mtime: Option<SystemTime>,
) -> (RawContent, u64, Option<SystemTime>) {
    let mut buf = Vec::with_capacity(len as usize);
    // Read at most limit+1 bytes: a file that grew past the limit is caught by `classify`.
    match f.take(limit + 1).read_to_end(&mut buf) {
        Ok(n) => (classify_raw(buf, limit), n as u64, mtime),
        Err(e) => unreadable(e, len, mtime),
    }
}

/// The walker configuration used for loading (also used by the benchmark's floor).
///
/// `.gitignore` rules apply even outside a git repository (`require_git(false)`), hidden files
/// are included (dot-files are part of a code workspace), `.git` and the state folder are
/// always excluded, symlinks are not followed.
pub fn walk_builder(root: &Path, opts: &LoadOptions) -> WalkBuilder {
    let mut b = WalkBuilder::new(root);
    b.hidden(false)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        .ignore(true)
        .parents(true)
        .require_git(false)
        .follow_links(false)
        .threads(opts.threads);
    let opts2 = opts.clone();
    b.filter_entry(move |e| {
        !(e.depth() > 0
            && e.file_type().is_some_and(|t| t.is_dir())
            && e.file_name()
                .to_str()
                .is_some_and(|n| opts2.always_excluded(n)))
    });
    b
}

/// Is `b` a non-empty `/`-separated path without empty, `.` or `..` components?
#[cfg(unix)]
fn plain_components(b: &[u8]) -> bool {
    !b.is_empty()
        && b.split(|&c| c == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// Relative `/`-separated path of `path` under `root`, if it is valid UTF-8 and under root.
pub fn rel_path(root: &Path, path: &Path) -> Option<String> {
    rel_path_cow(root, path).map(std::borrow::Cow::into_owned)
}

/// [`rel_path`], borrowed from `path` when it can be (walked paths).
fn rel_path_cow<'a>(root: &Path, path: &'a Path) -> Option<std::borrow::Cow<'a, str>> {
    // Fast path (walked paths: `root` joined with names): the bytes after `root/`, if plain
    // UTF-8 with no `.`/`..`/empty components (`Path::strip_prefix` parses every component).
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let (p, r) = (path.as_os_str().as_bytes(), root.as_os_str().as_bytes());
        let rest = p.strip_prefix(r).and_then(|rest| {
            if r.ends_with(b"/") {
                Some(rest)
            } else {
                rest.strip_prefix(b"/")
            }
        });
        if let Some(s) = rest
            .filter(|b| plain_components(b))
            .and_then(|b| std::str::from_utf8(b).ok())
        {
            return Some(std::borrow::Cow::Borrowed(s));
        }
    }
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for c in rel.components() {
        let std::path::Component::Normal(s) = c else {
            return None;
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(s.to_str()?);
    }
    Some(std::borrow::Cow::Owned(out))
}

/// Per-thread visitor of the parallel walk: reads and classifies entries, maps them (still on
/// the walker thread) and keeps them in a local batch, handed over when the walker drops it
/// (no per-entry channel traffic).
struct Collector<'a, T> {
    root: &'a Path,
    limit: u64,
    batch: Vec<T>,
    skipped: usize,
    shared: &'a Shared<T>,
    map: &'a (dyn Fn(RawEntry) -> T + Sync),
    path_of: &'a (dyn Fn(&T) -> &str + Sync),
    /// Texts of small files read by this thread, one after the other (see [`SnapText`]).
    chunk: Vec<u8>,
    /// Entries whose text is `chunk[range]`, mapped when the chunk is full.
    pending: Vec<(RawEntry, std::ops::Range<usize>)>,
}

impl<T> Collector<'_, T> {
    /// Read a small file into the chunk: `Ok` if it is text (its entry is pending in the
    /// chunk), else what it is, its size and its path back.
    fn read_into_chunk(
        &mut self,
        f: fs::File,
        len: u64,
        path: Arc<str>,
        mtime: Option<SystemTime>,
    ) -> Result<(), (RawContent, u64, Arc<str>)> {
        let want = len as usize;
        if self.chunk.capacity() - self.chunk.len() <= want {
            // Strictly more room than the size: the read ends without growing the chunk.
            self.freeze();
            self.chunk = Vec::with_capacity(CHUNK.max(want + 1));
        }
        let start = self.chunk.len();
        let res = f.take(self.limit + 1).read_to_end(&mut self.chunk);
        let n = match res {
            Ok(n) => n,
            Err(e) => {
                self.chunk.truncate(start);
                return Err((unreadable(e, len, None).0, len, path));
            }
        };
        // UTF-8 is checked once per chunk, when it is full (see `freeze`).
        match check_binary(&self.chunk[start..], self.limit) {
            Ok(()) => {
                self.pending.push((
                    RawEntry {
                        path,
                        kind: NodeKind::File,
                        content: None,
                        len: n as u64,
                        mtime,
                    },
                    start..start + n,
                ));
                Ok(())
            }
            Err(r) => {
                self.chunk.truncate(start);
                Err((RawContent::NotText(r), n as u64, path))
            }
        }
    }

    /// Share the current chunk with the texts pending in it and map their entries.
    fn freeze(&mut self) {
        let mut buf = std::mem::take(&mut self.chunk);
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return;
        }
        if buf.capacity() - buf.len() > buf.len() / 4 {
            buf.shrink_to_fit();
        }
        // One UTF-8 validation for the whole chunk. A range of a valid chunk that starts and
        // ends on char boundaries is valid UTF-8 (`loaded_in` checks the boundaries); a file
        // whose range is not, or any file of a chunk that is not valid, is checked alone.
        let chunk = String::from_utf8(buf).map(Arc::new);
        for (mut e, range) in pending {
            let text = match &chunk {
                Ok(c) => SnapText::loaded_in(c, range.clone()).ok_or_else(|| c.as_bytes()),
                Err(b) => Err(b.as_bytes()),
            }
            .or_else(|bytes| match bytes.get(range) {
                Some(b) => std::str::from_utf8(b)
                    .map(|s| SnapText::loaded(s.into()))
                    .map_err(|e| NotTextReason::NotUtf8 {
                        valid_up_to: e.valid_up_to(),
                    }),
                None => Err(NotTextReason::Unreadable("text chunk out of range".into())),
            });
            e.content = Some(match text {
                Ok(t) => RawContent::Text(t),
                Err(r) => RawContent::NotText(r),
            });
            self.batch.push((self.map)(e));
        }
    }
}

struct Shared<T> {
    files: AtomicU64,
    bytes: AtomicU64,
    batches: Mutex<(Vec<Vec<T>>, usize)>,
}

impl<T: Send> ParallelVisitor for Collector<'_, T> {
    fn visit(&mut self, entry: Result<ignore::DirEntry, ignore::Error>) -> WalkState {
        let Ok(entry) = entry else {
            return WalkState::Continue;
        };
        if entry.depth() == 0 {
            return WalkState::Continue;
        }
        let Some(path) = rel_path_cow(self.root, entry.path()).map(|p| Arc::<str>::from(&*p))
        else {
            self.skipped += 1;
            return WalkState::Continue;
        };
        let ft = entry.file_type();
        let e = if ft.is_some_and(|t| t.is_dir()) {
            RawEntry {
                path,
                kind: NodeKind::Dir,
                content: None,
                len: 0,
                mtime: None,
            }
        } else {
            let (content, len, mtime, path) = match open_walked(entry.path(), ft, self.limit) {
                Walked::Done(c, len, mtime) => (c, len, mtime, path),
                Walked::Open(f, len, mtime) if len <= IN_CHUNK_MAX => {
                    match self.read_into_chunk(f, len, path, mtime) {
                        Err((c, len, path)) => (c, len, mtime, path),
                        Ok(()) => {
                            let n = self.pending.last().map_or(len, |(e, _)| e.len);
                            self.shared.files.fetch_add(1, Ordering::Relaxed);
                            self.shared.bytes.fetch_add(n, Ordering::Relaxed);
                            return WalkState::Continue;
                        }
                    }
                }
                Walked::Open(f, len, mtime) => {
                    let (c, len, mtime) = read_open(f, len, self.limit, mtime);
                    (c, len, mtime, path)
                }
            };
            self.shared.files.fetch_add(1, Ordering::Relaxed);
            self.shared.bytes.fetch_add(len, Ordering::Relaxed);
            RawEntry {
                path,
                kind: NodeKind::File,
                content: Some(content),
                len,
                mtime,
            }
        };
        self.batch.push((self.map)(e));
        WalkState::Continue
    }
}

impl<T> Drop for Collector<'_, T> {
    fn drop(&mut self) {
        self.freeze();
        // Sorted here, on the walker thread; the batches are merged at the end.
        let batch = sort_by_path(std::mem::take(&mut self.batch), self.path_of);
        let mut g = self
            .shared
            .batches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        g.0.push(batch);
        g.1 += self.skipped;
    }
}

struct CollectorBuilder<'a, T> {
    root: &'a Path,
    limit: u64,
    shared: &'a Shared<T>,
    map: &'a (dyn Fn(RawEntry) -> T + Sync),
    path_of: &'a (dyn Fn(&T) -> &str + Sync),
}

impl<'s, T: Send + 's> ParallelVisitorBuilder<'s> for CollectorBuilder<'s, T> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Collector {
            root: self.root,
            limit: self.limit,
            batch: Vec::new(),
            skipped: 0,
            shared: self.shared,
            map: self.map,
            path_of: self.path_of,
            chunk: Vec::new(),
            pending: Vec::new(),
        })
    }
}

/// Walk `root` (or a sub-directory `start` of it) in parallel, reading and classifying every
/// file. Directories are returned too; entries come sorted by path (so every directory comes
/// before what it contains). Entries with non-UTF-8 names are skipped (counted in the second
/// return value). `progress` is called from this thread at most every 50 ms and at the end
/// with `done: true`.
pub fn walk(
    root: &Path,
    start: &Path,
    opts: &LoadOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<LoadedEntry>, usize), LoadError> {
    walk_map(root, start, opts, progress, &RawEntry::into_loaded, &|e| {
        &e.path
    })
}

/// [`walk`], with each entry mapped by `map` on the walker threads; sorted by `path_of`.
pub(crate) fn walk_map<T: Send>(
    root: &Path,
    start: &Path,
    opts: &LoadOptions,
    progress: &mut dyn FnMut(Progress),
    map: &(dyn Fn(RawEntry) -> T + Sync),
    path_of: &(dyn Fn(&T) -> &str + Sync),
) -> Result<(Vec<T>, usize), LoadError> {
    let md = fs::metadata(root).map_err(|e| LoadError::Root {
        path: root.to_path_buf(),
        source: e,
    })?;
    if !md.is_dir() {
        return Err(LoadError::NotADir(root.to_path_buf()));
    }
    let builder = walk_builder(start, opts);
    let shared = Shared {
        files: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        batches: Mutex::new((Vec::new(), 0)),
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let shared = &shared;
        s.spawn(move || {
            builder.build_parallel().visit(&mut CollectorBuilder {
                root,
                limit: opts.max_file_size,
                shared,
                map,
                path_of,
            });
            drop(done_tx);
        });
        let snapshot = || Progress {
            files: shared.files.load(Ordering::Relaxed),
            bytes: shared.bytes.load(Ordering::Relaxed),
            done: false,
        };
        while let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(Duration::from_millis(50)) {
            progress(snapshot());
        }
    });
    let (batches, skipped) = shared
        .batches
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    // Each batch is sorted: merge them (smallest first).
    let mut batches = batches;
    batches.sort_by_key(|b| std::cmp::Reverse(b.len()));
    let mut out = batches.pop().unwrap_or_default();
    while let Some(b) = batches.pop() {
        out = merge_sorted(out, b, path_of);
    }
    progress(Progress {
        files: shared.files.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
        done: true,
    });
    Ok((out, skipped))
}

/// `v` sorted by `key`: sorts (key, index) pairs, then puts each entry in place by following
/// the permutation's cycles (the entries are large: sorting them directly moves each of them
/// O(log n) times; no second vector of entries either).
fn sort_by_path<T>(mut v: Vec<T>, key: &dyn Fn(&T) -> &str) -> Vec<T> {
    let mut keyed: Vec<(&str, usize)> = v.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // Position `j` gets the entry now at `order[j]`.
    let mut order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    for i in 0..order.len() {
        let mut j = i;
        loop {
            let k = order[j];
            order[j] = j;
            if k == i {
                break;
            }
            v.swap(j, k);
            j = k;
        }
    }
    v
}

/// Merge two vectors sorted by `key` into one (stable: `a` first on ties).
fn merge_sorted<T>(a: Vec<T>, b: Vec<T>, key: &dyn Fn(&T) -> &str) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        if key(y) < key(x) {
            out.extend(b.next());
        } else {
            out.extend(a.next());
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

/// Single-path ignore check for paths reported by the watcher, with the same rules as the walk.
/// Ignore files are cached per directory; call [`IgnoreFilter::reload`] when one changes.
pub struct IgnoreFilter {
    root: PathBuf,
    opts: LoadOptions,
    matcher: ignore::IncrementalIgnore,
}

impl IgnoreFilter {
    pub fn new(root: &Path, opts: &LoadOptions) -> Self {
        let matcher = walk_builder(root, opts)
            .build_matchers()
            .into_iter()
            .next()
            .expect("one root");
        IgnoreFilter {
            root: root.to_path_buf(),
            opts: opts.clone(),
            matcher,
        }
    }
    /// Drop cached ignore files (after a `.gitignore` / `.ignore` changed).
    pub fn reload(&mut self) {
        *self = IgnoreFilter::new(&self.root.clone(), &self.opts.clone());
    }
    /// Is the relative path excluded from the workspace?
    pub fn is_ignored(&mut self, rel: &str, is_dir: bool) -> bool {
        if rel.split('/').any(|c| self.opts.always_excluded(c)) {
            return true;
        }
        // `matched` only looks at the path's own rules; check every ancestor dir as well.
        let mut acc = String::new();
        let comps: Vec<&str> = rel.split('/').collect();
        for (i, c) in comps.iter().enumerate() {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(c);
            let last = i + 1 == comps.len();
            if self
                .matcher
                .matched(&acc, if last { is_dir } else { true })
                .is_ignore()
            {
                return true;
            }
        }
        false
    }
    /// Is this path an ignore file (whose change requires [`IgnoreFilter::reload`])?
    pub fn is_ignore_file(rel: &str) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        name == ".gitignore" || name == ".ignore"
    }
}

#[cfg(test)]
mod tests {
    use super::sort_by_path;

    #[test]
    fn sort_by_path_matches_a_plain_sort() {
        // Every permutation of 5 distinct keys, plus repeated keys and the empty vector.
        let base = ["b/c", "a", "a.txt", "a/b", "c"];
        let mut seen = 0;
        for n in 0..5u32.pow(5) {
            let idx: Vec<usize> = (0..5).map(|d| (n / 5u32.pow(d) % 5) as usize).collect();
            let v: Vec<String> = idx.iter().map(|&i| base[i].to_string()).collect();
            let mut want = v.clone();
            want.sort();
            assert_eq!(sort_by_path(v, &|s: &String| s.as_str()), want);
            seen += 1;
        }
        assert_eq!(seen, 3125);
        assert!(sort_by_path(Vec::<String>::new(), &|s: &String| s.as_str()).is_empty());
    }
}
