//! Native signatures: Ed25519 over a module's digest, in OpenSSH's `sshsig`
//! format.
//!
//! The signed message names the profile and the digest:
//!
//! ```text
//! "modhash signature v1\0" || profile name || "\0" || 32-byte digest
//! ```
//!
//! so a signature can never be replayed for another profile (whose digest of
//! other bytes might collide in meaning) or another purpose. The message is
//! wrapped by `sshsig` under the namespace [`NAMESPACE`], which separates it
//! from every other use of the same key, and the signature file is an
//! armored `-----BEGIN SSH SIGNATURE-----` block that
//! `ssh-keygen -Y check-novalidate -n modhash` verifies too. Keys are OpenSSH
//! `ssh-ed25519` keys; see `docs/signatures.md` for why this format.

use std::path::{Path, PathBuf};

use ssh_key::SshSig;

use super::{Keyring, Scheme, Signer};
use crate::{Digest, Profile};

/// The `sshsig` namespace of every native signature.
pub const NAMESPACE: &str = "modhash";

/// The first bytes of every signed message: the format and its version.
pub const MESSAGE_PREFIX: &[u8] = b"modhash signature v1\0";

/// A sidecar signature is `<module>.modsig`; a signtab entry is
/// `<dir>/<hex digest>.modsig`.
pub const EXTENSION: &str = "modsig";

/// The message a native signature covers.
pub fn message(profile: Profile, digest: &Digest) -> Vec<u8> {
    let name = profile.name().as_bytes();
    let mut message = Vec::with_capacity(MESSAGE_PREFIX.len() + name.len() + 1 + 32);
    message.extend_from_slice(MESSAGE_PREFIX);
    message.extend_from_slice(name);
    message.push(0);
    message.extend_from_slice(digest.as_bytes());
    message
}

/// Where a signtab directory holds the signature of the module with
/// `digest`.
pub fn signtab_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(format!("{digest}.{EXTENSION}"))
}

/// Why a native signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NativeError {
    /// Not an armored `sshsig` signature.
    #[error("not an SSH signature (-----BEGIN SSH SIGNATURE-----): {0}; re-create it with `modhash sign`")]
    Malformed(String),
    /// Made for another purpose than modhash.
    #[error("SSH signature namespace is `{0}`, not `modhash`; it was made for another purpose")]
    Namespace(String),
    /// The `reserved` field is not empty. OpenSSH verifies every signature
    /// as if it were empty, so a non-empty one is either covered by the
    /// signature (OpenSSH refuses it) or not (its bytes are unsigned).
    #[error("SSH signature has a non-empty reserved field, which OpenSSH never signs; re-create it with `modhash sign` or `ssh-keygen -Y sign`")]
    Reserved,
    /// Made by a key that is not in the ring.
    #[error("signed by key {0}, which is not in the key ring; add its .pub file with --keys")]
    UnknownKey(String),
    /// The module has no digest under any profile (cannot happen for
    /// `file`, kept for callers that restrict profiles).
    #[error("the module has no digest to check the signature against")]
    NoDigest,
    /// The signature does not cover this module.
    #[error("signature by {key} does not match this module under profile {profiles}: the module changed after signing, or the signature is for another module")]
    BadSignature {
        /// The signing key's fingerprint.
        key: String,
        /// The profiles tried, comma-separated.
        profiles: String,
    },
}

/// Verifies an armored native signature over one of `candidates` (profile
/// and the module's digest under it) with a key of `ring`.
pub(crate) fn verify(
    ring: &Keyring,
    signature: &[u8],
    candidates: &[(Profile, Digest)],
) -> Result<Signer, NativeError> {
    let signature =
        SshSig::from_pem(signature).map_err(|e| NativeError::Malformed(e.to_string()))?;
    if signature.namespace() != NAMESPACE {
        return Err(NativeError::Namespace(signature.namespace().to_owned()));
    }
    // ssh-key puts the blob's reserved field into the signed data; OpenSSH
    // puts an empty one. Only with it empty do the two verify alike.
    if !signature.reserved().is_empty() {
        return Err(NativeError::Reserved);
    }
    let key = ring
        .ssh
        .iter()
        .find(|key| key.key_data() == signature.public_key())
        .ok_or_else(|| {
            NativeError::UnknownKey(
                signature
                    .public_key()
                    .fingerprint(ssh_key::HashAlg::Sha256)
                    .to_string(),
            )
        })?;
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    if candidates.is_empty() {
        return Err(NativeError::NoDigest);
    }
    for &(profile, digest) in candidates {
        if key
            .verify(NAMESPACE, &message(profile, &digest), &signature)
            .is_ok()
        {
            return Ok(Signer::new(Scheme::Native, fingerprint, Some(profile)));
        }
    }
    Err(NativeError::BadSignature {
        key: fingerprint,
        profiles: candidates
            .iter()
            .map(|(p, _)| p.name())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(feature = "sign")]
pub use signing::{SignError, SigningKey};

#[cfg(feature = "sign")]
mod signing {
    use std::ops::Deref;

    use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

    use super::{message, NAMESPACE};
    use crate::{Digest, Profile};

    /// Why a key could not be made, read or used.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum SignError {
        /// Not an OpenSSH private key.
        #[error("not an OpenSSH private key: {0}; make one with `modhash keygen`")]
        Malformed(String),
        /// Passphrase-protected.
        #[error("the key is passphrase-protected, which modhash does not read; sign with `ssh-keygen -Y sign -n modhash` instead")]
        Encrypted,
        /// Not Ed25519.
        #[error("{0} keys are not supported; native signatures use Ed25519 (make one with `modhash keygen`)")]
        Algorithm(String),
        /// The key library failed.
        #[error("{0}")]
        Key(String),
    }

    /// An Ed25519 secret key, in OpenSSH's private key format.
    #[derive(Debug, Clone)]
    pub struct SigningKey {
        key: PrivateKey,
    }

    impl SigningKey {
        /// A fresh key from the operating system's random number generator.
        pub fn generate(comment: &str) -> Result<Self, SignError> {
            let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
                .map_err(|e| SignError::Key(e.to_string()))?;
            key.set_comment(comment);
            Ok(Self { key })
        }

        /// Reads an unencrypted OpenSSH Ed25519 private key.
        pub fn from_openssh(text: &[u8]) -> Result<Self, SignError> {
            let key =
                PrivateKey::from_openssh(text).map_err(|e| SignError::Malformed(e.to_string()))?;
            if key.is_encrypted() {
                return Err(SignError::Encrypted);
            }
            if key.algorithm() != Algorithm::Ed25519 {
                return Err(SignError::Algorithm(key.algorithm().to_string()));
            }
            Ok(Self { key })
        }

        /// The private key file's contents, zeroed when dropped.
        pub fn to_openssh(&self) -> Result<impl Deref<Target = String>, SignError> {
            self.key
                .to_openssh(LineEnding::LF)
                .map_err(|e| SignError::Key(e.to_string()))
        }

        /// The public key file's line (`ssh-ed25519 AAAA… comment`).
        pub fn public_openssh(&self) -> Result<String, SignError> {
            self.key
                .public_key()
                .to_openssh()
                .map_err(|e| SignError::Key(e.to_string()))
        }

        /// The key's id, `SHA256:…`, as `ssh-keygen -l` prints it.
        pub fn fingerprint(&self) -> String {
            self.key.fingerprint(HashAlg::Sha256).to_string()
        }

        /// The armored signature of the module whose digest under
        /// `profile` is `digest`.
        pub fn sign(&self, profile: Profile, digest: &Digest) -> Result<String, SignError> {
            self.key
                .sign(NAMESPACE, HashAlg::Sha512, &message(profile, digest))
                .and_then(|sig| sig.to_pem(LineEnding::LF))
                .map_err(|e| SignError::Key(e.to_string()))
        }
    }
}

#[cfg(all(test, feature = "sign"))]
mod tests {
    use super::*;

    fn ring_of(key: &SigningKey) -> Keyring {
        let public = key.public_openssh().expect("public key encodes");
        Keyring::from_files(&[public.as_bytes()]).expect("own key parses")
    }

    #[test]
    fn message_is_domain_separated_and_names_the_profile() {
        let d = Digest::sha256(b"m");
        let m = message(Profile::ElfImage, &d);
        assert!(m.starts_with(b"modhash signature v1\0elf-image\0"));
        assert!(m.ends_with(d.as_bytes()));
        assert_ne!(m, message(Profile::File, &d));
    }

    #[test]
    fn signature_verifies_for_its_digest_and_profile_only() {
        let key = SigningKey::generate("test").unwrap();
        let ring = ring_of(&key);
        let d = Digest::sha256(b"module");
        let sig = key.sign(Profile::Payload, &d).unwrap();
        let signer = verify(&ring, sig.as_bytes(), &[(Profile::Payload, d)]).unwrap();
        assert_eq!(signer.id(), key.fingerprint());
        assert_eq!(signer.profile(), Some(Profile::Payload));
        // Same digest, other profile: the message differs.
        assert!(matches!(
            verify(&ring, sig.as_bytes(), &[(Profile::File, d)]),
            Err(NativeError::BadSignature { .. })
        ));
        // Other module.
        assert!(matches!(
            verify(
                &ring,
                sig.as_bytes(),
                &[(Profile::Payload, Digest::sha256(b"other"))]
            ),
            Err(NativeError::BadSignature { .. })
        ));
    }

    #[test]
    fn wrong_key_and_truncated_signature_are_refused() {
        let key = SigningKey::generate("a").unwrap();
        let other = SigningKey::generate("b").unwrap();
        let d = Digest::sha256(b"module");
        let sig = key.sign(Profile::File, &d).unwrap();
        assert_eq!(
            verify(&ring_of(&other), sig.as_bytes(), &[(Profile::File, d)]),
            Err(NativeError::UnknownKey(key.fingerprint()))
        );
        let truncated = &sig.as_bytes()[..sig.len() / 2];
        assert!(matches!(
            verify(&ring_of(&key), truncated, &[(Profile::File, d)]),
            Err(NativeError::Malformed(_))
        ));
    }

    #[test]
    fn private_key_round_trips() {
        let key = SigningKey::generate("c").unwrap();
        let text = key.to_openssh().unwrap();
        let again = SigningKey::from_openssh(text.as_bytes()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
    }
}
