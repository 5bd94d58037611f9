//! `dist-space serve [DIR]`: the per-workspace daemon.
//!
//! Start-up: canonical root -> state folder -> exclusive `flock` (waited for while its holder
//! is still starting or just died; a second daemon for the same root reports the running one and
//! exits; a lock left by a dead process is free again because the kernel released it) -> stale
//! socket removed -> workspace loaded -> socket bound -> info file written. Threads: the writer
//! (owns the workspace, see [`crate::writer`]), the disk watcher (feeds `Event::Disk`), and a
//! tokio runtime for sockets. Each socket connection is an editor (LSP) or, when its first byte
//! is NUL, a control request (`crate::control`: status, stop).
//!
//! Stopping: SIGINT/SIGTERM, `dist-space stop`, the workspace folder (or its `.dist-space/`)
//! removed or moved, its socket file removed, or the idle time passed with no editor or agent connected (`--idle-secs`;
//! `config.json` `idleSecs` for daemons started by `dist-space lsp`/`mcp`, which pass the hidden
//! `--auto`). The info file and the socket are removed first (so a bridge whose connection
//! closes can tell a stop from a crash, and nobody new connects), then the agent API stops and
//! the writer flushes pending writes.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};
use vfs::disk::{Debounce, DiskWatcher, NotifyWatcher};

use crate::control;
use crate::paths::{self, DaemonInfo, DaemonLock};
use crate::proto::MAX_CONNECTIONS;
use crate::writer::{self, Event};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Workspace root (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Exit after SECS seconds with no editor or agent connected (0: never). Default: never for
    /// a daemon started by hand; `idleSecs` in `.dist-space/config.json` (default 600) for one
    /// started by `dist-space lsp` or `dist-space mcp`.
    #[arg(long, value_name = "SECS")]
    pub idle_secs: Option<u64>,
    /// Started on demand by `dist-space lsp`/`mcp` (exits after its idle time).
    #[arg(long, hide = true)]
    pub auto: bool,
}

/// How long a new daemon waits for a lock whose holder does not answer at the socket (it is
/// still loading, or it was just killed and the kernel has not released its lock yet).
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// How often the folder and the idle time are checked.
const TICK: Duration = Duration::from_secs(1);

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

/// The workspace lock. While another process holds it and no daemon answers at the socket,
/// wait (with backoff) for it: that process is still starting, or it is dying (after `kill -9`
/// the kernel releases the lock only once the process is gone). `None`: a daemon answers, or
/// the lock stayed taken for [`LOCK_WAIT`].
fn take_lock(root: &Path) -> Result<Option<DaemonLock>, String> {
    let sock = paths::socket_path(root);
    let deadline = Instant::now() + LOCK_WAIT;
    let mut wait = Duration::from_millis(2);
    loop {
        if let Some(l) = DaemonLock::try_acquire(root).map_err(|e| format!("lock: {e}"))? {
            return Ok(Some(l));
        }
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() || Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(50));
    }
}

/// What identifies the workspace folder: device and inode of the root and of its state folder.
fn folder_identity(root: &Path) -> std::io::Result<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let r = std::fs::metadata(root)?;
    let s = std::fs::metadata(paths::state_dir(root))?;
    Ok((r.dev(), r.ino(), s.ino()))
}

/// Device and inode of a file, `None` when it is missing.
fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Why the daemon should stop because its folder is gone, if it is.
fn folder_gone(root: &Path, id: (u64, u64, u64)) -> Option<&'static str> {
    match folder_identity(root) {
        Ok(now) if now == id => None,
        Ok(_) => Some("the workspace folder was moved or replaced"),
        Err(_) if !root.exists() => Some("the workspace folder was removed or moved"),
        Err(_) => Some("the workspace's .dist-space folder was removed"),
    }
}

/// Editor connections: open now, and ever opened (a change means someone came and went);
/// `unsent`: connections that have not sent their first byte yet (not known to be editors or
/// control requests, but someone is there).
#[derive(Default)]
struct Editors {
    open: AtomicUsize,
    opened: AtomicU64,
    unsent: AtomicUsize,
}

/// What answers a control request.
struct Control {
    root: PathBuf,
    started: Instant,
    auto: bool,
    idle: Option<Duration>,
    editors: Arc<Editors>,
    agents: agent_api::Connections,
    stop: mpsc::UnboundedSender<&'static str>,
}

impl Control {
    fn status(&self) -> control::Status {
        control::Status {
            pid: std::process::id(),
            root: self.root.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: self.started.elapsed().as_secs(),
            editors: self.editors.open.load(Ordering::SeqCst),
            agents: self.agents.active(),
            auto: self.auto,
            idle_secs: self.idle.map(|d| d.as_secs()),
            stopping: false,
        }
    }
}

/// The first byte a client sent, without taking it (`None`: it closed without sending any).
async fn peek_first_byte(s: &UnixStream) -> std::io::Result<Option<u8>> {
    loop {
        s.readable().await?;
        let mut b = 0u8;
        let r = s.try_io(Interest::READABLE, || {
            // SAFETY: recv into one valid byte of our own on the stream's open fd.
            let n =
                unsafe { libc::recv(s.as_raw_fd(), (&mut b as *mut u8).cast(), 1, libc::MSG_PEEK) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match r {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One control request: a NUL byte, one JSON line; one JSON line answered.
async fn control_conn(stream: UnixStream, ctl: Arc<Control>) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd.take(64 * 1024));
    let mut line = Vec::new();
    let read = async {
        let mut magic = [0u8; 1];
        rd.read_exact(&mut magic).await?;
        rd.read_until(b'\n', &mut line).await
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(10), read).await,
        Ok(Ok(_))
    ) {
        return;
    }
    let answer = match serde_json::from_slice::<control::Request>(&line) {
        Ok(r) if r.control == "status" => serde_json::to_value(ctl.status()),
        Ok(r) if r.control == "stop" => {
            let mut st = ctl.status();
            st.stopping = true;
            let _ = ctl.stop.send("`dist-space stop`");
            serde_json::to_value(st)
        }
        Ok(r) => {
            Ok(serde_json::json!({"error": format!("unknown control request {:?}", r.control)}))
        }
        Err(e) => Ok(serde_json::json!({"error": format!("bad control request: {e}")})),
    };
    if let Ok(v) = answer {
        let mut out = v.to_string().into_bytes();
        out.push(b'\n');
        let _ = wr.write_all(&out).await;
        let _ = wr.shutdown().await;
    }
}

pub fn run(args: ServeArgs) -> Result<(), String> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let root = std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !root.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let Some(lock) = take_lock(&root)? else {
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
    let config = crate::store::Config::load(&root);
    let idle = match args.idle_secs {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None if args.auto => config.idle_secs.map(Duration::from_secs),
        None => None,
    };
    let identity = folder_identity(&root).map_err(|e| format!("{}: {e}", root.display()))?;
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
    let writer_thread = writer::spawn_writer(&root, socket.clone(), rx, feed.clone(), config)
        .map_err(|e| format!("load: {e}"))?;
    let res = rt.block_on(async {
        let listener = UnixListener::bind(&socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
        let socket_id = file_id(&socket);
        // The agent API: its calls go through the writer's queue like everything else.
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
        info!(
            root = %root.display(),
            socket = %socket.display(),
            pid = info.pid,
            auto = args.auto,
            idle_secs = idle.map(|d| d.as_secs()),
            "daemon listening"
        );
        println!("dist-space serving {} on {}", root.display(), socket.display());
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let (stop_tx, mut stop_rx) = mpsc::unbounded_channel::<&'static str>();
        let editors = Arc::new(Editors::default());
        let ctl = Arc::new(Control {
            root: root.clone(),
            started: Instant::now(),
            auto: args.auto,
            idle,
            editors: editors.clone(),
            agents: agent.connections.clone(),
            stop: stop_tx,
        });
        let next_id = AtomicU64::new(1);
        let sockets = Arc::new(AtomicUsize::new(0));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = (0u64, 0u64);
        let mut last_active = Instant::now();
        loop {
            tokio::select! {
                acc = listener.accept() => {
                    let Ok((stream, _)) = acc else { continue };
                    if sockets.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        warn!("connection limit reached: refusing a connection");
                        drop(stream);
                        continue;
                    }
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    let (tx, sockets, editors, ctl) = (tx.clone(), sockets.clone(), editors.clone(), ctl.clone());
                    sockets.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        editors.unsent.fetch_add(1, Ordering::SeqCst);
                        let first = peek_first_byte(&stream).await;
                        editors.unsent.fetch_sub(1, Ordering::SeqCst);
                        match first {
                            Ok(Some(control::MAGIC)) => control_conn(stream, ctl).await,
                            Ok(Some(_)) => {
                                editors.open.fetch_add(1, Ordering::SeqCst);
                                editors.opened.fetch_add(1, Ordering::SeqCst);
                                crate::lsp_conn::serve_conn(stream, id, tx).await;
                                editors.open.fetch_sub(1, Ordering::SeqCst);
                            }
                            _ => {}
                        }
                        sockets.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                _ = tick.tick() => {
                    let why = folder_gone(&root, identity).or_else(|| {
                        // Unreachable without its socket (a cleaned-up runtime folder): make
                        // way for a new daemon rather than hold the lock for nobody.
                        (file_id(&socket) != socket_id).then_some("the daemon's socket file was removed")
                    });
                    if let Some(why) = why {
                        info!(reason = why, "stopping");
                        break;
                    }
                    if let Some(idle) = idle {
                        let now = (editors.opened.load(Ordering::SeqCst), agent.connections.opened());
                        let busy = editors.open.load(Ordering::SeqCst) > 0
                            || editors.unsent.load(Ordering::SeqCst) > 0
                            || agent.connections.active() > 0;
                        if busy || now != seen {
                            seen = now;
                            last_active = Instant::now();
                        } else if last_active.elapsed() >= idle {
                            info!(idle_secs = idle.as_secs(), "no editor or agent connected for the idle time: stopping");
                            break;
                        }
                    }
                }
                why = stop_rx.recv() => {
                    info!(by = why.unwrap_or("?"), "stop requested");
                    break;
                }
                _ = sigint.recv() => { info!("SIGINT"); break; }
                _ = sigterm.recv() => { info!("SIGTERM"); break; }
            }
        }
        // Unfindable first: a bridge whose connection closes now sees no info file and knows
        // this was a stop, not a crash; nobody new connects to a daemon that is leaving.
        let _ = std::fs::remove_file(paths::info_path(&root));
        let _ = std::fs::remove_file(&socket);
        drop(listener);
        let _ = agent.handle.stop();
        let (done_tx, done_rx) = oneshot::channel();
        let _ = tx.send(Event::Shutdown(done_tx));
        let _ = tokio::time::timeout(Duration::from_secs(30), done_rx).await;
        Ok::<(), String>(())
    });
    // Also on an error path (the lock is still ours, so nobody else wrote them).
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(paths::info_path(&root));
    drop(lock);
    let _ = writer_thread.join();
    rt.shutdown_timeout(Duration::from_millis(200));
    info!("daemon stopped");
    res
}
