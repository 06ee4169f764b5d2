//! `modhash seal`: write a manifest's root into the host's anchor slot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use modhash::{seal, Anchor, Digest, Manifest, Profile};

use crate::files::read_manifest;
use crate::files::write_output_with_mode;
use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Write MANIFEST's root into HOST's anchor slot (in place, or to OUT).
///
/// Only the 64-byte record changes; sealing the same host with the same
/// manifest always gives the same bytes. With --check, change nothing and
/// exit 0 if HOST carries the manifest's root, 1 if not.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest whose root to seal.
    #[arg(long, short, value_name = "M")]
    manifest: PathBuf,
    /// Write the sealed host here instead of replacing HOST.
    #[arg(long, short, value_name = "OUT", conflicts_with = "check")]
    output: Option<PathBuf>,
    /// Only check whether HOST is sealed with the manifest's root.
    #[arg(long)]
    check: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The host executable or library declaring the anchor.
    host: PathBuf,
}

/// What the host's anchor holds after sealing, or on --check.
#[derive(serde::Serialize)]
struct Report<'a> {
    host: &'a Path,
    /// Whether the anchor holds the manifest's root.
    sealed_with_manifest: bool,
    /// The manifest's root, profile and leaf count.
    root: Digest,
    profile: Profile,
    leaves: u64,
    /// The anchor as found, e.g. `unsealed` or `sealed profile=… count=… root=…`.
    anchor: String,
}

impl<'a> Report<'a> {
    fn of(host: &'a Path, anchor: &Anchor, manifest: &Manifest) -> Self {
        Self {
            host,
            sealed_with_manifest: anchor.anchors(manifest),
            root: manifest.root(),
            profile: manifest.profile(),
            leaves: manifest.leaf_count(),
            anchor: anchor.to_string(),
        }
    }
}

pub fn run(args: Args) -> CommandResult {
    let manifest = read_manifest(&args.manifest)?;
    let host = crate::files::read_module(&args.host)?;
    if args.check {
        let (_, anchor) = seal::read(&host).map_err(|e| Failure::at(&args.host, e))?;
        let report = Report::of(&args.host, &anchor, &manifest);
        if args.json {
            print_json(&report)?;
        } else if report.sealed_with_manifest {
            println!("{}: sealed with {}", args.host.display(), manifest.root());
        } else {
            println!(
                "{}: not sealed with {} (anchor: {anchor})",
                args.host.display(),
                manifest.root()
            );
        }
        return Ok(Outcome::from_bool(report.sealed_with_manifest));
    }
    let sealed = seal::seal(&host, &manifest).map_err(|e| Failure::at(&args.host, e))?;
    let out = write_sealed(&args.host, args.output.as_deref(), &sealed)?;
    let (_, anchor) = seal::read(&sealed).map_err(|e| Failure::at(out, e))?;
    if args.json {
        print_json(&Report::of(out, &anchor, &manifest))?;
    } else {
        println!("{}: {}", out.display(), anchor);
    }
    Ok(Outcome::Yes)
}

/// Writes a sealed binary to `output`, or in place of `input`, with
/// `input`'s permission bits (a sealed executable stays executable).
pub fn write_sealed<'a>(
    input: &'a Path,
    output: Option<&'a Path>,
    sealed: &[u8],
) -> Result<&'a Path, Failure> {
    let out = output.unwrap_or(input);
    let mode = std::fs::metadata(input)
        .map_err(|e| Failure::at(input, e))?
        .permissions()
        .mode();
    write_output_with_mode(out, sealed, mode)?;
    Ok(out)
}
