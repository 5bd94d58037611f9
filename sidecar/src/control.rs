//! `dist-space status [DIR]` and `dist-space stop [DIR]`, and the control requests they send
//! over the daemon's socket.
//!
//! A control connection starts with a NUL byte (no LSP header can), then one JSON line
//! `{"control": "status" | "stop"}`; the daemon answers one JSON line and closes. `serve.rs`
//! tells the two kinds of connection apart by peeking at the first byte, so control
//! connections are never counted as editors.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::paths;

/// First byte of a control connection.
pub const MAGIC: u8 = 0;

#[derive(Serialize, Deserialize, Debug)]
pub struct Request {
    pub control: String,
}

/// What `status` reports (also the answer to `stop`, taken just before stopping).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub pid: u32,
    pub root: PathBuf,
    pub version: String,
    pub uptime_secs: u64,
    /// Editor (LSP) connections.
    pub editors: usize,
    /// Agent API connections (WebSocket connections and HTTP requests in progress).
    pub agents: usize,
    /// Started by `dist-space lsp`/`mcp` (`serve --auto`).
    pub auto: bool,
    /// Seconds with nobody connected after which the daemon exits; `None`: never.
    pub idle_secs: Option<u64>,
    /// Set in the answer to `stop`.
    #[serde(default)]
    pub stopping: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The workspace (default: the current directory; the nearest ancestor with a
    /// `.dist-space/` folder is used).
    pub dir: Option<PathBuf>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// The workspace (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Seconds to wait for the daemon to exit.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

/// Send one control request to the daemon of `root`.
pub fn request(root: &Path, what: &str) -> std::io::Result<Status> {
    let mut s = UnixStream::connect(paths::socket_path(root))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut msg = vec![MAGIC];
    serde_json::to_writer(
        &mut msg,
        &Request {
            control: what.into(),
        },
    )?;
    msg.push(b'\n');
    s.write_all(&msg)?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad answer {line:?}: {e}"),
        )
    })
}

fn root_of(dir: Option<PathBuf>) -> Result<PathBuf, String> {
    let start = match dir {
        Some(d) => d,
        None => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    paths::find_root(&start).map_err(|e| format!("{}: {e}", start.display()))
}

fn human(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Exit code 0 when a daemon runs, 3 when none does (as `systemctl status`), 1 on errors.
pub fn status(args: StatusArgs) -> ExitCode {
    let root = match root_of(args.dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dist-space: {e}");
            return ExitCode::from(1);
        }
    };
    match request(&root, "status") {
        Ok(st) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            } else {
                println!("dist-space is running for {}", st.root.display());
                println!("  pid:     {}", st.pid);
                println!("  uptime:  {}", human(st.uptime_secs));
                println!(
                    "  clients: {} editor(s), {} agent(s)",
                    st.editors, st.agents
                );
                let idle = match st.idle_secs {
                    Some(s) => format!("exits after {s} s with no client"),
                    None => "runs until stopped".into(),
                };
                let how = if st.auto {
                    "started automatically"
                } else {
                    "started by hand"
                };
                println!("  mode:    {how}, {idle}");
                println!("  version: {}", st.version);
            }
            ExitCode::SUCCESS
        }
        Err(_) => {
            if args.json {
                println!("{}", serde_json::json!({"running": false, "root": root}));
            } else {
                println!("dist-space is not running for {}", root.display());
            }
            ExitCode::from(3)
        }
    }
}

/// Stop the daemon cleanly (it flushes, removes its socket and info file) and wait until its
/// process has exited. Exit code 0 when it stopped (or none ran: then it says so), 1 when it did
/// not exit in time.
pub fn stop(args: StopArgs) -> ExitCode {
    let root = match root_of(args.dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dist-space: {e}");
            return ExitCode::from(1);
        }
    };
    let st = match request(&root, "stop") {
        Ok(st) => st,
        Err(_) => {
            println!("dist-space is not running for {}", root.display());
            return ExitCode::SUCCESS;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    // The process is gone when its pid is and nobody answers at the socket.
    while paths::pid_running(st.pid) {
        if Instant::now() > deadline {
            eprintln!(
                "dist-space: the daemon (pid {}) did not exit within {} s",
                st.pid, args.timeout
            );
            return ExitCode::from(1);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "dist-space stopped for {} (pid {})",
        st.root.display(),
        st.pid
    );
    ExitCode::SUCCESS
}
