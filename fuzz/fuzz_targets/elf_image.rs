//! The `elf-image` canonical image (`LoadableRanges::parse`).
//!
//! Invariants: the image is never longer than the file; it is itself a
//! valid ELF image whose canonical image is itself (so hashing what the
//! loader maps gives the same digest as hashing the file); the profile
//! digest is the digest of exactly those bytes; and the runs the loader
//! writes into its memfd are disjoint, in order, inside the image, and
//! every byte between them is zero.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::elf_image::{canonical_image, LoadableRanges};
use modhash::{Digest, Profile};

fuzz_target!(|bytes: &[u8]| {
    let Ok(ranges) = LoadableRanges::parse(bytes) else {
        assert!(Profile::ElfImage.digest(bytes).is_err());
        return;
    };
    let mut image = Vec::new();
    ranges.write_image(bytes, &mut image);
    assert_eq!(image.len(), ranges.image_len());
    assert!(image.len() <= bytes.len(), "image longer than the file");
    let again = canonical_image(&image).expect("a canonical image is a valid ELF image");
    assert_eq!(again, image, "the canonical image is not a fixed point");
    assert_eq!(
        Profile::ElfImage.digest(bytes).ok(),
        Some(Digest::sha256(&image))
    );
    let mut end = 0;
    for run in ranges.runs(bytes) {
        assert!(run.offset >= end, "runs overlap or are out of order");
        let gap = image.get(end..run.offset).expect("run inside the image");
        assert!(gap.iter().all(|&b| b == 0), "a byte between runs is not zero");
        end = run.offset + run.bytes.len();
        assert_eq!(image.get(run.offset..end), Some(&*run.bytes));
    }
    assert!(image.get(end..).is_some_and(|tail| tail.iter().all(|&b| b == 0)));
});
