//! Virtual file system: rope documents, file tree, position encodings, disk sync.
//!
//! * [`pos`]: LSP positions (UTF-8/16/32) <-> char offsets.
//! * [`tree`]: the file tree as replicated LWW state with a hybrid logical clock.
//! * [`load`]: parallel `ignore` walk, text / not-text classification, progress.
//! * [`names`]: which new paths are accepted (file-system limits, `.git`, ignored paths).
//! * [`diff`]: minimal edits between two texts (imara-diff), merge-shaped diffs, the closest text.
//! * [`disk`]: atomic write-back, the debounced `notify` watcher behind [`disk::DiskWatcher`].
//! * [`workspace`]: documents + tree + disk, both directions.
//! * [`snapshot`]: immutable whole-workspace snapshots.
//! * [`text`]: texts kept as loaded until a rope or document is first needed.
//! * [`window`]: recent disk states of a file, and the base an external change is merged at.
//! * [`git`]: is a file's content what the git index holds (a checkout)?
pub mod diff;
pub mod disk;
pub mod git;
pub mod load;
pub mod names;
pub mod pos;
pub mod snapshot;
pub mod text;
pub mod tree;
pub mod window;
pub mod workspace;

pub use snapshot::{SnapContent, SnapFile, SnapFiles, SnapIter, WorkspaceSnapshot};
pub use text::{LazyDoc, SnapText};
pub use tree::{FileId, NodeKind};
pub use workspace::{
    DiskMerge, DiskReport, FileState, FlushReport, VfsError, Workspace, WorkspaceOptions, WsVersion,
};
