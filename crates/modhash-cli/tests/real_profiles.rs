//! The digest profiles on real artefacts nobody here wrote: Debian's signed
//! kernel modules and libcamera IPA modules (`scripts/fetch-testdata`).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failed expectation is a test failure"
)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn modhash(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modhash"))
        .args(args)
        .output()
        .expect("run modhash")
}

/// `<hex>  <path>` lines → hex digests, in order.
fn digests(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| l.get(..64).expect("a digest line").to_owned())
        .collect()
}

/// The bytes a Linux module signature covers, found without the library:
/// the last 28 bytes are the marker, the 4 before them the big-endian
/// signature length, the 12-byte record and the signature precede them.
fn bytes_before_signature(file: &[u8]) -> &[u8] {
    let marker = b"~Module signature appended~\n";
    assert!(
        file.ends_with(marker),
        "unsigned module in a signed package"
    );
    let len = file.len();
    let sig_len: [u8; 4] = file[len - 32..len - 28].try_into().unwrap();
    let sig_len = u32::from_be_bytes(sig_len) as usize;
    &file[..len - 40 - sig_len]
}

/// SHA-256 by `sha256sum`, a program that knows nothing of modhash.
fn sha256sum(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn payload_of_debian_kernel_modules_is_the_signed_bytes() {
    let Some(data) = common::testdata() else {
        return;
    };
    let files = common::kernel_module_files(&common::kernel_modules(&data));
    let mut args = vec!["hash".as_ref(), "--profile".as_ref(), "payload".as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let out = modhash(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = digests(&out.stdout);
    assert_eq!(ours.len(), files.len());
    for (file, digest) in files.iter().zip(&ours) {
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(
            *digest,
            sha256sum(bytes_before_signature(&bytes)),
            "{}",
            file.display()
        );
    }
    eprintln!(
        "{} kernel modules: payload digests match sha256sum of the signed bytes",
        files.len()
    );
}

/// A way of rewriting a module that must leave its loadable image alone.
struct Rewrite {
    name: &'static str,
    program: &'static str,
    /// Arguments before `-o OUT IN` (or `IN OUT` when `in_out`).
    args: &'static [&'static str],
    in_out: bool,
    /// Whether the rewrite must change the file's bytes. Debian ships its
    /// IPA modules already stripped, so GNU strip leaves them unchanged; the
    /// others change bytes outside the image and so prove the point.
    changes_file: bool,
}

/// `llvm-objcopy --strip-sections` is not among them: it also zeroes
/// `e_shentsize`, which the profile's definition keeps.
const REWRITES: &[Rewrite] = &[
    Rewrite {
        name: "strip-all",
        program: "strip",
        args: &["--strip-all"],
        in_out: false,
        changes_file: false,
    },
    Rewrite {
        name: "strip-debug",
        program: "strip",
        args: &["--strip-debug"],
        in_out: false,
        changes_file: false,
    },
    Rewrite {
        name: "strip-unneeded",
        program: "strip",
        args: &["--strip-unneeded"],
        in_out: false,
        changes_file: false,
    },
    Rewrite {
        name: "llvm-strip",
        program: "llvm-strip",
        args: &[],
        in_out: false,
        changes_file: true,
    },
    Rewrite {
        name: "no-debuglink",
        program: "objcopy",
        args: &["--remove-section=.gnu_debuglink"],
        in_out: true,
        changes_file: true,
    },
];

#[test]
fn elf_image_of_libcamera_modules_survives_strip() {
    let Some(data) = common::testdata() else {
        return;
    };
    let modules = common::libcamera_ipa_modules(&data);
    let dir = tempfile::tempdir().unwrap();
    let elf_image = |path: &Path| {
        let out = modhash(&[
            "hash".as_ref(),
            "-p".as_ref(),
            "elf-image".as_ref(),
            path.as_os_str(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        digests(&out.stdout)
    };
    for module in &modules {
        let original = elf_image(module);
        let name = module.file_name().unwrap().to_string_lossy();
        for rewrite in REWRITES {
            let out = dir.path().join(format!("{name}.{}", rewrite.name));
            let mut cmd = Command::new(rewrite.program);
            cmd.args(rewrite.args);
            if rewrite.in_out {
                cmd.arg(module).arg(&out);
            } else {
                cmd.arg("-o").arg(&out).arg(module);
            }
            assert!(
                cmd.status().expect("run the rewriting tool").success(),
                "{cmd:?}"
            );
            if rewrite.changes_file {
                assert_ne!(
                    std::fs::read(&out).unwrap(),
                    std::fs::read(module).unwrap(),
                    "{}: {} changed nothing",
                    name,
                    rewrite.name
                );
            }
            assert_eq!(elf_image(&out), original, "{name}: {}", rewrite.name);
        }
    }
    eprintln!(
        "{} IPA modules: elf-image digest unchanged by {} rewrites",
        modules.len(),
        REWRITES.len()
    );
}
