//! The inclusion proof parser (`"…".parse::<InclusionProof>()`) and the
//! audit path walk (`InclusionProof::root`), which take an attacker's
//! index and tree size.
//!
//! Invariants: a parsed proof prints to text that parses back to the same
//! proof and prints identically; walking its path never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::proof::InclusionProof;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(proof) = text.parse::<InclusionProof>() else {
        return;
    };
    let printed = proof.to_string();
    let again: InclusionProof = printed.parse().expect("a printed proof parses");
    assert_eq!(again, proof);
    assert_eq!(again.to_string(), printed);
    let root = proof.root();
    if root.is_some() {
        assert!(
            proof.index < proof.tree_size,
            "a path led to a root from outside the tree"
        );
    }
});
