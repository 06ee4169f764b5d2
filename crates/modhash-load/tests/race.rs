//! The race the loader exists to win: while a writer keeps replacing and
//! rewriting the module file, every module the loader loads must run exactly
//! the code whose digest it judged.
//!
//! `MODHASH_RACE_ITERATIONS` sets the number of loads (default 200; the
//! documented run uses 10000 in release mode). Counts go to stderr.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use modhash::Profile;
use modhash_load::{Action, DigestSet, Loader};

/// Replaces `path` atomically (rename), and every other time overwrites it
/// in place, without truncating, alternating between the two contents. Both
/// have the same length, so a read racing an overwrite sees a mix of A and B
/// bytes: still a valid module, whose digest must then match the code that
/// runs. Every 16th round truncates first, so torn, short files occur too.
fn keep_rewriting(path: &Path, a: &[u8], b: &[u8], stop: &AtomicBool, writes: &AtomicU64) {
    let staging = path.with_extension("new");
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let bytes = if round.is_multiple_of(2) { a } else { b };
        match round % 16 {
            15 => fs::write(path, bytes).expect("truncate and rewrite module"),
            r if r.is_multiple_of(2) => {
                fs::write(&staging, bytes).expect("write staging file");
                fs::rename(&staging, path).expect("replace module");
            }
            _ => fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|mut file| file.write_all(bytes))
                .expect("overwrite module in place"),
        }
        round += 1;
        writes.store(round, Ordering::Relaxed);
    }
}

/// Loads per test: `MODHASH_RACE_ITERATIONS`, default 200.
fn iterations() -> u64 {
    std::env::var("MODHASH_RACE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn the_code_that_runs_is_the_code_that_was_verified() {
    let iterations = iterations();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("libmodule.so");
    let a = fs::read(common::variant_a()).expect("read");
    let b = common::variant_b_bytes(&a);
    let digest_a = Profile::ElfImage.digest(&a).expect("digest");
    let digest_b = Profile::ElfImage.digest(&b).expect("digest");
    fs::write(&path, &a).expect("write");

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (path, a, b) = (path.clone(), a.clone(), b.clone());
        let (stop, writes) = (Arc::clone(&stop), Arc::clone(&writes));
        std::thread::spawn(move || keep_rewriting(&path, &a, &b, &stop, &writes))
    };

    // Only A is trusted; B loads tainted, so both kinds of load are checked.
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [digest_a], Action::Taint));
    let mut refusals = std::collections::BTreeMap::new();
    let (mut trusted_a, mut tainted_b, mut other, mut failed) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..iterations {
        let module = match loader.load(&path) {
            Ok(module) => module,
            // A snapshot taken mid-rewrite is truncated: no image, or a
            // library the dynamic loader refuses. Never a load of other bytes.
            Err(error) => {
                *refusals.entry(error.to_string()).or_insert(0u64) += 1;
                failed += 1;
                continue;
            }
        };
        let output = module.call(0, b"").expect("call");
        if module.digest() == digest_a {
            assert!(module.trust().is_trusted(), "A must be trusted");
            assert_eq!(output, common::MARKER_A, "verified A but B ran");
            trusted_a += 1;
        } else if module.digest() == digest_b {
            assert!(!module.trust().is_trusted(), "B must not be trusted");
            assert_eq!(output, common::MARKER_B, "verified B but A ran");
            tainted_b += 1;
        } else {
            assert!(
                !module.trust().is_trusted(),
                "unknown bytes must not be trusted"
            );
            other += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    eprintln!(
        "race: {iterations} loads against {} file rewrites: {trusted_a} trusted A ran A, \
         {tainted_b} tainted B ran B, {other} other images, {failed} torn snapshots refused",
        writes.load(Ordering::Relaxed)
    );
    for (error, count) in &refusals {
        eprintln!("race: {count} refused: {error}");
    }
    assert!(trusted_a > 0, "never loaded A; the race did not happen");
    assert_eq!(loader.tainted().len() as u64, tainted_b + other);
}

/// The same race on a library the module needs: while the writer rewrites
/// the helper the module finds through `$ORIGIN`, a module judged trusted
/// (itself and its helper) always runs helper A, the only helper trusted.
#[test]
fn a_dependency_rewritten_during_loads_never_runs_unjudged() {
    let iterations = iterations();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let helper = d.join("libracehelper.so");
    let soname = "-Wl,-soname,libracehelper.so";
    let a_path = common::cc(
        &d.join("a.so"),
        "helper.c",
        &["-DMARKER=\"helper A\"", soname],
    );
    let a = fs::read(&a_path).expect("read");
    let b = common::cc(
        &d.join("b.so"),
        "helper.c",
        &["-DMARKER=\"helper B\"", soname],
    );
    let b = fs::read(&b).expect("read");
    assert_eq!(
        a.len(),
        b.len(),
        "the helpers must differ only in their marker"
    );
    fs::write(&helper, &a).expect("write");
    let lib_dir = format!("-L{}", d.display());
    let module = common::cc(
        &d.join("libplugin.so"),
        "module.c",
        &[&lib_dir, "-lracehelper", "-Wl,-rpath,$ORIGIN"],
    );
    let trusted = [&a, &fs::read(&module).expect("read")]
        .map(|bytes| Profile::ElfImage.digest(bytes).expect("digest"));

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (path, a, b) = (helper.clone(), a.clone(), b.clone());
        let (stop, writes) = (Arc::clone(&stop), Arc::clone(&writes));
        std::thread::spawn(move || keep_rewriting(&path, &a, &b, &stop, &writes))
    };
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, trusted, Action::Taint));
    let (mut trusted_a, mut tainted, mut failed) = (0u64, 0u64, 0u64);
    for _ in 0..iterations {
        let Ok(module) = loader.load(&module) else {
            failed += 1;
            continue;
        };
        let output = module.call(0, b"").expect("call");
        if module.trust().is_trusted() {
            assert_eq!(
                output, b"helper A",
                "a trusted module ran an unjudged helper"
            );
            trusted_a += 1;
        } else {
            assert!(
                module
                    .trust()
                    .to_string()
                    .contains("dependency libracehelper.so"),
                "{}",
                module.trust()
            );
            tainted += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    eprintln!(
        "race (dependency): {iterations} loads against {} helper rewrites: {trusted_a} trusted \
         ran helper A, {tainted} tainted by their helper, {failed} torn helpers refused",
        writes.load(Ordering::Relaxed)
    );
    assert!(
        trusted_a > 0,
        "never loaded with helper A; the race did not happen"
    );
}
