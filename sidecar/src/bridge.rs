//! `dist-space lsp`: what an editor spawns. Finds the workspace (the nearest ancestor with a
//! `.dist-space/` folder, else the given root or the current directory), connects to its
//! daemon's socket, starting the daemon detached if nobody answers, then copies bytes between
//! stdio and the socket until either side closes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use tokio::net::UnixStream;

use crate::paths;

#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// The editor's workspace root (default: the current directory). The daemon serves the
    /// nearest ancestor holding a `.dist-space/` folder, or this folder itself.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Do not start a daemon when none is running.
    #[arg(long)]
    pub no_start: bool,
}

/// Connect to the daemon of `root`, starting it if needed.
pub async fn connect_or_start(root: &Path, start: bool) -> Result<UnixStream, String> {
    let sock = paths::socket_path(root);
    if let Ok(s) = UnixStream::connect(&sock).await {
        return Ok(s);
    }
    if !start {
        return Err(format!("no daemon at {}", sock.display()));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    {
        use std::os::unix::process::CommandExt;
        // Detached: own process group, no stdio tied to the editor.
        Command::new(exe)
            .arg("serve")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the daemon: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut wait = Duration::from_millis(5);
    loop {
        if let Ok(s) = UnixStream::connect(&sock).await {
            return Ok(s);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "daemon did not come up at {} (see {})",
                sock.display(),
                paths::log_path(root).display()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(100));
    }
}

pub fn run(args: LspArgs) -> Result<(), String> {
    let start = match args.root {
        Some(r) => r,
        None => std::env::current_dir().map_err(|e| e.to_string())?,
    };
    let root = paths::find_root(&start).map_err(|e| format!("{}: {e}", start.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let stream = rt.block_on(connect_or_start(&root, !args.no_start))?;
    let stream = stream.into_std().map_err(|e| e.to_string())?;
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    drop(rt);
    // Two plain blocking copies (lowest latency: no executor hop per message). The bridge ends
    // when the daemon side ends; when the editor side ends, the socket is shut down for
    // writing so the daemon sees the disconnect, and we wait for it to close its side.
    let mut up_sock = stream.try_clone().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let _ = std::io::copy(&mut stdin, &mut up_sock);
        let _ = up_sock.shutdown(std::net::Shutdown::Write);
    });
    let mut down_sock = stream;
    let mut stdout = std::io::stdout().lock();
    let _ = copy_flush(&mut down_sock, &mut stdout);
    // stdin reads on a blocking thread; do not wait for it.
    std::process::exit(0);
}

/// Copy until EOF, flushing after every read (stdout is line-buffered otherwise).
fn copy_flush(r: &mut impl Read, w: &mut impl Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return w.flush();
        }
        w.write_all(&buf[..n])?;
        w.flush()?;
    }
}
