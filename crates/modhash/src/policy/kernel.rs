//! The verdict a Linux kernel reaches on a module it is asked to load, when
//! it was built with `CONFIG_MODULE_HASHES` and usually `CONFIG_MODULE_SIG`.
//!
//! The kernel looks at the one trailer the module carries. A module hash
//! proof (id_type 3) is checked against the root in `.module_hashes` and
//! nothing else; a PKCS#7 signature (id_type 2) is checked against the
//! certificates built into the image. Either way the checked bytes are the
//! decompressed module, so callers pass those ([`crate::compressed`]).
//!
//! | trailer        | root in image          | verdict |
//! |----------------|------------------------|---------|
//! | proof          | leads to it            | trusted-by-hash |
//! | proof          | none, wrong length, does not lead to it | untrusted: why |
//! | PKCS#7         | any                    | trusted-by-signature `<signer>`, or untrusted: why |
//! | none           | any                    | untrusted: no proof; no signature |

use super::{UntrustedReason, Verdict};
use crate::linux_trailer::{self, Trailer};
use crate::module_hashes::{ProofError, Root, ID_TYPE_MERKLE};
use crate::signature::{linux, Keyring};

/// What a kernel image trusts: its module hashes root, if it has one, and
/// its built-in certificates (plus any others the caller adds).
#[derive(Debug, Clone)]
pub struct KernelPolicy {
    root: Option<Root>,
    keyring: Keyring,
}

impl KernelPolicy {
    /// A kernel trusting proofs to `root` and signatures by `keyring`.
    pub fn new(root: Option<Root>, keyring: Keyring) -> Self {
        Self { root, keyring }
    }

    /// The verdict on a module's decompressed bytes.
    pub fn decide(&self, module: &[u8]) -> Verdict {
        let trailer = match linux_trailer::split(module) {
            Ok(split) => split.trailer,
            Err(e) => {
                return Verdict::Untrusted {
                    reasons: vec![UntrustedReason::ModuleHashes(e.to_string())],
                }
            }
        };
        let reasons = match trailer {
            Trailer::ModuleSignature { info, .. } if info.id_type == ID_TYPE_MERKLE => {
                match self.hash_trust(module) {
                    Ok(()) => return Verdict::TrustedByHash,
                    Err(reason) => vec![reason],
                }
            }
            Trailer::ModuleSignature { .. } => match linux::verify(&self.keyring, module) {
                Ok(signer) => {
                    return Verdict::TrustedBySignature {
                        key: signer.id().to_owned(),
                    }
                }
                Err(linux::LinuxError::NoCertificates) => vec![UntrustedReason::Signature(
                    "signed, but the image has no built-in certificate (and no --keys were given)"
                        .to_owned(),
                )],
                Err(e) => vec![UntrustedReason::Signature(e.to_string())],
            },
            Trailer::None | Trailer::Modhash { .. } => vec![
                UntrustedReason::ModuleHashes(ProofError::NoProof.to_string()),
                UntrustedReason::Signature(linux::LinuxError::NotSigned.to_string()),
            ],
        };
        Verdict::Untrusted { reasons }
    }

    fn hash_trust(&self, module: &[u8]) -> Result<(), UntrustedReason> {
        let root = match self.root {
            Some(root) if !root.is_placeholder() => root,
            Some(_) => {
                return Err(UntrustedReason::ModuleHashes(
                    "the image's module hashes root is the unsealed placeholder (run `modhash kernel seal`)"
                        .to_owned(),
                ))
            }
            None => {
                return Err(UntrustedReason::ModuleHashes(
                    "module carries a hash proof but the image has no .module_hashes root (built without CONFIG_MODULE_HASHES)"
                        .to_owned(),
                ))
            }
        };
        root.verify_module(module)
            .map_err(|e| UntrustedReason::ModuleHashes(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module_hashes::{leaf_hash, Tree};

    #[test]
    fn a_proof_is_judged_by_the_root_alone() {
        let modules: Vec<&[u8]> = vec![b"one", b"two", b"three"];
        let tree = Tree::new(
            modules
                .iter()
                .enumerate()
                .map(|(i, m)| leaf_hash(i as u32, m))
                .collect(),
        )
        .unwrap();
        let mut installed = modules[1].to_vec();
        installed.extend_from_slice(&tree.proof(1).unwrap().to_trailer());
        let trusting = KernelPolicy::new(Some(tree.root()), Keyring::new());
        assert_eq!(trusting.decide(&installed), Verdict::TrustedByHash);
        for other in [None, Some(Tree::new(Vec::new()).unwrap().root())] {
            let verdict = KernelPolicy::new(other, Keyring::new()).decide(&installed);
            assert!(!verdict.is_trusted(), "{verdict}");
        }
        let verdict = trusting.decide(b"plain");
        assert_eq!(
            verdict.to_string(),
            "untrusted: no module hash proof appended (install the module with `modhash kernel tree --append`); the module has no appended signature"
        );
    }
}
