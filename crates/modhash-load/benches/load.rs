//! Verify-and-load against a plain `dlopen` of the same ~400 KB module, with
//! the loader's steps timed one by one.
//!
//! `cargo bench -p modhash-load --bench load` (release profile).
//! `MODHASH_BENCH_ROUNDS` sets the rounds (default 2000). Every round times
//! each case once, in turn, so all cases see the same machine state; the
//! report gives medians and the ratio the loader is held to:
//! verify-and-load / (one SHA-256 pass + plain dlopen), target ≤ 1.2.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use modhash::{Digest, Profile};
use modhash_load::inprocess::InProcess;
use modhash_load::memfd::{read_module, SealedImage, DEFAULT_SIZE_CAP};
use modhash_load::{Action, DigestSet, Loader};

const CASES: [&str; 7] = [
    "plain dlopen+dlclose",
    "verify-and-load+unload",
    "  read (open, fstat, read)",
    "  image (elf-image canonical copy)",
    "  memfd write+seal+hash",
    "  sha256 alone",
    "  dlopen memfd+create+unload",
];

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let rounds: usize = std::env::var("MODHASH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("libmodule.so");
    std::fs::copy(common::variant_a(), &path).expect("copy module");
    let file = std::fs::read(&path).expect("read");
    let image = Profile::ElfImage
        .hashed_bytes(&file)
        .expect("image")
        .into_owned();
    let trusted = Digest::sha256(&image);
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [trusted], Action::Reject));

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); CASES.len()];
    for _ in 0..rounds {
        let times = [
            time(|| {
                // SAFETY: the benchmark's own test module.
                let library = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) };
                library.expect("dlopen").close().expect("dlclose");
            }),
            time(|| drop(black_box(loader.load(&path).expect("load")))),
            time(|| {
                drop(black_box(
                    read_module(&path, DEFAULT_SIZE_CAP).expect("read"),
                ))
            }),
            time(|| {
                drop(black_box(
                    Profile::ElfImage.hashed_bytes(&file).expect("image"),
                ))
            }),
            time(|| drop(black_box(SealedImage::new(&image).expect("seal")))),
            time(|| {
                black_box(Digest::sha256(&image));
            }),
            {
                let sealed = SealedImage::new(&image).expect("seal");
                time(|| drop(black_box(InProcess::open(sealed, b"").expect("open"))))
            },
        ];
        for (case, t) in samples.iter_mut().zip(times) {
            case.push(t);
        }
    }
    let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
    println!(
        "module: {} bytes, image {} bytes, {rounds} rounds, medians:",
        file.len(),
        image.len()
    );
    for (name, m) in CASES.iter().zip(&medians) {
        println!("{name:<36} {:>9.1} µs", m.as_secs_f64() * 1e6);
    }
    let at = |i: usize| medians.get(i).copied().unwrap_or_default().as_secs_f64();
    let ratio = at(1) / (at(5) + at(0));
    println!("verify-and-load / (sha256 + plain dlopen) = {ratio:.2} (target <= 1.2)");
    println!(
        "verify-and-load / plain dlopen           = {:.2}",
        at(1) / at(0)
    );
}
