//! `modhash hash`: the digest of files, each under the profile the rule
//! gives it.

use std::path::PathBuf;

use modhash::input::ReadBuffer;
use modhash::{Digest, Profile, ProfileRule};

use crate::files::digest;
use crate::output::{print_json, CommandResult, Outcome};

/// Print the digest of each FILE under a profile (`<hex>  <path>`, as
/// `sha256sum` does).
///
/// The default profile, auto, is the one `modhash manifest` and `modhash
/// sign` use too, so the digest printed for a file is the one in the
/// default manifest: elf-image for ELF executables and shared objects,
/// payload for kernel modules and files with an appended signature or
/// modhash trailer, file (every byte, as sha256sum) otherwise. --json
/// names the profile each file got.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which bytes to hash: auto, file, payload (before an appended module
    /// signature or modhash trailer) or elf-image (the loadable image;
    /// stable under strip).
    #[arg(long, short, default_value_t)]
    profile: ProfileRule,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Files to hash.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct HashLine<'a> {
    path: &'a std::path::Path,
    profile: Profile,
    digest: Digest,
}

pub fn run(args: Args) -> CommandResult {
    let mut lines = Vec::with_capacity(args.files.len());
    let mut buffer = ReadBuffer::new();
    for path in &args.files {
        let (profile, digest) = digest(path, args.profile, &mut buffer)?;
        lines.push(HashLine {
            path,
            profile,
            digest,
        });
    }
    if args.json {
        print_json(&lines)?;
    } else {
        for line in &lines {
            println!("{}  {}", line.digest, line.path.display());
        }
    }
    Ok(Outcome::Yes)
}
