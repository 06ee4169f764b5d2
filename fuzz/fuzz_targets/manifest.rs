//! The manifest parser (`"…".parse::<Manifest>()`).
//!
//! Invariants: a parsed manifest prints to text that parses back to the
//! same manifest and prints identically (one spelling per content), and its
//! root is the Merkle root of its leaves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::{merkle, Manifest};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(manifest) = text.parse::<Manifest>() else {
        return;
    };
    let printed = manifest.to_string();
    let again: Manifest = printed.parse().expect("a printed manifest parses");
    assert_eq!(again, manifest);
    assert_eq!(again.to_string(), printed);
    let leaves: Vec<[u8; 32]> = manifest.leaves().iter().map(|d| d.0).collect();
    assert_eq!(merkle::root(&leaves), manifest.root());
    assert_eq!(manifest.leaf_count(), leaves.len() as u64);
    for (_, digest) in manifest.entries() {
        assert!(manifest.contains(digest));
    }
});
