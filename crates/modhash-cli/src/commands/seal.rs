//! `modhash seal`: write a manifest's root into the host's anchor slot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use modhash::seal;

use crate::commands::root::read_manifest;
use crate::files::write_atomically_with_mode;
use crate::output::{CommandResult, Failure, Outcome};

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
    /// The host executable or library declaring the anchor.
    host: PathBuf,
}

pub fn run(args: Args) -> CommandResult {
    let manifest = read_manifest(&args.manifest)?;
    let host = crate::files::read_module(&args.host)?;
    if args.check {
        let (_, anchor) = seal::read(&host).map_err(|e| Failure::at(&args.host, e))?;
        return Ok(if anchor.anchors(&manifest) {
            println!("{}: sealed with {}", args.host.display(), manifest.root());
            Outcome::Yes
        } else {
            println!(
                "{}: not sealed with {} (anchor: {anchor})",
                args.host.display(),
                manifest.root()
            );
            Outcome::No
        });
    }
    let sealed = seal::seal(&host, &manifest).map_err(|e| Failure::at(&args.host, e))?;
    let out = write_sealed(&args.host, args.output.as_deref(), &sealed)?;
    let (_, anchor) = seal::read(&sealed).map_err(|e| Failure::at(out, e))?;
    println!("{}: {}", out.display(), anchor);
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
    write_atomically_with_mode(out, sealed, mode)?;
    Ok(out)
}
