//! `dist-space trace`: every shared editing trace replays to exactly its endContent, through the
//! real binary; bad files get a clear error and exit code 2; a wrong result exits 1.

#[path = "../src/trace/format.rs"]
#[allow(dead_code)]
mod format;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn traces_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces"))
}

fn run_trace(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dist-space"))
        .arg("trace")
        .arg(path)
        .output()
        .expect("run dist-space")
}

fn stdout_field(out: &Output, field: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no `{field}:` line in {stdout}"))
        .trim()
        .to_string()
}

fn gz_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    files.sort();
    files
}

/// Runs the binary on a shared trace and checks its report against the trace's own endContent.
fn replays_to_end_content(path: &Path) {
    let out = run_trace(path);
    let trace = format::load_trace(path).unwrap();
    let end = trace.end_content();
    assert!(
        out.status.success(),
        "{}: exit {:?}\nstdout: {}\nstderr: {}",
        path.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout_field(&out, "chars"),
        end.chars().count().to_string(),
        "{}",
        path.display()
    );
    let sha: String = Sha256::digest(end.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stdout_field(&out, "sha256"), sha, "{}", path.display());
    assert!(stdout_field(&out, "time").ends_with("ms to load the file)"));
}

#[test]
fn every_sequential_trace_replays_to_its_end_content() {
    let mut files = gz_files(&traces_dir().join("sequential"));
    files.extend(gz_files(&traces_dir().join("sequential/ascii_only")));
    assert_eq!(files.len(), 12, "{files:?}");
    for f in files {
        replays_to_end_content(&f);
    }
}

#[test]
fn every_concurrent_trace_replays_to_its_end_content() {
    let files = gz_files(&traces_dir().join("concurrent"));
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        let out = run_trace(&f);
        assert!(stdout_field(&out, "trace").contains("(concurrent,"));
        replays_to_end_content(&f);
    }
}

fn gz(json: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(json.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn run_bytes(bytes: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json.gz");
    std::fs::write(&path, bytes).unwrap();
    run_trace(&path)
}

/// The upstream README's example, with a concurrent branch and a merge added.
const SMALL_CONCURRENT: &str = r#"{"kind":"concurrent","endContent":"yoooo ho ho\nhé!","numAgents":2,"txns":[
  {"parents":[],"numChildren":2,"agent":0,"time":"2023-11-22T04:49:00+00:00","patches":[[0,0,"hi there\n"]]},
  {"parents":[0],"numChildren":1,"agent":0,"time":"2023-11-22T04:50:00+00:00","patches":[[0,8,""],[0,0,"yoooo"]]},
  {"parents":[0],"numChildren":1,"agent":1,"time":"2023-11-22T04:50:00+00:00","patches":[[9,0,"hé!"]]},
  {"parents":[1,2],"numChildren":1,"agent":1,"time":"2023-11-22T04:51:00+00:00","patches":[[5,0," ho ho"]]}
]}"#;

#[test]
fn small_concurrent_trace_with_a_merge() {
    let out = run_bytes(&gz(SMALL_CONCURRENT));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_field(&out, "chars"), "15");
    assert_eq!(stdout_field(&out, "result"), "OK, equals endContent");
}

#[test]
fn wrong_end_content_exits_1() {
    let wrong = SMALL_CONCURRENT.replace(
        r#""endContent":"yoooo ho ho\nhé!""#,
        r#""endContent":"yoooo ho ho\nhe!""#,
    );
    assert_ne!(wrong, SMALL_CONCURRENT);
    let out = run_bytes(&gz(&wrong));
    assert_eq!(out.status.code(), Some(1));
    let result = stdout_field(&out, "result");
    assert!(result.starts_with("MISMATCH"), "{result}");
    assert!(result.contains("first difference at char 13"), "{result}");
}

fn bad_file(bytes: &[u8], message: &str) {
    let out = run_bytes(bytes);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no report for a bad file");
}

#[test]
fn bad_files_get_clear_errors_and_exit_2() {
    bad_file(b"{\"endContent\":\"\",\"txns\":[]}", "not a gzip file");
    let mut truncated = gz(SMALL_CONCURRENT);
    truncated.truncate(truncated.len() / 2);
    bad_file(&truncated, "corrupt gzip data");
    bad_file(&gz("{\"endContent\": "), "not a valid editing trace (JSON)");
    bad_file(&gz(r#"{"txns":[]}"#), "missing field `endContent`");
    bad_file(
        &gz(r#"{"endContent":"","txns":[{"patches":[[0,0,"ab"],[1,5,""]]}]}"#),
        "txn 0 patch 1: position 1 + delete 5 out of range (document has 2 chars)",
    );
    bad_file(
        &gz(&SMALL_CONCURRENT.replace(r#""parents":[1,2]"#, r#""parents":[1,7]"#)),
        "txn 3: parent 7 is not an earlier txn",
    );
    // Out of range at the merged parents' version (only the replay can tell).
    bad_file(
        &gz(&SMALL_CONCURRENT.replace("[[5,0,\" ho ho\"]]", "[[99,0,\" ho ho\"]]")),
        "txn 3 patch 0: position 99",
    );
    // An agent whose txns are not totally ordered.
    bad_file(
        &gz(&SMALL_CONCURRENT.replace(
            r#""parents":[0],"numChildren":1,"agent":1"#,
            r#""parents":[0],"numChildren":1,"agent":0"#,
        )),
        "txn 2: agent 0 has changes its parents do not include",
    );
    let out = run_trace(Path::new("/nonexistent/trace.json.gz"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read file"));
}
