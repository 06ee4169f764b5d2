//! `modhash proof`: one module's inclusion proof, to ship beside it or
//! appended to it.

use std::path::{Path, PathBuf};

use modhash::linux_trailer::append_modhash_trailer;
use modhash::proof::InclusionProof;
use modhash::{Digest, Profile};

use crate::files::read_manifest;
use crate::files::write_output;
use crate::output::{print_json, CommandResult, Failure, Outcome};

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
    /// Print the proof as JSON on stdout (and still write OUT, if given).
    #[arg(long)]
    json: bool,
    /// The module.
    module: PathBuf,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    module: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Path>,
    profile: Profile,
    digest: Digest,
    /// The leaf index of the digest.
    index: u64,
    tree_size: u64,
    /// The audit path, leaf to root.
    path: &'a [Digest],
    root: Digest,
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
    if args.json {
        print_json(&Report {
            module: &args.module,
            output: args.output.as_deref(),
            profile: proof.profile,
            digest: proof.digest,
            index: proof.index,
            tree_size: proof.tree_size,
            path: &proof.path,
            root: manifest.root(),
        })?;
    }
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
        (None, _) if !args.json => print!("{text}"),
        (None, _) => {}
    }
    Ok(Outcome::Yes)
}
