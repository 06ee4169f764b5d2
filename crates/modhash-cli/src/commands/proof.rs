//! `modhash proof`: one module's inclusion proof, to ship beside it or
//! appended to it.

use std::path::PathBuf;

use modhash::proof::InclusionProof;

use crate::commands::hash::digest_file;
use crate::commands::manifest::write_atomically;
use crate::commands::root::read_manifest;
use crate::output::{CommandResult, Failure, Outcome};

/// Write MODULE's RFC 6962 audit path in MANIFEST (with leaf index and tree
/// size), so `modhash verify --proof` can check it without the manifest.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build's manifest.
    #[arg(long, short, value_name = "M")]
    manifest: PathBuf,
    /// Write the proof here (atomically) instead of to stdout.
    #[arg(long, short, value_name = "P")]
    output: Option<PathBuf>,
    /// The module.
    module: PathBuf,
}

pub fn run(args: Args) -> CommandResult {
    let manifest = read_manifest(&args.manifest)?;
    let digest = digest_file(&args.module, manifest.profile())?;
    let proof =
        InclusionProof::for_digest(&manifest, digest).map_err(|e| Failure::at(&args.module, e))?;
    let text = proof.to_string();
    match &args.output {
        Some(out) => write_atomically(out, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(Outcome::Yes)
}
