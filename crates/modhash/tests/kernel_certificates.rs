//! The keys a kernel image trusts are its system certificate list, less what
//! its own blacklist and revocation list name: read from images compiled
//! from `kernel-certs.S`, which lays the lists out as the kernel's
//! `certs/*.S` do, with a decoy certificate elsewhere in the image
//! (`crates/modhash-cli/tests/cmd/signatures/make-fixtures.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a test failure"
)]

use std::path::Path;

use modhash::signature::kernel_image::{self, CertificateList, Distrust, Located};
use modhash::signature::linux::{self, LinuxError};
use modhash::signature::{Keyring, Rejection};

fn fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modhash-cli/tests/cmd/signatures");
    std::fs::read(dir.join(name)).unwrap()
}

fn vector(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/signature/testdata");
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn symbols_and_layout_find_the_same_lists() {
    let by_symbols = kernel_image::certificates(&fixture("vmlinux-fake")).unwrap();
    let by_layout = kernel_image::certificates(&fixture("bzImage-fake")).unwrap();
    assert_eq!(by_symbols.located, Located::Symbols);
    assert_eq!(by_layout.located, Located::Layout);
    assert_eq!(by_symbols.certificates, by_layout.certificates);

    let summary: Vec<(String, CertificateList, bool)> = by_symbols
        .certificates
        .iter()
        .map(|c| {
            (
                linux::certificate_subject(&c.der).unwrap(),
                c.list,
                c.is_trusted(),
            )
        })
        .collect();
    let row = |cn: &str, list, trusted| (format!("modhash test {cn}"), list, trusted);
    assert_eq!(
        summary,
        vec![
            row("rsa2048", CertificateList::System, true),
            row("p256", CertificateList::System, false),
            row("p384", CertificateList::System, false),
            row("p384", CertificateList::Revocation, false),
        ]
    );
    assert!(matches!(
        by_symbols.certificates[1].distrust,
        Some(Distrust::TbsHash(_))
    ));
    assert_eq!(by_symbols.certificates[2].distrust, Some(Distrust::Revoked));
}

/// Modules signed by a blacklisted, a revoked or a decoy certificate's key
/// are not trusted with the keys extracted from the image; the module
/// signing key's are.
#[test]
fn only_modules_signed_by_a_trusted_builtin_key_verify() {
    for image in ["vmlinux-fake", "bzImage-fake"] {
        let pem = kernel_image::certificates(&fixture(image))
            .unwrap()
            .to_pem();
        let ring = Keyring::from_files(&[pem.as_bytes()]).unwrap();
        assert_eq!(ring.len(), 1, "{image}: only the signing key is trusted");
        let module = Path::new("m.ko");
        ring.check(module, &vector("rsa-sha256.ko"), None).unwrap();
        for distrusted in ["p256-sha256.ko", "p384-sha384.ko"] {
            let rejections = ring.check(module, &vector(distrusted), None).unwrap_err().0;
            assert!(
                matches!(
                    rejections.as_slice(),
                    [Rejection::Linux(LinuxError::UnknownSigner(_))]
                ),
                "{image}: {distrusted}: {rejections:?}"
            );
        }
    }
    // The trusted key is the signing key itself, not the decoy of the same
    // subject in .data.
    let found = kernel_image::certificates(&fixture("bzImage-fake")).unwrap();
    let trusted: Vec<&[u8]> = found
        .certificates
        .iter()
        .filter(|c| c.is_trusted())
        .map(|c| c.der.as_slice())
        .collect();
    assert_eq!(trusted, vec![vector("rsa2048.crt.der").as_slice()]);
}

/// A size symbol that names more bytes than the image holds, or bytes that
/// are not back-to-back certificates, is an error, never a guess.
#[test]
fn a_size_the_list_does_not_have_is_refused() {
    let image = fixture("vmlinux-fake");
    let found = kernel_image::certificates(&image).unwrap();
    let system: usize = found
        .certificates
        .iter()
        .filter(|c| c.list == CertificateList::System)
        .map(|c| c.der.len())
        .sum();
    let at = image
        .windows(8)
        .position(|w| w == (system as u64).to_le_bytes())
        .unwrap();
    for size in [u64::MAX, system as u64 - 1] {
        let mut bad = image.clone();
        bad[at..at + 8].copy_from_slice(&size.to_le_bytes());
        assert!(
            matches!(
                kernel_image::certificates(&bad),
                Err(kernel_image::KernelImageError::BadSymbol {
                    symbol: "system_certificate_list",
                    ..
                })
            ),
            "size {size}"
        );
    }
}
