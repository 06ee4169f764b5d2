//! The loader end to end, with real modules built from this workspace and
//! the C example.

mod common;

use std::fs;

use modhash::{Digest, Profile};
use modhash_load::{Action, CallError, DigestSet, LoadError, Loader, Verdict};

fn digest(profile: Profile, bytes: &[u8]) -> Digest {
    profile.digest(bytes).expect("digest")
}

#[test]
fn a_trusted_module_loads_in_process_and_answers() {
    let path = common::variant_a();
    let bytes = fs::read(path).expect("read");
    let trusted = digest(Profile::ElfImage, &bytes);
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [trusted], Action::Reject));
    let module = loader.load(path).expect("load");
    assert_eq!(module.trust(), &Verdict::TrustedByHash);
    assert_eq!(module.name(), "variant");
    assert_eq!(module.digest(), trusted);
    assert!(!module.is_isolated());
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);
    assert_eq!(module.call(1, b"echo").expect("call"), b"echo");
    assert!(loader.tainted().is_empty());
}

#[test]
fn module_errors_and_panics_reach_the_host_as_errors() {
    let path = common::variant_a();
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Taint));
    let module = loader.load(path).expect("load");
    common::assert_failures_reach_the_host(|method, input| module.call(method, input));
    let refused = loader
        .load_with_config(path, b"refuse")
        .expect_err("create refuses");
    assert!(
        refused.to_string().contains("refused by configuration"),
        "{refused}"
    );
}

#[test]
fn untrusted_modules_are_rejected_tainted_or_isolated_as_the_policy_says() {
    let path = common::variant_a();
    let rejected = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Reject))
        .load(path)
        .expect_err("rejected");
    assert!(matches!(rejected, LoadError::Rejected { .. }), "{rejected}");

    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Taint));
    let module = loader.load(path).expect("tainted load");
    assert!(!module.trust().is_trusted());
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);
    let tainted = loader.tainted();
    assert_eq!(tainted.len(), 1);
    assert_eq!(tainted[0].path, path);
    assert_eq!(tainted[0].digest, module.digest());

    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Isolate));
    match loader.load(path) {
        Err(LoadError::Isolation { .. }) => {}
        Ok(module) => assert!(module.is_isolated()),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn the_loaded_image_survives_strip_and_is_what_was_hashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = common::variant_a();
    let stripped = dir.path().join("libstripped.so");
    let status = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&stripped)
        .arg(original)
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    let a = fs::read(original).expect("read");
    let b = fs::read(&stripped).expect("read");
    assert_ne!(a, b, "strip changed nothing");
    let trusted = digest(Profile::ElfImage, &a);
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [trusted], Action::Reject));
    let module = loader
        .load(&stripped)
        .expect("stripped module keeps its elf-image digest");
    assert_eq!(module.trust(), &Verdict::TrustedByHash);
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);
}

#[test]
fn the_c_example_module_loads_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = common::c_module(dir.path());
    let trusted = digest(Profile::ElfImage, &fs::read(&path).expect("read"));
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [trusted], Action::Reject));
    let module = loader.load_with_config(&path, b"> ").expect("load");
    assert_eq!(module.name(), "c-upper");
    assert_eq!(
        module.call(0, b"hello, world").expect("call"),
        b"> HELLO, WORLD"
    );
    assert!(matches!(module.call(5, b""), Err(CallError::Module(_))));
}

#[test]
fn what_is_not_a_loadable_module_gets_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Taint));

    let text = dir.path().join("notes.txt");
    fs::write(&text, "not a module").expect("write");
    let err = loader.load(&text).expect_err("not ELF");
    assert!(matches!(err, LoadError::Profile { .. }), "{err}");

    let err = loader.load(dir.path()).expect_err("directory");
    assert!(err.to_string().contains("not a regular file"), "{err}");

    // A valid shared object without the ABI symbol: the module with its
    // entry point's name changed.
    let a = fs::read(common::variant_a()).expect("read");
    let renamed = replace_all(&a, b"modhash_plugin_v1", b"modhash_plugin_v0");
    let foreign = dir.path().join("libforeign.so");
    fs::write(&foreign, renamed).expect("write");
    let err = loader.load(&foreign).expect_err("no entry point");
    assert!(err.to_string().contains("not a modhash module"), "{err}");

    let capped =
        Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Taint)).with_size_cap(1000);
    let err = capped.load(common::variant_a()).expect_err("too large");
    assert!(err.to_string().contains("1000-byte limit"), "{err}");
}

#[test]
fn a_rewritten_file_loads_as_a_new_module_never_as_the_old_one() {
    // Load A, drop it, write B to the same path, load again: the second load
    // must run B even though glibc may reuse the memfd's number.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("libmodule.so");
    let a = fs::read(common::variant_a()).expect("read");
    let b = common::variant_b_bytes(&a);
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Taint));
    for _ in 0..3 {
        fs::write(&path, &a).expect("write");
        let module = loader.load(&path).expect("load a");
        assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);
        drop(module);
        fs::write(&path, &b).expect("write");
        let module = loader.load(&path).expect("load b");
        assert_eq!(module.call(0, b"").expect("call"), common::MARKER_B);
    }
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    let starts: Vec<usize> = haystack
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(at, _)| at)
        .collect();
    for at in starts {
        out.get_mut(at..at + to.len())
            .expect("in range")
            .copy_from_slice(to);
    }
    out
}
