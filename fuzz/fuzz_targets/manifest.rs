//! The manifest parser (`"…".parse::<Manifest>()`, `Manifest::from_reader`).
//!
//! Invariants: the streaming parser accepts exactly what the text parser
//! accepts, with the same result, and refuses what is not UTF-8; a parsed
//! manifest prints to text that parses back to the same manifest and
//! prints identically (one spelling per content), and its root is the
//! Merkle root of its leaves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::{merkle, Manifest};

fuzz_target!(|bytes: &[u8]| {
    let streamed = Manifest::from_reader(bytes, bytes.len()).ok();
    let Ok(text) = std::str::from_utf8(bytes) else {
        assert!(streamed.is_none(), "a stream that is not UTF-8 parsed");
        return;
    };
    let parsed = text.parse::<Manifest>().ok();
    assert_eq!(streamed, parsed, "the stream and text parsers disagree");
    let Some(manifest) = parsed else {
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
