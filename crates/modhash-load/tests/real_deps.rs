//! Debian's own libcamera IPA modules under the dependency rule: each needs
//! libcamera.so.0.0.3, libcamera-base.so.0.0.3 and system libraries.
//!
//! Needs the test data from `scripts/fetch-testdata` in `MODHASH_TESTDATA`;
//! without it the test says it is skipped.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
use modhash::policy::{Policy, SignatureTrust};
use modhash::signature::{libcamera, Keyring};
use modhash_load::deps::{DependencyError, Provider};

use modhash_load::{Action, HostPolicy, LoadError, Loader, OpenError};

fn testdata() -> Option<PathBuf> {
    let dir = std::env::var_os("MODHASH_TESTDATA").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("skipped: set MODHASH_TESTDATA (scripts/fetch-testdata)");
    }
    dir
}

/// First as a host that has not loaded libcamera (its libraries are then
/// system libraries, in the package's directory), then as libcamera does:
/// libcamera.so is loaded, the IPA module's need of it is satisfied by
/// what is loaded, and the signed module maps from its sealed image.
#[test]
fn debian_ipa_modules_load_against_the_libcamera_already_loaded() {
    let Some(data) = testdata() else { return };
    let lib = data.join("libcamera/usr/lib/x86_64-linux-gnu");
    let ipa = data.join("libcamera-ipa/usr/lib/x86_64-linux-gnu/libcamera/ipa_vimc.so");
    let key = libcamera::extract_key(&fs::read(lib.join("libcamera.so.0.0.3")).expect("read"))
        .expect("libcamera.so holds the IPA key");
    let keyring = Keyring::from_files(&[&key]).expect("key");
    let policy = Policy::signatures_only(SignatureTrust {
        keyring,
        signtab: None,
    });
    let mut dirs = vec![lib.clone()];
    dirs.extend(modhash_load::deps::default_system_dirs().iter().cloned());
    let loader = Loader::new(HostPolicy::new(policy, Action::Reject).with_system_dirs(dirs));

    let judged = loader.judge(&ipa).expect("judge");
    let (verdict, deps) = (judged.verdict().clone(), judged.dependencies());
    let provider = |name: &str| {
        deps.found
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} not among {:?}", deps.found))
            .provider
            .clone()
    };
    let root_owned = lib
        .ancestors()
        .all(|d| fs::metadata(d).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0));
    if root_owned {
        assert!(verdict.is_trusted(), "{verdict}");
        assert_eq!(
            provider("libcamera.so.0.0.3"),
            Ok(Provider::System {
                path: lib.join("libcamera.so.0.0.3")
            })
        );
    } else {
        assert!(!verdict.is_trusted(), "{verdict}");
        assert!(matches!(
            provider("libcamera.so.0.0.3"),
            Err(DependencyError::UnsafeSystemPath { .. })
        ));
    }
    assert_eq!(provider("libc.so.6"), Ok(Provider::Loaded));

    // The host: libcamera and its base library, loaded by path.
    let host: Vec<Library> = ["libcamera-base.so.0.0.3", "libcamera.so.0.0.3"]
        .iter()
        .map(|name| {
            // SAFETY: Debian's libcamera, loaded as its own programs load
            // it; its constructors only register pipeline handlers.
            unsafe { Library::open(Some(lib.join(name)), RTLD_NOW | RTLD_GLOBAL) }
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect();
    let judged = loader.judge(&ipa).expect("judge");
    let (verdict, deps) = (judged.verdict().clone(), judged.dependencies());
    assert!(verdict.is_trusted(), "{verdict}");
    for name in ["libcamera.so.0.0.3", "libcamera-base.so.0.0.3", "libc.so.6"] {
        let found = deps.found.iter().find(|d| d.name == name).expect(name);
        assert_eq!(found.provider, Ok(Provider::Loaded), "{name}");
    }
    // The signed module maps from its sealed image (dlopen succeeds); it is
    // not a modhash module, so looking up the modhash ABI is what fails.
    match loader.load(&ipa) {
        Err(LoadError::Open(OpenError::NoEntryPoint(_))) => {}
        other => panic!("expected the IPA module to map and lack the modhash ABI: {other:?}"),
    }
    drop(host);
}
