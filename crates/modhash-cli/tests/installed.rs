//! The tool as installed: `modhash` finds `modhash-worker` next to itself
//! (where `cargo install` puts both), then in the libexec directory fixed
//! at build time (`../libexec/modhash` by default, where distributions put
//! helpers), with an empty environment; without either it says where it
//! looked. The binaries are copied out of the build directory, so nothing
//! of it can be found by accident.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODHASH: &str = env!("CARGO_BIN_EXE_modhash");
const WORKER: &str = env!("CARGO_BIN_EXE_modhash-worker");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/fixtures")
}

/// Copies `modhash` to `root/bin/` and, if given, the worker to
/// `root/<worker_dir>/`; returns the copied `modhash`.
fn install(root: &Path, worker_dir: Option<&str>) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(MODHASH, bin.join("modhash")).unwrap();
    if let Some(dir) = worker_dir {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(WORKER, dir.join("modhash-worker")).unwrap();
    }
    bin.join("modhash")
}

/// `modhash load --policy isolate` of an untrusted module, with an empty
/// environment.
fn load_isolated(modhash: &Path) -> Output {
    Command::new(modhash)
        .args(["load", "--host", "load-host.so", "-m", "load.manifest"])
        .args(["--policy", "isolate", "load-untrusted.so"])
        .current_dir(fixtures())
        .env_clear()
        .output()
        .unwrap()
}

fn assert_isolated(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with("loaded `c-UPPER` in an isolated worker\n"),
        "{stdout}"
    );
}

#[test]
fn worker_next_to_modhash() {
    let root = tempfile::tempdir().unwrap();
    assert_isolated(&load_isolated(&install(root.path(), Some("bin"))));
}

#[test]
fn worker_in_libexec() {
    let root = tempfile::tempdir().unwrap();
    assert_isolated(&load_isolated(&install(
        root.path(),
        Some("libexec/modhash"),
    )));
}

#[test]
fn no_worker_installed_names_both_places() {
    let root = tempfile::tempdir().unwrap();
    let out = load_isolated(&install(root.path(), None));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bin = std::fs::canonicalize(root.path()).unwrap().join("bin");
    for place in [
        bin.join("modhash-worker"),
        bin.join("../libexec/modhash/modhash-worker"),
    ] {
        assert!(
            stderr.contains(&*place.to_string_lossy()),
            "{place:?} not in: {stderr}"
        );
    }
}
