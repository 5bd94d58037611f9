//! `dist-space serve [DIR]`: the per-workspace daemon.
//!
//! Start-up: canonical root -> state folder -> exclusive `flock` (a second daemon for the same
//! root reports the running one and exits; a lock left by a dead process is free again because
//! the kernel released it) -> stale socket removed -> workspace loaded -> socket bound -> info
//! file written. Threads: the writer (owns the workspace, see [`crate::writer`]), the disk
//! watcher (feeds `Event::Disk`), and a tokio runtime for sockets. SIGINT/SIGTERM: the writer
//! flushes pending writes, then the socket and info file are removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};
use vfs::disk::{Debounce, DiskWatcher, NotifyWatcher};

use crate::paths::{self, DaemonInfo, DaemonLock};
use crate::proto::MAX_CONNECTIONS;
use crate::writer::{self, Event};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Workspace root (default: the current directory).
    pub dir: Option<PathBuf>,
}

fn init_logging(root: &Path) -> std::io::Result<PathBuf> {
    let log = paths::log_path(root);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(log)
}

pub fn run(args: ServeArgs) -> Result<(), String> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let root = std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !root.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let Some(lock) = DaemonLock::try_acquire(&root).map_err(|e| format!("lock: {e}"))? else {
        // Another daemon owns this workspace.
        match paths::read_info(&root) {
            Some(i) => println!(
                "dist-space is already running for {} (pid {}, socket {})",
                i.root.display(),
                i.pid,
                i.socket.display()
            ),
            None => println!("dist-space is already starting for {}", root.display()),
        }
        return Ok(());
    };
    let log = init_logging(&root).map_err(|e| format!("log file: {e}"))?;
    if let Some(old) = paths::read_info(&root) {
        // We hold the lock, so whoever wrote this is gone.
        warn!(
            pid = old.pid,
            alive = paths::pid_alive(old.pid),
            "recovering a stale daemon lock"
        );
    }
    let socket = paths::socket_path(&root);
    if let Some(d) = socket.parent() {
        paths::ensure_private_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let _ = std::fs::remove_file(&socket);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let limits = agent_api::Limits::default();
    let feed = agent_api::ChangeFeed::new(limits.subscription_buffer);
    // Disk watcher thread, started before the workspace is loaded and the history recovered,
    // so a change made during start-up is not missed (the writer handles it afterwards).
    {
        let tx = tx.clone();
        // Watching starts here, synchronously, before the load.
        let watcher = NotifyWatcher::new(&root, Debounce::default());
        std::thread::Builder::new()
            .name("dist-space-watch".into())
            .spawn(move || match watcher {
                Ok(mut w) => loop {
                    if let Some(b) = w.next_batch(Duration::from_secs(1)) {
                        if tx.send(Event::Disk(b)).is_err() {
                            return;
                        }
                    } else if tx.is_closed() {
                        return;
                    }
                },
                Err(e) => error!(error = %e, "disk watcher failed: disk changes are not seen"),
            })
            .map_err(|e| e.to_string())?;
    }
    let writer_thread = writer::spawn_writer(&root, socket.clone(), rx, feed.clone())
        .map_err(|e| format!("load: {e}"))?;
    let res = rt.block_on(async {
        let listener = UnixListener::bind(&socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
        // The agent API (issue 5): its calls go through the writer's queue like everything else.
        let submit: agent_api::Submit = {
            let tx = tx.clone();
            Arc::new(move |call| tx.send(Event::Agent(call)).is_ok())
        };
        let agent = agent_api::start(submit, feed, limits)
            .await
            .map_err(|e| format!("agent API: {e}"))?;
        info!(endpoint = %agent.endpoint, "agent API listening");
        let info = DaemonInfo {
            pid: std::process::id(),
            root: root.clone(),
            socket: socket.clone(),
            log: log.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            agent_endpoint: Some(agent.endpoint.clone()),
            agent_token: Some(agent.token.clone()),
        };
        paths::write_info(&root, &info).map_err(|e| format!("info file: {e}"))?;
        info!(root = %root.display(), socket = %socket.display(), pid = info.pid, "daemon listening");
        println!("dist-space serving {} on {}", root.display(), socket.display());
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let next_id = AtomicU64::new(1);
        let live = Arc::new(AtomicUsize::new(0));
        loop {
            tokio::select! {
                acc = listener.accept() => {
                    let Ok((stream, _)) = acc else { continue };
                    if live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        warn!("connection limit reached: refusing a connection");
                        drop(stream);
                        continue;
                    }
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    let tx = tx.clone();
                    let live = live.clone();
                    live.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        crate::lsp_conn::serve_conn(stream, id, tx).await;
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                _ = sigint.recv() => { info!("SIGINT"); break; }
                _ = sigterm.recv() => { info!("SIGTERM"); break; }
            }
        }
        let _ = agent.handle.stop();
        let (done_tx, done_rx) = oneshot::channel();
        let _ = tx.send(Event::Shutdown(done_tx));
        let _ = tokio::time::timeout(Duration::from_secs(30), done_rx).await;
        Ok::<(), String>(())
    });
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(paths::info_path(&root));
    drop(lock);
    let _ = writer_thread.join();
    rt.shutdown_timeout(Duration::from_millis(200));
    info!("daemon stopped");
    res
}
