//! What the tests that build C against libmodhash share: where the library
//! is built, and how to compile against the headers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>`, where cargo puts libmodhash.so for this test run.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_owned()
}

/// Builds libmodhash.so (cargo builds no cdylib for an integration test)
/// with the same cargo, profile and target directory as this test, and
/// returns the directory holding it.
pub fn build_library() -> PathBuf {
    let dir = target_dir();
    let target = dir.parent().expect("target directory");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "-p", "modhash-capi", "--target-dir"])
        .arg(target)
        .current_dir(root());
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    run(&mut cargo);
    dir
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn run(cmd: &mut Command) {
    let status = cmd.status().expect("run a compiler");
    assert!(status.success(), "{cmd:?} failed");
}

/// `-I` for the directories of the three public headers.
pub fn include_args() -> Vec<std::ffi::OsString> {
    [
        "crates/modhash-capi/include",
        "crates/modhash/include",
        "crates/modhash-plugin/include",
    ]
    .iter()
    .flat_map(|dir| ["-I".into(), root().join(dir).into_os_string()])
    .collect()
}
