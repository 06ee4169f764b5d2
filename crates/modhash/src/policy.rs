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
//! A module whose bytes cannot be digested under the anchored profile (not
//! ELF, truncated, unreadable) is untrusted with that reason.

use std::fmt;

use crate::anchor::Anchor;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::profile::{Profile, ProfileError};
use crate::proof::InclusionProof;

/// What authenticates a module's digest against the anchor.
#[derive(Debug, Clone)]
pub enum HashEvidence {
    /// No manifest or proof: nothing is trusted by hash.
    None,
    /// The build's manifest.
    Manifest(Manifest),
}

/// The verdict on one module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
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
    /// The module's bytes have no digest under the anchored profile.
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// Anchor plus run-time evidence: everything needed to decide.
#[derive(Debug, Clone)]
pub struct Policy {
    anchor: Anchor,
    evidence: HashEvidence,
}

impl Policy {
    /// A policy trusting by hash what `evidence` shows is under `anchor`.
    pub fn new(anchor: Anchor, evidence: HashEvidence) -> Self {
        Self { anchor, evidence }
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

    /// Decides on a module from its whole file `bytes`, and optionally a
    /// proof that travels with it.
    pub fn decide(&self, bytes: &[u8], proof: Option<&InclusionProof>) -> Verdict {
        self.decide_digest(self.profile().digest(bytes), proof)
    }

    /// Decides from a digest already computed under [`Policy::profile`]
    /// (the loader hashes the sealed bytes it will map).
    pub fn decide_digest(
        &self,
        digest: Result<Digest, ProfileError>,
        proof: Option<&InclusionProof>,
    ) -> Verdict {
        match self.hash_trust(digest, proof) {
            Ok(()) => Verdict::TrustedByHash,
            Err(reason) => Verdict::Untrusted {
                reasons: vec![reason],
            },
        }
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
        let digest = digest.map_err(|e| UntrustedReason::Unreadable(e.to_string()))?;
        if let Some(proof) = proof {
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
            return Ok(());
        }
        match &self.evidence {
            HashEvidence::None => Err(UntrustedReason::NoHashEvidence),
            HashEvidence::Manifest(manifest) if !self.anchor.anchors(manifest) => {
                Err(UntrustedReason::ManifestNotAnchored {
                    manifest_root: manifest.root(),
                    manifest_profile: manifest.profile(),
                })
            }
            HashEvidence::Manifest(manifest) if manifest.contains(&digest) => Ok(()),
            HashEvidence::Manifest(_) => Err(UntrustedReason::NotInManifest(digest)),
        }
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
        assert_eq!(policy.decide(b"module a", None), Verdict::TrustedByHash);
    }

    #[test]
    fn unlisted_module_is_not_in_manifest() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(m));
        assert!(matches!(
            reasons(policy.decide(b"module c", None))[..],
            [UntrustedReason::NotInManifest(_)]
        ));
    }

    #[test]
    fn unsealed_host_trusts_nothing() {
        let m = manifest(Profile::File);
        let policy = Policy::new(Anchor::Unsealed, HashEvidence::Manifest(m));
        assert_eq!(
            reasons(policy.decide(b"module a", None)),
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
            reasons(policy.decide(b"evil", None))[..],
            [UntrustedReason::ManifestNotAnchored { .. }]
        ));
    }

    #[test]
    fn same_root_other_profile_is_not_anchored() {
        let m = manifest(Profile::File);
        let other = manifest(Profile::Payload);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(other));
        assert!(matches!(
            reasons(policy.decide(b"module a", None))[..],
            [UntrustedReason::ManifestNotAnchored { .. }]
        ));
    }

    #[test]
    fn no_evidence_trusts_nothing() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::None);
        assert_eq!(
            reasons(policy.decide(b"module a", None)),
            [UntrustedReason::NoHashEvidence]
        );
    }

    #[test]
    fn proofs_are_checked_against_the_anchor() {
        let m = manifest(Profile::File);
        let policy = Policy::new(sealed(&m), HashEvidence::None);
        let proof = InclusionProof::for_digest(&m, Digest::sha256(b"module a")).unwrap();
        assert_eq!(
            policy.decide(b"module a", Some(&proof)),
            Verdict::TrustedByHash
        );
        assert!(matches!(
            reasons(policy.decide(b"module b", Some(&proof)))[..],
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
            reasons(policy.decide(b"module a", Some(&proof_elsewhere))),
            [UntrustedReason::ProofNotAnchored]
        );
        let other_profile =
            InclusionProof::for_digest(&other, Digest::sha256(b"module a")).unwrap();
        assert!(matches!(
            reasons(policy.decide(b"module a", Some(&other_profile)))[..],
            [UntrustedReason::ProfileMismatch { .. }]
        ));
    }

    #[test]
    fn undigestible_module_is_unreadable() {
        let m = manifest(Profile::ElfImage);
        let policy = Policy::new(sealed(&m), HashEvidence::Manifest(m));
        assert!(matches!(
            reasons(policy.decide(b"not elf", None))[..],
            [UntrustedReason::Unreadable(_)]
        ));
    }
}
