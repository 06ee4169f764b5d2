//! `modhash proof`: one module's inclusion proof, to ship beside it or
//! appended to it.

use std::path::PathBuf;

use modhash::linux_trailer::append_modhash_trailer;
use modhash::proof::InclusionProof;
use modhash::Profile;

use crate::commands::root::read_manifest;
use crate::files::write_output;
use crate::output::{CommandResult, Failure, Outcome};

/// Write MODULE's RFC 6962 audit path in MANIFEST (with leaf index and tree
/// size), so `modhash verify --proof` can check it without the manifest.
///
/// With --embed, write a copy of MODULE with the proof appended as a modhash
/// trailer instead: `modhash verify` finds it there, and neither the
/// elf-image nor the payload digest changes (the file digest does, so
/// --embed refuses manifests of profile file).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build's manifest.
    #[arg(long, short, value_name = "M")]
    manifest: PathBuf,
    /// Write the proof (or, with --embed, the module) here, atomically;
    /// without it the proof goes to stdout.
    #[arg(long, short, value_name = "OUT", required_if_eq("embed", "true"))]
    output: Option<PathBuf>,
    /// Append the proof to a copy of MODULE written to OUT.
    #[arg(long)]
    embed: bool,
    /// The module.
    module: PathBuf,
}

pub fn run(args: Args) -> CommandResult {
    let manifest = read_manifest(&args.manifest)?;
    let bytes = crate::files::read_module(&args.module)?;
    let profile = manifest.profile();
    let digest = profile
        .digest(&bytes)
        .map_err(|e| Failure::at(&args.module, format!("profile {profile}: {e}")))?;
    let proof =
        InclusionProof::for_digest(&manifest, digest).map_err(|e| Failure::at(&args.module, e))?;
    let text = proof.to_string();
    match (&args.output, args.embed) {
        (Some(out), true) => {
            if profile == Profile::File {
                return Err(Failure::at(
                    &args.manifest,
                    "a proof appended to the module changes its `file` digest; ship it beside the module instead (omit --embed)",
                ));
            }
            let embedded = append_modhash_trailer(&bytes, text.as_bytes())
                .ok_or_else(|| Failure::at(&args.module, "proof too large for a trailer"))?;
            write_output(out, &embedded)?;
        }
        (Some(out), false) => write_output(out, text.as_bytes())?,
        (None, _) => print!("{text}"),
    }
    Ok(Outcome::Yes)
}
