//! `dist-space snapshot`: the real binary on a real temporary workspace; checks the summary,
//! the directory output, the .tar output, `--at` and the error paths.
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "dist-space-cli-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn dist_space(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dist-space"))
        .args(args)
        .output()
        .unwrap()
}

/// The text files of the workspace, as the snapshot must show them.
fn expected() -> BTreeMap<String, String> {
    [
        (".gitignore", "*.log\ntarget/\n"),
        ("README.md", "# demo\n"),
        (
            "src/main.rs",
            "fn main() {\n    println!(\"h\u{e9}llo\");\n}\n",
        ),
        ("src/util/mod.rs", "pub fn f() {}\r\n"),
        ("docs/empty.txt", ""),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect()
}

fn workspace() -> TempDir {
    let d = TempDir::new("ws");
    for (p, t) in expected() {
        write(d.path(), &p, t.as_bytes());
    }
    write(d.path(), "debug.log", b"ignored\n");
    write(d.path(), "target/out.txt", b"ignored\n");
    write(d.path(), "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    write(d.path(), "latin1.txt", b"caf\xe9\n");
    fs::create_dir_all(d.path().join("empty-dir")).unwrap();
    d
}

/// Every regular file under `dir`, relative path -> content.
fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
                out.insert(rel, fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn snapshot_to_a_directory() {
    let ws = workspace();
    let out = TempDir::new("out");
    let target = out.path().join("snap");
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--out".as_ref(),
        target.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_tree(&target), expected());
    assert!(target.join("empty-dir").is_dir(), "directories are kept");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "wrote {} text files of version 1",
            expected().len()
        )),
        "{err}"
    );
    // The workspace itself is untouched.
    assert_eq!(
        fs::read(ws.path().join("latin1.txt")).unwrap(),
        b"caf\xe9\n"
    );
}

#[test]
fn snapshot_to_a_tar() {
    let ws = workspace();
    let out = TempDir::new("tar");
    let tar_path = out.path().join("snap.tar");
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--out".as_ref(),
        tar_path.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut archive = tar::Archive::new(fs::File::open(&tar_path).unwrap());
    let mut got = BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_str().unwrap().to_string();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(e.header().mode().unwrap() & 0o777, 0o644);
        got.insert(path, s);
    }
    assert_eq!(got, expected());
}

#[test]
fn snapshot_summary_and_versions() {
    let ws = workspace();
    // No --out: a summary on stdout.
    let o = dist_space(&["snapshot".as_ref(), ws.path().as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let text_bytes: usize = expected().values().map(String::len).sum();
    for (p, t) in expected() {
        assert!(
            stdout.contains(&format!("{p}\t{} bytes", t.len())),
            "{p} missing from:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("logo.png\tnot text: binary file"),
        "{stdout}"
    );
    assert!(
        stdout.contains("latin1.txt\tnot text: not valid UTF-8"),
        "{stdout}"
    );
    assert!(!stdout.contains("debug.log") && !stdout.contains("target/"));
    assert!(
        stdout.contains(&format!(
            "version 1: {} text files ({text_bytes} bytes), 2 other files,",
            expected().len()
        )),
        "{stdout}"
    );
    // --at 0: the empty workspace before the load.
    let out = TempDir::new("at0");
    let target = out.path().join("snap0");
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--at".as_ref(),
        "0".as_ref(),
        "--out".as_ref(),
        target.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(read_tree(&target).is_empty());
    // --at 1 is the loaded state.
    let target1 = out.path().join("snap1");
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--at".as_ref(),
        "1".as_ref(),
        "--out".as_ref(),
        target1.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_tree(&target1), expected());
    // --max-file-size: a file over the limit is tracked, not text.
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--max-file-size".as_ref(),
        "20".as_ref(),
    ]);
    assert!(o.status.success());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("src/main.rs\tnot text: too large"),
        "{stdout}"
    );
}

#[test]
fn snapshot_errors_are_reported_not_panics() {
    let ws = workspace();
    // A version that does not exist.
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--at".as_ref(),
        "7".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown workspace version 7"), "{err}");
    // A workspace that does not exist.
    let missing = ws.path().join("no-such-dir");
    let o = dist_space(&["snapshot".as_ref(), missing.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("dist-space: "));
    // An output that cannot be written (its parent is a regular file).
    let blocker = ws.path().join("README.md");
    let o = dist_space(&[
        "snapshot".as_ref(),
        ws.path().as_os_str(),
        "--out".as_ref(),
        blocker.join("x.tar").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("writing"));
}
