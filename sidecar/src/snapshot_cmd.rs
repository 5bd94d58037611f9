//! `dist-space snapshot [DIR] [--at VERSION] [--out DIR|FILE.tar]`: a headless snapshot of a
//! workspace, written as a directory tree or a tar archive, with progress bars.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vfs::{SnapContent, Workspace, WorkspaceOptions, WorkspaceSnapshot};

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    /// Workspace folder (default: the current directory).
    pub dir: Option<PathBuf>,
    /// Workspace version to snapshot (default: the current one). A freshly loaded workspace
    /// has version 0 (empty) and 1 (as loaded).
    #[arg(long)]
    pub at: Option<u64>,
    /// Output: a directory, or a file ending in `.tar`. Without it, a summary is printed.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Files larger than this many bytes are not treated as text.
    #[arg(long, default_value_t = vfs::load::DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
}

fn bar(len: u64, msg: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>9} [{bar:30}] {pos}/{len} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(msg);
    pb
}

pub fn run(args: SnapshotArgs) -> Result<(), String> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let mut opts = WorkspaceOptions::default();
    opts.load.max_file_size = args.max_file_size;
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(100));
    let mut ws = Workspace::load(&dir, opts, &mut |p| {
        spinner.set_message(format!("loading: {} files, {} bytes", p.files, p.bytes));
    })
    .map_err(|e| e.to_string())?;
    spinner.finish_and_clear();
    let snap = match args.at {
        Some(v) => ws.snapshot_at(v).map_err(|e| e.to_string())?,
        None => ws.snapshot(),
    };
    match args.out {
        None => print_summary(&snap).map_err(|e| e.to_string()),
        Some(out) if out.extension().is_some_and(|e| e == "tar") => write_tar(&snap, &out),
        Some(out) => {
            let pb = bar(snap.files().len() as u64, "writing");
            let n = snap
                .write_to_dir(&out, &mut |done, _| pb.set_position(done as u64))
                .map_err(|e| format!("writing {}: {e}", out.display()))?;
            pb.finish_and_clear();
            eprintln!(
                "wrote {n} text files of version {} to {}",
                snap.version(),
                out.display()
            );
            Ok(())
        }
    }
}

fn print_summary(snap: &WorkspaceSnapshot) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let (mut text, mut other, mut dirs) = (0, 0, 0);
    for f in snap.files() {
        match &f.content {
            SnapContent::Dir => dirs += 1,
            SnapContent::Text { text: t, .. } => {
                text += 1;
                writeln!(out, "{}\t{} bytes", f.path, t.len_bytes())?;
            }
            SnapContent::NotText { reason, .. } => {
                other += 1;
                writeln!(out, "{}\tnot text: {reason}", f.path)?;
            }
        }
    }
    writeln!(
        out,
        "version {}: {text} text files ({} bytes), {other} other files, {dirs} directories",
        snap.version(),
        snap.text_bytes()
    )
}

fn write_tar(snap: &WorkspaceSnapshot, out: &PathBuf) -> Result<(), String> {
    let err = |e: io::Error| format!("writing {}: {e}", out.display());
    let file = fs::File::create(out).map_err(err)?;
    let mut tar = tar::Builder::new(io::BufWriter::new(file));
    let pb = bar(snap.files().len() as u64, "archiving");
    let mut n = 0;
    for (i, f) in snap.files().iter().enumerate() {
        if let SnapContent::Text { text, .. } = &f.content {
            let mut bytes = Vec::with_capacity(text.len_bytes());
            text.write_to(&mut bytes).map_err(err)?;
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, &*f.path, bytes.as_slice())
                .map_err(err)?;
            n += 1;
        }
        pb.set_position(i as u64 + 1);
    }
    tar.into_inner().and_then(|mut w| w.flush()).map_err(err)?;
    pb.finish_and_clear();
    eprintln!(
        "wrote {n} text files of version {} to {}",
        snap.version(),
        out.display()
    );
    Ok(())
}
