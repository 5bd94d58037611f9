//! The sidecar's version, as editor plugins check it (the VS Code extension refuses a binary
//! older than it needs): `dist-space --version`, `serverInfo.version` of `initialize`, and
//! `version` of `dist-space/info` all report the crate version.
mod common;

use std::process::Command;

use common::*;
use serde_json::json;

#[test]
fn version_is_reported_by_the_cli_initialize_and_info() {
    let want = env!("CARGO_PKG_VERSION");
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("dist-space {want}")
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".dist-space")).unwrap();
    let d = Daemon::start(dir.path());
    let mut c = d.connect();
    let init = c.initialize("V", true, &["utf-16"]);
    assert_eq!(init["result"]["serverInfo"]["version"], json!(want));
    let info = c.request("dist-space/info", json!({}));
    assert_eq!(info["result"]["version"], json!(want));
    assert_eq!(info["result"]["participants"][0]["name"], json!("V"));
}
