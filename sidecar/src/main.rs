//! `dist-space`: the sidecar binary.

mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dist-space",
    version,
    about = "Live multi-editor, multi-agent workspace sidecar"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay an editing trace (.json.gz) through the engine; exit 1 if the result differs
    /// from its endContent, 2 if the file is unusable.
    Trace(trace::TraceArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Trace(args) => trace::run(&args),
    }
}
