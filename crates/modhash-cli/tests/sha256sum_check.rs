//! Which manifests `sha256sum -c` can check, as the README says: those of
//! profile `file`, which `auto` gives a tree of files that are neither ELF
//! nor signed; a manifest of shared objects (profile `elf-image`) hashes
//! other bytes than whole files, and `sha256sum -c` rejects it.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// `modhash manifest .` in `dir` (default profile), written to
/// `dir/../manifest`; returns the manifest's path.
fn manifest(dir: &Path) -> std::path::PathBuf {
    let out = dir.parent().unwrap().join("manifest");
    let result = run(
        env!("CARGO_BIN_EXE_modhash"),
        &["manifest", ".", "-o", out.to_str().unwrap()],
        dir,
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

#[test]
fn sha256sum_checks_a_manifest_of_plain_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.txt"), b"a\n").unwrap();
    std::fs::write(dir.join("sub/b.bin"), [0u8, 1, 2, 3]).unwrap();
    let manifest = manifest(&dir);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.starts_with("# modhash manifest v1 profile=file "),
        "{text}"
    );
    let check = run("sha256sum", &["-c", manifest.to_str().unwrap()], &dir);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // And it notices a change.
    std::fs::write(dir.join("a.txt"), b"changed\n").unwrap();
    let check = run("sha256sum", &["-c", manifest.to_str().unwrap()], &dir);
    assert!(!check.status.success());
}

#[test]
fn sha256sum_rejects_a_manifest_of_shared_objects() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("modules");
    std::fs::create_dir(&dir).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/fixtures/modules");
    for name in ["a.so", "b.so"] {
        std::fs::copy(fixtures.join(name), dir.join(name)).unwrap();
    }
    let manifest = manifest(&dir);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.starts_with("# modhash manifest v1 profile=elf-image "),
        "{text}"
    );
    let check = run("sha256sum", &["-c", manifest.to_str().unwrap()], &dir);
    assert!(
        !check.status.success(),
        "elf-image digests are not file digests"
    );
}
