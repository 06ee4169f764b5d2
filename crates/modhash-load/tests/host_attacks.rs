//! An isolated C module attacks its host: asks the kernel to signal it
//! (`F_SETOWN`, `O_ASYNC`, `ioctl`), signals it directly, writes into its
//! memory, traces it, floods and forges its stderr.
//!
//! Each test runs this test binary again as the host, in a process group of
//! its own, so an attack that gets through kills that host (and only it) and
//! the test sees how it died. landlock is capped at ABI 5 — no signal
//! scoping, as on Debian 12's Linux 6.1 — so what stops the signals is the
//! seccomp filter alone.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use modhash_load::isolated::{Isolated, WorkerConfig};
use modhash_load::memfd::SealedImage;
use modhash_load::{CallError, Landlock, Limit};

/// Set in the re-run test binary that plays the host.
const ACT_AS_HOST: &str = "MODHASH_TEST_ACT_AS_HOST";

/// Every attack on the host the sandbox must stop with `SIGSYS`.
const DENIED: &[&str] = &[
    "sigio",
    "F_SETOWN",
    "F_SETOWN_EX",
    "F_SETSIG",
    "O_ASYNC",
    "F_SETLEASE",
    "F_NOTIFY",
    "FIOASYNC",
    "FIOSETOWN",
    "SIOCSPGRP",
    "TIOCSPGRP",
    "kill",
    "kill-group",
    "tgkill",
    "tkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "process_vm_writev",
    "ptrace",
    "ptrace-seize",
];

/// Reads landlock must refuse (the worker survives them).
const REFUSED: &[&str] = &["read-file", "read-host-memory"];

/// What `process_vm_writev` aims at in the host.
static CANARY: AtomicU64 = AtomicU64::new(0x1111_2222_3333_4444);

/// `tests/c/hostile.c`, compiled once per process.
fn hostile() -> &'static Path {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_dir, path) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/hostile.c");
        let path = common::compile_c(&source, &dir.path().join("libhostile.so"));
        (dir, path)
    });
    path
}

fn spawn() -> Isolated {
    let mut settings = WorkerConfig::default();
    settings.worker = Some(env!("CARGO_BIN_EXE_modhash-worker").into());
    settings.call_timeout = Some(Duration::from_secs(30));
    settings.sandbox.landlock_abi = Some(5);
    let bytes = std::fs::read(hostile()).expect("read module");
    Isolated::spawn(SealedImage::new(&bytes).expect("seal"), b"", settings).expect("spawn")
}

/// Runs the test `name` of this binary as a host in its own process group
/// and returns what it printed.
fn run_as_host(name: &str) -> Output {
    Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ACT_AS_HOST, "1")
        .process_group(0)
        .output()
        .expect("run the host")
}

fn acting_as_host() -> bool {
    std::env::var_os(ACT_AS_HOST).is_some()
}

#[test]
fn no_attack_reaches_the_host_without_landlock_signal_scoping() {
    if acting_as_host() {
        return attacked_host();
    }
    let output = run_as_host("no_attack_reaches_the_host_without_landlock_signal_scoping");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the host did not survive ({}); it printed:\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("landlock: Partial"), "{stdout}");
    for attack in DENIED {
        assert!(
            stdout.contains(&format!("{attack}: denied\n")),
            "{attack} was not denied:\n{stdout}"
        );
    }
    for attack in REFUSED {
        assert!(
            stdout.contains(&format!("{attack}: refused\n")),
            "{attack} was not refused:\n{stdout}"
        );
    }
    assert!(stdout.contains("canary: intact"), "{stdout}");
}

/// The host's side: every attack in turn, each in a fresh worker, then one
/// more call and a pause, so a signal the kernel was asked to send would
/// arrive while this host is still running.
fn attacked_host() {
    let host = std::process::id();
    let canary = CANARY.as_ptr() as usize;
    let module = spawn();
    let report = module.sandbox_report().expect("running");
    println!("landlock: {:?}", report.landlock);
    assert_eq!(report.landlock, Landlock::Partial);
    assert!(report.seccomp);
    for attack in DENIED {
        module.restart().expect("restart");
        assert_eq!(module.call(1, b"echo").expect("echo"), b"echo");
        let input = format!("{attack} {host} {canary:x}");
        let outcome = match module.call(0, input.as_bytes()) {
            Err(CallError::Denied(_)) => "denied".to_owned(),
            other => format!("{other:?}"),
        };
        let _ = module.call(1, b"after");
        std::thread::sleep(Duration::from_millis(50));
        println!("{attack}: {outcome}");
    }
    module.restart().expect("restart");
    for attack in REFUSED {
        let outcome = match module.call(0, format!("{attack} {host}").as_bytes()) {
            Err(CallError::Module(failure)) if failure.message == "refused by the kernel" => {
                "refused".to_owned()
            }
            other => format!("{other:?}"),
        };
        println!("{attack}: {outcome}");
    }
    let intact = CANARY.load(Ordering::SeqCst) == 0x1111_2222_3333_4444;
    println!("canary: {}", if intact { "intact" } else { "overwritten" });
}

#[test]
fn a_stderr_flood_kills_the_worker_and_the_host_stays_small_and_unfooled() {
    if acting_as_host() {
        return flooded_host();
    }
    let output =
        run_as_host("a_stderr_flood_kills_the_worker_and_the_host_stays_small_and_unfooled");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = &output.stderr;
    let text = String::from_utf8_lossy(stderr);
    assert!(
        output.status.success(),
        "the host failed ({}):\n{stdout}\n{}",
        output.status,
        text.get(..4096).unwrap_or(&text)
    );
    assert!(stdout.contains("flood: output limit"), "{stdout}");
    let peak_kib: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("peak-rss-kib: "))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS printed: {stdout}"));
    // 2 GB went to the pipe; before the fix the host held it all.
    assert!(peak_kib < 64 * 1024, "host peak RSS {peak_kib} KiB");
    assert!(
        stderr.len() < 256 * 1024,
        "{} bytes reached the host's stderr",
        stderr.len()
    );
    assert!(
        text.contains("bytes of output in one second: the worker is killed"),
        "{text}"
    );
    // What was over the rate before the flood was dropped, and counted.
    assert!(
        text.contains("bytes of output over the limit of 65536 bytes per second"),
        "{text}"
    );
    // Nothing raw that a terminal would act on reached the host's stderr.
    for byte in [0x1b, b'\r', 0x07] {
        assert!(
            !stderr.contains(&byte),
            "raw byte {byte:#x} on the host's stderr"
        );
    }
    assert!(!text.contains('\u{202e}'), "raw bidi override");
    let forged = text
        .lines()
        .find(|line| line.contains("forged host line"))
        .unwrap_or_else(|| panic!("the forged line was not forwarded: {text}"));
    assert!(
        forged.starts_with("modhash-worker[") && forged.contains("]: \\x1b[2K\\x0dmodhash: forged"),
        "{forged}"
    );
    assert!(
        text.contains("]: \\x1b]0;title\\x07\\u{202e}desrever"),
        "{text}"
    );
}

fn flooded_host() {
    let module = spawn();
    let outcome = match module.call(0, b"flood 0") {
        Err(CallError::LimitExceeded(Limit::Output)) => "output limit".to_owned(),
        other => format!("{other:?}"),
    };
    println!("flood: {outcome}");
    module.restart().expect("restart");
    module
        .call(0, b"ansi 0")
        .expect("the forging attack only writes");
    // Dropping the module reaps the worker and drains its stderr.
    drop(module);
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM");
    println!("peak-rss-kib: {peak}");
}

#[test]
fn an_isolated_modules_error_message_reaches_the_host_escaped() {
    let module = spawn();
    match module.call(0, b"ansi-error 0") {
        Err(CallError::Module(failure)) => {
            assert_eq!(failure.message, "\\x1b[2K\\x0dmodhash: forged error");
        }
        other => panic!("expected the module's error, got {other:?}"),
    }
}
