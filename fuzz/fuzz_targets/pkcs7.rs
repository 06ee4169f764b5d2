//! The PKCS#7/CMS SignedData of a Linux module signature, parsed and
//! checked as `modhash verify` checks it (`Keyring::check`), and read for
//! display (`signature::linux::signer_identity`).
//!
//! The input is the DER signature alone; the target appends it to a fixed
//! payload with a well-formed trailer, so every mutation lands in the DER
//! (the trailer has a target of its own). Seeds are the signatures of the
//! signed test modules, whose certificates are in the ring, so mutations
//! reach the signature arithmetic, not only the decoder.
//!
//! Invariant: a module whose signature verifies has a readable signer.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use modhash::linux_trailer::{MODULE_SIG_MARKER, PKEY_ID_PKCS7};
use modhash::signature::{linux, Keyring};

const PAYLOAD: &[u8] = include_bytes!("../../crates/modhash/src/signature/testdata/module.bin");

static RING: LazyLock<Keyring> = LazyLock::new(|| {
    Keyring::from_files(&[
        include_bytes!("../../crates/modhash/src/signature/testdata/rsa2048.crt.pem"),
        include_bytes!("../../crates/modhash/src/signature/testdata/p256.crt.pem"),
        include_bytes!("../../crates/modhash/src/signature/testdata/p384.crt.pem"),
    ])
    .expect("the test certificates load")
});

fuzz_target!(|der: &[u8]| {
    let Ok(sig_len) = u32::try_from(der.len()) else {
        return;
    };
    let mut module = PAYLOAD.to_vec();
    module.extend_from_slice(der);
    module.extend_from_slice(&[0, 0, PKEY_ID_PKCS7, 0, 0, 0, 0, 0]);
    module.extend_from_slice(&sig_len.to_be_bytes());
    module.extend_from_slice(MODULE_SIG_MARKER);

    let identity = linux::signer_identity(&module);
    // No sidecar files exist at this path, so only the appended signature
    // is checked.
    let verdict = RING.check(
        Path::new("/nonexistent/modhash-fuzz/module.ko"),
        &module,
        None,
    );
    if verdict.is_ok() {
        assert!(
            matches!(identity, Ok(Some(_))),
            "a verified signature has no readable signer: {identity:?}"
        );
    }
});
