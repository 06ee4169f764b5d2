//! `modhash key`: public keys for signature checks.

use std::path::{Path, PathBuf};

use modhash::signature::kernel_image::{self, Compression};
use modhash::signature::{libcamera, linux, spki_key_id};

use crate::files::write_output;
use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Work with the public keys `modhash verify --keys` takes.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    Extract(ExtractArgs),
}

/// Extract the public key a libcamera.so, or the certificates a Linux kernel
/// image, verifies modules with.
///
/// --libcamera writes the DER SubjectPublicKeyInfo at the dynamic symbol
/// `_ZN9libcamera10IPAManager14publicKeyData_E`. --kernel writes, as PEM,
/// the X.509 certificates built into a vmlinux or a bzImage (gzip, xz, zstd
/// or lz4 payload).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true)))]
struct ExtractArgs {
    /// The libcamera shared library (libcamera.so.*).
    #[arg(long, value_name = "LIBCAMERA_SO", group = "source")]
    libcamera: Option<PathBuf>,
    /// A kernel image: vmlinux or bzImage (vmlinuz).
    #[arg(long, value_name = "IMAGE", group = "source")]
    kernel: Option<PathBuf>,
    /// Where to write the key (DER) or certificates (PEM).
    #[arg(long, short, value_name = "OUT")]
    output: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    output: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    compression: Option<Compression>,
    keys: Vec<String>,
}

/// Largest file read: a kernel image or a shared library.
const MAX_INPUT: u64 = 512 << 20;

pub fn run(args: Args) -> CommandResult {
    match args.command {
        KeyCommand::Extract(args) => extract(args),
    }
}

fn extract(args: ExtractArgs) -> CommandResult {
    let (source, bytes_out, compression, keys) = match (&args.libcamera, &args.kernel) {
        (Some(so), _) => {
            let bytes = crate::files::read(so, MAX_INPUT)?;
            let key = libcamera::extract_key(&bytes).map_err(|e| Failure::at(so, e))?;
            let id = spki_key_id(&key);
            (so, key, None, vec![id])
        }
        (None, Some(image)) => {
            let bytes = crate::files::read(image, MAX_INPUT)?;
            let found = kernel_image::certificates(&bytes).map_err(|e| Failure::at(image, e))?;
            let names = found
                .certificates
                .iter()
                .map(|der| linux::certificate_subject(der).unwrap_or_default())
                .collect();
            (
                image,
                found.to_pem().into_bytes(),
                Some(found.compression),
                names,
            )
        }
        (None, None) => return Err(Failure::usage("give --libcamera or --kernel")),
    };
    write_output(&args.output, &bytes_out)?;
    let report = Report {
        output: &args.output,
        compression,
        keys,
    };
    if args.json {
        print_json(&report)?;
    } else {
        for key in &report.keys {
            println!("{}: {key}", source.display());
        }
    }
    Ok(Outcome::Yes)
}
