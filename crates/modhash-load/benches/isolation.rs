//! Round-trip latency of `call`, isolated vs in-process, with 64 B and
//! 64 KiB payloads: p50 and p99 over many calls, each timed on its own.
//!
//! `cargo bench -p modhash-load --bench isolation` (release profile). The
//! in-process and isolated runs alternate in the same process, so both see
//! the same machine state. `MODHASH_BENCH_CALLS` sets the calls per case
//! (default 100000).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use modhash_load::inprocess::InProcess;
use modhash_load::isolated::{Isolated, WorkerConfig};
use modhash_load::memfd::SealedImage;

/// The echo method of the test module.
const ECHO: u32 = 1;

fn main() {
    let calls: usize = std::env::var("MODHASH_BENCH_CALLS")
        .ok()
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(100_000);
    let (module, worker) = build();
    let bytes = std::fs::read(&module).expect("read module");
    let in_process =
        InProcess::open(SealedImage::new(&bytes).expect("seal"), b"").expect("load in-process");
    let mut settings = WorkerConfig::default();
    settings.worker = Some(worker);
    let isolated = Isolated::spawn(SealedImage::new(&bytes).expect("seal"), b"", settings)
        .expect("spawn worker");

    println!("calls per case: {calls}");
    println!(
        "{:<10} {:<11} {:>10} {:>10} {:>12}",
        "payload", "backend", "p50", "p99", "calls/s"
    );
    for size in [64usize, 64 << 10] {
        let input = vec![0x5Au8; size];
        let local = measure(calls, || {
            in_process.call(ECHO, &input).map(|out| out.len()).ok()
        });
        let remote = measure(calls, || {
            isolated.call(ECHO, &input).map(|out| out.len()).ok()
        });
        for (name, stats) in [("in-process", local), ("isolated", remote)] {
            println!(
                "{:<10} {:<11} {:>10.2?} {:>10.2?} {:>12.0}",
                if size == 64 { "64 B" } else { "64 KiB" },
                name,
                stats.p50,
                stats.p99,
                stats.rate
            );
        }
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    rate: f64,
}

/// Time `calls` calls one by one after a warm-up.
fn measure(calls: usize, mut call: impl FnMut() -> Option<usize>) -> Stats {
    for _ in 0..calls / 10 {
        std::hint::black_box(call().expect("warm-up call"));
    }
    let mut samples = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let before = Instant::now();
        std::hint::black_box(call().expect("call"));
        samples.push(before.elapsed());
    }
    let total = start.elapsed();
    samples.sort_unstable();
    let at = |fraction: f64| {
        let index = ((samples.len() as f64 * fraction) as usize).min(samples.len() - 1);
        samples.get(index).copied().unwrap_or_default()
    };
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        rate: calls as f64 / total.as_secs_f64(),
    }
}

/// Builds the echo test module and the worker with the bench's profile and
/// returns their paths.
fn build() -> (PathBuf, PathBuf) {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "modhash-test-variant",
            "-p",
            "modhash-cli",
            "--bin",
            "modhash-worker",
        ])
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "building the bench's module and worker failed"
    );
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/release/deps/<bench>");
    (
        dir.join("libmodhash_test_variant.so"),
        dir.join("modhash-worker"),
    )
}
