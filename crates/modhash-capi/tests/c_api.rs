//! The C API driven from C: tests/c/api_test.c, compiled against the
//! libmodhash.so of this build, run on a real compiled module, a tampered
//! copy, a file that is not ELF and manifests that do and do not match,
//! with every pointer it can pass as NULL. Its output is compared with
//! tests/c/api_test.expected, line by line.

#![allow(clippy::panic, reason = "a failed expectation is a test failure")]

use std::path::Path;
use std::process::Command;

mod common;

use common::{include_args, link_args, root, run};
use modhash::anchor::Anchor;
use modhash::{Manifest, Profile};

fn cc() -> std::ffi::OsString {
    std::env::var_os("CC").unwrap_or_else(|| "cc".into())
}

/// Compiles examples/c-module/upper.c into `out`.
fn compile_module(out: &Path) {
    run(Command::new(cc())
        .args(["-shared", "-fPIC", "-O2", "-I"])
        .arg(root().join("crates/modhash-plugin/include"))
        .arg("-o")
        .arg(out)
        .arg(root().join("examples/c-module/upper.c")));
}

/// Compiles the C test program against libmodhash.so, with `extra` flags.
fn compile_test(out: &Path, extra: &[&str]) {
    let dir = out.parent().expect("the program's directory");
    run(Command::new(cc())
        .args([
            "-std=c99",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-g",
        ])
        .args(extra)
        .args(include_args())
        .arg("-o")
        .arg(out)
        .arg(root().join("crates/modhash-capi/tests/c/api_test.c"))
        .args(link_args(dir)));
}

/// Compiles mods/libhelper.so, a library no manifest lists, and
/// mods/libneedy.so, the example module linked against it (DT_NEEDED,
/// found through RUNPATH `$ORIGIN`).
fn compile_needy_module(mods: &Path) {
    let helper = mods.join("helper.c");
    std::fs::write(&helper, "int modhash_test_helper(void) { return 1; }\n").expect("write");
    run(Command::new(cc())
        .args(["-shared", "-fPIC", "-Wl,-soname,libhelper.so", "-o"])
        .arg(mods.join("libhelper.so"))
        .arg(&helper));
    run(Command::new(cc())
        .args(["-shared", "-fPIC", "-O2", "-I"])
        .arg(root().join("crates/modhash-plugin/include"))
        .arg("-o")
        .arg(mods.join("libneedy.so"))
        .arg(root().join("examples/c-module/upper.c"))
        .args([
            "-Wl,--no-as-needed",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN",
            "-L",
        ])
        .arg(mods)
        .arg("-lhelper"));
}

/// The `elf-image` digest of the file at `path`.
fn digest_of(path: &Path) -> modhash::Digest {
    let bytes = std::fs::read(path).expect("read module");
    Profile::ElfImage.digest(&bytes).expect("module digest")
}

/// A directory as the C test expects it: mods/libupper.so and
/// mods/libneedy.so in a manifest whose root is in `sealed.record` (but not
/// mods/libhelper.so, which libneedy.so needs), a copy of libupper.so with
/// one byte of its code's data changed, a manifest of other modules, and a
/// file that is not ELF.
fn prepare(dir: &Path) {
    std::fs::create_dir_all(dir.join("mods")).expect("mkdir");
    std::fs::create_dir_all(dir.join("tampered")).expect("mkdir");
    let module = dir.join("mods/libupper.so");
    compile_module(&module);
    compile_needy_module(&dir.join("mods"));
    let bytes = std::fs::read(&module).expect("read module");
    let manifest = Manifest::new(
        Profile::ElfImage,
        [
            ("libupper.so".to_owned(), digest_of(&module)),
            (
                "libneedy.so".to_owned(),
                digest_of(&dir.join("mods/libneedy.so")),
            ),
        ],
    )
    .expect("manifest");
    std::fs::write(dir.join("manifest"), manifest.to_string()).expect("write manifest");
    std::fs::write(dir.join("sealed.record"), Anchor::sealed_record(&manifest)).expect("record");
    let other = Manifest::new(
        Profile::ElfImage,
        [("libother.so".to_owned(), modhash::Digest::sha256(b"other"))],
    )
    .expect("manifest");
    std::fs::write(dir.join("wrong.manifest"), other.to_string()).expect("write manifest");

    // One byte of a message in .rodata, which a loadable segment maps.
    let needle = b"unknown method";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the module's message");
    let mut tampered = bytes.clone();
    if let Some(byte) = tampered.get_mut(at) {
        *byte = b'U';
    }
    std::fs::write(dir.join("tampered/libupper.so"), tampered).expect("write tampered");
    std::fs::write(dir.join("notelf.so"), "#!/bin/sh\necho not a module\n").expect("write");
}

/// Runs the compiled test in `dir` and returns its output.
fn output_of(program: &Path, dir: &Path, env: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .arg("sealed.record")
        .current_dir(dir)
        .envs(env.iter().copied())
        .env_remove("MODHASH_FORCE_ISOLATION")
        .output()
        .expect("run api_test");
    assert!(
        output.status.success(),
        "api_test failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Replaces what varies with the C compiler: the module's digests and the
/// manifest's root.
fn normalise(text: &str, dir: &Path) -> String {
    let digest = digest_of(&dir.join("mods/libupper.so")).to_hex();
    let tampered = digest_of(&dir.join("tampered/libupper.so")).to_hex();
    let helper = digest_of(&dir.join("mods/libhelper.so")).to_hex();
    let manifest = std::fs::read_to_string(dir.join("manifest")).expect("manifest");
    let root = manifest
        .parse::<Manifest>()
        .expect("manifest")
        .root()
        .to_hex();
    let mut out = String::new();
    for line in text.lines() {
        let line = line
            .replace(&digest, "<digest>")
            .replace(&tampered, "<tampered-digest>")
            .replace(&helper, "<helper-digest>")
            .replace(&root, "<root>");
        // Pointers printed by %p are "(nil)" for NULL, which is all the
        // program prints them for; a library version is the crate's.
        out.push_str(&line.replace(env!("CARGO_PKG_VERSION"), "<version>"));
        out.push('\n');
    }
    out
}

/// Fails naming the first line that differs, not the whole output.
fn assert_same(actual: &str, expected: &str) {
    let differs = actual
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(expected.lines().map(Some).chain(std::iter::repeat(None)))
        .take(actual.lines().count().max(expected.lines().count()))
        .enumerate()
        .find(|(_, (a, e))| a != e);
    if let Some((line, (a, e))) = differs {
        panic!(
            "api_test output differs from api_test.expected at line {}:\n  actual:   {}\n  expected: {}\n(MODHASH_BLESS=1 rewrites the expectation; review the diff)",
            line + 1,
            a.unwrap_or("<end>"),
            e.unwrap_or("<end>")
        );
    }
}

#[test]
fn the_c_api_answers_every_input_with_a_status_and_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    prepare(dir.path());
    let program = dir.path().join("api_test");
    compile_test(&program, &[]);
    let actual = normalise(&output_of(&program, dir.path(), &[]), dir.path());
    let expected_path = root().join("crates/modhash-capi/tests/c/api_test.expected");
    if std::env::var_os("MODHASH_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).expect("bless");
    }
    let expected = std::fs::read_to_string(&expected_path).expect("api_test.expected");
    assert_same(&actual, &expected);
}

/// The same program under AddressSanitizer (with LeakSanitizer): no
/// invalid access and no leak, in the program or in libmodhash, whose
/// allocations go through the same intercepted malloc.
#[test]
fn the_c_api_neither_leaks_nor_touches_freed_memory_under_asan() {
    let dir = tempfile::tempdir().expect("tempdir");
    prepare(dir.path());
    let program = dir.path().join("api_test_asan");
    compile_test(&program, &["-fsanitize=address", "-fno-omit-frame-pointer"]);
    let expected =
        std::fs::read_to_string(root().join("crates/modhash-capi/tests/c/api_test.expected"))
            .expect("api_test.expected");
    let actual = normalise(
        &output_of(
            &program,
            dir.path(),
            &[(
                "ASAN_OPTIONS",
                "detect_leaks=1:abort_on_error=0:exitcode=99",
            )],
        ),
        dir.path(),
    );
    assert_same(&actual, &expected);
}
