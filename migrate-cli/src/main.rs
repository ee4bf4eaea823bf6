//! `redis-migrate`: the command-line shell over `migrate-core`.
//!
//! Each subcommand lives in its own file under `cmd/`; `main` parses the arguments, runs the
//! subcommand and turns an error into one line on stderr (`redis-migrate: ...`) and a non-zero
//! exit status.

// The doc comments of the argument structs are clap's help text, written for a terminal
// (`redis://[user:password@]host:port`), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

mod cmd;
mod error;
mod metrics;

use std::process::ExitCode;

use clap::Parser;

use crate::cmd::Command;

/// Copy and sync data between Redis-compatible servers.
#[derive(Debug, Parser)]
#[command(name = "redis-migrate", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_silent() {
                eprintln!("redis-migrate: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
