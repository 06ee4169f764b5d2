//! `modhash inspect`: what a file is, its trailer, and its digest under
//! every profile that applies.

use std::path::{Path, PathBuf};

use modhash::compressed::{self, Compression};
use modhash::linux_trailer::{self, ModuleSignatureInfo, Trailer};
use modhash::module_hashes::{self, Proof, Root};
use modhash::signature::linux::{self, SignerIdentity};
use modhash::{seal, Profile};

use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Show what FILE is (ELF kind and class, or other), its appended trailer
/// (signature, modhash trailer or module hash proof), its anchor if it is a
/// host, the module hashes root if it is a kernel image, and its digest
/// under every profile. A compressed kernel module (.ko.xz, .ko.zst, .ko.gz)
/// is shown decompressed, as the kernel loads it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The file to inspect.
    file: PathBuf,
}

#[derive(serde::Serialize)]
struct Inspection<'a> {
    path: &'a Path,
    size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    compressed: Option<CompressedReport>,
    kind: String,
    trailer: TrailerReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    module_hashes: Option<Root>,
    digests: Vec<ProfileDigest>,
}

#[derive(serde::Serialize)]
struct CompressedReport {
    compression: Compression,
    file_size: usize,
}

#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum TrailerReport {
    None,
    ModuleSignature {
        #[serde(flatten)]
        info: ModuleSignatureInfo,
        payload_len: usize,
        /// Who the PKCS#7 SignerInfo names (not verified: see `verify`).
        #[serde(skip_serializing_if = "Option::is_none")]
        signer: Option<SignerIdentity>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signer_error: Option<String>,
    },
    Modhash {
        body_len: usize,
    },
    ModuleHashProof {
        pos: u32,
        levels: usize,
        payload_len: usize,
    },
    Invalid {
        error: String,
    },
}

#[derive(serde::Serialize)]
struct ProfileDigest {
    profile: Profile,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<modhash::Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_applicable: Option<String>,
}

pub fn run(args: Args) -> CommandResult {
    let file = crate::files::read_module(&args.file)?;
    let module = compressed::decompress(&file, compressed::MAX_DECOMPRESSED)
        .map_err(|e| Failure::at(&args.file, e))?;
    let bytes = &module.bytes;
    let trailer = match linux_trailer::split(bytes) {
        Ok(split) => match split.trailer {
            Trailer::None => TrailerReport::None,
            Trailer::ModuleSignature { info, .. }
                if info.id_type == module_hashes::ID_TYPE_MERKLE =>
            {
                match Proof::split(bytes) {
                    Ok((payload, proof)) => TrailerReport::ModuleHashProof {
                        pos: proof.pos,
                        levels: proof.siblings.len(),
                        payload_len: payload.len(),
                    },
                    Err(e) => TrailerReport::Invalid {
                        error: e.to_string(),
                    },
                }
            }
            Trailer::ModuleSignature { info, .. } => {
                let (signer, signer_error) = match linux::signer_identity(bytes) {
                    Ok(signer) => (signer, None),
                    Err(e) => (None, Some(e.to_string())),
                };
                TrailerReport::ModuleSignature {
                    info,
                    payload_len: split.payload.len(),
                    signer,
                    signer_error,
                }
            }
            Trailer::Modhash { body } => TrailerReport::Modhash {
                body_len: body.len(),
            },
        },
        Err(e) => TrailerReport::Invalid {
            error: e.to_string(),
        },
    };
    let anchor = match seal::read(bytes) {
        Ok((slot, anchor)) => Some(format!("{anchor} (record at offset {:#x})", slot.offset)),
        Err(_) => None,
    };
    let digests = Profile::ALL
        .into_iter()
        .map(|profile| match profile.digest(bytes) {
            Ok(digest) => ProfileDigest {
                profile,
                digest: Some(digest),
                not_applicable: None,
            },
            Err(e) => ProfileDigest {
                profile,
                digest: None,
                not_applicable: Some(e.to_string()),
            },
        })
        .collect();
    let inspection = Inspection {
        path: &args.file,
        size: bytes.len(),
        compressed: module.compression.map(|compression| CompressedReport {
            compression,
            file_size: file.len(),
        }),
        kind: describe_kind(bytes),
        trailer,
        anchor,
        module_hashes: module_hashes::image::read(&file)
            .ok()
            .map(|found| found.root),
        digests,
    };
    if args.json {
        print_json(&inspection)?;
    } else {
        print_human(&inspection);
    }
    Ok(Outcome::Yes)
}

fn print_human(i: &Inspection<'_>) {
    println!("file:    {}", i.path.display());
    println!("size:    {} bytes", i.size);
    if let Some(c) = &i.compressed {
        println!(
            "compressed: {} ({} bytes on disk); shown decompressed, as the kernel loads it",
            c.compression, c.file_size
        );
    }
    println!("kind:    {}", i.kind);
    match &i.trailer {
        TrailerReport::None => println!("trailer: none"),
        TrailerReport::ModuleSignature {
            info,
            payload_len,
            signer,
            signer_error,
        } => {
            println!(
                "trailer: Linux module signature, {} bytes of signature, payload {} bytes",
                info.sig_len, payload_len
            );
            println!(
                "         id_type {} ({}), algo {}, hash {}, signer_len {}, key_id_len {}",
                info.id_type,
                if info.id_type == linux_trailer::PKEY_ID_PKCS7 {
                    "PKCS#7"
                } else {
                    "legacy"
                },
                info.algo,
                info.hash,
                info.signer_len,
                info.key_id_len
            );
            if let Some(signer) = signer {
                println!(
                    "         signer: {signer} ({}, {})",
                    signer.digest, signer.algorithm
                );
            }
            if let Some(error) = signer_error {
                println!("         signer: unreadable: {error}");
            }
        }
        TrailerReport::Modhash { body_len } => {
            println!("trailer: modhash trailer, {body_len} bytes")
        }
        TrailerReport::ModuleHashProof {
            pos,
            levels,
            payload_len,
        } => println!(
            "trailer: module hash proof (id_type 3), position {pos} in modules.order, {levels} levels, payload {payload_len} bytes"
        ),
        TrailerReport::Invalid { error } => println!("trailer: invalid: {error}"),
    }
    if let Some(anchor) = &i.anchor {
        println!("anchor:  {anchor}");
    }
    if let Some(root) = &i.module_hashes {
        println!(
            "module_hashes: levels={} root={}{}",
            root.levels,
            root.hash,
            if root.is_placeholder() {
                " (unsealed placeholder)"
            } else {
                ""
            }
        );
    }
    for d in &i.digests {
        match (&d.digest, &d.not_applicable) {
            (Some(digest), _) => println!("{:<10} {digest}", d.profile.name()),
            (None, Some(why)) => println!("{:<10} n/a: {why}", d.profile.name()),
            (None, None) => {}
        }
    }
}

/// "ELF64 little-endian shared object", "not ELF", …
fn describe_kind(bytes: &[u8]) -> String {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return "not ELF".to_owned();
    }
    let class = match bytes.get(4) {
        Some(1) => "ELF32",
        Some(2) => "ELF64",
        _ => "ELF (unknown class)",
    };
    let (endian, little) = match bytes.get(5) {
        Some(1) => ("little-endian", true),
        Some(2) => ("big-endian", false),
        _ => ("unknown byte order", true),
    };
    let e_type = bytes.get(16..18).map(|b| {
        let pair = [
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ];
        if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    let kind = match e_type {
        Some(1) => "relocatable object (ET_REL)".to_owned(),
        Some(2) => "executable (ET_EXEC)".to_owned(),
        Some(3) => "shared object or PIE (ET_DYN)".to_owned(),
        Some(4) => "core dump (ET_CORE)".to_owned(),
        Some(other) => format!("type {other}"),
        None => "truncated header".to_owned(),
    };
    format!("{class} {endian} {kind}")
}
