//! `redis-migrate`: the command-line shell over `migrate-core`.

use clap::Parser;

/// Copy and sync data between Redis-compatible servers.
#[derive(Debug, Parser)]
#[command(name = "redis-migrate", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("redis-migrate: no subcommands yet");
    std::process::exit(2);
}
