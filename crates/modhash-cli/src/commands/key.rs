//! `modhash key`: public keys for signature checks.

use std::path::{Path, PathBuf};

use modhash::signature::kernel_image::{self, CertificateList, Compression, Distrust, Located};
use modhash::signature::{libcamera, linux, spki_key_id};

use crate::files::write_atomically;
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
/// the X.509 certificates a vmlinux or a bzImage (gzip, xz, zstd or lz4
/// payload) trusts for module signatures: its system certificate list, less
/// any certificate its blacklist (`tbs:`/`bin:` hashes) or revocation list
/// names. Certificates found anywhere else in the image are never written.
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
    /// How a kernel image's certificate lists were found.
    #[serde(skip_serializing_if = "Option::is_none")]
    located: Option<Located>,
    keys: Vec<Key>,
}

/// One key found; for a kernel image, which list it came from and, when it
/// is not written, why.
#[derive(serde::Serialize)]
struct Key {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    list: Option<CertificateList>,
    trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    distrust: Option<Distrust>,
}

impl Key {
    /// The human line's text after the source's name.
    fn describe(&self) -> String {
        match (self.list, &self.distrust) {
            (None, _) => self.id.clone(),
            (Some(CertificateList::System), None) => format!("{} (system list)", self.id),
            (Some(CertificateList::System), Some(why)) => {
                format!("{} (system list): not written, {why}", self.id)
            }
            (Some(_), _) => format!("{} (revocation list): not written, distrusted", self.id),
        }
    }
}

/// Largest file read: a kernel image or a shared library.
const MAX_INPUT: u64 = 512 << 20;

pub fn run(args: Args) -> CommandResult {
    match args.command {
        KeyCommand::Extract(args) => extract(args),
    }
}

fn extract(args: ExtractArgs) -> CommandResult {
    let (source, bytes_out, report) = match (&args.libcamera, &args.kernel) {
        (Some(so), _) => {
            let bytes = crate::files::read(so, MAX_INPUT)?;
            let key = libcamera::extract_key(&bytes).map_err(|e| Failure::at(so, e))?;
            let id = spki_key_id(&key);
            let report = Report {
                output: &args.output,
                compression: None,
                located: None,
                keys: vec![Key {
                    id,
                    list: None,
                    trusted: true,
                    distrust: None,
                }],
            };
            (so, key, report)
        }
        (None, Some(image)) => {
            let bytes = crate::files::read(image, MAX_INPUT)?;
            let found = kernel_image::certificates(&bytes).map_err(|e| Failure::at(image, e))?;
            let keys: Vec<Key> = found
                .certificates
                .iter()
                .map(|cert| Key {
                    id: linux::certificate_subject(&cert.der).unwrap_or_default(),
                    list: Some(cert.list),
                    trusted: cert.is_trusted(),
                    distrust: cert.distrust.clone(),
                })
                .collect();
            if !keys.iter().any(|k| k.trusted) {
                return Err(Failure::at(
                    image,
                    "every certificate of the system list is blacklisted or revoked by the image itself; the kernel trusts no builtin key, so there is nothing to write",
                ));
            }
            let report = Report {
                output: &args.output,
                compression: Some(found.compression),
                located: Some(found.located),
                keys,
            };
            (image, found.to_pem().into_bytes(), report)
        }
        (None, None) => return Err(Failure::usage("give --libcamera or --kernel")),
    };
    write_atomically(&args.output, &bytes_out)?;
    if args.json {
        print_json(&report)?;
    } else {
        for key in &report.keys {
            println!("{}: {}", source.display(), key.describe());
        }
    }
    Ok(Outcome::Yes)
}
