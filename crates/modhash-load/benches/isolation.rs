//! Round-trip latency of `call`, isolated vs in-process, with 64 B and
//! 64 KiB payloads: p50 and p99 over many calls, each timed on its own.
//!
//! `cargo bench -p modhash-load --bench isolation` (release profile). The
//! in-process and isolated runs alternate in the same process, so both see
//! the same machine state. Isolated runs twice: with the default spin
//! (`WorkerConfig::spin`: host and worker busy-wait briefly for the next
//! frame) and without. Each row gives the CPU time per call of the calling
//! thread and of the worker (from `/proc/.../schedstat`), so the latency a
//! spin buys is weighed against the CPU it burns. `MODHASH_BENCH_CALLS`
//! sets the calls per case (default 100000).
//!
//! The last rows call one at a time with a pause between calls
//! ([`SPARSE_GAP`], a hundredth of the calls): the spin only helps a call
//! that follows another within it, and after each call it costs the worker
//! up to the spin in CPU; these rows show both.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use modhash::{Digest, Profile};
use modhash_load::isolated::{Isolated, WorkerConfig};
use modhash_load::memfd::SealedImage;
use modhash_load::{Action, DigestSet, Loader};

/// The echo method of the test module.
const ECHO: u32 = 1;

/// The pause between two calls of the sparse rows: far longer than the
/// spin, as between the calls of a host that calls now and then.
const SPARSE_GAP: Duration = Duration::from_millis(1);

fn main() {
    let calls: usize = std::env::var("MODHASH_BENCH_CALLS")
        .ok()
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(100_000);
    let (module, worker) = build();
    let bytes = std::fs::read(&module).expect("read module");
    let image = Profile::ElfImage.hashed_bytes(&bytes).expect("elf image");
    let trusted = Digest::sha256(&image);
    let in_process = Loader::new(DigestSet::new(Profile::ElfImage, [trusted], Action::Reject))
        .load(&module)
        .expect("load in-process");
    let spawn = |spin| {
        let mut settings = WorkerConfig::default();
        settings.worker = Some(worker.clone());
        settings.spin = spin;
        Isolated::spawn(SealedImage::new(&bytes).expect("seal"), b"", settings)
            .expect("spawn worker")
    };
    let spinning = spawn(WorkerConfig::default().spin);
    let sleeping = spawn(Duration::ZERO);

    println!(
        "calls per case: {calls}; spin {:?}",
        WorkerConfig::default().spin
    );
    println!(
        "{:<8} {:<29} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "payload", "backend", "p50", "p99", "calls/s", "host CPU/call", "worker CPU/call"
    );
    for size in [64usize, 64 << 10] {
        let input = vec![0x5Au8; size];
        let rows = |calls, gap| {
            let local = measure(calls, gap, None, || {
                in_process.call(ECHO, &input).map(|out| out.len()).ok()
            });
            let spun = measure(calls, gap, spinning.worker_pid(), || {
                spinning.call(ECHO, &input).map(|out| out.len()).ok()
            });
            let slept = measure(calls, gap, sleeping.worker_pid(), || {
                sleeping.call(ECHO, &input).map(|out| out.len()).ok()
            });
            [local, spun, slept]
        };
        let [local, spun, slept] = rows(calls, Duration::ZERO);
        let sparse = if size == 64 {
            let [local, spun, slept] = rows((calls / 100).max(10), SPARSE_GAP);
            vec![
                ("in-process, 1 ms apart", local),
                ("isolated, spin, 1 ms apart", spun),
                ("isolated, no spin, 1 ms apart", slept),
            ]
        } else {
            Vec::new()
        };
        let back_to_back = [
            ("in-process", local),
            ("isolated, spin", spun),
            ("isolated, no spin", slept),
        ];
        for (name, stats) in back_to_back.into_iter().chain(sparse) {
            println!(
                "{:<8} {:<29} {:>10.2?} {:>10.2?} {:>10.0} {:>12.2?} {:>12.2?}",
                if size == 64 { "64 B" } else { "64 KiB" },
                name,
                stats.p50,
                stats.p99,
                stats.rate,
                stats.host_cpu,
                stats.worker_cpu,
            );
        }
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    rate: f64,
    /// CPU time of the calling thread per call.
    host_cpu: Duration,
    /// CPU time of the worker per call (zero in-process).
    worker_cpu: Duration,
}

/// Time on CPU of a thread, from `/proc/<path>/schedstat` (nanoseconds).
fn cpu_time(path: &str) -> Duration {
    std::fs::read_to_string(format!("/proc/{path}/schedstat"))
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Time `calls` calls one by one after a warm-up, `gap` apart, with the CPU
/// time they cost this thread and the worker `worker` (if any).
fn measure(
    calls: usize,
    gap: Duration,
    worker: Option<u32>,
    mut call: impl FnMut() -> Option<usize>,
) -> Stats {
    for _ in 0..calls / 10 {
        std::hint::black_box(call().expect("warm-up call"));
    }
    let worker_path = worker.map(|pid| pid.to_string());
    let worker_cpu = || worker_path.as_deref().map(cpu_time).unwrap_or_default();
    let (host_before, worker_before) = (cpu_time("thread-self"), worker_cpu());
    let mut samples = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let before = Instant::now();
        std::hint::black_box(call().expect("call"));
        samples.push(before.elapsed());
    }
    let total = start.elapsed();
    let per_call = |spent: Duration| spent / u32::try_from(calls).unwrap_or(u32::MAX).max(1);
    let host_cpu = per_call(cpu_time("thread-self").saturating_sub(host_before));
    let worker_cpu = per_call(worker_cpu().saturating_sub(worker_before));
    samples.sort_unstable();
    let at = |fraction: f64| {
        let index = ((samples.len() as f64 * fraction) as usize).min(samples.len() - 1);
        samples.get(index).copied().unwrap_or_default()
    };
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        rate: calls as f64 / total.as_secs_f64(),
        host_cpu,
        worker_cpu,
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
            // Whole packages: a target filter such as `--bin` would also
            // apply to the test module and skip its cdylib.
            "-p",
            "modhash-test-variant",
            "-p",
            "modhash-cli",
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
