//! `dist-space log [DIR]`: the workspace's history as the durable log holds it (events per
//! agent and per file, times, sizes); `--verify` checks every frame's checksum and replays
//! every event through the engine, exiting non-zero on any damage. Read-only: safe while the
//! daemon runs (an append in progress may show as a torn tail at the very end).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::store::frame::{self, Record};

#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// Workspace root (default: the workspace containing the current directory).
    pub dir: Option<PathBuf>,
    /// Check integrity only: exit 0 if the log is intact, 1 if it is damaged, 2 if unreadable.
    #[arg(long)]
    pub verify: bool,
    /// Also list every record.
    #[arg(long)]
    pub records: bool,
}

fn time_str(ms: u64) -> String {
    // UTC, no dependency: days since the epoch -> civil date (Howard Hinnant's algorithm).
    let secs = ms / 1000;
    let (d, s) = ((secs / 86400) as i64, secs % 86400);
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

#[derive(Default)]
struct Agg {
    events: u64,
    bytes: u64,
    records: u64,
    first: u64,
    last: u64,
    files: std::collections::BTreeSet<String>,
}

impl Agg {
    fn add(&mut self, t: u64, events: u64, bytes: u64) {
        if self.records == 0 || t < self.first {
            self.first = t;
        }
        self.last = self.last.max(t);
        self.events += events;
        self.bytes += bytes;
        self.records += 1;
    }
}

pub fn run(args: &LogArgs) -> ExitCode {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = match crate::paths::find_root(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dist-space log: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let path = crate::store::log_path(&root);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("dist-space log: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let scan = frame::scan(&data);
    let (docs, bad) = crate::store::recover_replay(&scan.records);
    let mut damage: Vec<String> = Vec::new();
    if let Some(d) = &scan.damage {
        damage.push(d.to_string());
    }
    if let Some((off, why)) = &bad {
        damage.push(format!(
            "record at byte {off} rejected by the engine: {why}"
        ));
    }
    let events: usize = docs.values().map(|d| d.doc.oplog().len()).sum();
    if args.verify {
        println!(
            "{}: {} bytes, {} records, {} documents, {} events",
            path.display(),
            data.len(),
            scan.records.len(),
            docs.len(),
            events
        );
        for q in quarantined(&root) {
            println!("note: a quarantined log is kept at {}", q.display());
        }
        if damage.is_empty() {
            println!("ok: every frame's checksum matches and every event replays");
            return ExitCode::SUCCESS;
        }
        for d in &damage {
            println!("DAMAGED: {d}");
        }
        return ExitCode::from(1);
    }

    // History: per agent and per file.
    let mut paths: BTreeMap<u64, String> = BTreeMap::new();
    let mut per_agent: BTreeMap<String, Agg> = BTreeMap::new();
    let mut per_file: BTreeMap<u64, Agg> = BTreeMap::new();
    for (off, r) in &scan.records {
        if bad.as_ref().is_some_and(|(b, _)| off >= b) {
            break;
        }
        let t = r.time();
        let chunk = match r {
            Record::DocNew {
                key, path, chunk, ..
            } => {
                paths.insert(*key, path.clone());
                Some((key, chunk))
            }
            Record::Events { key, chunk, .. } => Some((key, chunk)),
            Record::Rename { key, path, .. } => {
                paths.insert(*key, path.clone());
                None
            }
            _ => None,
        };
        if args.records {
            let what = match r {
                Record::Header { version } => format!("header v{version}"),
                Record::DocNew {
                    key, path, chunk, ..
                } => {
                    format!("new document #{key} {path} ({} bytes)", chunk.len())
                }
                Record::Events { key, chunk, .. } => {
                    format!("events #{key} ({} bytes)", chunk.len())
                }
                Record::DiskBase { key, .. } => format!("disk base #{key}"),
                Record::Rename { key, path, .. } => format!("rename #{key} -> {path}"),
                Record::Delete { key, .. } => format!("delete #{key}"),
                Record::Note { text, .. } => format!("note: {text}"),
                Record::Times { key, marks, .. } => {
                    format!("times #{key} ({} marks)", marks.len())
                }
            };
            println!("{:>10}  {}  {what}", off, time_str(t));
        }
        let Some((key, chunk)) = chunk else { continue };
        let Ok(c) = engine::encoding::decode_chunk(chunk) else {
            continue;
        };
        let file = paths.get(key).cloned().unwrap_or_default();
        let mut n_file = 0u64;
        let mut by_agent: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &c.events {
            *by_agent.entry(e.agent.as_str()).or_insert(0) += e.len() as u64;
            n_file += e.len() as u64;
        }
        let nb = chunk.len() as u64;
        for (a, n) in by_agent {
            let g = per_agent.entry(a.to_string()).or_default();
            g.add(t, n, nb * n / n_file.max(1));
            g.files.insert(file.clone());
        }
        per_file.entry(*key).or_default().add(t, n_file, nb);
    }
    println!(
        "{}: {} bytes, {} records, {} documents ({} live), {} events",
        path.display(),
        data.len(),
        scan.records.len(),
        docs.len(),
        docs.values().filter(|d| d.path.is_some()).count(),
        events
    );
    println!();
    println!(
        "{:<40} {:>9} {:>10} {:>6}  {:<24} {:<24}",
        "agent", "events", "bytes", "files", "first", "last"
    );
    for (a, g) in &per_agent {
        println!(
            "{:<40} {:>9} {:>10} {:>6}  {:<24} {:<24}",
            a,
            g.events,
            g.bytes,
            g.files.len(),
            time_str(g.first),
            time_str(g.last)
        );
    }
    println!();
    println!(
        "{:<40} {:>9} {:>10} {:>8} {:>10}  {:<24} {:<24}",
        "file", "events", "bytes", "records", "compacted", "first", "last"
    );
    for (key, g) in &per_file {
        let live = docs.get(key).and_then(|d| d.path.clone());
        let name = match live {
            Some(p) => p,
            None => format!("{} (deleted)", paths.get(key).cloned().unwrap_or_default()),
        };
        // Events before the horizon (replaced by the text there).
        let compacted = docs.get(key).map_or(0, |d| d.doc.oplog().first_lv());
        println!(
            "{:<40} {:>9} {:>10} {:>8} {:>10}  {:<24} {:<24}",
            name,
            g.events,
            g.bytes,
            g.records,
            compacted,
            time_str(g.first),
            time_str(g.last)
        );
    }
    for d in &damage {
        println!("DAMAGED: {d}");
    }
    if damage.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn quarantined(root: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(crate::paths::state_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".corrupt-"))
        })
        .collect();
    v.sort();
    v
}
