//! RFC 6962 Merkle Tree Hash and audit paths (inclusion proofs).
//!
//! The leaves are 32-byte module digests, but the functions take any leaf
//! bytes so the RFC's own reference vectors test them unchanged. Leaves and
//! interior nodes are domain-separated (`0x00` / `0x01` prefixes), so no
//! leaf can pose as a subtree: without that, a module whose digest equals
//! an interior node would be "in" the tree.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::digest::Digest;

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Digest {
    match <&[u8; 32]>::try_from(leaf) {
        Ok(digest) => Digest::sha256_prefixed(0x00, &Digest(*digest), None),
        Err(_) => Digest::sha256_parts(&[&[0x00], leaf]),
    }
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::sha256_prefixed(0x01, left, Some(right))
}

/// The largest power of two strictly below `n` (for `n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The Merkle Tree Hash of `leaves`, in order. The empty tree's hash is
/// `SHA-256("")`, as RFC 6962 §2.1 defines.
///
/// Leaves are hashed as the recursion reaches them, so no list of leaf
/// hashes is allocated (3.2 MB for a 100,000-module manifest, whose page
/// faults cost more than the hashing). A large tree is hashed on two
/// threads: a host checks its manifest at start-up, and its root is most of
/// that time. If no thread can be started, one does it all.
pub fn root<L: AsRef<[u8]> + Sync>(leaves: &[L]) -> Digest {
    if leaves.len() < PARALLEL_LEAVES {
        return serial_root(leaves);
    }
    let blocks: Vec<&[L]> = leaves.chunks(BLOCK_LEAVES).collect();
    let roots = block_roots(&blocks);
    combine(&roots, leaves.len())
}

/// Below this many leaves a second thread costs more than it saves (its
/// start is tens of microseconds; a leaf takes a third of one).
const PARALLEL_LEAVES: usize = 16_384;

/// Leaves per piece of work when two threads share a tree.
///
/// Why pieces rather than the tree's two halves: RFC 6962 cuts a tree of
/// n leaves at the largest power of two below n, so for 100,000 leaves the
/// halves are 65,536 and 34,464 leaves, and the thread with the larger one
/// finishes long after the other. Every aligned run of `BLOCK_LEAVES`
/// leaves, and the shorter run at the end, is a subtree of the RFC tree
/// (each cut above it falls on a multiple of it), so the two threads take
/// such runs from a shared counter and [`combine`] joins their roots.
const BLOCK_LEAVES: usize = 4096;

/// The root of each block, computed by this thread and one more, taking
/// the blocks in turn.
fn block_roots<L: AsRef<[u8]> + Sync>(blocks: &[&[L]]) -> Vec<Digest> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(block) = blocks.get(index) else {
                return done;
            };
            done.push((index, serial_root(block)));
        }
    };
    let mut roots = std::thread::scope(|scope| {
        let other = std::thread::Builder::new().spawn_scoped(scope, work).ok();
        let mut roots = work();
        if let Some(other) = other {
            roots.extend(other.join().unwrap_or_default());
        }
        roots
    });
    roots.sort_unstable_by_key(|(index, _)| *index);
    // A thread that died left its blocks undone: do them here.
    let mut all = Vec::with_capacity(blocks.len());
    let mut done = roots.into_iter().peekable();
    for (index, block) in blocks.iter().enumerate() {
        match done.next_if(|(done_index, _)| *done_index == index) {
            Some((_, root)) => all.push(root),
            None => all.push(serial_root(block)),
        }
    }
    all
}

/// The root of a tree of `leaves` leaves whose blocks of [`BLOCK_LEAVES`]
/// (the last one shorter) have the roots `block_roots`: RFC 6962's
/// recursion above the blocks.
fn combine(block_roots: &[Digest], leaves: usize) -> Digest {
    if leaves <= BLOCK_LEAVES {
        return block_roots
            .first()
            .copied()
            .unwrap_or_else(|| Digest::sha256(b""));
    }
    let left = split_point(leaves);
    let (first, second) = block_roots.split_at((left / BLOCK_LEAVES).min(block_roots.len()));
    node_hash(&combine(first, left), &combine(second, leaves - left))
}

fn serial_root<L: AsRef<[u8]>>(leaves: &[L]) -> Digest {
    match leaves {
        [] => Digest::sha256(b""),
        [only] => leaf_hash(only.as_ref()),
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&serial_root(left), &serial_root(right))
        }
    }
}

fn subtree_root(leaf_hashes: &[Digest]) -> Digest {
    match leaf_hashes {
        [] => Digest::sha256(b""),
        [only] => *only,
        _ => {
            let (left, right) = leaf_hashes.split_at(split_point(leaf_hashes.len()));
            node_hash(&subtree_root(left), &subtree_root(right))
        }
    }
}

/// The audit path for leaf `index` among `leaves` (RFC 6962 §2.1.1), from
/// the leaf's sibling up to the root's child; `None` if `index` is out of
/// range.
pub fn audit_path<L: AsRef<[u8]>>(leaves: &[L], index: usize) -> Option<Vec<Digest>> {
    if index >= leaves.len() {
        return None;
    }
    let hashes: Vec<Digest> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    let mut path = Vec::new();
    collect_path(&hashes, index, &mut path);
    Some(path)
}

fn collect_path(leaf_hashes: &[Digest], index: usize, path: &mut Vec<Digest>) {
    if leaf_hashes.len() < 2 {
        return;
    }
    let k = split_point(leaf_hashes.len());
    let (left, right) = leaf_hashes.split_at(k);
    if index < k {
        collect_path(left, index, path);
        path.push(subtree_root(right));
    } else {
        collect_path(right, index - k, path);
        path.push(subtree_root(left));
    }
}

/// Recomputes the root from a leaf, its index, the tree size and its audit
/// path (RFC 9162 §2.1.3.2); `None` when the path has the wrong shape for
/// that index and size.
pub fn root_from_audit_path(
    leaf: &[u8],
    index: u64,
    tree_size: u64,
    path: &[Digest],
) -> Option<Digest> {
    if index >= tree_size {
        return None;
    }
    let mut fn_ = index;
    let mut sn = tree_size - 1;
    let mut r = leaf_hash(leaf);
    for p in path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference leaves of the Certificate Transparency test suite,
    /// and the roots of their first n leaves.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves() -> Vec<Vec<u8>> {
        LEAVES.iter().map(|l| hex::decode(l).unwrap()).collect()
    }

    #[test]
    fn empty_tree_is_hash_of_empty_string() {
        assert_eq!(root::<&[u8]>(&[]), Digest::sha256(b""));
    }

    #[test]
    fn a_tree_hashed_on_two_threads_has_the_serial_root() {
        let leaves: Vec<Digest> = (0u32..40_000)
            .map(|i| Digest::sha256(&i.to_le_bytes()))
            .collect();
        for n in [
            PARALLEL_LEAVES - 1,
            PARALLEL_LEAVES,
            PARALLEL_LEAVES + 1,
            BLOCK_LEAVES * 5 - 1,
            BLOCK_LEAVES * 5,
            BLOCK_LEAVES * 5 + 1,
            32_768,
            32_769,
            40_000,
        ] {
            assert_eq!(root(&leaves[..n]), serial_root(&leaves[..n]), "{n} leaves");
        }
    }

    #[test]
    fn roots_match_reference_vectors() {
        let leaves = leaves();
        for n in 1..=8 {
            assert_eq!(root(&leaves[..n]).to_hex(), ROOTS[n - 1], "{n} leaves");
        }
    }

    #[test]
    fn every_audit_path_verifies_and_only_for_its_leaf() {
        let leaves: Vec<Vec<u8>> = (0u8..23).map(|i| vec![i; 3]).collect();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let expected = root(tree);
            for (i, leaf) in tree.iter().enumerate() {
                let path = audit_path(tree, i).unwrap();
                let (i, n) = (i as u64, n as u64);
                assert_eq!(root_from_audit_path(leaf, i, n, &path), Some(expected));
                assert_ne!(root_from_audit_path(b"other", i, n, &path), Some(expected));
                if n > 1 {
                    let other = (i + 1) % n;
                    assert_ne!(root_from_audit_path(leaf, other, n, &path), Some(expected));
                }
                assert_eq!(root_from_audit_path(leaf, n, n, &path), None);
            }
        }
    }

    #[test]
    fn truncated_or_extended_paths_are_rejected() {
        let leaves = leaves();
        let path = audit_path(&leaves, 5).unwrap();
        assert!(root_from_audit_path(&leaves[5], 5, 8, &path[..2]).is_none());
        let mut long = path.clone();
        long.push(Digest::sha256(b"x"));
        assert!(root_from_audit_path(&leaves[5], 5, 8, &long).is_none());
    }
}
