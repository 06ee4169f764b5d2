//! Signatures on real packages nobody here wrote (Debian's, fetched by
//! `scripts/fetch-testdata`): every libcamera IPA module verifies against the
//! key extracted from libcamera.so, every kernel module against the
//! certificate extracted from the package's vmlinuz, and a one-byte change
//! makes each untrusted. OpenSSL checks the same files and must agree.
//!
//! Needs `MODHASH_TESTDATA`; without it each test says it is skipped. Needs
//! the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use modhash::signature::{kernel_image, libcamera, Keyring, Scheme};

fn testdata() -> Option<PathBuf> {
    match std::env::var_os("MODHASH_TESTDATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("skipped: set MODHASH_TESTDATA (scripts/fetch-testdata)");
            None
        }
    }
}

/// Regular files under `dir` (recursively) whose name satisfies `keep`,
/// sorted.
fn files_under(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir);
        assert!(
            entries.is_ok(),
            "{}: {:?}; run scripts/fetch-testdata",
            dir.display(),
            entries.as_ref().err()
        );
        let entries = entries.expect("checked above");
        for entry in entries {
            let entry = entry.expect("directory entry");
            let file_type = entry.file_type().expect("file type");
            let path = entry.path();
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_file()
                && path.file_name().and_then(|n| n.to_str()).is_some_and(keep)
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn openssl(args: &[&std::ffi::OsStr]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command is installed")
        .status
        .success()
}

/// Flips one byte in the middle of `bytes`.
fn one_byte_changed(bytes: &[u8]) -> Vec<u8> {
    let mut changed = bytes.to_vec();
    let middle = changed.len() / 2;
    if let Some(byte) = changed.get_mut(middle) {
        *byte ^= 0x01;
    }
    changed
}

#[test]
fn libcamera_ipa_modules_verify_with_the_key_in_libcamera_so() {
    let Some(data) = testdata() else { return };
    let libs = files_under(&data.join("libcamera"), &|n| n.starts_with("libcamera.so."));
    let lib = libs.first().expect("libcamera.so.* in the test data");
    let key = libcamera::extract_key(&std::fs::read(lib).expect("read libcamera.so"))
        .expect("libcamera.so holds the IPA key");
    let ring = Keyring::from_files(&[&key]).expect("the extracted key parses");
    let tmp = tempfile::tempdir().expect("temp dir");
    let key_path = tmp.path().join("ipa.der");
    std::fs::write(&key_path, &key).expect("write key");

    let modules = files_under(&data.join("libcamera-ipa"), &|n| {
        n.starts_with("ipa_") && n.ends_with(".so")
    });
    assert!(!modules.is_empty(), "no ipa_*.so in the test data");
    for module in &modules {
        let bytes = std::fs::read(module).expect("read module");
        let signer = ring
            .check(module, &bytes, None)
            .unwrap_or_else(|e| panic!("{}: {e}", module.display()));
        assert_eq!(signer.scheme(), Scheme::Libcamera);
        let sign = modhash::signature::sidecar_path(module, libcamera::EXTENSION);
        let dgst = |file: &Path| {
            openssl(&[
                "dgst".as_ref(),
                "-sha256".as_ref(),
                "-keyform".as_ref(),
                "DER".as_ref(),
                "-verify".as_ref(),
                key_path.as_os_str(),
                "-signature".as_ref(),
                sign.as_os_str(),
                file.as_os_str(),
            ])
        };
        assert!(dgst(module), "openssl disagrees on {}", module.display());

        let changed_path = tmp.path().join("changed.so");
        std::fs::write(&changed_path, one_byte_changed(&bytes)).expect("write copy");
        std::fs::copy(
            &sign,
            modhash::signature::sidecar_path(&changed_path, "sign"),
        )
        .expect("copy .sign");
        let changed = std::fs::read(&changed_path).expect("read copy");
        assert!(
            ring.check(&changed_path, &changed, None).is_err(),
            "one changed byte in {} still verifies",
            module.display()
        );
        assert!(
            !dgst(&changed_path),
            "openssl accepts a changed {}",
            module.display()
        );
    }
}

#[test]
fn kernel_modules_verify_with_the_certificate_in_vmlinuz() {
    let Some(data) = testdata() else { return };
    let images = files_under(&data.join("linux-image/boot"), &|n| {
        n.starts_with("vmlinuz-")
    });
    let image = images.first().expect("boot/vmlinuz-* in the test data");
    let found = kernel_image::certificates(&std::fs::read(image).expect("read vmlinuz"))
        .expect("vmlinuz holds certificates");
    // Debian's payload has no symbol table: the system list is found by its
    // layout, and holds the build's module signing key, trusted.
    assert_eq!(found.located, kernel_image::Located::Layout);
    assert!(
        found.certificates.iter().all(|c| c.is_trusted()),
        "{:?}",
        found.certificates
    );
    assert_eq!(found.certificates.len(), 1);
    let pem = found.to_pem();
    let ring = Keyring::from_files(&[pem.as_bytes()]).expect("extracted certificates parse");
    let tmp = tempfile::tempdir().expect("temp dir");
    let certs = tmp.path().join("certs.pem");
    std::fs::write(&certs, &pem).expect("write certificates");

    let modules = files_under(&data.join("linux-image/lib/modules"), &|n| {
        n.ends_with(".ko")
    });
    assert!(modules.len() > 1000, "only {} .ko files", modules.len());
    for (i, module) in modules.iter().enumerate() {
        let bytes = std::fs::read(module).expect("read module");
        let signer = ring
            .check(module, &bytes, None)
            .unwrap_or_else(|e| panic!("{}: {e}", module.display()));
        assert_eq!(signer.scheme(), Scheme::Linux);
        // OpenSSL and a one-byte change on a spread sample: one process per
        // module for all 1100 would dominate the test's time.
        if i % 100 != 0 {
            continue;
        }
        let split = modhash::linux_trailer::split(&bytes).expect("trailer parses");
        let modhash::linux_trailer::Trailer::ModuleSignature { signature, .. } = split.trailer
        else {
            panic!("{} is not signed", module.display());
        };
        let sig_path = tmp.path().join("sig.der");
        std::fs::write(&sig_path, signature).expect("write signature");
        let cms_verify = |payload: &[u8]| {
            let payload_path = tmp.path().join("payload");
            std::fs::write(&payload_path, payload).expect("write payload");
            openssl(&[
                "cms".as_ref(),
                "-verify".as_ref(),
                "-binary".as_ref(),
                "-inform".as_ref(),
                "DER".as_ref(),
                "-in".as_ref(),
                sig_path.as_os_str(),
                "-content".as_ref(),
                payload_path.as_os_str(),
                "-certfile".as_ref(),
                certs.as_os_str(),
                "-noverify".as_ref(),
                "-out".as_ref(),
                "/dev/null".as_ref(),
            ])
        };
        assert!(
            cms_verify(split.payload),
            "openssl disagrees on {}",
            module.display()
        );
        let changed = one_byte_changed(&bytes);
        assert!(
            ring.check(module, &changed, None).is_err(),
            "one changed byte in {} still verifies",
            module.display()
        );
        let changed_split = modhash::linux_trailer::split(&changed).expect("trailer parses");
        assert!(
            !cms_verify(changed_split.payload),
            "openssl accepts a changed {}",
            module.display()
        );
    }
}
