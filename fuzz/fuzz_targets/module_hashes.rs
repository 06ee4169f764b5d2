//! The kernel's module hash tree parsers: an appended proof
//! (`module_hashes::Proof::split`, `Root::verify_module`), a root record
//! (`Root::from_record`), the record in a kernel image
//! (`module_hashes::image::read`, `seal`), and a compressed module
//! (`compressed::decompress`, with a small bound).
//!
//! Invariants: a proof that splits writes back byte for byte as the trailer
//! it was read from; a module verifies against the root its own proof leads
//! to exactly when the proof has that root's length; a record round-trips;
//! sealing an image whose record reads changes only those 36 bytes and
//! reads back as the sealed root; decompression never exceeds its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::compressed::{self, DecompressError};
use modhash::module_hashes::{image, ByteOrder, Proof, Root, ROOT_RECORD_LEN};

fuzz_target!(|bytes: &[u8]| {
    if let Ok((payload, proof)) = Proof::split(bytes) {
        assert_eq!(bytes.get(payload.len()..), Some(proof.to_trailer().as_slice()));
        if let Ok(levels) = u32::try_from(proof.siblings.len()) {
            if levels <= 32 {
                let root = Root {
                    levels,
                    hash: proof.root_for(payload),
                };
                assert_eq!(root.verify_module(bytes), Ok(()));
            }
        }
    }
    for order in [ByteOrder::LittleEndian, ByteOrder::BigEndian] {
        if let Ok(root) = Root::from_record(bytes, order) {
            assert_eq!(root.to_record(order).as_slice(), bytes);
        }
    }
    if let Ok(found) = image::read(bytes) {
        let root = Root {
            levels: (found.root.levels + 1) % 33,
            hash: found.root.hash,
        };
        if let Ok(sealed) = image::seal(bytes, &root) {
            assert_eq!(sealed.len(), bytes.len());
            let record = found.slot.offset..found.slot.offset + ROOT_RECORD_LEN;
            for (at, (before, after)) in bytes.iter().zip(sealed.iter()).enumerate() {
                assert!(before == after || record.contains(&at), "byte {at} changed");
            }
            assert_eq!(image::read(&sealed).map(|f| f.root).ok(), Some(root));
        }
    }
    match compressed::decompress(bytes, 1 << 20) {
        Ok(module) => assert!(module.bytes.len() <= 1 << 20),
        Err(DecompressError::TooLarge { .. } | DecompressError::Corrupt { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
    }
});
