//! Building and preparing the test modules.

#![allow(dead_code, reason = "each test target uses a different subset")]
#![allow(clippy::panic, reason = "a failed expectation is a test failure")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the variant module's marker starts, and its length.
pub const MARKER_A: &[u8] = b"modhash-test-variant:  A";
pub const MARKER_B: &[u8] = b"modhash-test-variant:  B";

/// The target directory of the current profile (`target/debug` for tests,
/// `target/release` for benches): the test executable lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<exe>")
        .to_owned()
}

/// Builds the workspace's `modhash-test-variant` cdylib with the current
/// profile (once per process) and returns its path.
pub fn variant_a() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "modhash-test-variant"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the test module failed");
        let path = profile_dir().join("libmodhash_test_variant.so");
        assert!(path.is_file(), "{} was not built", path.display());
        path
    })
}

/// The variant module's bytes with its marker changed from A to B: a
/// different, equally valid module.
pub fn variant_b_bytes(a: &[u8]) -> Vec<u8> {
    let at = a
        .windows(MARKER_A.len())
        .position(|w| w == MARKER_A)
        .expect("marker in module");
    let mut b = a.to_vec();
    b.get_mut(at..at + MARKER_B.len())
        .expect("marker in range")
        .copy_from_slice(MARKER_B);
    b
}

/// Compiles the C example module with the system C compiler.
pub fn c_module(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    compile_c(
        &root.join("examples/c-module/upper.c"),
        &dir.join("libupper.so"),
    )
}

/// Compiles the C module `source` into the shared object `out` with the
/// system C compiler (`CC`, else `cc`), warnings as errors.
pub fn compile_c(source: &Path, out: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(cc)
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I",
        ])
        .arg(root.join("crates/modhash-plugin/include"))
        .arg("-o")
        .arg(out)
        .arg(source)
        .status()
        .expect("run the C compiler (set CC, or install gcc)");
    assert!(status.success(), "compiling {} failed", source.display());
    out.to_owned()
}

/// Checks, through `call` (in-process or isolated alike), that the variant
/// module's panics and errors reach the host as errors and leave the module
/// usable.
pub fn assert_failures_reach_the_host(
    call: impl Fn(u32, &[u8]) -> Result<Vec<u8>, modhash_load::CallError>,
) {
    use modhash_load::CallError;
    use modhash_plugin::host::FailureKind;
    match call(2, b"") {
        Err(CallError::Module(failure)) => {
            assert_eq!(failure.kind, FailureKind::Panic);
            assert!(
                failure.message.contains("method 2 always panics"),
                "{failure}"
            );
        }
        other => panic!("expected a caught panic, got {other:?}"),
    }
    match call(99, b"") {
        Err(CallError::Module(failure)) => assert_eq!(failure.kind, FailureKind::Error),
        other => panic!("expected a module error, got {other:?}"),
    }
    assert_eq!(call(1, b"still").expect("call after failures"), b"still");
}

/// How long `f` takes.
pub fn time(f: impl FnOnce()) -> std::time::Duration {
    let start = std::time::Instant::now();
    f();
    start.elapsed()
}

/// The median of `samples` (sorts them).
pub fn median(samples: &mut [std::time::Duration]) -> std::time::Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// The rounds a benchmark runs: `MODHASH_BENCH_ROUNDS`, default 2000.
pub fn bench_rounds() -> usize {
    std::env::var("MODHASH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}
