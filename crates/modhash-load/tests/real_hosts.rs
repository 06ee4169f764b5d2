//! The `Host` facade on Debian's packages, which nobody here wrote.
//!
//! libcamera, used the way its IPAManager would use the facade: every IPA
//! module is trusted by the RSA key that libcamera.so compiles in (a DER
//! SubjectPublicKeyInfo given to `trusted_key`), or by hash under a sealed
//! manifest even after `strip`; a changed byte is trusted neither way; a
//! judged module opens as a raw library whose `ipaModuleInfo` is looked up
//! through the handle. Linux: kernel modules are trusted by the X.509
//! certificates built into vmlinuz, given to `trusted_key` as DER.
//!
//! Needs `MODHASH_TESTDATA` (`scripts/fetch-testdata`); without it each test
//! says it is skipped. Opening the modules needs libcamera's own
//! dependencies installed (`liblttng-ust1` among them).

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

use modhash::signature::{kernel_image, libcamera};
use modhash::{Anchor, Manifest, Profile};
use modhash_load::{Host, LoadError, Untrusted, Verdict};

fn testdata() -> Option<PathBuf> {
    match std::env::var_os("MODHASH_TESTDATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("skipped: set MODHASH_TESTDATA (scripts/fetch-testdata)");
            None
        }
    }
}

/// The directory of Debian's libcamera.so and libcamera-base.so.
fn libcamera_dir(data: &Path) -> PathBuf {
    data.join("libcamera/usr/lib/x86_64-linux-gnu")
}

/// Debian's IPA modules, sorted.
fn ipa_modules(data: &Path) -> Vec<PathBuf> {
    let dir = data.join("libcamera-ipa/usr/lib/x86_64-linux-gnu/libcamera");
    let mut modules: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the IPA modules' directory; run scripts/fetch-testdata")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "so"))
        .collect();
    modules.sort();
    assert!(!modules.is_empty(), "no IPA modules in {}", dir.display());
    modules
}

/// The IPA public key compiled into Debian's libcamera.so.
fn libcamera_key(data: &Path) -> Vec<u8> {
    let so = libcamera_dir(data).join("libcamera.so.0.0.3");
    libcamera::extract_key(&std::fs::read(&so).expect("read libcamera.so"))
        .expect("libcamera.so holds the IPA key")
}

/// `path`'s file name.
fn name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 name")
}

#[test]
fn ipa_modules_are_trusted_by_libcamera_s_key_and_open_as_raw_libraries() {
    let Some(data) = testdata() else { return };
    let host = Host::builder(Anchor::Unsealed)
        .allow_unsealed()
        .trusted_key(libcamera_key(&data))
        .build()
        .expect("a host trusting libcamera's key");

    // What libcamera.so is to its IPA modules: loaded before them, so that
    // the dynamic loader finds their DT_NEEDED by SONAME.
    for lib in ["libcamera-base.so.0.0.3", "libcamera.so.0.0.3"] {
        let path = CString::new(
            libcamera_dir(&data)
                .join(lib)
                .into_os_string()
                .into_encoded_bytes(),
        )
        .expect("path");
        // SAFETY: loading Debian's libcamera runs its constructors, which
        // only register pipeline handlers; the handle is kept for the life
        // of the test process on purpose.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        assert!(
            !handle.is_null(),
            "cannot load {lib}: install libcamera's dependencies (liblttng-ust1)"
        );
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    for module in ipa_modules(&data) {
        assert!(
            matches!(host.verify(&module), Verdict::TrustedBySignature { .. }),
            "{}: {}",
            module.display(),
            host.verify(&module)
        );
        let judged = host.judge(&module).expect("judge");
        assert!(judged.verdict().is_trusted());
        let library = host.open_library(judged).expect("open the judged image");
        let info = library.symbol("ipaModuleInfo").expect("ipaModuleInfo");
        assert!(!info.is_null());
        let symbol = CString::new("ipaModuleInfo").expect("name");
        // SAFETY: dlsym on the handle the library is open under, with a
        // NUL-terminated name; it only looks the symbol up.
        let direct = unsafe { libc::dlsym(library.handle(), symbol.as_ptr()) };
        assert_eq!(direct, info, "the raw handle is the library's");
        // SAFETY: libcamera 0.0.3's IPAModuleInfo is packed
        // {int moduleAPIVersion; uint32_t pipelineVersion;
        // char pipelineName[256]; char name[256];}; both strings are
        // NUL-terminated within their arrays, and the library stays open.
        let (api, pipeline, ipa_name) = unsafe {
            let text = |offset| {
                let text = CStr::from_ptr(info.cast::<u8>().add(offset).cast());
                text.to_str().expect("ASCII").to_owned()
            };
            (info.cast::<i32>().read_unaligned(), text(8), text(8 + 256))
        };
        assert_eq!(api, 1, "{}: module API version", module.display());
        assert!(pipeline.starts_with("PipelineHandler"), "{pipeline}");
        let expected = match name(&module) {
            "ipa_rpi.so" => "raspberrypi",
            other => other
                .strip_prefix("ipa_")
                .and_then(|n| n.strip_suffix(".so"))
                .unwrap_or(other),
        };
        assert_eq!(ipa_name, expected, "{}", module.display());
        drop(library);

        // One changed byte, with the genuine .sign beside it: untrusted.
        let mut bytes = std::fs::read(&module).expect("read");
        let middle = bytes.len() / 2;
        *bytes.get_mut(middle).expect("a byte in the middle") ^= 1;
        let changed = tmp.path().join(name(&module));
        std::fs::write(&changed, &bytes).expect("write");
        std::fs::copy(
            modhash::signature::sidecar_path(&module, libcamera::EXTENSION),
            modhash::signature::sidecar_path(&changed, libcamera::EXTENSION),
        )
        .expect("copy .sign");
        assert!(!host.verify(&changed).is_trusted(), "{}", changed.display());
        let refused = host.open_library(host.judge(&changed).expect("judge"));
        assert!(matches!(refused, Err(LoadError::Rejected { .. })));
    }
}

#[test]
fn ipa_modules_in_a_sealed_manifest_stay_trusted_by_hash_after_strip() {
    let Some(data) = testdata() else { return };
    let modules = ipa_modules(&data);
    let manifest = Manifest::new(
        Profile::ElfImage,
        modules.iter().map(|path| {
            let bytes = std::fs::read(path).expect("read");
            let digest = Profile::ElfImage.digest(&bytes).expect("elf-image");
            (name(path).to_owned(), digest)
        }),
    )
    .expect("manifest");
    let tmp = tempfile::tempdir().expect("tempdir");
    let manifest_path = tmp.path().join("ipa.manifest");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write");
    let host = Host::builder(Anchor::from_record(&Anchor::sealed_record(&manifest)))
        .manifest_file(&manifest_path)
        .untrusted(Untrusted::Reject)
        .build()
        .expect("a sealed host");
    for module in &modules {
        let stripped = tmp.path().join(name(module));
        let status = std::process::Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(&stripped)
            .arg(module)
            .status()
            .expect("run strip (binutils)");
        assert!(status.success());
        assert_eq!(host.verify(module), Verdict::TrustedByHash);
        assert_eq!(
            host.verify(&stripped),
            Verdict::TrustedByHash,
            "{}",
            stripped.display()
        );
    }
}

#[test]
fn kernel_modules_are_trusted_by_the_certificates_in_vmlinuz() {
    let Some(data) = testdata() else { return };
    let boot = data.join("linux-image/boot");
    let image = std::fs::read_dir(&boot)
        .expect("boot/ in the test data; run scripts/fetch-testdata")
        .map(|entry| entry.expect("directory entry").path())
        .find(|path| name(path).starts_with("vmlinuz-"))
        .expect("boot/vmlinuz-*");
    let found = kernel_image::certificates(&std::fs::read(&image).expect("read vmlinuz"))
        .expect("vmlinuz holds certificates");
    // Only the certificates the kernel itself trusts for modules.
    let host = found
        .certificates
        .iter()
        .filter(|cert| cert.is_trusted())
        .fold(
            Host::builder(Anchor::Unsealed).allow_unsealed(),
            |host, cert| host.trusted_key(&cert.der),
        )
        .build()
        .expect("a host trusting the kernel's certificates");

    // Every 50th module, in path order: the signature checks themselves are
    // covered module by module in the core's real-signature test.
    let mut modules = Vec::new();
    let mut pending = vec![data.join("linux-image/lib/modules")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read modules directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if name(&path).ends_with(".ko") {
                modules.push(path);
            }
        }
    }
    modules.sort();
    assert!(modules.len() > 1000, "only {} .ko files", modules.len());
    let tmp = tempfile::tempdir().expect("tempdir");
    for module in modules.iter().step_by(50) {
        let verdict = host.verify(module);
        assert!(
            matches!(verdict, Verdict::TrustedBySignature { .. }),
            "{}: {verdict}",
            module.display()
        );
        let mut bytes = std::fs::read(module).expect("read");
        let quarter = bytes.len() / 4;
        *bytes.get_mut(quarter).expect("a byte") ^= 1;
        let changed = tmp.path().join(name(module));
        std::fs::write(&changed, &bytes).expect("write");
        assert!(!host.verify(&changed).is_trusted(), "{}", changed.display());
    }
}
