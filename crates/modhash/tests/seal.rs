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
