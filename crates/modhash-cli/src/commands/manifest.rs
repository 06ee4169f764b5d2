//! `modhash manifest`: hash every module below a directory, in parallel, and
//! write the manifest with its Merkle root.

use std::io::Write;
use std::path::{Path, PathBuf};

use modhash::input::ReadBuffer;
use modhash::{Digest, Manifest, Profile};
use rayon::prelude::*;

use crate::commands::hash::digest_file;
use crate::files::write_output;
use crate::output::{progress_spinner, CommandResult, Failure, Outcome};
use crate::tree::{entries, include_set, EntryKind};

/// Hash every regular file below DIR (symlinks are not followed) and write
/// the manifest; the root goes to stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which bytes to hash.
    #[arg(long, short, default_value = "elf-image")]
    profile: Profile,
    /// Only files whose path relative to DIR matches this glob (repeatable),
    /// e.g. `--include '*.so'`.
    #[arg(long = "include", value_name = "GLOB")]
    includes: Vec<String>,
    /// Write the manifest here (atomically) instead of to stdout.
    #[arg(long, short, value_name = "OUT")]
    output: Option<PathBuf>,
    /// The directory holding the modules.
    dir: PathBuf,
}

pub fn run(args: Args) -> CommandResult {
    let manifest = build(&args.dir, args.profile, &args.includes)?;
    let text = manifest.to_string();
    match &args.output {
        Some(out) => write_output(out, text.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?,
    }
    eprintln!(
        "root {} (profile {}, {} modules, {} distinct digests)",
        manifest.root(),
        manifest.profile(),
        manifest.entries().count(),
        manifest.leaf_count()
    );
    Ok(Outcome::Yes)
}

/// Hashes every regular file below `dir` matching `includes`, on all cores,
/// starting as soon as the walk finds the first files.
pub fn build(dir: &Path, profile: Profile, includes: &[String]) -> Result<Manifest, Failure> {
    let include = include_set(includes)?;
    let bar = progress_spinner("hashing");
    let mut results: Vec<(String, Result<Digest, Failure>)> = entries(dir, include.as_ref())?
        .par_bridge()
        .filter_map(|entry| match entry {
            Ok(entry) if entry.kind == EntryKind::File => Some(Ok(entry)),
            Ok(_) => None,
            Err(failure) => Some(Err(failure)),
        })
        .map_init(ReadBuffer::new, |buffer, entry| {
            bar.inc(1);
            match entry {
                Ok(entry) => {
                    let digest = digest_file(&entry.path, profile, buffer);
                    (entry.relative, digest)
                }
                // A walk error sorts first: it is reported before any file.
                Err(failure) => (String::new(), Err(failure)),
            }
        })
        .collect();
    bar.finish_and_clear();
    // Report the first failure in path order, whichever thread met it, so
    // the same tree always gives the same error.
    results.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let digests = results
        .into_iter()
        .map(|(relative, digest)| digest.map(|d| (relative, d)))
        .collect::<Result<Vec<_>, _>>()?;
    Manifest::new(profile, digests).map_err(|e| Failure::at(dir, e))
}
