//! The trust decision: is a module trusted by hash, and if not, why not.
//!
//! Trust can come only from what was compiled into the host: the anchor's
//! root (and keys). The manifest and proofs are read at run time but are
//! authenticated by the anchor, so editing them can only lose trust, never
//! add it.
//!
//! Decision table (hash part):
//!
//! | anchor   | evidence                    | digest          | verdict |
//! |----------|-----------------------------|-----------------|---------|
//! | unsealed | any                         | any             | untrusted: host unsealed |
//! | invalid  | any                         | any             | untrusted: host anchor invalid |
//! | sealed   | none                        | any             | untrusted: no manifest or proof |
//! | sealed   | manifest, other root/profile| any             | untrusted: manifest does not match anchor |
//! | sealed   | manifest matching           | not listed      | untrusted: not in manifest |
//! | sealed   | manifest matching           | listed          | trusted by hash |
//! | sealed   | proof, other profile        | any             | untrusted: profile mismatch |
//! | sealed   | proof                       | ≠ proof digest  | untrusted: proof is for another module |
//! | sealed   | proof to another root/size  | = proof digest  | untrusted: proof does not lead to the anchor |
//! | sealed   | proof to the anchored root  | = proof digest  | trusted by hash |
//!
//! With both a manifest and a proof, either one that trusts the module is
//! enough; when neither does, the proof's reason is reported.
//!
//! Decision table (hash or signature), [`Policy::decide_module`]: a module
//! with a known hash *or* a valid signature is trusted, as Linux does with
//! `CONFIG_MODULE_SIG` and module hashes together. The hash part is the
//! table above; the signature part is [`crate::signature::Keyring::check`]
//! (appended Linux signature, `.sign`, `.modsig`, signtab entry).
//!
//! | hash part          | keys given | a signature verifies | verdict |
//! |--------------------|------------|----------------------|---------|
//! | trusted            | any        | not checked          | trusted-by-hash |
//! | untrusted (H)      | no         | —                    | untrusted: H |
//! | untrusted (H)      | yes        | yes                  | `trusted-by-signature <key id>` |
//! | untrusted (H)      | yes        | no (reasons S)       | untrusted: H; S |
//! | not asked (no host)| yes        | yes                  | `trusted-by-signature <key id>` |
//! | not asked (no host)| yes        | no (reasons S)       | untrusted: S |
//!
//! The key id is the Ed25519 or SubjectPublicKeyInfo fingerprint
//! (`SHA256:…`) or, for a Linux signature, the certificate's subject common
//! name. A signature never vouches for other bytes than it covers: a wrong
//! key, a signature of another module, a truncated signature, or a libcamera
//! `.sign` of the unstripped file for a stripped module are each a reason in
//! S. Native signatures cover the `elf-image` digest and so survive strip.
//!
//! A module that cannot be read, or whose bytes have no digest under the
//! anchored profile (not ELF, truncated), is untrusted with that reason.

use std::fmt;

use crate::anchor::Anchor;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::profile::{Profile, ProfileError};
use crate::proof::InclusionProof;
use crate::signature::Keyring;

pub mod kernel;

/// What authenticates a module's digest against the anchor.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HashEvidence {
    /// No manifest or proof: nothing is trusted by hash.
    None,
    /// The build's manifest.
    Manifest(Manifest),
}

/// The verdict on one module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Verdict {
    /// Its digest is anchored in the host.
    TrustedByHash,
    /// A signature by a key compiled into the host verifies.
    TrustedBySignature {
        /// Which key: its id or certificate subject.
        key: String,
    },
    /// Neither; every reason found.
    Untrusted {
        /// Why, in the order checked.
        reasons: Vec<UntrustedReason>,
    },
}

impl Verdict {
    /// Whether the module may run in-process.
    pub fn is_trusted(&self) -> bool {
        !matches!(self, Verdict::Untrusted { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::TrustedByHash => f.write_str("trusted-by-hash"),
            Verdict::TrustedBySignature { key } => write!(f, "trusted-by-signature {key}"),
            Verdict::Untrusted { reasons } => {
                f.write_str("untrusted: ")?;
                for (i, reason) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{reason}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a module is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UntrustedReason {
    /// The host's anchor is the placeholder.
    #[error("host unsealed (run `modhash seal HOST --manifest M` at build time)")]
    HostUnsealed,
    /// The host's anchor record is corrupt.
    #[error("host anchor invalid ({0})")]
    HostAnchorInvalid(String),
    /// No manifest or proof was given.
    #[error("no manifest or proof to check the digest against")]
    NoHashEvidence,
    /// The manifest's root, size or profile is not the anchored one.
    #[error("manifest does not match the host's anchor (manifest root {manifest_root}, profile {manifest_profile})")]
    ManifestNotAnchored {
        /// The manifest's root.
        manifest_root: Digest,
        /// The manifest's profile.
        manifest_profile: Profile,
    },
    /// The digest is not listed.
    #[error("not in manifest (digest {0})")]
    NotInManifest(Digest),
    /// A proof under another profile than the anchor's.
    #[error("profile mismatch: proof is for {proof}, host anchors {anchor}")]
    ProfileMismatch {
        /// The proof's profile.
        proof: Profile,
        /// The anchored profile.
        anchor: Profile,
    },
    /// The proof's digest is not the module's.
    #[error("proof is for another module (proof digest {proof}, module digest {module})")]
    ProofForAnotherModule {
        /// Digest in the proof.
        proof: Digest,
        /// Digest of the module.
        module: Digest,
    },
    /// The proof does not lead to the anchored root.
    #[error("proof does not lead to the host's anchored root")]
    ProofNotAnchored,
    /// Signatures were checked and none verified (one reason per signature,
    /// or that there is none).
    #[error("{0}")]
    Signature(String),
    /// The module file could not be read.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// A Linux module hash proof is missing, malformed or does not lead to
    /// the kernel image's root ([`kernel::KernelPolicy`]).
    #[error("{0}")]
    ModuleHashes(String),
    /// The module's bytes have no digest under the anchored profile.
    #[error("no {profile} digest: {error}")]
    NoDigest {
        /// The anchored profile.
        profile: Profile,
        /// Why the bytes have no digest under it.
        error: String,
    },
}

/// Anchor plus run-time evidence: everything needed to decide.
#[derive(Debug, Clone)]
pub struct Policy {
    anchor: Anchor,
    evidence: HashEvidence,
    /// Whether the hash part is asked at all (not for a keys-only policy).
    hash: bool,
    signatures: Option<SignatureTrust>,
}

/// The signature side of a policy: the keys compiled into the host and
/// where else to look for native signatures.
#[derive(Debug, Clone)]
pub struct SignatureTrust {
    /// The keys whose signatures are trusted.
    pub keyring: Keyring,
    /// A signtab directory (`<hex digest>.modsig` files), if any.
    pub signtab: Option<std::path::PathBuf>,
}

impl Policy {
    /// A policy trusting by hash what `evidence` shows is under `anchor`.
    pub fn new(anchor: Anchor, evidence: HashEvidence) -> Self {
        Self {
            anchor,
            evidence,
            hash: true,
            signatures: None,
        }
    }

    /// A policy that trusts by signature only: no host, no hashes.
    pub fn signatures_only(signatures: SignatureTrust) -> Self {
        Self {
            anchor: Anchor::Unsealed,
            evidence: HashEvidence::None,
            hash: false,
            signatures: Some(signatures),
        }
    }

    /// This policy, also trusting modules signed by a key of `signatures`
    /// when their hash is not anchored.
    pub fn with_signatures(mut self, signatures: SignatureTrust) -> Self {
        self.signatures = Some(signatures);
        self
    }

    /// Decides on the module at `path` from its whole file `bytes` (read
    /// once by the caller), a proof that travels with it, and its
    /// signatures: the full table in the module documentation. `path` only
    /// locates signature files (`.sign`, `.modsig`), which need no
    /// protection.
    pub fn decide_module(
        &self,
        path: &std::path::Path,
        bytes: &[u8],
        proof: Option<&InclusionProof>,
    ) -> Verdict {
        self.decide_with(path, bytes, || self.profile().digest(bytes), proof)
    }

    /// [`Policy::decide_module`] with the digest under [`Policy::profile`]
    /// already computed: the loader hashes the sealed bytes it will map,
    /// and must decide on exactly those.
    pub fn decide_module_digest(
        &self,
        path: &std::path::Path,
        bytes: &[u8],
        digest: Digest,
        proof: Option<&InclusionProof>,
    ) -> Verdict {
        self.decide_with(path, bytes, || Ok(digest), proof)
    }

    fn decide_with(
        &self,
        path: &std::path::Path,
        bytes: &[u8],
        digest: impl FnOnce() -> Result<Digest, ProfileError>,
        proof: Option<&InclusionProof>,
    ) -> Verdict {
        let mut reasons = Vec::new();
        if self.hash {
            match self.hash_trust(digest(), proof) {
                Ok(()) => return Verdict::TrustedByHash,
                Err(reason) => reasons.push(reason),
            }
        }
        if let Some(trust) = &self.signatures {
            match trust.keyring.check(path, bytes, trust.signtab.as_deref()) {
                Ok(signer) => {
                    return Verdict::TrustedBySignature {
                        key: signer.id().to_owned(),
                    }
                }
                Err(rejections) => reasons.extend(
                    rejections
                        .0
                        .iter()
                        .map(|r| UntrustedReason::Signature(r.to_string())),
                ),
            }
        }
        Verdict::Untrusted { reasons }
    }

    /// The host's anchor.
    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// The profile modules are hashed under: the anchored one, or `payload`
    /// for an unsealed host (whose hashes trust nothing anyway).
    pub fn profile(&self) -> Profile {
        self.anchor.profile().unwrap_or(Profile::Payload)
    }

    fn hash_trust(
        &self,
        digest: Result<Digest, ProfileError>,
        proof: Option<&InclusionProof>,
    ) -> Result<(), UntrustedReason> {
        let (profile, count, root) = match &self.anchor {
            Anchor::Unsealed => return Err(UntrustedReason::HostUnsealed),
            Anchor::Invalid(e) => return Err(UntrustedReason::HostAnchorInvalid(e.to_string())),
            Anchor::Sealed {
                profile,
                count,
                root,
            } => (*profile, *count, *root),
        };
        let digest = digest.map_err(|e| UntrustedReason::NoDigest {
            profile,
            error: e.to_string(),
        })?;
        let by_manifest = match &self.evidence {
            HashEvidence::None => Err(UntrustedReason::NoHashEvidence),
            HashEvidence::Manifest(manifest) if !self.anchor.anchors(manifest) => {
                Err(UntrustedReason::ManifestNotAnchored {
                    manifest_root: manifest.root(),
                    manifest_profile: manifest.profile(),
                })
            }
            HashEvidence::Manifest(manifest) if manifest.contains(&digest) => Ok(()),
            HashEvidence::Manifest(_) => Err(UntrustedReason::NotInManifest(digest)),
        };
        // Either evidence suffices: a module the manifest lists is trusted
        // whatever a stale proof beside it says, and the proof's own
        // reason is the one reported when both fail.
        let (Err(_), Some(proof)) = (&by_manifest, proof) else {
            return by_manifest;
        };
        if proof.profile != profile {
            return Err(UntrustedReason::ProfileMismatch {
                proof: proof.profile,
                anchor: profile,
            });
        }
        if proof.digest != digest {
            return Err(UntrustedReason::ProofForAnotherModule {
                proof: proof.digest,
                module: digest,
            });
        }
        if proof.tree_size != count || proof.root() != Some(root) {
            return Err(UntrustedReason::ProofNotAnchored);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(profile: Profile) -> Manifest {
        Manifest::new(
            profile,
            [
                ("a".to_owned(), Digest::sha256(b"module a")),
                ("b".to_owned(), Digest::sha256(b"module b")),
            ],
        )
        .unwrap()
    }

    fn sealed(m: &Manifest) -> Anchor {
        Anchor::parse(&Anchor::sealed_record(m)).unwrap()
    }

    /// The verdict of a policy without keys, for a module with no
    /// signature files beside it.
    fn hash_only(policy: &Policy, bytes: &[u8], proof: Option<&InclusionProof>) -> Verdict {
        policy.decide_module(std::path::Path::new("/nonexistent/module"), bytes, proof)
    }

    fn reasons(v: Verdict) -> Vec<UntrustedReason> {
        match v {
            Verdict::Untrusted { reasons } => reasons,
            other => panic!("expected untrusted, got {other}"),
        }
    }

    #[test]
    fn listed_module_under_matching_manifest_is_trusted() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(m));
        assert_eq!(
            hash_only(&policy, b"module a", None),
            Verdict::TrustedByHash
        );
    }

    #[test]
    fn unlisted_module_is_not_in_manifest() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(m));
        assert!(matches!(
            reasons(hash_only(&policy, b"module c", None))[..],
            [UntrustedReason::NotInManifest(_)]
        ));
    }

    #[test]
    fn unsealed_host_trusts_nothing() {
        let m = manifest(Profile::File);
        let policy = Policy::new(Anchor::Unsealed, HashEvidence::Manifest(m));
        assert_eq!(
            reasons(hash_only(&policy, b"module a", None)),
            [UntrustedReason::HostUnsealed]
        );
    }

    #[test]
    fn a_different_manifest_adds_no_trust() {
        let anchored = manifest(Profile::File);
        let evil =
            Manifest::new(Profile::File, [("x".to_owned(), Digest::sha256(b"evil"))]).unwrap();
        let policy = Policy::new(sealed(&anchored), HashEvidence::Manifest(evil));
        assert!(matches!(
            reasons(hash_only(&policy, b"evil", None))[..],
            [UntrustedReason::ManifestNotAnchored { .. }]
        ));
    }

    #[test]
    fn same_root_other_profile_is_not_anchored() {
        let m = manifest(Profile::File);
        let other = manifest(Profile::Payload);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(other));
        assert!(matches!(
            reasons(hash_only(&policy, b"module a", None))[..],
            [UntrustedReason::ManifestNotAnchored { .. }]
        ));
    }

    #[test]
    fn no_evidence_trusts_nothing() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::None);
        assert_eq!(
            reasons(hash_only(&policy, b"module a", None)),
            [UntrustedReason::NoHashEvidence]
        );
    }

    #[test]
    fn with_a_manifest_and_a_proof_either_one_suffices() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(m.clone()));
        let proof_b = InclusionProof::for_digest(&m, Digest::sha256(b"module b")).unwrap();
        // Listed in the manifest; the proof beside it is another module's.
        assert_eq!(
            hash_only(&policy, b"module a", Some(&proof_b)),
            Verdict::TrustedByHash
        );
        // Listed nowhere: the proof's reason is reported.
        assert!(matches!(
            reasons(hash_only(&policy, b"module c", Some(&proof_b)))[..],
            [UntrustedReason::ProofForAnotherModule { .. }]
        ));
        // A stale manifest, a good proof.
        let stale = manifest(Profile::Payload);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(stale));
        assert_eq!(
            hash_only(&policy, b"module b", Some(&proof_b)),
            Verdict::TrustedByHash
        );
    }

    #[test]
    fn proofs_are_checked_against_the_anchor() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::None);
        let proof = InclusionProof::for_digest(&m, Digest::sha256(b"module a")).unwrap();
        assert_eq!(
            hash_only(&policy, b"module a", Some(&proof)),
            Verdict::TrustedByHash
        );
        assert!(matches!(
            reasons(hash_only(&policy, b"module b", Some(&proof)))[..],
            [UntrustedReason::ProofForAnotherModule { .. }]
        ));
        let other = manifest(Profile::Payload);
        let foreign_root = Manifest::new(
            Profile::File,
            [("a".to_owned(), Digest::sha256(b"module a"))],
        )
        .unwrap();
        let proof_elsewhere =
            InclusionProof::for_digest(&foreign_root, Digest::sha256(b"module a")).unwrap();
        assert_eq!(
            reasons(hash_only(&policy, b"module a", Some(&proof_elsewhere))),
            [UntrustedReason::ProofNotAnchored]
        );
        let other_profile =
            InclusionProof::for_digest(&other, Digest::sha256(b"module a")).unwrap();
        assert!(matches!(
            reasons(hash_only(&policy, b"module a", Some(&other_profile)))[..],
            [UntrustedReason::ProfileMismatch { .. }]
        ));
    }

    #[test]
    fn undigestible_module_has_no_digest() {
        let m = manifest(Profile::ElfImage);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(m));
        assert!(matches!(
            reasons(hash_only(&policy, b"not elf", None))[..],
            [UntrustedReason::NoDigest { .. }]
        ));
    }
}

/// The hash-or-signature table, row by row, with the signature cases the
/// table's notes name.
#[cfg(test)]
mod signature_tests {
    use std::path::{Path, PathBuf};

    use super::*;

    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/signature/testdata");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(TESTDATA).join(name)).expect("fixture exists")
    }

    fn keys(files: &[&str]) -> SignatureTrust {
        let files: Vec<Vec<u8>> = files.iter().map(|f| fixture(f)).collect();
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        SignatureTrust {
            keyring: Keyring::from_files(&refs).expect("test keys parse"),
            signtab: None,
        }
    }

    /// A directory holding `files` (name, bytes).
    fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).expect("write fixture");
        }
        dir
    }

    /// A sealed policy whose manifest lists only `listed`.
    fn hash_policy(listed: &[u8]) -> Policy {
        let m = Manifest::new(Profile::File, [("m".to_owned(), Digest::sha256(listed))])
            .expect("manifest");
        let anchor = Anchor::parse(&Anchor::sealed_record(&m)).expect("anchor");
        Policy::new(anchor, HashEvidence::Manifest(m))
    }

    fn decide(policy: &Policy, dir: &Path, name: &str) -> Verdict {
        let path: PathBuf = dir.join(name);
        let bytes = std::fs::read(&path).expect("module exists");
        policy.decide_module(&path, &bytes, None)
    }

    fn reasons(v: Verdict) -> Vec<UntrustedReason> {
        match v {
            Verdict::Untrusted { reasons } => reasons,
            other => panic!("expected untrusted, got {other}"),
        }
    }

    fn signature_reasons(v: Verdict) -> Vec<String> {
        reasons(v)
            .into_iter()
            .filter_map(|r| match r {
                UntrustedReason::Signature(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    const RSA_SUBJECT: &str = "modhash test rsa2048";

    #[test]
    fn anchored_hash_wins_without_looking_at_signatures() {
        let ko = fixture("rsa-sha256.ko");
        let dir = dir_with(&[("x.ko", &ko)]);
        // The key ring cannot verify this signature, yet the hash decides.
        let policy = hash_policy(&ko).with_signatures(keys(&["p256.crt.pem"]));
        assert_eq!(decide(&policy, dir.path(), "x.ko"), Verdict::TrustedByHash);
    }

    #[test]
    fn unanchored_without_keys_gives_the_hash_reasons_only() {
        let dir = dir_with(&[("x.ko", &fixture("rsa-sha256.ko"))]);
        let policy = hash_policy(b"another module");
        assert!(matches!(
            reasons(decide(&policy, dir.path(), "x.ko"))[..],
            [UntrustedReason::NotInManifest(_)]
        ));
    }

    #[test]
    fn unanchored_with_a_valid_signature_is_trusted_by_signature() {
        let dir = dir_with(&[("x.ko", &fixture("rsa-sha256.ko"))]);
        let policy = hash_policy(b"another module").with_signatures(keys(&["rsa2048.crt.pem"]));
        assert_eq!(
            decide(&policy, dir.path(), "x.ko"),
            Verdict::TrustedBySignature {
                key: RSA_SUBJECT.to_owned()
            }
        );
    }

    #[test]
    fn unanchored_with_no_valid_signature_lists_every_reason() {
        let dir = dir_with(&[("x.ko", &fixture("rsa-sha256.ko"))]);
        let policy =
            hash_policy(b"another module").with_signatures(keys(&["other-rsa2048.crt.pem"]));
        let all = reasons(decide(&policy, dir.path(), "x.ko"));
        assert!(matches!(all[0], UntrustedReason::NotInManifest(_)));
        assert!(
            matches!(&all[1], UntrustedReason::Signature(s) if s.contains("matches no certificate"))
        );
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn keys_only_policy_asks_no_hash() {
        let ko = fixture("rsa-sha256.ko");
        let dir = dir_with(&[("x.ko", &ko), ("plain.bin", b"unsigned")]);
        let policy = Policy::signatures_only(keys(&["rsa2048.crt.pem"]));
        assert_eq!(
            decide(&policy, dir.path(), "x.ko"),
            Verdict::TrustedBySignature {
                key: RSA_SUBJECT.to_owned()
            }
        );
        let only = reasons(decide(&policy, dir.path(), "plain.bin"));
        assert_eq!(only.len(), 1);
        assert!(matches!(&only[0], UntrustedReason::Signature(s) if s.starts_with("no signature")));
    }

    #[test]
    fn wrong_key_is_untrusted() {
        let dir = dir_with(&[
            ("m.bin", &fixture("module.bin")),
            ("m.bin.sign", &fixture("module.bin.sign")),
        ]);
        let policy = Policy::signatures_only(keys(&["other-rsa2048.pub.der"]));
        let why = signature_reasons(decide(&policy, dir.path(), "m.bin"));
        assert!(
            why[0].contains("does not verify with any of the 1 RSA key"),
            "{why:?}"
        );
        let policy = Policy::signatures_only(keys(&["p256.crt.pem"]));
        let why = signature_reasons(decide(&policy, dir.path(), "m.bin"));
        assert!(why[0].contains("no RSA public key"), "{why:?}");
    }

    #[test]
    fn signature_of_another_module_is_untrusted() {
        let dir = dir_with(&[
            ("m.bin", b"some other module"),
            ("m.bin.sign", &fixture("module.bin.sign")),
        ]);
        let policy = Policy::signatures_only(keys(&["rsa2048.pub.der"]));
        let why = signature_reasons(decide(&policy, dir.path(), "m.bin"));
        assert!(why[0].contains("does not verify"), "{why:?}");
    }

    #[test]
    fn truncated_signature_is_untrusted() {
        let sign = fixture("module.bin.sign");
        let dir = dir_with(&[
            ("m.bin", &fixture("module.bin")),
            ("m.bin.sign", &sign[..sign.len() - 3]),
        ]);
        let policy = Policy::signatures_only(keys(&["rsa2048.pub.der"]));
        assert!(!decide(&policy, dir.path(), "m.bin").is_trusted());
        assert_eq!(
            decide(
                &Policy::signatures_only(keys(&["rsa2048.pub.der"])),
                dir_with(&[("m.bin", &fixture("module.bin")), ("m.bin.sign", &sign)]).path(),
                "m.bin"
            ),
            Verdict::TrustedBySignature {
                key: crate::signature::spki_key_id(&fixture("rsa2048.pub.der"))
            }
        );
    }

    #[test]
    fn libcamera_signature_of_the_unstripped_file_does_not_cover_the_stripped_one() {
        let sign = fixture("tiny.so.sign");
        let dir = dir_with(&[
            ("tiny.so", &fixture("tiny.so")),
            ("tiny.so.sign", &sign),
            ("stripped.so", &fixture("tiny-strip-all.so")),
            ("stripped.so.sign", &sign),
        ]);
        let policy = Policy::signatures_only(keys(&["rsa2048.pub.der"]));
        assert!(decide(&policy, dir.path(), "tiny.so").is_trusted());
        assert!(!decide(&policy, dir.path(), "stripped.so").is_trusted());
    }

    #[test]
    fn stripping_the_linux_signature_leaves_no_signature() {
        let ko = fixture("rsa-sha256.ko");
        let stripped = crate::signature::linux::strip(&ko).expect("signed");
        let dir = dir_with(&[("x.ko", stripped)]);
        let policy = Policy::signatures_only(keys(&["rsa2048.crt.pem"]));
        let why = signature_reasons(decide(&policy, dir.path(), "x.ko"));
        assert!(why[0].starts_with("no signature"), "{why:?}");
    }

    #[cfg(feature = "sign")]
    mod native {
        use super::*;
        use crate::signature::native::{signtab_path, SigningKey};

        fn native_keys(key: &SigningKey, signtab: Option<PathBuf>) -> SignatureTrust {
            let public = key.public_openssh().expect("public key");
            SignatureTrust {
                keyring: Keyring::from_files(&[public.as_bytes()]).expect("key parses"),
                signtab,
            }
        }

        #[test]
        fn elf_image_signature_survives_strip() {
            let key = SigningKey::generate("t").expect("key");
            let tiny = fixture("tiny.so");
            let digest = Profile::ElfImage.digest(&tiny).expect("elf");
            let sig = key.sign(Profile::ElfImage, &digest).expect("sign");
            let dir = dir_with(&[
                ("tiny.so", &tiny),
                ("tiny.so.modsig", sig.as_bytes()),
                ("stripped.so", &fixture("tiny-strip-all.so")),
                ("stripped.so.modsig", sig.as_bytes()),
            ]);
            let policy = Policy::signatures_only(native_keys(&key, None));
            let expected = Verdict::TrustedBySignature {
                key: key.fingerprint(),
            };
            assert_eq!(decide(&policy, dir.path(), "tiny.so"), expected);
            assert_eq!(decide(&policy, dir.path(), "stripped.so"), expected);
        }

        #[test]
        fn file_profile_signature_does_not_survive_strip() {
            let key = SigningKey::generate("t").expect("key");
            let tiny = fixture("tiny.so");
            let sig = key
                .sign(Profile::File, &Digest::sha256(&tiny))
                .expect("sign");
            let dir = dir_with(&[
                ("stripped.so", &fixture("tiny-strip-all.so")),
                ("stripped.so.modsig", sig.as_bytes()),
            ]);
            let policy = Policy::signatures_only(native_keys(&key, None));
            let why = signature_reasons(decide(&policy, dir.path(), "stripped.so"));
            assert!(why[0].contains("does not match this module"), "{why:?}");
        }

        #[test]
        fn signtab_entry_is_found_by_digest() {
            let key = SigningKey::generate("t").expect("key");
            let other = SigningKey::generate("other").expect("key");
            let tiny = fixture("tiny.so");
            let digest = Profile::ElfImage.digest(&tiny).expect("elf");
            let modules = dir_with(&[("tiny.so", &tiny)]);
            let signtab = tempfile::tempdir().expect("temp dir");
            std::fs::write(
                signtab_path(signtab.path(), &digest),
                key.sign(Profile::ElfImage, &digest).expect("sign"),
            )
            .expect("write");
            let policy =
                Policy::signatures_only(native_keys(&key, Some(signtab.path().to_owned())));
            assert!(decide(&policy, modules.path(), "tiny.so").is_trusted());
            // The same entry, checked against another key: untrusted.
            let policy =
                Policy::signatures_only(native_keys(&other, Some(signtab.path().to_owned())));
            let why = signature_reasons(decide(&policy, modules.path(), "tiny.so"));
            assert!(why[0].contains("not in the key ring"), "{why:?}");
        }
    }
}
