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

/// The SONAME build.rs gives libmodhash.so.
pub const SONAME: &str = concat!(
    "libmodhash.so.",
    env!("CARGO_PKG_VERSION_MAJOR"),
    ".",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// The arguments that link a program in `out_dir` against the freshly
/// built libmodhash.so. The library's SONAME is versioned; the program finds
/// it under that name in `out_dir/lib`, as an installed one would be.
pub fn link_args(out_dir: &Path) -> Vec<std::ffi::OsString> {
    let built = build_library();
    let lib = out_dir.join("lib");
    std::fs::create_dir_all(&lib).expect("mkdir lib");
    let soname = lib.join(SONAME);
    if !soname.exists() {
        std::os::unix::fs::symlink(built.join("libmodhash.so"), &soname).expect("symlink");
    }
    vec![
        "-L".into(),
        built.into_os_string(),
        format!("-Wl,-rpath,{}", lib.display()).into(),
        "-lmodhash".into(),
        "-ldl".into(),
    ]
}
