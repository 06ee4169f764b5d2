//! The strip matrix: modules built by gcc, clang and rustc, each stripped
//! by every tool a distribution uses, keep their `elf-image` digest, and
//! the stripped module is trusted by a host sealed with the unstripped
//! modules' manifest and loads through `modhash load`.
//!
//! Needs gcc, clang, binutils (strip, objcopy), llvm-strip and elfutils
//! (eu-strip); a missing tool fails the test, naming it.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]
#![allow(clippy::indexing_slicing, reason = "test data of known shape")]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MODHASH: &str = env!("CARGO_BIN_EXE_modhash");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a tool, failing the test with its output if it fails.
fn run(program: &str, args: &[&OsStr]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it (see docs/security.md)")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// The C example module, with debug info, by a C compiler.
fn c_module(compiler: &str, out: &Path) {
    let root = repo();
    let include = root.join("crates/modhash-plugin/include");
    let source = root.join("examples/c-module/upper.c");
    let args = [
        os("-shared"),
        os("-fPIC"),
        os("-O2"),
        os("-g"),
        os("-I"),
        include.as_os_str(),
        os("-o"),
        out.as_os_str(),
        source.as_os_str(),
    ];
    run(compiler, &args);
}

/// The Rust example plugin, a cdylib, with the test's profile (debug info
/// included in the dev profile).
fn rust_module(out: &Path) {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut args = vec![
        os("build"),
        os("--quiet"),
        os("-p"),
        os("example-plugin-greeter"),
    ];
    if !cfg!(debug_assertions) {
        args.push(os("--release"));
    }
    run(cargo, &args);
    // target/<profile>/deps/<test exe> → target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    std::fs::copy(profile_dir.join("libexample_plugin_greeter.so"), out).unwrap();
}

/// A way of stripping `input` into `output`; `scratch` may hold side files.
type Stripper = fn(input: &Path, output: &Path, scratch: &Path);

/// binutils `strip` with one option.
fn strip(flag: &str, input: &Path, output: &Path) {
    run(
        "strip",
        &[os(flag), os("-o"), output.as_os_str(), input.as_os_str()],
    );
}

/// Where a stripper that splits off debug info puts it.
fn debug_file(scratch: &Path, output: &Path) -> PathBuf {
    scratch.join(format!(
        "{}.debug",
        output.file_name().unwrap().to_string_lossy()
    ))
}

const STRIPPERS: [(&str, Stripper); 6] = [
    ("strip --strip-debug", |i, o, _| {
        strip("--strip-debug", i, o)
    }),
    ("strip --strip-unneeded", |i, o, _| {
        strip("--strip-unneeded", i, o)
    }),
    ("strip --strip-all", |i, o, _| strip("--strip-all", i, o)),
    ("llvm-strip", |i, o, _| {
        run("llvm-strip", &[os("-o"), o.as_os_str(), i.as_os_str()]);
    }),
    (
        "objcopy --only-keep-debug + --add-gnu-debuglink",
        |i, o, scratch| {
            let debug = debug_file(scratch, o);
            run(
                "objcopy",
                &[os("--only-keep-debug"), i.as_os_str(), debug.as_os_str()],
            );
            let link = format!("--add-gnu-debuglink={}", debug.display());
            run(
                "objcopy",
                &[os("--strip-debug"), os(&link), i.as_os_str(), o.as_os_str()],
            );
        },
    ),
    ("eu-strip", |i, o, scratch| {
        let debug = debug_file(scratch, o);
        run(
            "eu-strip",
            &[
                os("-f"),
                debug.as_os_str(),
                os("-o"),
                o.as_os_str(),
                i.as_os_str(),
            ],
        );
    }),
];

fn modhash(cwd: &Path, args: &[&OsStr]) -> Output {
    Command::new(MODHASH)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn elf_image_digest(path: &Path) -> String {
    let out = run(
        MODHASH,
        &[os("hash"), os("-p"), os("elf-image"), path.as_os_str()],
    );
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[test]
fn every_stripper_keeps_the_digest_and_the_module_loads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (built, stripped, scratch) = (
        root.join("built"),
        root.join("stripped"),
        root.join("scratch"),
    );
    for d in [&built, &stripped, &scratch] {
        std::fs::create_dir(d).unwrap();
    }
    c_module("gcc", &built.join("gcc.so"));
    c_module("clang", &built.join("clang.so"));
    rust_module(&built.join("rustc.so"));

    // The host is sealed with the manifest of the modules as built.
    std::fs::copy(
        repo().join("crates/modhash-cli/tests/cmd/fixtures/c-host.so"),
        root.join("host.so"),
    )
    .unwrap();
    let made = modhash(root, &[os("manifest"), os("-o"), os("m"), os("built")]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let sealed = modhash(
        root,
        &[os("seal"), os("--manifest"), os("m"), os("host.so")],
    );
    assert!(
        sealed.status.success(),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );

    let mut modules = Vec::new();
    for compiler in ["gcc", "clang", "rustc"] {
        let input = built.join(format!("{compiler}.so"));
        let digest = elf_image_digest(&input);
        for (index, (tool, stripper)) in STRIPPERS.iter().enumerate() {
            let output = stripped.join(format!("{compiler}-{index}.so"));
            stripper(&input, &output, &scratch);
            let (before, after) = (
                std::fs::metadata(&input).unwrap().len(),
                std::fs::metadata(&output).unwrap().len(),
            );
            assert!(
                after < before || tool.contains("debuglink"),
                "{tool} did not strip the {compiler} module ({before} → {after} bytes)"
            );
            assert_eq!(
                elf_image_digest(&output),
                digest,
                "{tool} changed the elf-image digest of the {compiler} module"
            );
            modules.push((format!("{compiler} + {tool}"), output));
        }
    }

    let mut args = vec![
        os("verify"),
        os("--host"),
        os("host.so"),
        os("--manifest"),
        os("m"),
    ];
    args.extend(modules.iter().map(|(_, path)| path.as_os_str()));
    let verify = modhash(root, &args);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "verify:\n{stdout}");
    assert_eq!(
        stdout.matches(": trusted-by-hash\n").count(),
        modules.len(),
        "{stdout}"
    );

    for (what, path) in &modules {
        let load = modhash(
            root,
            &[
                os("load"),
                os("--host"),
                os("host.so"),
                os("--manifest"),
                os("m"),
                path.as_os_str(),
            ],
        );
        let stdout = String::from_utf8_lossy(&load.stdout);
        assert_eq!(
            load.status.code(),
            Some(0),
            "{what}: {stdout}{}",
            String::from_utf8_lossy(&load.stderr)
        );
        assert!(
            stdout.contains("trusted-by-hash; loaded `") && stdout.ends_with("in-process\n"),
            "{what}: {stdout}"
        );
    }
}
