//! The public keys a host trusts for signatures.
//!
//! A key ring is filled from key files, typically compiled into the host with
//! `include_bytes!`: signature keys exist before the host is linked, so,
//! unlike the hash anchor, they need no sealing step. Every file format the
//! three signature schemes use is accepted, told apart by content:
//!
//! | file | holds | verifies |
//! |---|---|---|
//! | `ssh-ed25519 AAAA… comment` lines (OpenSSH public key, `modhash keygen`'s `NAME.pub`) | Ed25519 keys | native `.modsig` signatures |
//! | PEM `PUBLIC KEY` or DER SubjectPublicKeyInfo (`modhash key extract --libcamera`) | RSA / EC keys | libcamera `.sign` files |
//! | PEM `CERTIFICATE` blocks or one DER certificate (`modhash key extract --kernel`) | X.509 certificates | appended Linux module signatures |

use std::fmt;

use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::Certificate;

use crate::digest::Digest;

/// Why a key file could not be added to a key ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are none of the supported key formats.
    #[error("not a key file: expected OpenSSH `ssh-ed25519` public keys, PEM `PUBLIC KEY`/`CERTIFICATE` blocks, or a DER SubjectPublicKeyInfo or certificate")]
    UnknownFormat,
    /// An OpenSSH public key line that does not parse.
    #[error("line {line}: not a valid OpenSSH public key: {reason}")]
    OpenSsh {
        /// 1-based line number.
        line: usize,
        /// What the parser said.
        reason: String,
    },
    /// An OpenSSH key of an algorithm native signatures do not use.
    #[error("line {line}: {algorithm} keys are not supported; native signatures use ssh-ed25519 (make one with `modhash keygen`)")]
    OpenSshAlgorithm {
        /// 1-based line number.
        line: usize,
        /// The key's algorithm.
        algorithm: String,
    },
    /// A PEM block that does not decode.
    #[error("PEM block {index}: {reason}")]
    Pem {
        /// 1-based index of the block.
        index: usize,
        /// What went wrong.
        reason: String,
    },
    /// A PEM block of a type that holds no public key.
    #[error("PEM block {index} is `{label}`; only `PUBLIC KEY` and `CERTIFICATE` blocks hold public keys")]
    PemLabel {
        /// 1-based index of the block.
        index: usize,
        /// The block's label.
        label: String,
    },
    /// A public key of an algorithm no scheme verifies with.
    #[error("public key algorithm {0} is not supported; use RSA (2048 to 8192 bits) or ECDSA on P-256, P-384 or P-521")]
    Algorithm(String),
    /// The file holds no key at all.
    #[error("the file holds no key")]
    Empty,
}

/// The public-key algorithms RSA and ECDSA signatures are checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    /// RSA, any size aws-lc accepts (2048 to 8192 bits).
    Rsa,
    /// ECDSA on a NIST curve.
    Ecdsa(Curve),
}

/// A NIST curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

mod oid {
    use der::oid::ObjectIdentifier;
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    pub const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
    pub const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    pub const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
}

/// An RSA or EC public key, ready for aws-lc.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) algorithm: KeyAlgorithm,
    /// What aws-lc takes: the PKCS#1 `RSAPublicKey` for RSA, the SEC1 point
    /// for EC (the SubjectPublicKeyInfo's bit string either way).
    pub(crate) key_bytes: Vec<u8>,
    /// `SHA256:<unpadded base64>` of the DER SubjectPublicKeyInfo, the form
    /// OpenSSH uses for fingerprints.
    pub(crate) id: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("id", &self.id)
            .finish()
    }
}

impl PublicKey {
    fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|_| KeyError::UnknownFormat)?;
        Self::from_spki(&spki, der)
    }

    fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>, der: &[u8]) -> Result<Self, KeyError> {
        let algorithm = match spki.algorithm.oid {
            oid::RSA_ENCRYPTION => KeyAlgorithm::Rsa,
            oid::EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<der::oid::ObjectIdentifier>().ok());
                KeyAlgorithm::Ecdsa(match curve {
                    Some(oid::SECP256R1) => Curve::P256,
                    Some(oid::SECP384R1) => Curve::P384,
                    Some(oid::SECP521R1) => Curve::P521,
                    other => {
                        return Err(KeyError::Algorithm(format!(
                            "ECDSA on curve {}",
                            other.map_or_else(|| "(none)".to_owned(), |o| o.to_string())
                        )))
                    }
                })
            }
            other => return Err(KeyError::Algorithm(other.to_string())),
        };
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::Algorithm("with a non-octet-aligned key".to_owned()))?
            .to_vec();
        Ok(Self {
            algorithm,
            key_bytes,
            id: spki_key_id(der),
        })
    }
}

/// The key id of a DER SubjectPublicKeyInfo: `SHA256:` and the unpadded
/// base64 of its SHA-256, the form OpenSSH uses for fingerprints; the same
/// as `openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary |
/// base64`, without the padding.
pub fn spki_key_id(spki_der: &[u8]) -> String {
    use base64ct::Encoding;
    format!(
        "SHA256:{}",
        base64ct::Base64Unpadded::encode_string(Digest::sha256(spki_der).as_bytes())
    )
}

/// An X.509 certificate reduced to what module signature checks use.
#[derive(Debug, Clone)]
pub(crate) struct CertificateKey {
    /// DER of the issuer `Name`, compared byte for byte with a SignerInfo's.
    pub(crate) issuer_der: Vec<u8>,
    /// The serial number's content octets.
    pub(crate) serial: Vec<u8>,
    /// The subject key identifier extension, when present.
    pub(crate) subject_key_id: Option<Vec<u8>>,
    /// The subject's common name (or the whole subject when it has none).
    pub(crate) subject_cn: String,
    pub(crate) key: PublicKey,
}

impl CertificateKey {
    fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let cert = Certificate::from_der(der).map_err(|_| KeyError::UnknownFormat)?;
        let tbs = &cert.tbs_certificate;
        let spki_der = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError::Algorithm(format!("(unencodable key: {e})")))?;
        let key = PublicKey::from_spki_der(&spki_der)?;
        let subject_key_id = subject_key_id(tbs);
        Ok(Self {
            issuer_der: tbs
                .issuer
                .to_der()
                .map_err(|e| KeyError::Algorithm(format!("(unencodable issuer: {e})")))?,
            serial: tbs.serial_number.as_bytes().to_vec(),
            subject_key_id,
            subject_cn: common_name(&tbs.subject),
            key,
        })
    }
}

/// The subject key identifier extension's key id, when present.
pub(crate) fn subject_key_id(tbs: &x509_cert::TbsCertificate) -> Option<Vec<u8>> {
    tbs.extensions.as_ref().and_then(|exts| {
        exts.iter()
            .find(|e| e.extn_id == oid::SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| der::asn1::OctetString::from_der(e.extn_value.as_bytes()).ok())
            .map(|o| o.as_bytes().to_vec())
    })
}

/// The common name of `name`, or its RFC 4514 string when it has none.
pub(crate) fn common_name(name: &x509_cert::name::Name) -> String {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == oid::COMMON_NAME)
        .and_then(|atv| directory_string(&atv.value))
        .unwrap_or_else(|| name.to_string())
}

/// A `DirectoryString` value as text.
fn directory_string(value: &der::Any) -> Option<String> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
    value
        .decode_as::<Utf8StringRef<'_>>()
        .map(|s| s.as_str().to_owned())
        .or_else(|_| {
            value
                .decode_as::<PrintableStringRef<'_>>()
                .map(|s| s.as_str().to_owned())
        })
        .or_else(|_| {
            value
                .decode_as::<Ia5StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
        })
        .or_else(|_| {
            value
                .decode_as::<TeletexStringRef<'_>>()
                .map(|s| s.as_str().to_owned())
        })
        .ok()
}

/// The public keys a host trusts for signatures, of all three schemes.
///
/// Adding keys is the only way to add trust by signature; nothing read while
/// checking a module can add a key.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    pub(crate) ssh: Vec<ssh_key::PublicKey>,
    pub(crate) public_keys: Vec<PublicKey>,
    pub(crate) certificates: Vec<CertificateKey>,
}

impl Keyring {
    /// An empty key ring: it trusts no signature.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every key in one key file (any format in the module
    /// documentation) and returns how many it held. On error nothing is
    /// added.
    pub fn add_file(&mut self, bytes: &[u8]) -> Result<usize, KeyError> {
        let mut more = Keyring::new();
        if let Some(text) = std::str::from_utf8(bytes).ok().map(str::trim) {
            if text.starts_with("-----BEGIN ") {
                more.add_pem(text)?;
            } else if text.starts_with("ssh-") || text.starts_with("ecdsa-") {
                more.add_openssh(text)?;
            } else {
                more.add_der(bytes)?;
            }
        } else {
            more.add_der(bytes)?;
        }
        let added = more.len();
        if added == 0 {
            return Err(KeyError::Empty);
        }
        self.ssh.append(&mut more.ssh);
        self.public_keys.append(&mut more.public_keys);
        self.certificates.append(&mut more.certificates);
        Ok(added)
    }

    /// A key ring holding the keys of each file; for keys compiled in:
    /// `Keyring::from_files(&[include_bytes!("release.pub")])`.
    pub fn from_files(files: &[&[u8]]) -> Result<Self, KeyError> {
        let mut ring = Self::new();
        for file in files {
            ring.add_file(file)?;
        }
        Ok(ring)
    }

    /// How many keys and certificates the ring holds.
    pub fn len(&self) -> usize {
        self.ssh.len() + self.public_keys.len() + self.certificates.len()
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One line per key: its scheme and its id (fingerprint, or the
    /// certificate's subject common name).
    pub fn describe(&self) -> Vec<KeyDescription> {
        let ssh = self.ssh.iter().map(|k| KeyDescription {
            kind: "ed25519",
            id: k.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
        });
        let keys = self.public_keys.iter().map(|k| KeyDescription {
            kind: k.algorithm.name(),
            id: k.id.clone(),
        });
        let certs = self.certificates.iter().map(|c| KeyDescription {
            kind: "x509",
            id: c.subject_cn.clone(),
        });
        ssh.chain(keys).chain(certs).collect()
    }

    fn add_openssh(&mut self, text: &str) -> Result<(), KeyError> {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| KeyError::OpenSsh {
                line: index + 1,
                reason: e.to_string(),
            })?;
            if key.algorithm() != ssh_key::Algorithm::Ed25519 {
                return Err(KeyError::OpenSshAlgorithm {
                    line: index + 1,
                    algorithm: key.algorithm().to_string(),
                });
            }
            self.ssh.push(key);
        }
        Ok(())
    }

    fn add_pem(&mut self, text: &str) -> Result<(), KeyError> {
        for (index, block) in pem_blocks(text).enumerate() {
            let index = index + 1;
            let (label, der) =
                der::pem::decode_vec(block.as_bytes()).map_err(|e| KeyError::Pem {
                    index,
                    reason: e.to_string(),
                })?;
            let pem_error = |e: KeyError| KeyError::Pem {
                index,
                reason: e.to_string(),
            };
            match label {
                "CERTIFICATE" => self
                    .certificates
                    .push(CertificateKey::from_der(&der).map_err(pem_error)?),
                "PUBLIC KEY" => self
                    .public_keys
                    .push(PublicKey::from_spki_der(&der).map_err(pem_error)?),
                other => {
                    return Err(KeyError::PemLabel {
                        index,
                        label: other.to_owned(),
                    })
                }
            }
        }
        Ok(())
    }

    fn add_der(&mut self, der: &[u8]) -> Result<(), KeyError> {
        match CertificateKey::from_der(der) {
            Ok(cert) => self.certificates.push(cert),
            Err(KeyError::UnknownFormat) => self.public_keys.push(PublicKey::from_spki_der(der)?),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// One key of a ring, for listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyDescription {
    /// `ed25519`, `rsa`, `ecdsa-p256`, … or `x509`.
    pub kind: &'static str,
    /// The fingerprint, or a certificate's subject common name.
    pub id: String,
}

impl KeyAlgorithm {
    fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::Ecdsa(Curve::P256) => "ecdsa-p256",
            KeyAlgorithm::Ecdsa(Curve::P384) => "ecdsa-p384",
            KeyAlgorithm::Ecdsa(Curve::P521) => "ecdsa-p521",
        }
    }
}

/// The PEM blocks of `text`, each from its `-----BEGIN` line to the end of
/// its `-----END …-----` line; text between blocks (as `openssl x509 -text`
/// leaves) is skipped.
fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let after_start = rest.get(start..)?;
        let end_marker = after_start.find("-----END ")?;
        let after_end = after_start.get(end_marker + "-----END ".len()..)?;
        let close = after_end.find("-----")? + "-----".len();
        let block_len = end_marker + "-----END ".len() + close;
        let block = after_start.get(..block_len)?;
        rest = after_start.get(block_len..)?;
        Some(block)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_skip_text_between_blocks() {
        let text = "junk\n-----BEGIN A-----\nQQ==\n-----END A-----\ntext\n-----BEGIN B-----\nQg==\n-----END B-----\n";
        let blocks: Vec<_> = pem_blocks(text).collect();
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].starts_with("-----BEGIN A-----"));
        assert!(blocks[1].ends_with("-----END B-----"));
    }

    #[test]
    fn garbage_is_not_a_key_file() {
        assert_eq!(
            Keyring::new().add_file(b"\x00\x01garbage"),
            Err(KeyError::UnknownFormat)
        );
        assert_eq!(
            Keyring::new().add_file(b"hello"),
            Err(KeyError::UnknownFormat)
        );
    }

    #[test]
    fn private_key_pem_is_refused_by_label() {
        let pem = "-----BEGIN PRIVATE KEY-----\nQQ==\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            Keyring::new().add_file(pem.as_bytes()),
            Err(KeyError::PemLabel { .. })
        ));
    }
}
