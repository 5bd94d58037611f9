mod snapshot_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "dist-space",
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
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Snapshot(args) => snapshot_cmd::run(args),
    };
    if let Err(e) = res {
        eprintln!("dist-space: {e}");
        std::process::exit(1);
    }
}
