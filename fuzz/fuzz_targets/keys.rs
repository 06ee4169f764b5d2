//! Key files (`Keyring::add_file`: PEM, DER, OpenSSH) and the libcamera
//! public key read out of a shared object (`libcamera::extract_key`).
//!
//! Invariants: a key file adds exactly the keys it reports, and nothing on
//! error; an extracted key is itself a loadable key file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modhash::signature::{libcamera, Keyring};

fuzz_target!(|bytes: &[u8]| {
    let mut ring = Keyring::new();
    match ring.add_file(bytes) {
        Ok(added) => {
            assert!(added > 0);
            assert_eq!(ring.len(), added);
            assert_eq!(ring.describe().len(), added);
        }
        Err(_) => assert!(ring.is_empty(), "a refused key file added keys"),
    }
    if let Ok(key) = libcamera::extract_key(bytes) {
        assert!(Keyring::new().add_file(&key).is_ok());
    }
});
