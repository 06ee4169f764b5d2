//! `modhash root`: check a manifest and print its root.

use std::path::{Path, PathBuf};

use modhash::Manifest;

use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Check that MANIFEST is well formed and consistent, and print its root.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The manifest file.
    manifest: PathBuf,
}

#[derive(serde::Serialize)]
struct RootReport {
    profile: modhash::Profile,
    root: modhash::Digest,
    modules: usize,
    leaves: u64,
}

pub fn run(args: Args) -> CommandResult {
    let manifest = read_manifest(&args.manifest)?;
    if args.json {
        print_json(&RootReport {
            profile: manifest.profile(),
            root: manifest.root(),
            modules: manifest.entries().count(),
            leaves: manifest.leaf_count(),
        })?;
    } else {
        println!("{}", manifest.root());
    }
    Ok(Outcome::Yes)
}

/// Reads and parses a manifest file.
pub fn read_manifest(path: &Path) -> Result<Manifest, Failure> {
    Manifest::from_file(path).map_err(Failure::naming_its_file)
}
