//! Hostile files through the `modhash` binary: a module truncated at every
//! offset, special files (FIFOs, directories, symlink loops), files over
//! the size cap, and headers that lie (`tests/cmd/fixtures/hostile/`, whose
//! error messages the `hostile-*` cases pin).
//!
//! Each must give one clear line on stderr naming the file and exit 2 (for
//! `verify`, an `untrusted: unreadable: …` verdict and exit 1: it answers
//! for every module), never a panic or a hang, and never leave a partial
//! output file behind.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]
#![allow(clippy::indexing_slicing, reason = "test data of known shape")]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MODHASH: &str = env!("CARGO_BIN_EXE_modhash");

/// Longer than any command here takes, in seconds; a command that blocks
/// (on a FIFO, say) is killed by coreutils' `timeout`, which then exits 124.
const DEADLINE: &str = "60";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/fixtures")
}

/// Runs `modhash ARGS` in `cwd`, killing it if it outlives [`DEADLINE`].
fn modhash<I, S>(cwd: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new("timeout")
        .args(["--kill-after=5", DEADLINE, MODHASH])
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(124),
        "modhash hung for {DEADLINE} s"
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts bad input: exit 2, nothing on stdout, and exactly one line on
/// stderr, `modhash: <path>: <reason>`; returns the reason.
fn assert_bad_input(out: &Output, path: &Path, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}; stderr: {stderr}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout: {}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let line = stderr
        .strip_suffix('\n')
        .filter(|l| !l.contains('\n'))
        .unwrap_or_else(|| panic!("{what}: not one line: {stderr:?}"));
    let prefix = format!("modhash: {}: ", path.display());
    line.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{what}: {line:?} does not start with {prefix:?}"))
        .to_owned()
}

/// The files in `dir`, sorted, to check that a failed command left none.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
}

/// A directory with a sealed copy of the C host whose manifest lists
/// `small.so`: the setting in which `verify` and `load` judge modules.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        std::fs::create_dir(&modules).unwrap();
        std::fs::copy(
            fixtures().join("hostile/small.so"),
            modules.join("small.so"),
        )
        .unwrap();
        std::fs::copy(fixtures().join("c-host.so"), dir.path().join("host.so")).unwrap();
        let made = modhash(dir.path(), ["manifest", "-o", "m", "modules"]);
        assert!(made.status.success(), "{}", text(&made.stderr));
        let sealed = modhash(dir.path(), ["seal", "--manifest", "m", "host.so"]);
        assert!(sealed.status.success(), "{}", text(&sealed.stderr));
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Cut at every offset, `small.so` either has no `elf-image` digest (a
/// one-line error, exit 2) or, cut only after its last loadable byte, the
/// same digest as the whole file. `verify` agrees on every cut: trusted
/// exactly when the image is whole.
#[test]
fn a_module_truncated_at_every_offset_is_refused_or_unchanged() {
    let small = std::fs::read(fixtures().join("hostile/small.so")).unwrap();
    let host = Host::new();
    let cuts = host.path().join("cuts");
    std::fs::create_dir(&cuts).unwrap();
    let names: Vec<String> = (0..small.len()).map(|n| format!("cut-{n:05}.so")).collect();
    for (n, name) in names.iter().enumerate() {
        std::fs::write(cuts.join(name), &small[..n]).unwrap();
    }
    let whole = modhash(host.path(), ["hash", "-p", "elf-image", "modules/small.so"]);
    let whole_digest = text(&whole.stdout)[..64].to_owned();

    // One process per cut, on two threads.
    let unchanged: Vec<bool> = std::thread::scope(|scope| {
        let halves = names.split_at(names.len() / 2);
        let workers: Vec<_> = [halves.0, halves.1]
            .into_iter()
            .map(|part| {
                let dir = &cuts;
                let whole_digest = &whole_digest;
                scope.spawn(move || {
                    part.iter()
                        .map(|name| {
                            let out = modhash(dir, ["hash", "-p", "elf-image", name]);
                            if out.status.success() {
                                assert_eq!(
                                    text(&out.stdout),
                                    format!("{whole_digest}  {name}\n"),
                                    "{name} hashes to another image"
                                );
                                true
                            } else {
                                assert_bad_input(&out, Path::new(name), name);
                                false
                            }
                        })
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(!unchanged[0], "the empty file has no image");

    let mut args: Vec<PathBuf> = ["verify", "--host", "host.so", "--manifest", "m"]
        .map(PathBuf::from)
        .into();
    args.extend(names.iter().map(|n| Path::new("cuts").join(n)));
    let verify = modhash(host.path(), &args);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify.stderr));
    let stdout = text(&verify.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), names.len());
    for ((line, name), unchanged) in lines.iter().zip(&names).zip(&unchanged) {
        let verdict = line
            .strip_prefix(&format!("cuts/{name}: "))
            .unwrap_or_else(|| panic!("{line}"));
        if *unchanged {
            assert_eq!(verdict, "trusted-by-hash", "{name}");
        } else {
            assert!(verdict.starts_with("untrusted: "), "{name}: {verdict}");
        }
    }
}

/// A signed kernel module cut at every offset: `strip` either removes a
/// signature that is still whole or refuses with one line, and never
/// writes a partial output.
#[test]
fn a_signed_module_truncated_at_every_offset_never_strips_partially() {
    let signed = std::fs::read(fixtures().join("signed.ko")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for n in (0..signed.len()).step_by(7).chain([signed.len()]) {
        let module = dir.path().join("cut.ko");
        std::fs::write(&module, &signed[..n]).unwrap();
        let out = modhash(dir.path(), ["strip", "-o", "out.ko", "cut.ko"]);
        if n == signed.len() {
            assert!(out.status.success(), "{}", text(&out.stderr));
            std::fs::remove_file(dir.path().join("out.ko")).unwrap();
        } else {
            assert_bad_input(&out, Path::new("cut.ko"), &format!("cut at {n}"));
        }
        assert_eq!(listing(dir.path()), [module], "cut at {n}: stray files");
    }
}

/// The special files a module path may name, made in `dir`, each with a
/// word its error message must contain.
fn special_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join("fifo.so");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let directory = dir.join("directory.so");
    std::fs::create_dir(&directory).unwrap();
    let (a, b) = (dir.join("loop-a.so"), dir.join("loop-b.so"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let huge = dir.join("huge.so");
    // Sparse: one byte over the cap, no disk used.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(modhash::input::DEFAULT_MAX_LEN + 1)
        .unwrap();
    let empty = dir.join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    vec![
        (fifo, "regular file"),
        (directory, "regular file"),
        (a, "symbolic links"),
        (huge, "limit"),
        (empty, "not an ELF file"),
    ]
}

/// Every verb that reads a module refuses each special file at once, with
/// one line and exit 2; `verify` calls it untrusted and unreadable.
#[test]
fn special_files_and_oversized_files_are_refused_by_every_verb() {
    let host = Host::new();
    let dir = host.path().join("special");
    std::fs::create_dir(&dir).unwrap();
    let key = fixtures().join("../signatures/test.key");
    let files = special_files(&dir);
    let made = listing(&dir);
    for (path, word) in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rel = Path::new("special").join(&name);
        let with = |args: &[&str]| {
            let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            all.push(rel.as_os_str());
            modhash(host.path(), all)
        };
        // An empty file is readable: it fails for its content, under
        // elf-image only.
        let readable = name == "empty.so";
        let mut checks = vec![
            ("hash", with(&["hash", "-p", "elf-image"])),
            (
                "load",
                with(&["load", "--host", "host.so", "--manifest", "m"]),
            ),
        ];
        if !readable {
            checks.extend([
                ("hash payload", with(&["hash", "-p", "payload"])),
                ("inspect", with(&["inspect"])),
                ("strip", with(&["strip", "-o", "out.ko"])),
                ("seal", with(&["seal", "--manifest", "m", "-o", "out.so"])),
                (
                    "key extract",
                    with(&["key", "extract", "-o", "out.pem", "--libcamera"]),
                ),
                ("sign", with(&["sign", "--key", key.to_str().unwrap()])),
            ]);
        }
        for (verb, out) in checks {
            let what = format!("{verb} {name}");
            let reason = assert_bad_input(&out, &rel, &what);
            assert!(reason.contains(word), "{what}: {reason:?} lacks {word:?}");
        }
        let verify = with(&["verify", "--host", "host.so", "--manifest", "m"]);
        assert_eq!(verify.status.code(), Some(1), "verify {name}");
        let stdout = text(&verify.stdout);
        let expected = if readable {
            "untrusted: no elf-image digest: "
        } else {
            "untrusted: unreadable: "
        };
        assert!(
            stdout.starts_with(&format!("{}: {expected}", rel.display())) && stdout.contains(word),
            "verify {name}: {stdout}"
        );
    }
    for stray in ["out.ko", "out.so", "out.pem"] {
        assert!(!host.path().join(stray).exists(), "{stray} was written");
    }
    assert_eq!(listing(&dir), made, "a signature or temporary was left");
}

/// A hostile module in a tree, or as a host, leaves no output file: not
/// the manifest, not the sealed host, not a signature, not a temporary.
#[test]
fn hostile_headers_leave_no_partial_output() {
    let hostile = fixtures().join("hostile");
    let key = fixtures().join("../signatures/test.key");
    let mut names: Vec<String> = std::fs::read_dir(&hostile)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".so") && n != "small.so")
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::copy(hostile.join("small.so"), tree.join("small.so")).unwrap();
        std::fs::copy(hostile.join(name), tree.join(name)).unwrap();
        let before = listing(&tree);

        let module = Path::new("tree").join(name);
        let out = modhash(dir.path(), ["manifest", "-o", "m", "tree"]);
        assert_bad_input(&out, &module, &format!("manifest with {name}"));
        let out = modhash(
            dir.path(),
            [
                "seal".as_ref(),
                "--manifest".as_ref(),
                fixtures().join("modules.manifest").as_os_str(),
                "-o".as_ref(),
                "sealed.so".as_ref(),
                module.as_os_str(),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "seal {name}");
        let out = modhash(
            dir.path(),
            [
                "sign".as_ref(),
                "--key".as_ref(),
                key.as_os_str(),
                module.as_os_str(),
            ],
        );
        assert_bad_input(&out, &module, &format!("sign {name}"));

        assert_eq!(
            listing(dir.path()),
            std::slice::from_ref(&tree),
            "{name}: stray output"
        );
        assert_eq!(listing(&tree), before, "{name}: stray file in the tree");
    }
}

/// A name holding a newline must not forge a second `<digest>  <name>` line:
/// `modhash hash` escapes names byte for byte as `sha256sum` does, and
/// `sha256sum -c` reads its output back.
#[test]
fn hash_escapes_names_as_sha256sum_does() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let names: [&[u8]; 6] = [
        b"plain",
        b"new\nline",
        b"fake\n0000000000000000000000000000000000000000000000000000000000000000  x",
        b"back\\slash",
        b"carriage\rreturn",
        b"not utf-8 \xff",
    ];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(dir.path().join(OsStr::from_bytes(name)), [i as u8]).unwrap();
    }
    let args: Vec<&OsStr> = names.iter().map(|n| OsStr::from_bytes(n)).collect();
    let ours = modhash(
        dir.path(),
        [OsStr::new("hash"), "-p".as_ref(), "file".as_ref()]
            .into_iter()
            .chain(args.iter().copied()),
    );
    assert!(ours.status.success(), "{ours:?}");
    let theirs = Command::new("sha256sum")
        .args(&args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(theirs.status.success());
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout)
    );
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(
        ours.stdout.iter().filter(|&&b| b == b'\n').count(),
        names.len()
    );
    std::fs::write(dir.path().join("SUMS"), &ours.stdout).unwrap();
    let check = Command::new("sha256sum")
        .args(["-c", "--strict", "SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

/// A module named so that its name holds a second verdict line cannot
/// forge that verdict: `verify` prints one line per module, control
/// characters escaped, and so do error messages.
#[test]
fn names_cannot_forge_verify_lines() {
    let dir = tempfile::tempdir().unwrap();
    let forged = "x.so\na.so: trusted-by-hash\u{1b}[2K";
    std::fs::write(dir.path().join(forged), b"not a module").unwrap();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/signatures/rsa2048.crt.pem");
    let out = modhash(
        dir.path(),
        [
            OsStr::new("verify"),
            "--keys".as_ref(),
            keys.as_os_str(),
            forged.as_ref(),
        ],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let missing = "missing\nmodhash: a.so: forged";
    let out = modhash(dir.path(), ["inspect", missing]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("modhash: missing\\nmodhash: a.so: forged: "),
        "{stderr}"
    );
    assert!(
        stdout.starts_with("x.so\\na.so: trusted-by-hash\\u{1b}[2K: untrusted"),
        "{stdout}"
    );
}

/// Bad kernel images (a wrong-size section, no section, not ELF, a vmlinux
/// cut short anywhere) and bad module orders leave nothing behind: no
/// sealed image, no root record, no module changed by `--append`.
#[test]
fn hostile_kernel_images_and_orders_leave_no_output() {
    let kernel = fixtures().join("../kernel");
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, name: &str| {
        std::fs::copy(from, dir.path().join(name)).unwrap();
    };
    copy(&kernel.join("root.bin"), "root.bin");
    copy(&kernel.join("vmlinux-wrong-size"), "wrong-size");
    copy(&fixtures().join("tiny.so"), "no-section.so");
    copy(&fixtures().join("not-elf.txt"), "not-elf.txt");
    let vmlinux = std::fs::read(kernel.join("vmlinux")).unwrap();
    let mut images = vec![
        "wrong-size".to_owned(),
        "no-section.so".to_owned(),
        "not-elf.txt".to_owned(),
    ];
    for cut in (0..vmlinux.len()).step_by(vmlinux.len() / 40).skip(1) {
        let name = format!("vmlinux-cut-{cut}");
        std::fs::write(dir.path().join(&name), &vmlinux[..cut]).unwrap();
        images.push(name);
    }
    let before = listing(dir.path());
    for image in &images {
        let out = modhash(
            dir.path(),
            ["kernel", "seal", image, "root.bin", "-o", "out"],
        );
        assert_bad_input(&out, Path::new(image), &format!("kernel seal {image}"));
        assert_eq!(
            listing(dir.path()),
            before,
            "kernel seal {image}: stray output"
        );
    }

    let tree = dir.path().join("tree");
    let copied = Command::new("cp")
        .args([
            "-r".as_ref(),
            kernel.join("tree").as_os_str(),
            tree.as_os_str(),
        ])
        .status()
        .unwrap();
    assert!(copied.success());
    let modules = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<(PathBuf, Vec<u8>)> = walkdir::WalkDir::new(&tree)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| (e.path().to_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    };
    let unchanged = modules();
    for order in [
        "missing.order",
        "escape.order",
        "not-a-module.order",
        "empty.order",
    ] {
        let order = kernel.join(order);
        let out = modhash(
            dir.path(),
            [
                "kernel".as_ref(),
                "tree".as_ref(),
                "tree".as_ref(),
                "--append".as_ref(),
                "-o".as_ref(),
                "root-out".as_ref(),
                "--order".as_ref(),
                order.as_os_str(),
            ],
        );
        assert_bad_input(&out, &order, "kernel tree --append");
        assert!(
            modules() == unchanged,
            "{}: a module changed",
            order.display()
        );
        assert!(!dir.path().join("root-out").exists());
    }
}
