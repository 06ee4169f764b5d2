//! `modhash hash`: the digest of files under one profile.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
        let mut out = std::io::stdout().lock();
        for line in &lines {
            out.write_all(&sha256sum_line(&line.digest, line.path))
                .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(Outcome::Yes)
}

/// `<hex>  <name>\n` exactly as `sha256sum` writes it, so `sha256sum -c`
/// reads it back: a name holding a backslash, newline or carriage return
/// is escaped (`\\`, `\n`, `\r`) and the line then starts with a backslash;
/// a name that would otherwise forge a second line cannot. Other bytes of
/// the name are written as they are, not as UTF-8 replacement characters.
fn sha256sum_line(digest: &Digest, path: &Path) -> Vec<u8> {
    let name = path.as_os_str().as_bytes();
    let escaped = name.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut line = Vec::with_capacity(name.len() + 68);
    if escaped {
        line.push(b'\\');
    }
    line.extend_from_slice(digest.to_string().as_bytes());
    line.extend_from_slice(b"  ");
    for &byte in name {
        match byte {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            _ => line.push(byte),
        }
    }
    line.push(b'\n');
    line
}

/// Reads `path` once, into `buffer`, and digests it under `profile`.
pub fn digest_file(
    path: &Path,
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
