//! Locating the real artefacts `scripts/fetch-testdata` puts in the cache
//! named by `MODHASH_TESTDATA`. Unset, the real-data tests say they are
//! skipped; set but incomplete, they fail.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::panic, reason = "missing test data is a test failure")]

use std::path::{Path, PathBuf};

/// The cache directory, or `None` (with a note on stderr) when unset.
pub fn testdata() -> Option<PathBuf> {
    match std::env::var_os("MODHASH_TESTDATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("skipped: set MODHASH_TESTDATA (scripts/fetch-testdata)");
            None
        }
    }
}

fn only_entry(dir: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-testdata", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{}: empty; run scripts/fetch-testdata", dir.display()))
}

/// `…/lib/modules/<version>/kernel` of the Debian kernel package.
pub fn kernel_modules(data: &Path) -> PathBuf {
    only_entry(&data.join("linux-image/lib/modules")).join("kernel")
}

/// `…/boot/vmlinuz-<version>` of the Debian kernel package.
pub fn kernel_image(data: &Path) -> PathBuf {
    let boot = data.join("linux-image/boot");
    std::fs::read_dir(&boot)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-testdata", boot.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .unwrap_or_else(|| panic!("{}: no vmlinuz", boot.display()))
}

/// The directory holding Debian's libcamera IPA modules and `.sign` files.
pub fn libcamera_ipa_dir(data: &Path) -> PathBuf {
    data.join("libcamera-ipa/usr/lib/x86_64-linux-gnu/libcamera")
}

/// The IPA modules (`ipa_*.so`), sorted.
pub fn libcamera_ipa_modules(data: &Path) -> Vec<PathBuf> {
    let dir = libcamera_ipa_dir(data);
    let mut modules: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-testdata", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "so"))
        .collect();
    modules.sort();
    assert!(!modules.is_empty(), "{}: no IPA modules", dir.display());
    modules
}

/// Debian's `libcamera.so`, which holds the IPA public key.
pub fn libcamera_so(data: &Path) -> PathBuf {
    data.join("libcamera/usr/lib/x86_64-linux-gnu/libcamera.so.0.0.3")
}

/// Every `.ko` below `dir`, sorted.
pub fn kernel_module_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "ko"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    assert!(
        files.len() > 100,
        "{}: only {} modules",
        dir.display(),
        files.len()
    );
    files
}

/// Copies `src` to `dst` with the appended signature of every file removed;
/// returns how many files were copied.
pub fn copy_stripped(src: &Path, dst: &Path) -> usize {
    let mut files = 0;
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.expect("walk the kernel tree");
        let relative = entry.path().strip_prefix(src).expect("inside the tree");
        let target = dst.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("create directory");
        } else {
            let bytes = std::fs::read(entry.path()).expect("read module");
            let split = modhash::linux_trailer::split(&bytes).expect("a well-formed trailer");
            assert!(
                !matches!(split.trailer, modhash::linux_trailer::Trailer::None),
                "{}: the test data should be signed",
                entry.path().display()
            );
            std::fs::write(&target, split.payload).expect("write stripped module");
            files += 1;
        }
    }
    files
}
