//! `modhash`: trust loadable modules by the hashes recorded when they were
//! built. The binary only parses arguments, runs one command and maps its
//! result to an exit code; the work lives in the `modhash` libraries.
//!
//! Exit codes: 0 success (every module trusted, manifests match, …),
//! 1 a negative answer (a module is untrusted, a seal check fails, two trees
//! differ), 2 bad usage or bad input (unreadable file, malformed manifest,
//! not an ELF file, …).

// clap turns the command and argument doc comments into `--help` text, where
// `<hex digest>` and the like are placeholders to print, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod commands;
mod files;
mod output;
mod tree;
mod trust;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Trust loadable modules by the hashes recorded when they were built.
#[derive(Debug, Parser)]
#[command(name = "modhash", version, about, long_about = None)]
#[command(
    after_help = "Exit status: 0 success, 1 a negative answer (untrusted, differs), 2 bad usage or bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Diff(commands::diff::Args),
    Hash(commands::hash::Args),
    Manifest(commands::manifest::Args),
    Root(commands::root::Args),
    Inspect(commands::inspect::Args),
    Seal(commands::seal::Args),
    Verify(commands::verify::Args),
    Proof(commands::proof::Args),
    Keygen(commands::keygen::Args),
    Sign(commands::sign::Args),
    Key(commands::key::Args),
    Kernel(commands::kernel::Args),
    Strip(commands::strip::Args),
    Load(commands::load::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Diff(args) => commands::diff::run(args),
        Command::Hash(args) => commands::hash::run(args),
        Command::Manifest(args) => commands::manifest::run(args),
        Command::Root(args) => commands::root::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Seal(args) => commands::seal::run(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Proof(args) => commands::proof::run(args),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Sign(args) => commands::sign::run(args),
        Command::Key(args) => commands::key::run(args),
        Command::Kernel(args) => commands::kernel::run(args),
        Command::Strip(args) => commands::strip::run(args),
        Command::Load(args) => commands::load::run(args),
    };
    output::exit(result)
}
