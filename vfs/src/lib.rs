//! Virtual file system: rope documents, file tree, position encodings, disk sync.
