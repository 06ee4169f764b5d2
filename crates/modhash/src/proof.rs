//! Inclusion proofs: one module's RFC 6962 audit path, so a module can be
//! verified against the host's anchor without the whole manifest.
//!
//! ```text
//! # modhash proof v1
//! profile elf-image
//! digest <64 hex>
//! index <leaf index>
//! size <tree size>
//! path <64 hex>        (one line per audit path node, leaf to root)
//! ```
//!
//! A proof needs no protection: it verifies only if hashing the module and
//! walking the path reproduces the anchored root for the anchored tree size.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::digest::Digest;
use crate::input;
use crate::linux_trailer::{self, Trailer};
use crate::manifest::Manifest;
use crate::merkle;
use crate::profile::Profile;

const HEADER: &str = "# modhash proof v1";

/// The extension of a proof shipped beside its module: `x.so` → `x.so.proof`.
pub const EXTENSION: &str = "proof";

/// Largest proof file read: a proof for 2^64 leaves is under 5 KiB.
const MAX_PROOF_FILE: u64 = 64 * 1024;

/// An audit path for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Profile the digest was computed under.
    pub profile: Profile,
    /// The module's digest (the leaf).
    pub digest: Digest,
    /// The leaf's index among the sorted, distinct digests.
    pub index: u64,
    /// The number of leaves.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up.
    pub path: Vec<Digest>,
}

/// Why a proof could not be made or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The digest is not in the manifest.
    #[error("the module's digest {0} is not in the manifest")]
    NotInManifest(Digest),
    /// Not a v1 proof.
    #[error("line 1: not a modhash proof (expected `{HEADER}`)")]
    MissingHeader,
    /// A line is malformed.
    #[error("line {line}: expected `{expected}`")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What the line should look like.
        expected: &'static str,
    },
    /// Missing final newline.
    #[error("proof does not end with a newline; it is truncated")]
    MissingFinalNewline,
    /// More path entries than any tree of 2^64 leaves needs.
    #[error("audit path has {0} entries, more than a tree of 2^64 leaves needs")]
    PathTooLong(usize),
}

impl InclusionProof {
    /// The proof for `digest` in `manifest`.
    pub fn for_digest(manifest: &Manifest, digest: Digest) -> Result<Self, ProofError> {
        let index = manifest
            .leaf_index(&digest)
            .ok_or(ProofError::NotInManifest(digest))?;
        let leaves: Vec<[u8; 32]> = manifest.leaves().iter().map(|d| d.0).collect();
        let path = merkle::audit_path(&leaves, index).ok_or(ProofError::NotInManifest(digest))?;
        Ok(Self {
            profile: manifest.profile(),
            digest,
            index: index as u64,
            tree_size: manifest.leaf_count(),
            path,
        })
    }

    /// The proof appended to `module` as a modhash trailer (`modhash proof
    /// --embed`), if it has one that parses.
    pub fn embedded(module: &[u8]) -> Option<Self> {
        match linux_trailer::split(module).ok()?.trailer {
            Trailer::Modhash { body } => std::str::from_utf8(body).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The proof that travels with the module at `path` whose bytes (read
    /// once by the caller) are `module`: appended to it, else in
    /// `<path>.proof` beside it.
    ///
    /// Neither place needs protection, so a proof that is missing, unreadable
    /// or malformed is simply no proof: it can only fail to add trust.
    pub fn travelling_with(path: &Path, module: &[u8]) -> Option<Self> {
        if let Some(proof) = Self::embedded(module) {
            return Some(proof);
        }
        let beside = crate::signature::sidecar_path(path, EXTENSION);
        let bytes = input::read_regular(&beside, MAX_PROOF_FILE).ok()?;
        String::from_utf8(bytes).ok()?.parse().ok()
    }

    /// The root this proof leads to, if its path has the right shape.
    pub fn root(&self) -> Option<Digest> {
        merkle::root_from_audit_path(
            self.digest.as_bytes(),
            self.index,
            self.tree_size,
            &self.path,
        )
    }
}

impl fmt::Display for InclusionProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{HEADER}")?;
        writeln!(f, "profile {}", self.profile)?;
        writeln!(f, "digest {}", self.digest)?;
        writeln!(f, "index {}", self.index)?;
        writeln!(f, "size {}", self.tree_size)?;
        for node in &self.path {
            writeln!(f, "path {node}")?;
        }
        Ok(())
    }
}

fn field<'a>(
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    key: &str,
    expected: &'static str,
) -> Result<&'a str, ProofError> {
    let (number, line) = lines
        .next()
        .ok_or(ProofError::BadLine { line: 0, expected })?;
    line.strip_prefix(key)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(ProofError::BadLine {
            line: number,
            expected,
        })
}

fn parse_u64(value: &str, line: usize, expected: &'static str) -> Result<u64, ProofError> {
    // Canonical decimal only: no sign, no leading zeros.
    if value.is_empty() || (value.len() > 1 && value.starts_with('0')) {
        return Err(ProofError::BadLine { line, expected });
    }
    value
        .parse()
        .map_err(|_| ProofError::BadLine { line, expected })
}

impl FromStr for InclusionProof {
    type Err = ProofError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text
            .strip_suffix('\n')
            .ok_or(ProofError::MissingFinalNewline)?;
        let mut lines = body.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        if lines.next().map(|(_, l)| l) != Some(HEADER) {
            return Err(ProofError::MissingHeader);
        }
        const PROFILE: &str = "profile <file|payload|elf-image>";
        const DIGEST: &str = "digest <64 hex>";
        const INDEX: &str = "index <decimal>";
        const SIZE: &str = "size <decimal>";
        const PATH: &str = "path <64 hex>";
        let profile = field(&mut lines, "profile", PROFILE)?
            .parse()
            .map_err(|_| ProofError::BadLine {
                line: 2,
                expected: PROFILE,
            })?;
        let digest =
            field(&mut lines, "digest", DIGEST)?
                .parse()
                .map_err(|_| ProofError::BadLine {
                    line: 3,
                    expected: DIGEST,
                })?;
        let index = parse_u64(field(&mut lines, "index", INDEX)?, 4, INDEX)?;
        let tree_size = parse_u64(field(&mut lines, "size", SIZE)?, 5, SIZE)?;
        let mut path = Vec::new();
        for (number, line) in lines {
            let node = line
                .strip_prefix("path ")
                .and_then(|hex| hex.parse().ok())
                .ok_or(ProofError::BadLine {
                    line: number,
                    expected: PATH,
                })?;
            path.push(node);
            if path.len() > 64 {
                return Err(ProofError::PathTooLong(path.len()));
            }
        }
        Ok(Self {
            profile,
            digest,
            index,
            tree_size,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::new(
            Profile::ElfImage,
            (0..5u8).map(|i| (format!("m{i}.so"), Digest::sha256(&[i]))),
        )
        .unwrap()
    }

    #[test]
    fn every_member_has_a_proof_to_the_root() {
        let m = manifest();
        for leaf in m.leaves() {
            let proof = InclusionProof::for_digest(&m, *leaf).unwrap();
            assert_eq!(proof.root(), Some(m.root()));
            let reparsed: InclusionProof = proof.to_string().parse().unwrap();
            assert_eq!(reparsed, proof);
        }
    }

    #[test]
    fn a_proof_moved_to_another_digest_fails() {
        let m = manifest();
        let mut proof = InclusionProof::for_digest(&m, m.leaves()[2]).unwrap();
        proof.digest = Digest::sha256(b"foreign");
        assert_ne!(proof.root(), Some(m.root()));
    }

    #[test]
    fn non_members_have_no_proof() {
        assert!(matches!(
            InclusionProof::for_digest(&manifest(), Digest::sha256(b"x")),
            Err(ProofError::NotInManifest(_))
        ));
    }

    #[test]
    fn malformed_text_is_rejected() {
        let text = InclusionProof::for_digest(&manifest(), manifest().leaves()[0])
            .unwrap()
            .to_string();
        assert!(text
            .replace("index 0", "index 00")
            .parse::<InclusionProof>()
            .is_err());
        assert!(text
            .replace("size 5", "size -5")
            .parse::<InclusionProof>()
            .is_err());
        assert!(text.trim_end().parse::<InclusionProof>().is_err());
        assert!(text
            .replacen("path ", "path x", 1)
            .parse::<InclusionProof>()
            .is_err());
    }

    #[test]
    fn proofs_travel_appended_or_beside_the_module() {
        let m = manifest();
        let digest = *m.leaves().first().expect("leaf");
        let proof = InclusionProof::for_digest(&m, digest).expect("member");
        let text = proof.to_string();
        let dir = tempfile::tempdir().expect("tempdir");
        let module = dir.path().join("m.so");

        let appended =
            linux_trailer::append_modhash_trailer(b"module", text.as_bytes()).expect("append");
        assert_eq!(InclusionProof::embedded(&appended), Some(proof.clone()));
        assert_eq!(InclusionProof::embedded(b"module"), None);
        assert_eq!(
            InclusionProof::travelling_with(&module, &appended),
            Some(proof.clone())
        );

        assert_eq!(InclusionProof::travelling_with(&module, b"module"), None);
        std::fs::write(dir.path().join("m.so.proof"), &text).expect("write");
        assert_eq!(
            InclusionProof::travelling_with(&module, b"module"),
            Some(proof)
        );
        std::fs::write(dir.path().join("m.so.proof"), "garbage").expect("write");
        assert_eq!(InclusionProof::travelling_with(&module, b"module"), None);
    }
}
