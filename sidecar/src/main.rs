mod bridge;
mod control;
mod log_cmd;
mod lsp_conn;
mod mcp;
mod paths;
mod proto;
mod reopen;
mod serve;
mod snapshot_cmd;
mod start;
mod store;
mod trace;
mod writer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "dist-space",
    version,
    about = "Live multi-editor / multi-agent workspace sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a headless snapshot of a workspace (a directory tree or a .tar).
    Snapshot(snapshot_cmd::SnapshotArgs),
    /// Replay an editing trace (.json.gz) through the engine; exit 1 if the result differs
    /// from its endContent, 2 if the file is unusable.
    Trace(trace::TraceArgs),
    /// Run the per-workspace daemon (one per workspace root).
    Serve(serve::ServeArgs),
    /// LSP over stdio for editors: connects to (or starts) the workspace's daemon.
    Lsp(bridge::LspArgs),
    /// MCP server over stdio for AI agents: connects to (or starts) the workspace's daemon.
    Mcp(mcp::McpArgs),
    /// Whether the workspace's daemon runs: pid, uptime, editors and agents connected
    /// (exit 0 when running, 3 when not).
    Status(control::StatusArgs),
    /// Stop the workspace's daemon cleanly (pending writes flushed) and wait until it exited.
    Stop(control::StopArgs),
    /// The workspace's durable history (events per agent and file, times, sizes);
    /// `--verify` checks its integrity (exit 1 on damage).
    Log(log_cmd::LogArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Snapshot(args) => snapshot_cmd::run(args),
        Command::Trace(args) => return trace::run(&args),
        Command::Serve(args) => serve::run(args),
        Command::Lsp(args) => bridge::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Log(args) => return log_cmd::run(&args),
        Command::Status(args) => return control::status(args),
        Command::Stop(args) => return control::stop(args),
    };
    if let Err(e) = res {
        eprintln!("dist-space: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
