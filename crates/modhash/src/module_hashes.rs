//! The Linux kernel's own module hash tree (`CONFIG_MODULE_HASHES`).
//!
//! A second tree type beside modhash's RFC 6962 tree ([`crate::merkle`]),
//! because the kernel fixed its own: a kernel built with it loads an in-tree
//! module only when the proof appended to the module leads to the root
//! filled into vmlinux, and nothing here may differ from that by one byte.
//!
//! - Leaf `pos` = SHA-256(`0x01` ‖ be32(`pos`) ‖ module), `pos` being the
//!   module's 0-based line in `modules.order`: not sorted, not
//!   de-duplicated, so the position is part of what is proven.
//! - Node = SHA-256(`0x02` ‖ left ‖ right); on a level with an odd count the
//!   last node is paired with itself.
//! - `levels` = 1 for one module, ⌈log₂ n⌉ otherwise, 0 (and an all-zero
//!   root) for none.
//! - The root record `struct module_hashes_root { u32 levels; u8 hash[32]; }`
//!   is 36 bytes, `levels` in the byte order of the ELF file that holds it.
//! - A proof is be32 `pos`, then one sibling per level, bottom-up, then a
//!   12-byte `struct module_signature` whose `id_type` is 3 and whose
//!   `sig_len` is 4 + 32·levels, then `~Module signature appended~\n`:
//!   exactly the `.merkle` file the kernel build writes and
//!   `modules_install` appends.
//!
//! Verification ([`Root::verify_module`]) is the kernel's: the proof must be
//! exactly as long as the root's `levels` say, the bytes before it are
//! hashed as leaf `pos`, and the walk up follows the low bits of `pos`.

use crate::digest::Digest;
use crate::linux_trailer::{self, Trailer, TrailerError, MODULE_SIG_MARKER};

#[cfg(feature = "extract")]
pub mod image;

/// `MODULE_SIGNATURE_TYPE_MERKLE`: the `id_type` of an appended proof.
pub const ID_TYPE_MERKLE: u8 = 3;

/// `sizeof(struct module_hashes_root)`.
pub const ROOT_RECORD_LEN: usize = 36;

/// The section of vmlinux holding the root record.
pub const SECTION_NAME: &str = ".module_hashes";

/// `SHA-256(0x01 ‖ be32(pos) ‖ module)`.
pub fn leaf_hash(pos: u32, module: &[u8]) -> Digest {
    Digest::sha256_parts(&[&[0x01], &pos.to_be_bytes(), module])
}

/// `SHA-256(0x02 ‖ left ‖ right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::sha256_parts(&[&[0x02], left.as_bytes(), right.as_bytes()])
}

/// How many levels a tree over `n` modules has: 0 for none, 1 for one,
/// ⌈log₂ n⌉ otherwise (the kernel build tool's `log2_roundup`).
pub fn levels_for(n: u32) -> u32 {
    match n {
        0 => 0,
        1 => 1,
        n => u32::BITS - (n - 1).leading_zeros(),
    }
}

/// Why a tree cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// More leaves than a be32 position can number.
    #[error("{0} modules: a module hash tree numbers at most 2^32 - 1")]
    TooMany(usize),
}

/// A module hash tree: every level, from the leaves up to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// `levels[0]` are the leaves; each next level pairs the one below.
    levels: Vec<Vec<Digest>>,
}

impl Tree {
    /// The tree over `leaves`, the [`leaf_hash`]es in `modules.order` order.
    pub fn new(leaves: Vec<Digest>) -> Result<Self, TreeError> {
        let count = u32::try_from(leaves.len()).map_err(|_| TreeError::TooMany(leaves.len()))?;
        let mut levels = vec![leaves];
        for _ in 0..levels_for(count) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [odd] => node_hash(odd, odd),
                    _ => Digest([0; 32]),
                })
                .collect();
            levels.push(above);
        }
        Ok(Self { levels })
    }

    /// The number of modules.
    pub fn len(&self) -> u32 {
        self.leaves().len() as u32
    }

    /// Whether the tree has no module.
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    /// The leaf hash at `pos`.
    pub fn leaf(&self, pos: u32) -> Option<Digest> {
        self.leaves().get(usize::try_from(pos).ok()?).copied()
    }

    fn leaves(&self) -> &[Digest] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The root: its level count and hash (all zeros for no module).
    pub fn root(&self) -> Root {
        let levels = levels_for(self.len());
        let hash = match self.levels.last().map(Vec::as_slice) {
            Some([root]) if levels > 0 => *root,
            _ => Digest([0; 32]),
        };
        Root { levels, hash }
    }

    /// The proof for the module at `pos`; `None` past the last module.
    pub fn proof(&self, pos: u32) -> Option<Proof> {
        let mut index = usize::try_from(pos).ok()?;
        self.leaves().get(index)?;
        let below_root = self.levels.len().saturating_sub(1);
        let siblings = self
            .levels
            .iter()
            .take(below_root)
            .map(|level| {
                let sibling = if index % 2 == 0 { index + 1 } else { index - 1 };
                // An odd last node is paired with itself.
                let hash = level.get(sibling).or_else(|| level.get(index)).copied();
                index /= 2;
                hash.unwrap_or(Digest([0; 32]))
            })
            .collect();
        Some(Proof { pos, siblings })
    }
}

/// The byte order of the ELF file a root record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ByteOrder {
    /// x86, arm64, riscv, …
    LittleEndian,
    /// s390, big-endian powerpc and mips, …
    BigEndian,
}

/// `struct module_hashes_root`: what a kernel built with
/// `CONFIG_MODULE_HASHES` trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Root {
    /// The tree's level count: every proof holds this many siblings.
    pub levels: u32,
    /// The root hash.
    #[serde(rename = "root")]
    pub hash: Digest,
}

impl Root {
    /// The 36-byte record, `levels` in `order`.
    pub fn to_record(&self, order: ByteOrder) -> [u8; ROOT_RECORD_LEN] {
        let levels = match order {
            ByteOrder::LittleEndian => self.levels.to_le_bytes(),
            ByteOrder::BigEndian => self.levels.to_be_bytes(),
        };
        let mut record = [0u8; ROOT_RECORD_LEN];
        let (head, tail) = record.split_at_mut(4);
        head.copy_from_slice(&levels);
        tail.copy_from_slice(self.hash.as_bytes());
        record
    }

    /// Reads a 36-byte record whose `levels` is in `order`.
    pub fn from_record(record: &[u8], order: ByteOrder) -> Result<Self, RootRecordError> {
        let record: &[u8; ROOT_RECORD_LEN] = record
            .try_into()
            .map_err(|_| RootRecordError::Length(record.len()))?;
        let (levels, hash) = record.split_at(4);
        let levels: [u8; 4] = levels
            .try_into()
            .map_err(|_| RootRecordError::Length(record.len()))?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| RootRecordError::Length(record.len()))?;
        let levels = match order {
            ByteOrder::LittleEndian => u32::from_le_bytes(levels),
            ByteOrder::BigEndian => u32::from_be_bytes(levels),
        };
        // Past 32 levels the be32 position cannot address the tree.
        if levels > 32 {
            return Err(RootRecordError::Levels(levels));
        }
        Ok(Self {
            levels,
            hash: Digest(hash),
        })
    }

    /// Whether this is the build's placeholder (or the root of no module):
    /// it trusts nothing.
    pub fn is_placeholder(&self) -> bool {
        self.levels == 0 && self.hash == Digest([0; 32])
    }

    /// Checks a module (its whole file, proof appended) as the kernel does.
    pub fn verify_module(&self, module: &[u8]) -> Result<(), ProofError> {
        let (payload, proof) = Proof::split(module)?;
        let expected = proof_len(self.levels);
        if proof.siblings.len() != self.levels as usize {
            return Err(ProofError::Length {
                found: proof.sig_len(),
                expected,
                levels: self.levels,
            });
        }
        if proof.root_for(payload) == self.hash {
            Ok(())
        } else {
            Err(ProofError::NotThisRoot)
        }
    }
}

/// `sig_len` of a proof over `levels` levels: be32 pos and one hash each.
fn proof_len(levels: u32) -> u64 {
    4 + 32 * u64::from(levels)
}

/// Why a root record cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RootRecordError {
    /// Not 36 bytes.
    #[error("a module hashes root record is {ROOT_RECORD_LEN} bytes, this is {0}")]
    Length(usize),
    /// An impossible level count.
    #[error("root record claims {0} levels; a tree of at most 2^32 modules has at most 32 (wrong byte order?)")]
    Levels(u32),
}

/// A module's proof: its position and the siblings on the way up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Proof {
    /// The module's line in `modules.order`, from 0.
    pub pos: u32,
    /// One hash per level, bottom-up.
    pub siblings: Vec<Digest>,
}

/// Why a module carries no usable proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// No appended trailer at all.
    #[error(
        "no module hash proof appended (install the module with `modhash kernel tree --append`)"
    )]
    NoProof,
    /// A trailer of another type.
    #[error("appended trailer is a {0}, not a module hash proof")]
    OtherTrailer(&'static str),
    /// The trailer does not parse.
    #[error(transparent)]
    Trailer(#[from] TrailerError),
    /// `sig_len` is not 4 + 32·k.
    #[error("module hash proof is {0} bytes, not 4 + 32 per level; it is truncated or corrupt")]
    Shape(u64),
    /// The proof's level count is not the root's.
    #[error("module hash proof is {found} bytes, the image's root needs {expected} ({levels} levels): it belongs to another tree, or is truncated or over-long")]
    Length {
        /// The proof's `sig_len`.
        found: u64,
        /// 4 + 32·levels.
        expected: u64,
        /// The root's levels.
        levels: u32,
    },
    /// The walk does not end at the root.
    #[error("module hash proof does not lead to the image's root: the module changed, moved in modules.order, or belongs to another build")]
    NotThisRoot,
}

impl Proof {
    /// `sig_len` of this proof.
    pub fn sig_len(&self) -> u64 {
        4 + 32 * self.siblings.len() as u64
    }

    /// The `.merkle` bytes: the proof, `struct module_signature`, marker.
    pub fn to_trailer(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 32 * self.siblings.len() + 12 + 28);
        out.extend_from_slice(&self.pos.to_be_bytes());
        for sibling in &self.siblings {
            out.extend_from_slice(sibling.as_bytes());
        }
        let sig_len = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&[0, 0, ID_TYPE_MERKLE, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&sig_len.to_be_bytes());
        out.extend_from_slice(MODULE_SIG_MARKER);
        out
    }

    /// Splits a module into the bytes the kernel hashes and the proof
    /// appended to them.
    pub fn split(module: &[u8]) -> Result<(&[u8], Proof), ProofError> {
        let split = linux_trailer::split(module)?;
        let (info, signature) = match split.trailer {
            Trailer::None => return Err(ProofError::NoProof),
            Trailer::Modhash { .. } => return Err(ProofError::OtherTrailer("modhash trailer")),
            Trailer::ModuleSignature {
                info, signature, ..
            } => (info, signature),
        };
        if info.id_type != ID_TYPE_MERKLE {
            return Err(ProofError::OtherTrailer(
                if info.id_type == linux_trailer::PKEY_ID_PKCS7 {
                    "PKCS#7 module signature"
                } else {
                    "module signature of an unknown type"
                },
            ));
        }
        // algo, hash, signer_len, key_id_len and the padding are zero:
        // `linux_trailer::split` refuses the record otherwise, as the
        // kernel's `mod_check_sig` does.
        Ok((split.payload, Self::parse(signature)?))
    }

    /// Parses the proof proper: be32 pos, then 32-byte hashes.
    pub fn parse(bytes: &[u8]) -> Result<Proof, ProofError> {
        let shape = || ProofError::Shape(bytes.len() as u64);
        let (pos, hashes) = bytes.split_first_chunk::<4>().ok_or_else(shape)?;
        let chunks = hashes.chunks_exact(32);
        if !chunks.remainder().is_empty() {
            return Err(shape());
        }
        let siblings = chunks
            .map(|h| h.try_into().map(Digest))
            .collect::<Result<_, _>>()
            .map_err(|_| shape())?;
        Ok(Proof {
            pos: u32::from_be_bytes(*pos),
            siblings,
        })
    }

    /// The root this proof leads to from `payload`, walking up by the bits
    /// of `pos` as the kernel does.
    pub fn root_for(&self, payload: &[u8]) -> Digest {
        let mut current = leaf_hash(self.pos, payload);
        let mut pos = self.pos;
        for sibling in &self.siblings {
            current = if pos & 1 == 0 {
                node_hash(&current, sibling)
            } else {
                node_hash(sibling, &current)
            };
            pos >>= 1;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(n: u32) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("module {i}").into_bytes()).collect()
    }

    fn tree(modules: &[Vec<u8>]) -> Tree {
        let leaves = modules
            .iter()
            .enumerate()
            .map(|(i, m)| leaf_hash(i as u32, m))
            .collect();
        Tree::new(leaves).unwrap()
    }

    fn with_proof(module: &[u8], proof: &Proof) -> Vec<u8> {
        let mut out = module.to_vec();
        out.extend_from_slice(&proof.to_trailer());
        out
    }

    #[test]
    fn levels_match_the_kernel_build_tool() {
        let expected = [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (8, 3),
            (9, 4),
        ];
        for (n, levels) in expected {
            assert_eq!(levels_for(n), levels, "{n}");
        }
        assert_eq!(levels_for(u32::MAX), 32);
    }

    #[test]
    fn no_module_gives_the_zero_placeholder() {
        let root = Tree::new(Vec::new()).unwrap().root();
        assert!(root.is_placeholder());
        assert_eq!(root.to_record(ByteOrder::LittleEndian), [0; 36]);
    }

    #[test]
    fn one_module_is_paired_with_itself() {
        let m = modules(1);
        let leaf = leaf_hash(0, &m[0]);
        let t = tree(&m);
        assert_eq!(t.root().levels, 1);
        assert_eq!(t.root().hash, node_hash(&leaf, &leaf));
        assert_eq!(t.proof(0).unwrap().siblings, vec![leaf]);
    }

    #[test]
    fn every_proof_verifies_and_attacks_fail() {
        for n in 1..=40 {
            let m = modules(n);
            let t = tree(&m);
            let root = t.root();
            for pos in 0..n {
                let proof = t.proof(pos).unwrap();
                let module = &m[pos as usize];
                assert_eq!(root.verify_module(&with_proof(module, &proof)), Ok(()));
                assert_eq!(proof.root_for(module), root.hash);
                // Changed bytes.
                assert_eq!(
                    root.verify_module(&with_proof(b"changed", &proof)),
                    Err(ProofError::NotThisRoot)
                );
                // Another position with the same siblings.
                let moved = Proof {
                    pos: pos ^ 1,
                    ..proof.clone()
                };
                assert_eq!(
                    root.verify_module(&with_proof(module, &moved)),
                    Err(ProofError::NotThisRoot),
                    "{n} {pos}"
                );
                // Truncated and over-long.
                let mut short = proof.clone();
                short.siblings.pop();
                assert!(matches!(
                    root.verify_module(&with_proof(module, &short)),
                    Err(ProofError::Length { .. })
                ));
                let mut long = proof.clone();
                long.siblings.push(root.hash);
                assert!(matches!(
                    root.verify_module(&with_proof(module, &long)),
                    Err(ProofError::Length { .. })
                ));
            }
            assert_eq!(t.proof(n), None);
        }
    }

    #[test]
    fn records_round_trip_in_both_byte_orders() {
        let root = tree(&modules(5)).root();
        for order in [ByteOrder::LittleEndian, ByteOrder::BigEndian] {
            let record = root.to_record(order);
            assert_eq!(Root::from_record(&record, order), Ok(root));
        }
        assert_eq!(&root.to_record(ByteOrder::BigEndian)[..4], &[0, 0, 0, 3]);
        assert_eq!(
            Root::from_record(
                &root.to_record(ByteOrder::BigEndian),
                ByteOrder::LittleEndian
            ),
            Err(RootRecordError::Levels(3 << 24))
        );
        assert_eq!(
            Root::from_record(&[0; 35], ByteOrder::LittleEndian),
            Err(RootRecordError::Length(35))
        );
    }

    #[test]
    fn trailers_that_are_not_proofs_are_named() {
        let root = tree(&modules(3)).root();
        assert_eq!(root.verify_module(b"plain"), Err(ProofError::NoProof));
        let mut pkcs7 = b"module".to_vec();
        pkcs7.extend_from_slice(b"SIG");
        pkcs7.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        pkcs7.extend_from_slice(MODULE_SIG_MARKER);
        assert_eq!(
            root.verify_module(&pkcs7),
            Err(ProofError::OtherTrailer("PKCS#7 module signature"))
        );
        let mut odd = b"module".to_vec();
        odd.extend_from_slice(&[0; 5]);
        odd.extend_from_slice(&[0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        odd.extend_from_slice(MODULE_SIG_MARKER);
        assert_eq!(root.verify_module(&odd), Err(ProofError::Shape(5)));
        let mut padded = odd.clone();
        let at = padded.len() - 40 + 6;
        padded[at] = 1;
        assert_eq!(
            root.verify_module(&padded),
            Err(ProofError::Trailer(TrailerError::ModuleSignatureFields(
                "padding"
            )))
        );
    }
}
