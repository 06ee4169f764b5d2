//! Kernel image certificate extraction (`kernel_image::certificates`): the
//! bzImage setup header, the payload finder, four decompressors and the
//! certificate scan.
//!
//! Invariant: every certificate found parses as a certificate, and only
//! system list certificates are ever trusted (written by `to_pem`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::signature::{kernel_image, linux};

fuzz_target!(|bytes: &[u8]| {
    let Ok(found) = kernel_image::certificates(bytes) else {
        return;
    };
    assert!(!found.certificates.is_empty());
    for cert in &found.certificates {
        assert!(linux::certificate_subject(&cert.der).is_some());
        if cert.is_trusted() {
            assert_eq!(cert.list, kernel_image::CertificateList::System);
        }
    }
    let trusted = found.certificates.iter().filter(|c| c.is_trusted()).count();
    assert_eq!(found.to_pem().matches("-----BEGIN CERTIFICATE-----").count(), trusted);
});
