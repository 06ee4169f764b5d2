//! Sealing is deterministic, idempotent and changes only the record.
#![cfg(feature = "seal")]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failed expectation is a test failure"
)]

use std::path::Path;

use modhash::anchor::RECORD_LEN;
use modhash::{seal, Anchor, Digest, Manifest, Profile};

fn c_host() -> Vec<u8> {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../modhash-cli/tests/cmd/fixtures/c-host.so");
    std::fs::read(fixture).unwrap()
}

fn manifest(seed: u8) -> Manifest {
    Manifest::new(
        Profile::ElfImage,
        (0..4u8).map(|i| (format!("m{i}.so"), Digest::sha256(&[seed, i]))),
    )
    .unwrap()
}

#[test]
fn two_copies_sealed_alike_are_identical_and_only_the_record_changes() {
    let host = c_host();
    let first = seal::seal(&host, &manifest(1)).unwrap();
    let second = seal::seal(&host.clone(), &manifest(1)).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        seal::seal(&first, &manifest(1)).unwrap(),
        first,
        "idempotent"
    );

    let slot = seal::locate(&host).unwrap();
    assert!(slot.by_section);
    let record = slot.offset..slot.offset + RECORD_LEN;
    let changed: Vec<usize> = (0..host.len()).filter(|&i| host[i] != first[i]).collect();
    assert!(
        changed.iter().all(|i| record.contains(i)),
        "bytes outside the record changed"
    );
}

#[test]
fn resealing_with_another_manifest_replaces_the_root() {
    let sealed = seal::seal(&c_host(), &manifest(1)).unwrap();
    let resealed = seal::seal(&sealed, &manifest(2)).unwrap();
    let (_, anchor) = seal::read(&resealed).unwrap();
    assert!(anchor.anchors(&manifest(2)));
    assert!(!anchor.anchors(&manifest(1)));
    assert_eq!(seal::read(&c_host()).unwrap().1, Anchor::Unsealed);
}

#[test]
fn a_magic_too_close_to_the_end_is_a_truncated_record() {
    let host = c_host();
    let slot = seal::locate(&host).unwrap();
    // An ELF file without a section table whose only magic is cut short.
    let mut cut = host[..slot.offset + 20].to_vec();
    cut[40..48].fill(0);
    cut[60..64].fill(0);
    assert!(matches!(
        seal::read(&cut),
        Err(seal::SealError::BadRecord {
            source: modhash::anchor::AnchorError::Truncated,
            ..
        })
    ));
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modhash-cli/tests/cmd/fixtures/forged-anchor")
        .join(name);
    std::fs::read(path).unwrap()
}

/// The section table is not what the running host reads: a record that
/// only the section table points at must never be reported as the anchor
/// (make-hostile.sh builds these from c-host.so).
#[test]
fn a_record_outside_the_loaded_segments_is_refused() {
    assert!(matches!(
        seal::read(&fixture("anchor-in-comment-only.so")),
        Err(seal::SealError::NotLoaded(0x3000))
    ));
    // The real record is the one magic in the loaded bytes; the forged copy
    // over .comment is not a second slot, and the section table pointing at
    // it is caught.
    assert_eq!(
        seal::read(&fixture("anchor-in-comment.so")),
        Err(seal::SealError::SectionElsewhere {
            section: 0x3000,
            record: 0x2000
        })
    );
    assert!(matches!(
        seal::seal(&fixture("anchor-in-comment-only.so"), &manifest(1)),
        Err(seal::SealError::NotLoaded(_))
    ));
}

#[test]
fn the_section_must_name_the_record_the_magic_marks() {
    // Point .modhash_anchor's sh_offset at loaded bytes that are not the
    // record: the record itself is fine, the section table lies.
    let mut host = fixture("anchor-in-comment-only.so");
    let original = c_host();
    let record = seal::locate(&original).unwrap().offset;
    host[record] = original[record];
    host[0x3000..0x3040].copy_from_slice(&original[0x3000..0x3040]);
    let shdr_offset_field = host
        .windows(8)
        .position(|w| w == 0x3000u64.to_le_bytes())
        .unwrap();
    host[shdr_offset_field..shdr_offset_field + 8]
        .copy_from_slice(&((record - 64) as u64).to_le_bytes());
    assert_eq!(
        seal::locate(&host),
        Err(seal::SealError::SectionElsewhere {
            section: record - 64,
            record
        })
    );
}
