//! The appended-trailer splitter (`linux_trailer::split`), which the
//! `payload` profile and every Linux signature check go through.
//!
//! Invariants: the payload is a prefix of the file; a module signature's
//! parts add up to exactly the file; a modhash trailer re-encodes to the
//! same bytes; signature stripping returns the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::linux_trailer::{
    append_modhash_trailer, split, Trailer, MODULE_SIGNATURE_STRUCT_LEN, MODULE_SIG_MARKER,
};
use modhash::signature::linux;
use modhash::{Digest, Profile};

fuzz_target!(|bytes: &[u8]| {
    let Ok(split) = split(bytes) else {
        assert!(Profile::Payload.digest(bytes).is_err());
        return;
    };
    assert!(bytes.starts_with(split.payload), "payload is not a prefix");
    assert_eq!(
        Profile::Payload.digest(bytes).ok(),
        Some(Digest::sha256(split.payload))
    );
    match split.trailer {
        Trailer::None => {
            assert_eq!(split.payload.len(), bytes.len());
            assert!(linux::strip(bytes).is_err());
        }
        Trailer::ModuleSignature { info, signature } => {
            assert_eq!(signature.len() as u64, u64::from(info.sig_len));
            // What mod_check_sig requires: nothing skipped, a payload left.
            assert_eq!(
                (info.algo, info.hash, info.signer_len, info.key_id_len),
                (0, 0, 0, 0)
            );
            assert!(!split.payload.is_empty());
            assert_eq!(
                split.payload.len()
                    + signature.len()
                    + MODULE_SIGNATURE_STRUCT_LEN
                    + MODULE_SIG_MARKER.len(),
                bytes.len()
            );
            assert_eq!(linux::strip(bytes).ok(), Some(split.payload));
        }
        Trailer::Modhash { body } => {
            assert_eq!(
                append_modhash_trailer(split.payload, body).as_deref(),
                Some(bytes)
            );
        }
    }
});
