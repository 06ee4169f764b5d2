//! Verify-and-load through the C API against `modhash_load::Loader::load`
//! on the same ~400 KB module, under the same policy (a sealed anchor and
//! its manifest), side by side.
//!
//! `cargo bench -p modhash-capi --bench c_api` (release profile).
//! `MODHASH_BENCH_ROUNDS` sets the rounds (default 2000). Each round times
//! one load of each kind, in turn, so both see the same machine state; the
//! module is unloaded outside the timed part. The C API is called as a C
//! host calls it: through the exported symbols of libmodhash.so, opened
//! with dlopen. The report gives medians and the ratio, held to ≤ 1.05.

#[path = "../../modhash-load/tests/common/mod.rs"]
mod modules;

use modules::{median, time};

use std::ffi::{c_char, c_int, c_void, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use modhash::anchor::Anchor;
use modhash::policy::{HashEvidence, Policy};
use modhash::{Manifest, Profile};
use modhash_load::{Action, HostPolicy, Loader};

type BuilderNew = unsafe extern "C" fn(*const c_void, usize, *mut *mut c_void) -> c_int;
type BuilderPath = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type Build = unsafe extern "C" fn(*mut c_void, *mut *mut c_void) -> c_int;
type HostLoad = unsafe extern "C" fn(*const c_void, *const c_char, *mut *mut c_void) -> c_int;
type Free = unsafe extern "C" fn(*mut c_void);

/// Builds libmodhash.so in release mode and returns its path.
fn libmodhash() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release/deps/<bench>")
        .to_owned();
    let target = dir.parent().expect("target directory");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "modhash-capi",
            "--target-dir",
        ])
        .arg(target)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building libmodhash.so failed");
    dir.join("libmodhash.so")
}

fn main() {
    let rounds = modules::bench_rounds();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("libmodule.so");
    std::fs::copy(modules::variant_a(), &path).expect("copy module");
    let bytes = std::fs::read(&path).expect("read module");
    let digest = Profile::ElfImage.digest(&bytes).expect("digest");
    let manifest =
        Manifest::new(Profile::ElfImage, [("libmodule.so".to_owned(), digest)]).expect("manifest");
    let manifest_path = dir.path().join("manifest");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let record = Anchor::sealed_record(&manifest);

    let policy = Policy::new(
        Anchor::from_record(&record),
        HashEvidence::Manifest(manifest),
    );
    let loader = Loader::new(HostPolicy::new(policy, Action::Reject));

    // SAFETY: libmodhash's constructors are Rust's; nothing else runs.
    let lib = unsafe { libloading::Library::new(libmodhash()) }.expect("dlopen libmodhash.so");
    // SAFETY: the signatures are modhash.h's.
    let (builder_new, manifest_file, build, load, module_free, host_free) = unsafe {
        (
            *lib.get::<BuilderNew>(b"modhash_host_builder_new")
                .expect("symbol"),
            *lib.get::<BuilderPath>(b"modhash_host_builder_manifest_file")
                .expect("symbol"),
            *lib.get::<Build>(b"modhash_host_build").expect("symbol"),
            *lib.get::<HostLoad>(b"modhash_host_load").expect("symbol"),
            *lib.get::<Free>(b"modhash_module_free").expect("symbol"),
            *lib.get::<Free>(b"modhash_host_free").expect("symbol"),
        )
    };
    let c_manifest = CString::new(manifest_path.as_os_str().as_bytes()).expect("path");
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("path");
    let mut builder = std::ptr::null_mut();
    let mut host = std::ptr::null_mut();
    // SAFETY: valid pointers, as modhash.h asks.
    unsafe {
        assert_eq!(
            builder_new(record.as_ptr().cast(), record.len(), &mut builder),
            0
        );
        assert_eq!(manifest_file(builder, c_manifest.as_ptr()), 0);
        assert_eq!(build(builder, &mut host), 0);
    }
    let c_load = || {
        let mut module = std::ptr::null_mut();
        // SAFETY: a live host and a NUL-terminated path.
        let status = unsafe { load(host, c_path.as_ptr(), &mut module) };
        assert_eq!(status, 0, "C API load failed");
        module
    };

    let mut rust = Vec::with_capacity(rounds);
    let mut c = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut module = None;
        rust.push(time(|| module = Some(loader.load(&path).expect("load"))));
        drop(module);
        let mut module = std::ptr::null_mut();
        c.push(time(|| module = c_load()));
        // SAFETY: a module from modhash_host_load, freed once.
        unsafe { module_free(module) };
    }
    // SAFETY: the host is freed once, after its last module.
    unsafe { host_free(host) };

    let rust = median(&mut rust);
    let c = median(&mut c);
    println!("module: {} bytes, {rounds} rounds, medians", bytes.len());
    println!(
        "  Loader::load (Rust)           {:>9.1} µs",
        rust.as_secs_f64() * 1e6
    );
    println!(
        "  modhash_host_load (C API)     {:>9.1} µs",
        c.as_secs_f64() * 1e6
    );
    println!(
        "  ratio C API / Rust            {:>9.3}  (target ≤ 1.05)",
        c.as_secs_f64() / rust.as_secs_f64()
    );
}
