//! `modhash sign`: native Ed25519 signatures of modules.

use std::path::{Path, PathBuf};

use modhash::signature::native::{self, SigningKey};
use modhash::signature::sidecar_path;
use modhash::{Digest, Profile, ProfileRule};

use modhash::input::ReadBuffer;

use crate::files::{digest, write_output};
use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Sign each MODULE's digest with an Ed25519 key from `modhash keygen`.
///
/// Writes MODULE.modsig next to the module, or with --signtab
/// DIR/<hex digest>.modsig, so signatures can ship in a package of their own
/// while the module package stays reproducible. The signature covers the
/// profile's name and the digest, in OpenSSH `sshsig` format (namespace
/// `modhash`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The secret key (OpenSSH format, unencrypted).
    #[arg(long, value_name = "NAME")]
    key: PathBuf,
    /// Which bytes the signature covers: auto (elf-image for ELF
    /// executables and shared objects, payload for kernel modules and files
    /// with an appended trailer, file otherwise), elf-image (survives
    /// strip), payload (before an appended trailer) or file.
    #[arg(long, short, default_value_t)]
    profile: ProfileRule,
    /// Write signatures into this directory, named by digest, instead of
    /// next to each module.
    #[arg(long, value_name = "DIR")]
    signtab: Option<PathBuf>,
    /// Replace existing signature files.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The modules to sign.
    #[arg(required = true)]
    modules: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    module: &'a Path,
    profile: Profile,
    digest: Digest,
    signature: PathBuf,
}

/// `NAME.pub` for a secret key `NAME`.
pub fn public_key_path(secret: &Path) -> PathBuf {
    sidecar_path(secret, "pub")
}

pub fn run(args: Args) -> CommandResult {
    let key_bytes = crate::files::read(&args.key, crate::files::MAX_SMALL_FILE)?;
    let key = SigningKey::from_openssh(&key_bytes).map_err(|e| Failure::at(&args.key, e))?;
    if let Some(dir) = &args.signtab {
        if !dir.is_dir() {
            return Err(Failure::at(
                dir,
                "not a directory; create the signtab directory first",
            ));
        }
    }
    let mut reports = Vec::with_capacity(args.modules.len());
    let mut buffer = ReadBuffer::new();
    for module in &args.modules {
        let (profile, digest) = digest(module, args.profile, &mut buffer)?;
        let path = match &args.signtab {
            Some(dir) => native::signtab_path(dir, &digest),
            None => sidecar_path(module, native::EXTENSION),
        };
        // Checked for every module before any is signed, so a refusal
        // leaves no signature set half replaced.
        if !args.force && std::fs::symlink_metadata(&path).is_ok() {
            return Err(Failure::at(
                &path,
                "already exists; pass --force to replace it",
            ));
        }
        reports.push(Report {
            module,
            profile,
            digest,
            signature: path,
        });
    }
    for report in &reports {
        let signature = key
            .sign(report.profile, &report.digest)
            .map_err(|e| Failure::at(&args.key, e))?;
        write_output(&report.signature, signature.as_bytes())?;
    }
    if args.json {
        print_json(&reports)?;
    } else {
        for report in &reports {
            println!(
                "{}: {}",
                report.module.display(),
                report.signature.display()
            );
        }
    }
    Ok(Outcome::Yes)
}
