//! The anchor record (`Anchor::parse`) and finding it in a host
//! (`seal::locate`, `seal::read`), then sealing (`seal::seal`).
//!
//! Invariants: the lenient and strict record readers agree; a sealed
//! record parses back to what was sealed; reading a host's anchor finds
//! the slot `locate` finds, with the whole record inside the file; sealing
//! changes only the 64 record bytes, and the sealed host reads back as
//! anchoring the manifest.
//!
//! `locate` alone may return a slot whose record runs past the end of the
//! file (a magic in the last 63 bytes); `read` then refuses it.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use modhash::anchor::RECORD_LEN;
use modhash::{seal, Anchor, Digest, Manifest, Profile};

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    Manifest::new(
        Profile::ElfImage,
        [("a.so".to_owned(), Digest::sha256(b"a"))],
    )
    .expect("a valid manifest")
});

fuzz_target!(|bytes: &[u8]| {
    match Anchor::parse(bytes) {
        Ok(anchor) => {
            assert_eq!(Anchor::from_record(bytes), anchor);
            if let Anchor::Sealed { .. } = anchor {
                assert!(anchor.is_sealed());
            }
        }
        Err(error) => assert_eq!(Anchor::from_record(bytes), Anchor::Invalid(error)),
    }
    let sealed_record = Anchor::sealed_record(&MANIFEST);
    assert!(Anchor::parse(&sealed_record).is_ok_and(|a| a.anchors(&MANIFEST)));

    let located = seal::locate(bytes);
    let Ok((slot, _)) = seal::read(bytes) else {
        return;
    };
    assert_eq!(located, Ok(slot));
    assert!(slot.offset + RECORD_LEN <= bytes.len());
    let sealed = seal::seal(bytes, &MANIFEST).expect("a host whose anchor reads can be sealed");
    assert_eq!(sealed.len(), bytes.len());
    let record = slot.offset..slot.offset + RECORD_LEN;
    for (at, (before, after)) in bytes.iter().zip(&sealed).enumerate() {
        assert!(
            before == after || record.contains(&at),
            "sealing changed byte {at}, outside the record at {record:?}"
        );
    }
    if let Ok((_, anchor)) = seal::read(&sealed) {
        assert!(
            anchor.anchors(&MANIFEST),
            "the sealed host does not anchor the manifest"
        );
    }
});
