//! The dynamic section reader (`Dynamic::try_from`), on files and on their
//! canonical images.
//!
//! Invariant: where a file has a canonical `elf-image`, the image's dynamic
//! entries are the file's: the loader judges dependencies from the image it
//! maps, and must see what the dynamic loader will see.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::elf_dynamic::Dynamic;
use modhash::elf_image::canonical_image;

fuzz_target!(|bytes: &[u8]| {
    let from_file = Dynamic::try_from(bytes);
    if let Ok(image) = canonical_image(bytes) {
        let from_image = Dynamic::try_from(image.as_slice());
        if let Ok(dynamic) = from_file {
            assert_eq!(from_image, Ok(dynamic), "the image reads differently");
        }
    }
});
