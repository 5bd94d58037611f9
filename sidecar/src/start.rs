//! Connecting to a workspace's daemon, starting it when nobody answers: the one start path of
//! `dist-space lsp` (and through it the editor plugins) and `dist-space mcp`.
//!
//! A daemon started here runs detached (own process group, no stdio) with the hidden
//! `serve --auto` flag, which makes it exit after its idle time. Right after a crash the socket
//! file is stale and the dying process may still hold the lock for a moment; `serve` then waits
//! for the lock (see `serve::take_lock`), and if the process started here ends without a daemon
//! answering, another one is started, with backoff, until one listens or the deadline passes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;

use crate::paths;

/// How long a start may take (loading a large workspace, recovering a long history).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Starts tried before giving up (each one that ends without a daemon answering).
const MAX_STARTS: u32 = 10;

fn spawn_daemon(root: &Path) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .arg("serve")
        .arg("--auto")
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))
}

/// Reap a started daemon when it ends, so that it never lingers as a zombie of a long-lived
/// bridge (a zombie still "exists" for `kill(pid, 0)`).
fn reap(mut child: Child) {
    let _ = std::thread::Builder::new()
        .name("dist-space-reap".into())
        .spawn(move || {
            let _ = child.wait();
        });
}

/// Connect to the daemon of `root`, starting it if needed (when `start`).
pub async fn connect_or_start(root: &Path, start: bool) -> Result<UnixStream, String> {
    let sock = paths::socket_path(root);
    if let Ok(s) = UnixStream::connect(&sock).await {
        return Ok(s);
    }
    if !start {
        return Err(format!("no daemon at {}", sock.display()));
    }
    let deadline = Instant::now() + START_DEADLINE;
    let mut child: Option<Child> = None;
    let mut starts = 0u32;
    let mut wait = Duration::from_millis(5);
    // A start that fails at once is not repeated at the polling rate.
    let mut next_start = Instant::now();
    let mut start_gap = Duration::from_millis(50);
    loop {
        // (Re)start unless the process started last is still coming up. One that ends without
        // a daemon answering found another daemon starting or ending (it waits for the lock a
        // while) or failed; the next round tells which.
        let running = match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        };
        if !running && Instant::now() >= next_start {
            if !root.is_dir() {
                return Err(format!("{} is not a directory", root.display()));
            }
            if starts >= MAX_STARTS {
                return Err(format!(
                    "the daemon did not start after {starts} tries (see {})",
                    paths::log_path(root).display()
                ));
            }
            child = Some(spawn_daemon(root)?);
            starts += 1;
            next_start = Instant::now() + start_gap;
            start_gap = (start_gap * 2).min(Duration::from_secs(5));
        }
        if let Ok(s) = UnixStream::connect(&sock).await {
            if let Some(c) = child.take() {
                reap(c);
            }
            return Ok(s);
        }
        if Instant::now() > deadline {
            if let Some(c) = child.take() {
                reap(c);
            }
            return Err(format!(
                "daemon did not come up at {} after {starts} start(s) (see {})",
                sock.display(),
                paths::log_path(root).display()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(100));
    }
}
