//! Headless snapshots: immutable, cheap (ropes share structure with the live documents),
//! `Send + Sync`, usable from any thread while edits continue.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use engine::{Frontier, Rope};
use imbl::Vector;

use crate::load::NotTextReason;
use crate::text::SnapText;
use crate::tree::FileId;
use crate::workspace::WsVersion;

#[derive(Clone, Debug)]
pub enum SnapContent {
    Dir,
    /// `text` dereferences to a [`Rope`] (built on first use for a file whose document was
    /// never built); `len_bytes`, `write_to`, `to_string` do not need one.
    Text {
        text: SnapText,
        version: Frontier,
    },
    NotText {
        reason: NotTextReason,
        len: u64,
    },
}

#[derive(Clone, Debug)]
pub struct SnapFile {
    pub id: FileId,
    /// Relative `/`-separated path.
    pub path: Arc<str>,
    pub content: SnapContent,
}

/// The whole workspace at one version. Cloning is O(1).
///
/// The listing is a persistent vector sorted by path: the workspace keeps one up to date as
/// documents and the tree change, and taking a snapshot shares it (O(1); no copy of entries,
/// paths or text).
#[derive(Clone, Debug)]
pub struct WorkspaceSnapshot {
    version: WsVersion,
    files: Vector<SnapFile>,
}

/// The entries of a snapshot, sorted by path (see [`WorkspaceSnapshot::files`]).
#[derive(Clone, Copy, Debug)]
pub struct SnapFiles<'a>(&'a Vector<SnapFile>);

impl<'a> SnapFiles<'a> {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The `i`-th entry in path order (O(log n)).
    pub fn get(&self, i: usize) -> Option<&'a SnapFile> {
        self.0.get(i)
    }
    pub fn iter(&self) -> SnapIter<'a> {
        SnapIter(self.0.iter())
    }
}

impl<'a> IntoIterator for SnapFiles<'a> {
    type Item = &'a SnapFile;
    type IntoIter = SnapIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        SnapIter(self.0.iter())
    }
}

impl<'a> IntoIterator for &SnapFiles<'a> {
    type Item = &'a SnapFile;
    type IntoIter = SnapIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        SnapIter(self.0.iter())
    }
}

/// Iterator over a snapshot's entries in path order.
#[derive(Clone)]
pub struct SnapIter<'a>(imbl::vector::Iter<'a, SnapFile, imbl::shared_ptr::DefaultSharedPtr>);

impl<'a> Iterator for SnapIter<'a> {
    type Item = &'a SnapFile;
    fn next(&mut self) -> Option<&'a SnapFile> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for SnapIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for SnapIter<'_> {}

/// Position of `path` in a path-sorted listing.
pub(crate) fn search(files: &Vector<SnapFile>, path: &str) -> Result<usize, usize> {
    files.binary_search_by(|f| (*f.path).cmp(path))
}

impl WorkspaceSnapshot {
    /// A snapshot of unsorted entries (sorts them).
    pub(crate) fn new(version: WsVersion, mut files: Vec<SnapFile>) -> Self {
        files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        WorkspaceSnapshot {
            version,
            files: files.into(),
        }
    }
    /// A snapshot sharing an already sorted persistent listing (O(1)).
    pub(crate) fn shared(version: WsVersion, files: &Vector<SnapFile>) -> Self {
        WorkspaceSnapshot {
            version,
            files: files.clone(),
        }
    }
    /// The workspace version this snapshot shows.
    pub fn version(&self) -> WsVersion {
        self.version
    }
    /// All entries (directories included), sorted by path.
    pub fn files(&self) -> SnapFiles<'_> {
        SnapFiles(&self.files)
    }
    /// The entry at `path` (binary search, O(log² n)).
    pub fn get(&self, path: &str) -> Option<&SnapFile> {
        search(&self.files, path)
            .ok()
            .and_then(|i| self.files.get(i))
    }
    /// Text of the file at `path` as a rope, if it is a text file (builds the rope of a loaded
    /// file once, shared by every holder; see [`WorkspaceSnapshot::text_of`]).
    pub fn text(&self, path: &str) -> Option<&Rope> {
        self.text_of(path).map(SnapText::rope)
    }
    /// Text of the file at `path`, if it is a text file (no rope built).
    pub fn text_of(&self, path: &str) -> Option<&SnapText> {
        match &self.get(path)?.content {
            SnapContent::Text { text, .. } => Some(text),
            _ => None,
        }
    }
    /// Total bytes of text.
    pub fn text_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match &f.content {
                SnapContent::Text { text, .. } => text.len_bytes() as u64,
                _ => 0,
            })
            .sum()
    }
    /// Write the text files and directories under `out` (which must not be inside the snapshot
    /// paths' own workspace). Non-text files are skipped. `progress(done, total)`.
    pub fn write_to_dir(
        &self,
        out: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> io::Result<usize> {
        let total = self.files.len();
        let mut written = 0;
        fs::create_dir_all(out)?;
        for (i, f) in self.files.iter().enumerate() {
            let p = out.join(&*f.path);
            match &f.content {
                SnapContent::Dir => fs::create_dir_all(&p)?,
                SnapContent::Text { text, .. } => {
                    if let Some(parent) = p.parent() {
                        fs::create_dir_all(parent)?;
                    }
                    let mut file = io::BufWriter::new(fs::File::create(&p)?);
                    text.write_to(&mut file)?;
                    written += 1;
                }
                SnapContent::NotText { .. } => {}
            }
            if i % 256 == 0 || i + 1 == total {
                progress(i + 1, total);
            }
        }
        Ok(written)
    }
}
