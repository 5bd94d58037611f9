//! Virtual file system: rope documents, file tree, position encodings, disk sync.
pub mod diff;
pub mod load;
pub mod pos;
pub mod tree;
