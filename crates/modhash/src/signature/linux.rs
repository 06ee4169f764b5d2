//! Linux kernel module signatures: the PKCS#7/CMS SignedData that
//! `scripts/sign-file` appends to a module, checked as the kernel checks it.
//!
//! The SignedData is detached and covers the module's payload (the bytes
//! before the signature, [`crate::linux_trailer`]). Its one SignerInfo names
//! the signing certificate by issuer and serial number (or by subject key
//! identifier, `sign-file -k`); the certificate must be in the key ring.
//!
//! A verdict here predicts the kernel's: whatever the kernel's
//! `pkcs7_verify` and `mod_check_sig` refuse is refused (signed attributes,
//! a content type other than id-data, a signer algorithm its PKCS#7 parser
//! does not know, a P-521 key that kernels before 6.10 cannot load), and a
//! little more that no kernel build should produce (SHA-1 and SHA-224, RSA
//! keys under 2048 bits, a signer digest missing from `digestAlgorithms`, a
//! signature OID naming another digest than the signer's). The table is in
//! `docs/signatures.md`.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};

use super::keyring::{common_name, CertificateKey, Curve, KeyAlgorithm};
use super::{Keyring, Scheme, Signer};
use crate::linux_trailer::{self, Trailer, TrailerError, PKEY_ID_PKCS7};

mod oid {
    use der::oid::ObjectIdentifier;
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    pub const SHA384_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    pub const SHA512_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    pub const ECDSA_WITH_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_WITH_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    pub const ECDSA_WITH_SHA512: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
}

/// Why an appended module signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinuxError {
    /// The module has no appended signature.
    #[error("the module has no appended signature")]
    NotSigned,
    /// The trailer is malformed.
    #[error(transparent)]
    Trailer(#[from] TrailerError),
    /// Not a PKCS#7 signature.
    #[error("signature id_type is {0}, not PKCS#7 (2); this module was signed by a pre-4.3 kernel's sign-file, which is not supported")]
    IdType(u8),
    /// The PKCS#7 does not parse.
    #[error("the PKCS#7 signature is malformed or truncated ({0}); re-sign the module")]
    Malformed(String),
    /// A ContentInfo of another type.
    #[error("the PKCS#7 is {0}, not SignedData")]
    NotSignedData(String),
    /// The SignedData carries content; a module signature is detached.
    #[error(
        "the PKCS#7 carries its own content; a module signature must be detached (over the module)"
    )]
    Attached,
    /// Not exactly one signer.
    #[error("the PKCS#7 has {0} signers; a module signature has exactly one")]
    SignerCount(usize),
    /// The signature carries signed (authenticated) attributes.
    #[error("the signature has signed attributes, which the kernel refuses on a module signature; sign with sign-file or `openssl cms -sign -noattr`")]
    SignedAttributes,
    /// The signed content is not of type id-data.
    #[error("the signed content type is {0}, not id-data, which the kernel refuses; sign with sign-file")]
    ContentType(String),
    /// A digest algorithm that is not accepted.
    #[error("digest algorithm {0} is not supported; use SHA-256, SHA-384 or SHA-512")]
    Digest(String),
    /// The signer's digest algorithm is not among those the SignedData
    /// declares.
    #[error("the signer's digest algorithm {0} is not among the SignedData's digestAlgorithms; the signature is malformed, re-sign the module")]
    DigestUndeclared(String),
    /// A signature algorithm that is not accepted.
    #[error("signer algorithm {0} is refused: the kernel takes rsaEncryption or ecdsa-with-SHA256/384/512 (matching the digest) as a module signer's algorithm; sign with sign-file")]
    Algorithm(String),
    /// The signature and certificate algorithms disagree.
    #[error("signature algorithm {signature} does not match the certificate's {key} key")]
    AlgorithmMismatch {
        /// From the SignerInfo.
        signature: String,
        /// From the certificate.
        key: String,
    },
    /// A key that not every supported kernel can use.
    #[error("certificate `{subject}` has a P-521 key, which Linux verifies only since 6.10; sign with RSA, P-256 or P-384 for a verdict that holds on every kernel")]
    P521 {
        /// The certificate's subject common name.
        subject: String,
    },
    /// The ring holds no certificate.
    #[error("the key ring holds no X.509 certificate; extract the kernel's with `modhash key extract --kernel IMAGE`")]
    NoCertificates,
    /// No certificate of the ring matches the signer.
    #[error("signed by {0}, which matches no certificate in the key ring; add the signer's certificate with --keys")]
    UnknownSigner(SignerIdentity),
    /// The signature does not verify.
    #[error("signature does not verify with certificate `{subject}`: the module changed after signing, or another key signed it")]
    BadSignature {
        /// The matching certificate's subject common name.
        subject: String,
    },
}

/// Who signed a module, as its SignerInfo names them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignerIdentity {
    /// The issuer's distinguished name (RFC 4514), when named by issuer and
    /// serial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The serial number in uppercase hex, as `openssl x509 -serial`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The subject key identifier in lowercase hex, when named by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_key_id: Option<String>,
    /// `sha256`, `sha384` or `sha512` (or the OID when unknown).
    pub digest: String,
    /// The signature algorithm's name (or OID when unknown).
    pub algorithm: String,
}

impl std::fmt::Display for SignerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.issuer, &self.serial, &self.subject_key_id) {
            (Some(issuer), Some(serial), _) => write!(f, "issuer `{issuer}` serial {serial}"),
            (_, _, Some(skid)) => write!(f, "subject key identifier {skid}"),
            _ => f.write_str("an unnamed signer"),
        }
    }
}

/// The parsed signature of one module.
struct ModuleSignature<'a> {
    payload: &'a [u8],
    signer: SignerInfo,
}

impl<'a> ModuleSignature<'a> {
    /// Splits off and parses the appended signature of `module`.
    fn parse(module: &'a [u8]) -> Result<Self, LinuxError> {
        let split = linux_trailer::split(module)?;
        let Trailer::ModuleSignature {
            info, signature, ..
        } = split.trailer
        else {
            return Err(LinuxError::NotSigned);
        };
        if info.id_type != PKEY_ID_PKCS7 {
            return Err(LinuxError::IdType(info.id_type));
        }
        let content_info =
            ContentInfo::from_der(signature).map_err(|e| LinuxError::Malformed(e.to_string()))?;
        if content_info.content_type != oid::SIGNED_DATA {
            return Err(LinuxError::NotSignedData(
                content_info.content_type.to_string(),
            ));
        }
        let signed_data: SignedData = content_info
            .content
            .decode_as()
            .map_err(|e| LinuxError::Malformed(e.to_string()))?;
        if signed_data.encap_content_info.econtent.is_some() {
            return Err(LinuxError::Attached);
        }
        // With no signed attributes nothing signs this field, so only the
        // value the kernel requires is taken.
        if signed_data.encap_content_info.econtent_type != oid::DATA {
            return Err(LinuxError::ContentType(
                signed_data.encap_content_info.econtent_type.to_string(),
            ));
        }
        let declared = signed_data.digest_algorithms;
        let mut signers = signed_data.signer_infos.0.into_vec();
        let count = signers.len();
        let signer = match signers.pop() {
            Some(signer) if count == 1 => signer,
            _ => return Err(LinuxError::SignerCount(count)),
        };
        if !declared.iter().any(|alg| alg.oid == signer.digest_alg.oid) {
            return Err(LinuxError::DigestUndeclared(
                signer.digest_alg.oid.to_string(),
            ));
        }
        Ok(Self {
            payload: split.payload,
            signer,
        })
    }

    fn identity(&self) -> SignerIdentity {
        let (issuer, serial, subject_key_id) = match &self.signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => (
                Some(ias.issuer.to_string()),
                Some(hex::encode_upper(ias.serial_number.as_bytes())),
                None,
            ),
            SignerIdentifier::SubjectKeyIdentifier(skid) => {
                (None, None, Some(hex::encode(skid.0.as_bytes())))
            }
        };
        SignerIdentity {
            issuer,
            serial,
            subject_key_id,
            digest: digest_name(&self.signer.digest_alg.oid)
                .map_or_else(|| self.signer.digest_alg.oid.to_string(), str::to_owned),
            algorithm: algorithm_name(&self.signer.signature_algorithm.oid).map_or_else(
                || self.signer.signature_algorithm.oid.to_string(),
                str::to_owned,
            ),
        }
    }

    /// Whether `cert` is the one the SignerInfo names.
    fn names(&self, cert: &CertificateKey) -> bool {
        match &self.signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.serial_number.as_bytes() == cert.serial.as_slice()
                    && ias.issuer.to_der().is_ok_and(|der| der == cert.issuer_der)
            }
            SignerIdentifier::SubjectKeyIdentifier(skid) => {
                cert.subject_key_id.as_deref() == Some(skid.0.as_bytes())
            }
        }
    }
}

/// The digest algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DigestAlg {
    Sha256,
    Sha384,
    Sha512,
}

fn digest_alg(oid: &ObjectIdentifier) -> Option<DigestAlg> {
    match *oid {
        oid::SHA256 => Some(DigestAlg::Sha256),
        oid::SHA384 => Some(DigestAlg::Sha384),
        oid::SHA512 => Some(DigestAlg::Sha512),
        _ => None,
    }
}

fn digest_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    Some(match digest_alg(oid)? {
        DigestAlg::Sha256 => "sha256",
        DigestAlg::Sha384 => "sha384",
        DigestAlg::Sha512 => "sha512",
    })
}

/// A signer algorithm OID the kernel's PKCS#7 parser takes
/// (`pkcs7_sig_note_pkey_algo`): its key type and, for ECDSA, its digest.
/// `sha256WithRSAEncryption` and `id-ecPublicKey` are not among them.
fn signature_alg(oid: &ObjectIdentifier) -> Option<(KeyType, Option<DigestAlg>)> {
    Some(match *oid {
        oid::RSA_ENCRYPTION => (KeyType::Rsa, None),
        oid::ECDSA_WITH_SHA256 => (KeyType::Ecdsa, Some(DigestAlg::Sha256)),
        oid::ECDSA_WITH_SHA384 => (KeyType::Ecdsa, Some(DigestAlg::Sha384)),
        oid::ECDSA_WITH_SHA512 => (KeyType::Ecdsa, Some(DigestAlg::Sha512)),
        _ => return None,
    })
}

fn algorithm_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    Some(match *oid {
        oid::RSA_ENCRYPTION => "rsaEncryption",
        oid::SHA256_WITH_RSA => "sha256WithRSAEncryption",
        oid::SHA384_WITH_RSA => "sha384WithRSAEncryption",
        oid::SHA512_WITH_RSA => "sha512WithRSAEncryption",
        oid::EC_PUBLIC_KEY => "id-ecPublicKey",
        oid::ECDSA_WITH_SHA256 => "ecdsa-with-SHA256",
        oid::ECDSA_WITH_SHA384 => "ecdsa-with-SHA384",
        oid::ECDSA_WITH_SHA512 => "ecdsa-with-SHA512",
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    Ecdsa,
}

/// The aws-lc algorithm for a key and a digest.
fn verification_algorithm(
    key: KeyAlgorithm,
    digest: DigestAlg,
) -> &'static dyn VerificationAlgorithm {
    use DigestAlg::{Sha256, Sha384, Sha512};
    match (key, digest) {
        (KeyAlgorithm::Rsa, Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (KeyAlgorithm::Rsa, Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (KeyAlgorithm::Rsa, Sha512) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (KeyAlgorithm::Ecdsa(Curve::P256), Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P256), Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P256), Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P384), Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P384), Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P384), Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P521), Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P521), Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (KeyAlgorithm::Ecdsa(Curve::P521), Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
    }
}

/// Who signed `module`, as its appended signature's SignerInfo says, without
/// checking the signature; `None` when the module has no appended
/// signature. For display (`modhash inspect`): it proves nothing.
pub fn signer_identity(module: &[u8]) -> Result<Option<SignerIdentity>, LinuxError> {
    match ModuleSignature::parse(module) {
        Ok(signature) => Ok(Some(signature.identity())),
        Err(LinuxError::NotSigned) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Verifies the appended signature of `module` with the ring's
/// certificates.
pub(crate) fn verify(ring: &Keyring, module: &[u8]) -> Result<Signer, LinuxError> {
    let signature = ModuleSignature::parse(module)?;
    let signer = &signature.signer;
    // The kernel refuses every module signature with signed attributes, so
    // the signature is always over the payload itself.
    if signer.signed_attrs.is_some() {
        return Err(LinuxError::SignedAttributes);
    }
    let digest = digest_alg(&signer.digest_alg.oid)
        .ok_or_else(|| LinuxError::Digest(signer.digest_alg.oid.to_string()))?;
    let (key_type, named_digest) = signature_alg(&signer.signature_algorithm.oid)
        .ok_or_else(|| LinuxError::Algorithm(signer.signature_algorithm.oid.to_string()))?;
    if named_digest.is_some_and(|named| named != digest) {
        return Err(LinuxError::Algorithm(format!(
            "{} with digest algorithm {}",
            signer.signature_algorithm.oid, signer.digest_alg.oid
        )));
    }
    if ring.certificates.is_empty() {
        return Err(LinuxError::NoCertificates);
    }
    let cert = ring
        .certificates
        .iter()
        .find(|cert| signature.names(cert))
        .ok_or_else(|| LinuxError::UnknownSigner(signature.identity()))?;
    let key_matches = matches!(
        (key_type, cert.key.algorithm),
        (KeyType::Rsa, KeyAlgorithm::Rsa) | (KeyType::Ecdsa, KeyAlgorithm::Ecdsa(_))
    );
    if !key_matches {
        return Err(LinuxError::AlgorithmMismatch {
            signature: signer.signature_algorithm.oid.to_string(),
            key: format!("{:?}", cert.key.algorithm),
        });
    }
    if let KeyAlgorithm::Ecdsa(Curve::P521) = cert.key.algorithm {
        return Err(LinuxError::P521 {
            subject: cert.subject_cn.clone(),
        });
    }
    UnparsedPublicKey::new(
        verification_algorithm(cert.key.algorithm, digest),
        &cert.key.key_bytes,
    )
    .verify(signature.payload, signer.signature.as_bytes())
    .map_err(|_| LinuxError::BadSignature {
        subject: cert.subject_cn.clone(),
    })?;
    Ok(Signer::new(Scheme::Linux, cert.subject_cn.clone(), None))
}

/// Why `strip` could not remove a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StripError {
    /// Nothing to remove.
    #[error("the module has no appended signature to remove")]
    NotSigned,
    /// The trailer is malformed.
    #[error(transparent)]
    Trailer(#[from] TrailerError),
}

/// The module without its appended signature: exactly the bytes the
/// signature covered, as before `sign-file` ran.
pub fn strip(module: &[u8]) -> Result<&[u8], StripError> {
    let split = linux_trailer::split(module)?;
    match split.trailer {
        Trailer::ModuleSignature { .. } => Ok(split.payload),
        Trailer::None | Trailer::Modhash { .. } => Err(StripError::NotSigned),
    }
}

/// The subject common name of a DER certificate, for listing extracted
/// certificates.
pub fn certificate_subject(cert_der: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    Some(common_name(&cert.tbs_certificate.subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(files: &[&[u8]]) -> Keyring {
        Keyring::from_files(files).expect("test certificates parse")
    }

    const RSA: &[u8] = include_bytes!("testdata/rsa2048.crt.pem");
    const P256: &[u8] = include_bytes!("testdata/p256.crt.pem");
    const P384: &[u8] = include_bytes!("testdata/p384.crt.pem");
    const OTHER: &[u8] = include_bytes!("testdata/other-rsa2048.crt.pem");

    #[test]
    fn every_algorithm_and_signer_form_verifies() {
        let all = ring(&[RSA, P256, P384]);
        for (module, cn) in [
            (
                &include_bytes!("testdata/rsa-sha256.ko")[..],
                "modhash test rsa2048",
            ),
            (
                include_bytes!("testdata/rsa-keyid.ko"),
                "modhash test rsa2048",
            ),
            (
                include_bytes!("testdata/p256-sha256.ko"),
                "modhash test p256",
            ),
            (
                include_bytes!("testdata/p384-sha384.ko"),
                "modhash test p384",
            ),
            (
                include_bytes!("testdata/p384-sha512.ko"),
                "modhash test p384",
            ),
        ] {
            let signer = verify(&all, module).unwrap();
            assert_eq!(signer.id(), cn);
            assert_eq!(signer.scheme(), Scheme::Linux);
        }
    }

    #[test]
    fn der_certificate_verifies_too() {
        let der = ring(&[include_bytes!("testdata/rsa2048.crt.der")]);
        verify(&der, include_bytes!("testdata/rsa-sha256.ko")).unwrap();
    }

    #[test]
    fn one_changed_byte_breaks_the_signature() {
        for module in [
            &include_bytes!("testdata/rsa-sha256.ko")[..],
            include_bytes!("testdata/p256-sha256.ko"),
        ] {
            let mut changed = module.to_vec();
            changed[100] ^= 1;
            assert!(matches!(
                verify(&ring(&[RSA, P256]), &changed),
                Err(LinuxError::BadSignature { .. })
            ));
        }
    }

    /// Each hostile variant starts from a signature that verifies and
    /// changes one thing the kernel looks at but no signature covers.
    fn patched(module: &[u8], from: &[u8], to: &[u8], nth: usize) -> Vec<u8> {
        let at = module
            .windows(from.len())
            .enumerate()
            .filter(|(_, w)| *w == from)
            .nth(nth)
            .map(|(at, _)| at)
            .expect("pattern present");
        let mut out = module.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    const RSA_SHA256_KO: &[u8] = include_bytes!("testdata/rsa-sha256.ko");
    /// DER of the OIDs patched below (tag, length, value).
    const ID_DATA: &[u8] = &[6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 7, 1];
    const RSA_ENCRYPTION: &[u8] = &[6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1];
    const SHA256: &[u8] = &[6, 9, 0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1];

    #[test]
    fn signed_attributes_are_refused_as_the_kernel_does() {
        assert_eq!(
            verify(
                &ring(&[RSA]),
                include_bytes!("testdata/rsa-sha512-attrs.ko")
            ),
            Err(LinuxError::SignedAttributes)
        );
    }

    #[test]
    fn unsigned_fields_the_kernel_checks_are_checked() {
        let ring = ring(&[RSA]);
        verify(&ring, RSA_SHA256_KO).unwrap();
        // eContentType digestedData (1.2.840.113549.1.7.5) instead of id-data.
        let mut content_type = ID_DATA.to_vec();
        content_type[10] = 5;
        assert_eq!(
            verify(&ring, &patched(RSA_SHA256_KO, ID_DATA, &content_type, 0)),
            Err(LinuxError::ContentType("1.2.840.113549.1.7.5".into()))
        );
        // Signer algorithm sha256WithRSAEncryption instead of rsaEncryption.
        let mut with_rsa = RSA_ENCRYPTION.to_vec();
        with_rsa[10] = 11;
        assert_eq!(
            verify(&ring, &patched(RSA_SHA256_KO, RSA_ENCRYPTION, &with_rsa, 0)),
            Err(LinuxError::Algorithm("1.2.840.113549.1.1.11".into()))
        );
        // digestAlgorithms says SHA-384, the signer SHA-256.
        let mut sha384 = SHA256.to_vec();
        sha384[10] = 2;
        assert_eq!(
            verify(&ring, &patched(RSA_SHA256_KO, SHA256, &sha384, 0)),
            Err(LinuxError::DigestUndeclared(
                "2.16.840.1.101.3.4.2.1".into()
            ))
        );
    }

    #[test]
    fn bytes_after_the_cms_blob_are_refused() {
        let sig_len = RSA_SHA256_KO.len() - 4096 - 40;
        let mut module = RSA_SHA256_KO[..4096 + sig_len].to_vec();
        module.extend_from_slice(b"garbage");
        module.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
        module.extend_from_slice(&((sig_len + 7) as u32).to_be_bytes());
        module.extend_from_slice(linux_trailer::MODULE_SIG_MARKER);
        assert!(matches!(
            verify(&ring(&[RSA]), &module),
            Err(LinuxError::Malformed(_))
        ));
    }

    #[test]
    fn signer_name_and_key_id_lengths_cannot_hide_bytes() {
        // The old reading skipped signer_len + key_id_len bytes between the
        // payload and the signature: covered by nothing.
        let mut module = RSA_SHA256_KO.to_vec();
        let record = module.len() - 40;
        module[record + 3] = 200;
        assert_eq!(
            verify(&ring(&[RSA]), &module),
            Err(LinuxError::Trailer(TrailerError::ModuleSignatureFields(
                "signer_len"
            )))
        );
    }

    #[test]
    fn wrong_certificate_is_an_unknown_signer() {
        let err = verify(
            &ring(&[OTHER, P256]),
            include_bytes!("testdata/rsa-sha256.ko"),
        );
        let Err(LinuxError::UnknownSigner(identity)) = err else {
            panic!("expected UnknownSigner, got {err:?}");
        };
        assert_eq!(identity.issuer.as_deref(), Some("CN=modhash test rsa2048"));
        assert_eq!(
            verify(&Keyring::new(), include_bytes!("testdata/rsa-sha256.ko")),
            Err(LinuxError::NoCertificates)
        );
    }

    #[test]
    fn truncated_and_missing_signatures_are_refused() {
        let module = include_bytes!("testdata/rsa-sha256.ko");
        let (payload, _) = module.split_at(4096);
        assert_eq!(verify(&ring(&[RSA]), payload), Err(LinuxError::NotSigned));
        // Drop 10 bytes of the PKCS#7 and fix up the length.
        let sig_len = module.len() - 4096 - 40;
        let mut short = payload.to_vec();
        short.extend_from_slice(&module[4096..4096 + sig_len - 10]);
        short.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
        short.extend_from_slice(&((sig_len - 10) as u32).to_be_bytes());
        short.extend_from_slice(linux_trailer::MODULE_SIG_MARKER);
        assert!(matches!(
            verify(&ring(&[RSA]), &short),
            Err(LinuxError::Malformed(_))
        ));
        let mut bad_len = module.to_vec();
        let at = bad_len.len() - 32;
        bad_len[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            verify(&ring(&[RSA]), &bad_len),
            Err(LinuxError::Trailer(_))
        ));
    }

    #[test]
    fn signer_identity_names_issuer_and_serial() {
        let id = signer_identity(include_bytes!("testdata/rsa-sha256.ko"))
            .unwrap()
            .unwrap();
        assert_eq!(id.issuer.as_deref(), Some("CN=modhash test rsa2048"));
        assert_eq!(id.digest, "sha256");
        assert_eq!(id.algorithm, "rsaEncryption");
        assert!(id.serial.is_some_and(|s| !s.is_empty()));
        let keyid = signer_identity(include_bytes!("testdata/rsa-keyid.ko"))
            .unwrap()
            .unwrap();
        assert!(keyid.subject_key_id.is_some());
        assert_eq!(signer_identity(b"plain").unwrap(), None);
    }

    #[test]
    fn strip_gives_back_the_signed_payload() {
        let module = include_bytes!("testdata/rsa-sha256.ko");
        assert_eq!(
            strip(module).unwrap(),
            include_bytes!("testdata/module.bin").as_slice()
        );
        assert_eq!(strip(b"plain"), Err(StripError::NotSigned));
    }
}
