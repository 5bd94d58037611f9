//! Headless snapshots: immutable, cheap (ropes share structure with the live documents),
//! `Send + Sync`, usable from any thread while edits continue.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use engine::{Frontier, Rope};

use crate::load::NotTextReason;
use crate::tree::FileId;
use crate::workspace::WsVersion;

#[derive(Clone, Debug)]
pub enum SnapContent {
    Dir,
    Text { text: Rope, version: Frontier },
    NotText { reason: NotTextReason, len: u64 },
}

#[derive(Clone, Debug)]
pub struct SnapFile {
    pub id: FileId,
    /// Relative `/`-separated path.
    pub path: Arc<str>,
    pub content: SnapContent,
}

/// The whole workspace at one version. Cloning is O(1).
#[derive(Clone, Debug)]
pub struct WorkspaceSnapshot {
    version: WsVersion,
    files: Arc<[SnapFile]>,
}

impl WorkspaceSnapshot {
    pub(crate) fn new(version: WsVersion, mut files: Vec<SnapFile>) -> Self {
        files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        WorkspaceSnapshot {
            version,
            files: files.into(),
        }
    }
    /// The workspace version this snapshot shows.
    pub fn version(&self) -> WsVersion {
        self.version
    }
    /// All entries (directories included), sorted by path.
    pub fn files(&self) -> &[SnapFile] {
        &self.files
    }
    /// The entry at `path` (binary search).
    pub fn get(&self, path: &str) -> Option<&SnapFile> {
        self.files
            .binary_search_by(|f| (*f.path).cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
    /// Text of the file at `path`, if it is a text file.
    pub fn text(&self, path: &str) -> Option<&Rope> {
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
