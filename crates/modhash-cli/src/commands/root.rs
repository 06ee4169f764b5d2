//! `modhash root`: check a manifest and print its root.

use std::path::PathBuf;

use modhash::Manifest;

use crate::files::read_manifest;
use crate::output::{print_json, CommandResult, Outcome};

/// Check that MANIFEST is well formed and consistent, and print its root.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The manifest file.
    manifest: PathBuf,
}

/// A manifest's profile, root and sizes, as `root --json` and `manifest
/// --json` print them.
#[derive(serde::Serialize)]
pub struct RootReport {
    profile: modhash::Profile,
    root: modhash::Digest,
    modules: usize,
    leaves: u64,
}

impl RootReport {
    pub fn of(manifest: &Manifest) -> Self {
        Self {
            profile: manifest.profile(),
            root: manifest.root(),
            modules: manifest.entries().count(),
            leaves: manifest.leaf_count(),
        }
    }
}

pub fn run(args: Args) -> CommandResult {
    let manifest = read_manifest(&args.manifest)?;
    if args.json {
        print_json(&RootReport::of(&manifest))?;
    } else {
        println!("{}", manifest.root());
    }
    Ok(Outcome::Yes)
}
