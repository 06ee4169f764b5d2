//! Isolation end to end: real modules in real `modhash-worker` processes,
//! including one hostile module per attack the sandbox must stop.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use modhash::Profile;
use modhash_load::isolated::{Isolated, SpawnError, WorkerConfig};
use modhash_load::memfd::SealedImage;
use modhash_load::sandbox::Landlock;
use modhash_load::{Action, CallError, DigestSet, Limit, Loader};

const HOSTILE: &[&str] = &[
    "segfault",
    "abort",
    "loop",
    "alloc",
    "fork",
    "socket",
    "write",
    "exec",
    "constructor",
];

/// Builds every hostile module in one cargo run (once per process) and
/// returns the path of `name`'s library.
fn hostile(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet"]);
        for module in HOSTILE {
            build.args(["-p", &format!("modhash-test-hostile-{module}")]);
        }
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the hostile test modules failed");
    });
    let path = common::variant_a()
        .parent()
        .expect("profile dir")
        .join(format!("libmodhash_test_hostile_{name}.so"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

fn settings() -> WorkerConfig {
    let mut settings = WorkerConfig::default();
    settings.worker = Some(env!("CARGO_BIN_EXE_modhash-worker").into());
    settings.call_timeout = Some(Duration::from_secs(5));
    // Small, so the unbounded allocation ends fast.
    settings.sandbox.address_space = Some(256 << 20);
    settings
}

fn spawn(path: &Path, settings: WorkerConfig) -> Result<Isolated, SpawnError> {
    let image = SealedImage::new(&std::fs::read(path).expect("read module")).expect("seal");
    Isolated::spawn(image, b"", settings)
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn an_isolated_module_answers_like_an_in_process_one() {
    let module = spawn(common::variant_a(), settings()).expect("spawn");
    assert_eq!(module.name(), "variant");
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);
    assert_eq!(module.call(1, b"echo").expect("call"), b"echo");
    let big = vec![7u8; 1 << 20];
    assert_eq!(module.call(1, &big).expect("large call"), big);
    // Module errors do not take the worker down.
    common::assert_failures_reach_the_host(|method, input| module.call(method, input));
    let report = module.sandbox_report().expect("running");
    assert!(report.seccomp, "seccomp must be on: {report:?}");
    assert_ne!(report.landlock, Landlock::Unavailable, "{report:?}");
}

#[test]
fn the_loader_runs_untrusted_modules_isolated_under_policy_isolate() {
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [], Action::Isolate))
        .with_worker_config(settings());
    let module = loader.load(common::variant_a()).expect("isolated load");
    assert!(module.is_isolated());
    assert!(!module.trust().is_trusted());
    assert_eq!(module.call(1, b"hello").expect("call"), b"hello");
    let pid = module
        .isolated()
        .and_then(Isolated::worker_pid)
        .expect("worker pid");
    assert_ne!(pid, std::process::id());
}

/// Runs `attack` (method 0) of a hostile module and checks that the host
/// gets `expect`, survives, and can restart the worker.
fn attack(name: &str, input: &[u8], settings: WorkerConfig, expect: impl Fn(&CallError) -> bool) {
    let module = spawn(&hostile(name), settings).expect("spawn");
    assert_eq!(module.call(1, b"before").expect("call before"), b"before");
    let pid = module.worker_pid().expect("worker pid");
    let error = module.call(0, input).expect_err("the attack must fail");
    assert!(expect(&error), "{name}: unexpected {error:?}");
    assert!(!error.to_string().is_empty());
    assert!(!alive(pid), "{name}: the worker {pid} is still around");
    assert!(matches!(module.call(1, b"x"), Err(CallError::WorkerDown)));
    module.restart().expect("restart");
    assert_eq!(
        module.call(1, b"after").expect("call after restart"),
        b"after"
    );
}

#[test]
fn a_segfault_is_a_crash() {
    attack(
        "segfault",
        b"",
        settings(),
        |e| matches!(e, CallError::Crashed(how) if how.contains("SIGSEGV")),
    );
}

#[test]
fn an_abort_is_a_crash() {
    attack(
        "abort",
        b"",
        settings(),
        |e| matches!(e, CallError::Crashed(how) if how.contains("SIGABRT")),
    );
}

#[test]
fn an_endless_loop_times_out() {
    let mut settings = settings();
    settings.call_timeout = Some(Duration::from_millis(300));
    attack(
        "loop",
        b"",
        settings,
        |e| matches!(e, CallError::TimedOut(after) if *after == Duration::from_millis(300)),
    );
}

#[test]
fn an_endless_loop_without_timeout_hits_the_cpu_limit() {
    let mut settings = settings();
    settings.call_timeout = None;
    settings.sandbox.cpu_time = Some(Duration::from_secs(1));
    attack("loop", b"", settings, |e| {
        matches!(e, CallError::LimitExceeded(Limit::CpuTime))
    });
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    attack("alloc", b"", settings(), |e| {
        matches!(e, CallError::LimitExceeded(Limit::Memory))
    });
}

#[test]
fn fork_is_denied() {
    attack("fork", b"", settings(), |e| {
        matches!(e, CallError::Denied(_))
    });
}

#[test]
fn a_socket_is_denied() {
    attack("socket", b"", settings(), |e| {
        matches!(e, CallError::Denied(_))
    });
}

#[test]
fn writing_a_file_is_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("pwned");
    let input = target.to_str().expect("utf-8 path").as_bytes().to_vec();
    attack("write", &input, settings(), |e| {
        matches!(e, CallError::Denied(_))
    });
    assert!(
        !target.exists(),
        "the hostile module wrote {}",
        target.display()
    );
}

#[test]
fn exec_of_a_shell_is_denied() {
    attack("exec", b"", settings(), |e| {
        matches!(e, CallError::Denied(_))
    });
}

#[test]
fn constructors_already_run_inside_the_sandbox() {
    match spawn(&hostile("constructor"), settings()) {
        Err(SpawnError::Died(CallError::Denied(_))) => {}
        other => panic!("expected the constructor's socket to be denied, got {other:?}"),
    }
}

#[test]
fn dropping_a_module_shuts_its_worker_down() {
    let module = spawn(common::variant_a(), settings()).expect("spawn");
    let pid = module.worker_pid().expect("pid");
    assert!(alive(pid));
    drop(module);
    assert!(!alive(pid), "worker {pid} outlived its module");
}

#[test]
fn a_worker_outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG fires when the forking thread exits; workers are
    // forked from a process-lifetime thread so this must not kill them.
    let module = std::thread::spawn(|| spawn(common::variant_a(), settings()).expect("spawn"))
        .join()
        .expect("thread");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(module.call(1, b"alive").expect("call"), b"alive");
}

#[test]
fn the_worker_refuses_to_run_without_its_host() {
    // A worker whose host is not its parent (the host died before the
    // worker armed PR_SET_PDEATHSIG) exits at once, before reading anything.
    let status = Command::new(env!("CARGO_BIN_EXE_modhash-worker"))
        .args(["--host-pid", "1"])
        .status()
        .expect("run worker");
    assert_eq!(status.code(), Some(3));
    let status = Command::new(env!("CARGO_BIN_EXE_modhash-worker"))
        .status()
        .expect("run worker");
    assert_eq!(status.code(), Some(4));
}

#[test]
fn the_worker_dies_with_its_host() {
    if std::env::var_os("MODHASH_TEST_ACT_AS_HOST").is_some() {
        // Child mode: act as a host, report the worker's pid, then die
        // without any cleanup.
        let module = spawn(common::variant_a(), settings()).expect("spawn");
        println!("worker-pid={}", module.worker_pid().expect("pid"));
        std::process::abort();
    }
    let output = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "the_worker_dies_with_its_host",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MODHASH_TEST_ACT_AS_HOST", "1")
        .output()
        .expect("run host");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid: u32 = stdout
        .lines()
        .find_map(|line| line.split("worker-pid=").nth(1))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the host printed no worker pid: {stdout}"));
    for _ in 0..200 {
        if !alive(pid) || is_zombie(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("worker {pid} outlived its host");
}

/// A killed worker whose parent died is reaped by init; until then it is a
/// zombie, which is dead enough.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}
