//! Texts held lazily: a loaded file keeps the string it was read as (exactly its bytes, one
//! allocation) until something first needs its rope or its document.
//!
//! * [`SnapText`]: the text of a file in a snapshot (and the base text of a document not built
//!   yet): a [`Rope`], or a loaded string whose rope is built on first use (once, shared by
//!   every holder, thread-safe). It dereferences to [`Rope`]; `len_bytes`, `len_chars`,
//!   `write_to`, `to_string` and comparisons work on the string without building a rope.
//! * [`LazyDoc`]: a text file's engine [`Document`], built from its base text on first use
//!   (through `Deref`/`DerefMut`, so `tf.doc.version()`, `tf.doc.oplog()`... keep working).
//!
//! Invariant: a `LazyDoc` that is not built is the document `Document::from_text(base)`: its
//! version is the root, it has no events and no agents. Everything that would observe the
//! difference builds it first.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LazyLock, OnceLock};

use engine::{Document, Frontier, Rope};

/// A loaded file's text and, once someone needed it, its rope.
struct Loaded {
    text: Bytes,
    rope: OnceLock<Rope>,
}

/// Where a loaded string lives: its own allocation, or a range of a chunk holding the texts
/// of several files read one after the other by the same walker thread (a load allocates a
/// few hundred chunks instead of one block per file; a chunk is freed when no text in it is
/// used any more).
enum Bytes {
    Own(Box<str>),
    InChunk {
        chunk: Arc<String>,
        start: u32,
        len: u32,
    },
}

impl Loaded {
    fn str(&self) -> &str {
        match &self.text {
            Bytes::Own(s) => s,
            Bytes::InChunk { chunk, start, len } => {
                let start = *start as usize;
                // In range and on char boundaries: checked by `SnapText::loaded_in`.
                chunk.get(start..start + *len as usize).unwrap_or_default()
            }
        }
    }
}

#[derive(Clone)]
enum Repr {
    Rope(Rope),
    Loaded(Arc<Loaded>),
}

/// Immutable text of a file: a rope, or a loaded string whose rope is built on first use.
/// Cloning is O(1). `Send + Sync`; the rope of a loaded string is built at most once, whichever
/// thread asks first, and shared by every clone.
#[derive(Clone)]
pub struct SnapText(Repr);

impl SnapText {
    /// A loaded string (no rope yet).
    pub fn loaded(text: Box<str>) -> SnapText {
        SnapText(Repr::Loaded(Arc::new(Loaded {
            text: Bytes::Own(text),
            rope: OnceLock::new(),
        })))
    }
    /// The loaded string `chunk[range]` (shares the chunk). `None` if `range` is not a
    /// range of whole chars of `chunk` or does not fit in 32 bits.
    pub(crate) fn loaded_in(chunk: &Arc<String>, range: std::ops::Range<usize>) -> Option<Self> {
        chunk.get(range.clone())?;
        Some(SnapText(Repr::Loaded(Arc::new(Loaded {
            text: Bytes::InChunk {
                chunk: chunk.clone(),
                start: u32::try_from(range.start).ok()?,
                len: u32::try_from(range.len()).ok()?,
            },
            rope: OnceLock::new(),
        }))))
    }
    /// The text as a rope: built (once) on first use for a loaded string.
    pub fn rope(&self) -> &Rope {
        match &self.0 {
            Repr::Rope(r) => r,
            Repr::Loaded(l) => l.rope.get_or_init(|| Rope::from_str(l.str())),
        }
    }
    /// The text as an owned rope (O(1) once built).
    pub fn to_rope(&self) -> Rope {
        self.rope().clone()
    }
    /// The loaded string, if this text is one (whether or not its rope was built since).
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Rope(_) => None,
            Repr::Loaded(l) => Some(l.str()),
        }
    }
    /// Whether a rope exists for this text (always for a rope; for a loaded string, once
    /// something asked for it).
    pub fn has_rope(&self) -> bool {
        match &self.0 {
            Repr::Rope(_) => true,
            Repr::Loaded(l) => l.rope.get().is_some(),
        }
    }
    /// Length in bytes (no rope built).
    pub fn len_bytes(&self) -> usize {
        match &self.0 {
            Repr::Rope(r) => r.len_bytes(),
            Repr::Loaded(l) => l.str().len(),
        }
    }
    /// Length in chars (no rope built; O(n) on a loaded string without one).
    pub fn len_chars(&self) -> usize {
        match &self.0 {
            Repr::Rope(r) => r.len_chars(),
            Repr::Loaded(l) => match l.rope.get() {
                Some(r) => r.len_chars(),
                None => ropey::str_utils::byte_to_char_idx(l.str(), l.str().len()),
            },
        }
    }
    /// Write the text (no rope built).
    pub fn write_to<W: io::Write>(&self, mut w: W) -> io::Result<()> {
        match &self.0 {
            Repr::Rope(r) => r.write_to(w),
            Repr::Loaded(l) => w.write_all(l.str().as_bytes()),
        }
    }
    /// Two texts are the same shared object (O(1); `false` says nothing).
    fn ptr_eq(&self, other: &SnapText) -> bool {
        match (&self.0, &other.0) {
            (Repr::Loaded(a), Repr::Loaded(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Deref for SnapText {
    type Target = Rope;
    fn deref(&self) -> &Rope {
        self.rope()
    }
}

impl From<Rope> for SnapText {
    fn from(r: Rope) -> SnapText {
        SnapText(Repr::Rope(r))
    }
}

impl From<SnapText> for Rope {
    fn from(t: SnapText) -> Rope {
        t.to_rope()
    }
}

impl fmt::Display for SnapText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Rope(r) => fmt::Display::fmt(r, f),
            Repr::Loaded(l) => f.write_str(l.str()),
        }
    }
}

impl fmt::Debug for SnapText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Rope(r) => fmt::Debug::fmt(r, f),
            Repr::Loaded(l) => fmt::Debug::fmt(l.str(), f),
        }
    }
}

impl PartialEq<str> for SnapText {
    fn eq(&self, other: &str) -> bool {
        match &self.0 {
            Repr::Rope(r) => r == other,
            Repr::Loaded(l) => l.str() == other,
        }
    }
}

impl PartialEq<&str> for SnapText {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<Rope> for SnapText {
    fn eq(&self, other: &Rope) -> bool {
        match &self.0 {
            Repr::Rope(r) => r == other,
            Repr::Loaded(l) => other == l.str(),
        }
    }
}

impl PartialEq for SnapText {
    fn eq(&self, other: &SnapText) -> bool {
        if self.ptr_eq(other) {
            return true;
        }
        match &other.0 {
            Repr::Loaded(b) => *self == *b.str(),
            Repr::Rope(b) => *self == *b,
        }
    }
}

impl Eq for SnapText {}

/// The root version (what a document that is not built is at).
static ROOT: LazyLock<Frontier> = LazyLock::new(Frontier::root);

/// The root version, as a `'static` reference.
pub(crate) fn root_frontier() -> &'static Frontier {
    &ROOT
}

/// A text file's engine [`Document`], built from its base text on first use.
///
/// Dereferences to [`Document`] (building it if needed), so existing calls such as
/// `tf.doc.version()` or `tf.doc.transform(..)` keep working. [`LazyDoc::version`] answers
/// without building. Once built and then mutably used, the loaded string is dropped in favour
/// of the document's rope (one copy of the text).
pub struct LazyDoc {
    /// The text the document starts from (its root version).
    base: SnapText,
    doc: OnceLock<Box<Document>>,
}

impl LazyDoc {
    /// A document (not built yet) whose root version holds `base`.
    pub fn new(base: SnapText) -> LazyDoc {
        LazyDoc {
            base,
            doc: OnceLock::new(),
        }
    }
    /// An already built document (restored from the durable log): its base is the log's
    /// base text.
    pub fn from_document(doc: Document) -> LazyDoc {
        LazyDoc {
            base: SnapText::from(doc.oplog().base().clone()),
            doc: OnceLock::from(Box::new(doc)),
        }
    }
    /// The document, built on first use.
    pub fn get(&self) -> &Document {
        self.doc
            .get_or_init(|| Box::new(Document::from_text(self.base.to_rope())))
    }
    /// The document, built on first use. Drops the loaded string if the document is built
    /// (its rope holds the same text).
    pub fn get_mut(&mut self) -> &mut Document {
        self.get();
        self.compact();
        self.doc.get_mut().expect("built above")
    }
    /// The document if it is built.
    pub fn built(&self) -> Option<&Document> {
        self.doc.get().map(|d| &**d)
    }
    /// The document if it is built.
    pub fn built_mut(&mut self) -> Option<&mut Document> {
        self.doc.get_mut().map(|d| &mut **d)
    }
    /// Has the document been built?
    pub fn is_built(&self) -> bool {
        self.doc.get().is_some()
    }
    /// The current version (the root while the document is not built), without building it.
    pub fn version(&self) -> &Frontier {
        match self.doc.get() {
            Some(d) => d.version(),
            None => &ROOT,
        }
    }
    /// The text at the root version (the text the file was loaded or created with).
    pub fn base(&self) -> &SnapText {
        &self.base
    }
    /// The current text without building the document (O(1)).
    pub fn current(&mut self) -> SnapText {
        match self.doc.get_mut() {
            Some(d) => SnapText::from(d.snapshot()),
            None => self.base.clone(),
        }
    }
    /// Once the document is built, keep its rope as the base instead of the loaded string.
    fn compact(&mut self) {
        if self.doc.get().is_some() && self.base.as_str().is_some() {
            let rope = self.base.to_rope();
            self.base = SnapText::from(rope);
        }
    }
}

impl Deref for LazyDoc {
    type Target = Document;
    fn deref(&self) -> &Document {
        self.get()
    }
}

impl DerefMut for LazyDoc {
    fn deref_mut(&mut self) -> &mut Document {
        self.get_mut()
    }
}

impl fmt::Debug for LazyDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyDoc")
            .field("built", &self.is_built())
            .field("len_bytes", &self.base.len_bytes())
            .finish()
    }
}
