//! Where `-o` writes: a regular file is replaced atomically (a new inode,
//! the old permission bits), a new path is created, a character device or
//! FIFO is written through and stays what it is, and a symlink keeps
//! pointing at its target, which gets the new contents. CI runs this as
//! root, where replacing a device node would be possible and disastrous
//! (`-o /dev/null` turning `/dev/null` into a regular file); the device
//! test makes its own node rather than risk the machine's.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MODHASH: &str = env!("CARGO_BIN_EXE_modhash");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/fixtures")
}

/// `modhash manifest modules -o OUT`, run in the fixtures directory.
fn manifest_to(out: &Path) -> Output {
    Command::new(MODHASH)
        .args(["manifest", "modules", "-o"])
        .arg(out)
        .current_dir(fixtures())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// What `-o` must write: the manifest `modhash manifest` prints.
fn expected() -> Vec<u8> {
    let out = Command::new(MODHASH)
        .args(["manifest", "modules"])
        .current_dir(fixtures())
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_ok(program: &str, args: &[&std::ffi::OsStr]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}: {status}");
}

#[test]
fn regular_file_is_replaced_atomically_keeping_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.manifest");
    std::fs::write(&out, b"old contents, longer than nothing\n").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    // An open reader keeps the old inode alive, so its number cannot be
    // reused by the new file.
    let old = std::fs::File::open(&out).unwrap();
    let old_inode = old.metadata().unwrap().ino();
    assert_ok(&manifest_to(&out));
    let meta = std::fs::metadata(&out).unwrap();
    assert_ne!(meta.ino(), old_inode, "written in place, not replaced");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(std::fs::read(&out).unwrap(), expected());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a temporary file was left"
    );
}

#[test]
fn new_path_is_created_with_mode_0644() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new.manifest");
    assert_ok(&manifest_to(&out));
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert_eq!(std::fs::read(&out).unwrap(), expected());
}

#[test]
fn character_device_is_written_through() {
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    if uid != b"0\n" {
        eprintln!("skipped: making a device node needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    // The same device as /dev/null: major 1, minor 3.
    run_ok(
        "mknod",
        &[null.as_os_str(), "c".as_ref(), "1".as_ref(), "3".as_ref()],
    );
    let before = std::fs::symlink_metadata(&null).unwrap();
    assert_ok(&manifest_to(&null));
    let after = std::fs::symlink_metadata(&null).unwrap();
    assert!(
        after.file_type().is_char_device(),
        "the device node was replaced"
    );
    assert_eq!((after.ino(), after.rdev()), (before.ino(), before.rdev()));
}

#[test]
fn fifo_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    run_ok("mkfifo", &[fifo.as_os_str()]);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    assert_ok(&manifest_to(&fifo));
    assert_eq!(reader.join().unwrap(), expected());
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
}

#[test]
fn symlink_keeps_pointing_at_its_replaced_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.manifest");
    std::fs::write(&target, b"old\n").unwrap();
    let link = dir.path().join("link.manifest");
    std::os::unix::fs::symlink("real.manifest", &link).unwrap();
    assert_ok(&manifest_to(&link));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("real.manifest"),
        "the link was replaced"
    );
    assert_eq!(std::fs::read(&target).unwrap(), expected());
}

#[test]
fn dangling_symlink_creates_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link.manifest");
    std::os::unix::fs::symlink("made.manifest", &link).unwrap();
    assert_ok(&manifest_to(&link));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("made.manifest"),
        "the link was replaced"
    );
    assert_eq!(
        std::fs::read(dir.path().join("made.manifest")).unwrap(),
        expected()
    );
}
