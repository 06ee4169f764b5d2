//! Mutation test of the `elf-image` profile against the loader.
//!
//! A real module (the C example, built by the system C compiler) is
//! changed one byte at a time: at every byte the profile hashes (the ELF
//! header except its section-table fields, the program header table, each
//! segment's file bytes), where the change must make the module
//! untrusted; and at a sample of the other bytes (every one in the ELF
//! header, every [`OUTSIDE_STRIDE`]th elsewhere: section headers, symbol
//! tables, debug info, padding between segments), where it must leave the
//! digest unchanged or make the file refused. In every case the digest
//! the loader computes from its sealed memfd, the bytes it would map, must
//! be the SHA-256 of the image this test builds from the profile's
//! definition on its own.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]
#![allow(clippy::indexing_slicing, reason = "test data of known shape")]

mod common;

use std::ops::Range;

use modhash::policy::{HashEvidence, Policy};
use modhash::{Anchor, Digest, Manifest, Profile};
use modhash_load::{Action, DigestSet, LoadError, Loader};

/// One unhashed byte in this many is changed, outside the ELF header.
const OUTSIDE_STRIDE: usize = 8;

/// The ELF header fields the image clears: e_shoff, e_shnum, e_shstrndx.
const CLEARED: [Range<usize>; 2] = [40..48, 60..64];

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The file ranges the definition covers: the ELF header, the program
/// header table and every segment's `[p_offset, p_offset + p_filesz)`.
/// Only called on files the library accepted, so every range fits.
fn covered(bytes: &[u8]) -> Vec<Range<usize>> {
    let phoff = usize::try_from(u64_at(bytes, 32)).unwrap();
    let phnum = usize::from(u16_at(bytes, 56));
    let mut ranges = vec![0..64, phoff..phoff + 56 * phnum];
    for index in 0..phnum {
        let at = phoff + 56 * index;
        let offset = usize::try_from(u64_at(bytes, at + 8)).unwrap();
        let filesz = usize::try_from(u64_at(bytes, at + 32)).unwrap();
        if filesz > 0 {
            ranges.push(offset..offset + filesz);
        }
    }
    ranges
}

/// The canonical image by the profile's definition, written independently
/// of the library: covered bytes kept, the rest zero, the section-table
/// fields zero, cut after the last covered byte.
fn definition_image(bytes: &[u8]) -> Vec<u8> {
    let ranges = covered(bytes);
    let end = ranges.iter().map(|r| r.end).max().unwrap();
    let mut image = vec![0u8; end];
    for range in ranges {
        image[range.clone()].copy_from_slice(&bytes[range]);
    }
    for field in CLEARED {
        image[field].fill(0);
    }
    image
}

#[test]
fn every_hashed_byte_matters_and_no_other_byte_does() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(common::c_module(dir.path())).unwrap();
    let digest = Profile::ElfImage.digest(&original).unwrap();
    assert_eq!(digest, Digest::sha256(&definition_image(&original)));

    let manifest = Manifest::new(Profile::ElfImage, [("libupper.so".to_owned(), digest)]).unwrap();
    let anchor = Anchor::parse(&Anchor::sealed_record(&manifest)).unwrap();
    let policy = Policy::new(anchor, HashEvidence::Manifest(manifest));
    // A judge that trusts nothing: every module is sealed, hashed and then
    // refused with the sealed image's digest, and nothing is ever mapped.
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Reject));

    let inside = |at: usize| {
        covered(&original).iter().any(|r| r.contains(&at))
            && !CLEARED.iter().any(|r| r.contains(&at))
    };
    let path = dir.path().join("mutant.so");
    assert!(policy.decide_module(&path, &original, None).is_trusted());
    let (mut hashed, mut sampled, mut refused) = (0, 0, 0);
    for at in 0..original.len() {
        if !inside(at) && at >= 64 && at % OUTSIDE_STRIDE != 0 {
            continue;
        }
        let mut mutant = original.clone();
        mutant[at] ^= 0xff;
        std::fs::write(&path, &mutant).unwrap();
        let verdict = policy.decide_module(&path, &mutant, None);
        let sealed = match loader.load(&path) {
            Err(LoadError::Rejected { digest, .. }) => Some(digest),
            Err(LoadError::Profile { .. }) => None,
            Err(other) => panic!("byte {at}: {other}"),
            Ok(_) => panic!("byte {at}: a judge trusting nothing loaded a module"),
        };
        match sealed {
            Some(sealed) => {
                assert_eq!(
                    sealed,
                    Digest::sha256(&definition_image(&mutant)),
                    "byte {at}: the loader sealed other bytes than the definition's image"
                );
                assert_eq!(Profile::ElfImage.digest(&mutant).ok(), Some(sealed));
                assert_eq!(verdict.is_trusted(), sealed == digest, "byte {at}");
            }
            None => {
                assert!(Profile::ElfImage.digest(&mutant).is_err(), "byte {at}");
                assert!(!verdict.is_trusted(), "byte {at}: {verdict}");
            }
        }
        if inside(at) {
            hashed += 1;
            assert!(
                !verdict.is_trusted(),
                "byte {at} is hashed, yet changing it left the module trusted"
            );
        } else {
            assert!(
                sealed.is_none_or(|d| d == digest),
                "byte {at} is not hashed, yet changing it changed the digest"
            );
            sampled += 1;
            refused += usize::from(sealed.is_none());
        }
    }
    // The module has both kinds of bytes in quantity: a test that
    // classified everything one way would prove nothing.
    assert!(hashed > 1000, "{hashed} hashed bytes");
    assert!(sampled > 1000, "{sampled} unhashed bytes changed");
    eprintln!(
        "{} bytes: {hashed} hashed, all changed; {} not, {sampled} changed ({refused} refused)",
        original.len(),
        original.len() - hashed
    );
}
