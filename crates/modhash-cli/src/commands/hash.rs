//! `modhash hash`: the digest of files under one profile.

use std::path::PathBuf;

use modhash::compressed;
use modhash::input::ReadBuffer;
use modhash::{Digest, Profile};

use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Print the digest of each FILE under a profile (`<hex>  <path>`, as
/// `sha256sum` does).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which bytes to hash: file, payload (before an appended module
    /// signature or modhash trailer; a .ko.xz, .ko.zst or .ko.gz module
    /// decompressed) or elf-image (the loadable image; stable under strip).
    #[arg(long, short, default_value = "payload")]
    profile: Profile,
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
        let digest = digest_file(path, args.profile, &mut buffer)?;
        lines.push(HashLine {
            path,
            profile: args.profile,
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

/// Reads `path` once, into `buffer`, and digests it under `profile`.
pub fn digest_file(
    path: &std::path::Path,
    profile: Profile,
    buffer: &mut ReadBuffer,
) -> Result<Digest, Failure> {
    let bytes = buffer
        .read_regular(path, modhash::input::DEFAULT_MAX_LEN)
        .map_err(|e| Failure::at(path, e))?;
    // `payload` is the kernel module the kernel checks: a compressed one is
    // hashed decompressed. `file` stays every byte of the file, as sha256sum.
    let bytes = match profile {
        Profile::Payload => {
            compressed::decompress(bytes, compressed::MAX_DECOMPRESSED)
                .map_err(|e| Failure::at(path, e))?
                .bytes
        }
        _ => std::borrow::Cow::Borrowed(bytes),
    };
    profile
        .digest(&bytes)
        .map_err(|e| Failure::at(path, format!("profile {profile}: {e}")))
}
