//! `dist-space lsp`: what an editor spawns. Finds the workspace (the nearest ancestor with a
//! `.dist-space/` folder, else the given root or the current directory), connects to its
//! daemon's socket, starting the daemon detached if nobody answers, then copies bytes between
//! stdio and the socket until either side closes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
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
    rt.block_on(async move {
        let stream = connect_or_start(&root, !args.no_start).await?;
        let (mut sr, mut sw) = stream.into_split();
        let mut stdin = tokio::io::stdin();
        let mut stdout = tokio::io::stdout();
        let up = async {
            let _ = tokio::io::copy(&mut stdin, &mut sw).await;
            let _ = sw.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut sr, &mut stdout).await;
            let _ = stdout.flush().await;
        };
        // The daemon closes its side after `exit` or when the editor's side is gone; the
        // bridge ends when the daemon side ends (it may still be sending replies).
        tokio::select! {
            _ = down => {}
            _ = async { up.await; std::future::pending::<()>().await } => {}
        }
        Ok::<(), String>(())
    })?;
    // stdin reads on a blocking thread; do not wait for it.
    std::process::exit(0);
}
