//! Signatures: how a module that is not in the host's manifest (an
//! out-of-tree module) is trusted, as both systems modhash generalises do.
//!
//! Three schemes, each checked against a [`Keyring`] the host builds from key
//! files it compiles in:
//!
//! - [`native`]: Ed25519 in OpenSSH's `sshsig` format over a
//!   domain-separated message naming a digest profile and the module's
//!   digest, found next to the module (`x.so.modsig`) or in a signtab
//!   directory keyed by digest (`DIR/<hex>.modsig`);
//! - [`libcamera`]: `x.so.sign`, RSA PKCS#1 v1.5 over SHA-256 of the whole
//!   file;
//! - [`linux`]: the PKCS#7/CMS SignedData appended to a kernel module, over
//!   the bytes before it, matched to an X.509 certificate by issuer and
//!   serial number (or subject key identifier).
//!
//! [`Keyring::check`] tries every signature a module has and returns a
//! [`Signer`] for the first that verifies, or every reason none did. Only
//! this module constructs a `Signer`, so holding one proves a signature was
//! verified.

pub mod keyring;
pub mod libcamera;
pub mod linux;
pub mod native;

#[cfg(feature = "extract")]
pub mod kernel_image;

use std::fmt;
use std::path::{Path, PathBuf};

pub use keyring::{spki_key_id, KeyDescription, KeyError, Keyring};

use crate::input::{self, ReadError};
use crate::{Digest, Profile};

/// Largest signature file read: signatures are a few kilobytes at most.
const MAX_SIGNATURE_FILE: u64 = 1 << 20;

/// A signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Scheme {
    /// modhash's own Ed25519 `.modsig`.
    Native,
    /// libcamera's `.sign`.
    Libcamera,
    /// An appended Linux module signature.
    Linux,
}

impl Scheme {
    /// The scheme's name in verdicts and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Native => "native",
            Scheme::Libcamera => "libcamera",
            Scheme::Linux => "linux",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who signed a module whose signature verified.
///
/// Only the verifiers of this module construct a `Signer`: a value is proof
/// that a signature by a key of the ring was checked over the module's
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signer {
    scheme: Scheme,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
}

impl Signer {
    pub(crate) fn new(scheme: Scheme, id: String, profile: Option<Profile>) -> Self {
        Self {
            scheme,
            id,
            profile,
        }
    }

    /// The scheme of the signature that verified.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The key's id: an Ed25519 or SubjectPublicKeyInfo fingerprint
    /// (`SHA256:…`), or a certificate's subject common name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// For a native signature, the digest profile it covers.
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }
}

impl fmt::Display for Signer {
    /// The key id, as `trusted-by-signature <id>` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// Why one signature of a module did not make it trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The module has no signature of any kind.
    #[error("no signature (no appended module signature, no .sign or .modsig file{signtab})", signtab = if *.searched_signtab { ", no signtab entry" } else { "" })]
    NoSignature {
        /// Whether a signtab directory was searched too.
        searched_signtab: bool,
    },
    /// A signature file exists but cannot be read.
    #[error("{}: {error}", path.display())]
    Unreadable {
        /// The signature file.
        path: PathBuf,
        /// Why it cannot be read.
        error: ReadError,
    },
    /// A native `.modsig` did not verify.
    #[error("{}: {error}", path.display())]
    Native {
        /// The signature file.
        path: PathBuf,
        /// Why it did not verify.
        error: native::NativeError,
    },
    /// A libcamera `.sign` did not verify.
    #[error("{}: {error}", path.display())]
    Libcamera {
        /// The signature file.
        path: PathBuf,
        /// Why it did not verify.
        error: libcamera::LibcameraError,
    },
    /// The appended Linux module signature did not verify.
    #[error("appended module signature: {0}")]
    Linux(linux::LinuxError),
}

/// Every reason a module is not trusted by signature, in the order checked.
#[derive(Debug)]
pub struct Rejections(pub Vec<Rejection>);

impl fmt::Display for Rejections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rejection) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{rejection}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejections {}

/// `path` with `.ext` appended to its file name (`x.so` → `x.so.sign`).
pub fn sidecar_path(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// Reads a signature file; `None` when there is none.
fn read_signature_file(path: &Path) -> Result<Option<Vec<u8>>, Rejection> {
    match input::read_regular(path, MAX_SIGNATURE_FILE) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadError::NotFound) => Ok(None),
        Err(error) => Err(Rejection::Unreadable {
            path: path.to_owned(),
            error,
        }),
    }
}

/// The module's digest under every profile that applies to it, in the order
/// native signatures are tried: `elf-image` (survives strip), `payload`,
/// `file`.
fn native_candidates(bytes: &[u8]) -> Vec<(Profile, Digest)> {
    [Profile::ElfImage, Profile::Payload, Profile::File]
        .into_iter()
        .filter_map(|profile| Some((profile, profile.digest(bytes).ok()?)))
        .collect()
}

impl Keyring {
    /// Checks every signature `module_path` has against this ring: an
    /// appended Linux signature in `bytes`, `<module>.sign`,
    /// `<module>.modsig`, and `signtab/<hex digest>.modsig`. Returns the
    /// first signer that verifies, or every reason none did.
    ///
    /// `bytes` are the module's contents, read once by the caller;
    /// `module_path` only locates the signature files, which need no
    /// protection: a signature file can add trust only for a key in the
    /// ring.
    pub fn check(
        &self,
        module_path: &Path,
        bytes: &[u8],
        signtab: Option<&Path>,
    ) -> Result<Signer, Rejections> {
        let mut rejections = Vec::new();
        let mut found = false;

        match linux::verify(self, bytes) {
            Ok(signer) => return Ok(signer),
            Err(linux::LinuxError::NotSigned) => {}
            Err(error) => {
                found = true;
                rejections.push(Rejection::Linux(error));
            }
        }

        let sign_path = sidecar_path(module_path, libcamera::EXTENSION);
        match read_signature_file(&sign_path) {
            Ok(None) => {}
            Ok(Some(signature)) => {
                found = true;
                match libcamera::verify(self, bytes, &signature) {
                    Ok(signer) => return Ok(signer),
                    Err(error) => rejections.push(Rejection::Libcamera {
                        path: sign_path,
                        error,
                    }),
                }
            }
            Err(rejection) => {
                found = true;
                rejections.push(rejection);
            }
        }

        let mut candidates: Option<Vec<(Profile, Digest)>> = None;
        let modsig_path = sidecar_path(module_path, native::EXTENSION);
        let mut native_files = vec![(modsig_path, None)];
        if let Some(dir) = signtab {
            let candidates = candidates.get_or_insert_with(|| native_candidates(bytes));
            for &(_, digest) in candidates.iter() {
                let entry = (native::signtab_path(dir, &digest), Some(digest));
                if !native_files.contains(&entry) {
                    native_files.push(entry);
                }
            }
        }
        for (path, named_digest) in native_files {
            let signature = match read_signature_file(&path) {
                Ok(None) => continue,
                Ok(Some(signature)) => signature,
                Err(rejection) => {
                    found = true;
                    rejections.push(rejection);
                    continue;
                }
            };
            found = true;
            let candidates = candidates.get_or_insert_with(|| native_candidates(bytes));
            // A signtab entry is named by a digest: only the profiles giving
            // that digest can match it.
            let tried: Vec<(Profile, Digest)> = candidates
                .iter()
                .filter(|(_, d)| named_digest.is_none_or(|want| want == *d))
                .copied()
                .collect();
            match native::verify(self, &signature, &tried) {
                Ok(signer) => return Ok(signer),
                Err(error) => rejections.push(Rejection::Native { path, error }),
            }
        }

        if !found {
            rejections.push(Rejection::NoSignature {
                searched_signtab: signtab.is_some(),
            });
        }
        Err(Rejections(rejections))
    }
}
