//! The module hash tree against the vectors of an independent reference
//! implementation (`tests/module_hashes_vectors/reference.py`): roots,
//! levels and every `.merkle` file for 0, 1, 2, 3, 5, 7, 100 and 257
//! modules; and every proof checked the way the kernel checks it.
#![allow(
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test vectors have a fixed shape; a malformed one is a test failure"
)]

use std::path::Path;

use modhash::module_hashes::{leaf_hash, Root, Tree};
use modhash::Digest;

fn module(i: u32) -> Vec<u8> {
    format!("module {i}\n")
        .repeat(i as usize % 13 + 1)
        .into_bytes()
}

fn tree(n: u32) -> Tree {
    Tree::new((0..n).map(|i| leaf_hash(i, &module(i))).collect()).expect("a small tree")
}

fn merkle_files(tree: &Tree) -> Vec<Vec<u8>> {
    (0..tree.len())
        .map(|pos| tree.proof(pos).expect("a proof").to_trailer())
        .collect()
}

#[test]
fn trees_and_proofs_match_the_reference_implementation() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/module_hashes_vectors/expected.txt");
    let expected = std::fs::read_to_string(path).expect("expected.txt");
    let (mut roots, mut proofs) = (0, 0);
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(' ').collect();
        let n: u32 = fields[0].parse().expect("a count");
        let t = tree(n);
        match fields[..] {
            [_, levels, root, all_proofs] => {
                assert_eq!(t.root().levels.to_string(), levels, "{n} modules");
                assert_eq!(t.root().hash.to_hex(), root, "{n} modules");
                assert_eq!(
                    Digest::sha256(&merkle_files(&t).concat()).to_hex(),
                    all_proofs,
                    "{n} modules"
                );
                roots += 1;
            }
            [_, pos, merkle] => {
                let pos: u32 = pos.parse().expect("a position");
                let proof = t.proof(pos).expect("a proof");
                assert_eq!(
                    hex::encode(proof.to_trailer()),
                    merkle,
                    "{n} modules, {pos}"
                );
                proofs += 1;
            }
            _ => panic!("malformed line {line}"),
        }
    }
    assert_eq!((roots, proofs), (8, 18));
}

#[test]
fn every_reference_proof_verifies_as_the_kernel_checks_it() {
    for n in [1, 2, 3, 5, 7, 100, 257] {
        let t = tree(n);
        let root: Root = t.root();
        for (pos, merkle) in merkle_files(&t).into_iter().enumerate() {
            let mut installed = module(pos as u32);
            installed.extend_from_slice(&merkle);
            assert_eq!(root.verify_module(&installed), Ok(()), "{n} modules, {pos}");
            // The same proof on the neighbour's bytes fails.
            let mut swapped = module((pos as u32 + 1) % n);
            swapped.extend_from_slice(&merkle);
            if n > 1 {
                assert!(root.verify_module(&swapped).is_err(), "{n} modules, {pos}");
            }
        }
    }
}
