//! Kernel image certificate extraction (`kernel_image::certificates`): the
//! bzImage setup header, the payload finder, four decompressors and the
//! certificate scan.
//!
//! Invariant: every certificate found parses as a certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::signature::{kernel_image, linux};

fuzz_target!(|bytes: &[u8]| {
    let Ok(found) = kernel_image::certificates(bytes) else {
        return;
    };
    assert!(!found.certificates.is_empty());
    for der in &found.certificates {
        assert!(linux::certificate_subject(der).is_some());
    }
    let _ = found.to_pem();
});
