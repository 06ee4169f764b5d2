//! The three public headers compile without a warning as C99 (gcc, clang)
//! and as C++11, C++17 and C++20 (g++, clang++), and the anchor record
//! MODHASH_ANCHOR declares is, byte for byte, the unsealed record the Rust
//! side seals and reads. A missing compiler fails the test: CI installs all
//! four.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_library, include_args, link_args, root};

/// Compiles tests/c/headers.c with `compiler` and `flags`, runs it and
/// returns its output.
fn compile_and_run(dir: &Path, compiler: &str, language: &str, standard: &str) -> String {
    let exe = dir.join(format!("headers-{compiler}-{standard}"));
    let output = Command::new(compiler)
        .args(["-x", language, &format!("-std={standard}")])
        .args(["-Wall", "-Wextra", "-pedantic", "-Werror", "-O2"])
        .args(include_args())
        .arg(root().join("crates/modhash-capi/tests/c/headers.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the compiler (install gcc, g++ and clang)");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{compiler} -std={standard}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = Command::new(&exe).output().expect("run the header program");
    assert!(run.status.success());
    String::from_utf8(run.stdout).expect("UTF-8")
}

#[test]
fn every_header_compiles_cleanly_as_c_and_cpp_and_lays_the_anchor_out_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expected = format!("{}\n0 3 1\n", hex::encode(modhash::anchor::UNSEALED_RECORD));
    for (compiler, language, standards) in [
        ("gcc", "c", &["c99", "c11"][..]),
        ("clang", "c", &["c99", "c11"][..]),
        ("g++", "c++", &["c++11", "c++17", "c++20"][..]),
        ("clang++", "c++", &["c++11", "c++17", "c++20"][..]),
    ] {
        for standard in standards {
            let output = compile_and_run(dir.path(), compiler, language, standard);
            assert_eq!(output, expected, "{compiler} -std={standard}");
        }
    }
}

/// The functions modhash.h declares, in order of appearance.
fn declared_functions() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("crates/modhash-capi/include/modhash.h"))
        .expect("modhash.h");
    let mut names = Vec::new();
    for line in header
        .lines()
        .filter(|l| !l.trim_start().starts_with('*') && !l.contains("/*"))
    {
        for (at, _) in line.match_indices("modhash_") {
            let rest = line.get(at..).unwrap_or_default();
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if rest.get(name.len()..).is_some_and(|r| r.starts_with('(')) {
                names.push(name);
            }
        }
    }
    names
}

/// Every function modhash.h declares is exported by libmodhash.so, and
/// libmodhash.so exports nothing else under the modhash_ prefix (nor any
/// Rust symbol a C linker could bind to by accident).
#[test]
fn the_header_declares_exactly_what_the_library_exports() {
    let library = build_library().join("libmodhash.so");
    let output = Command::new("nm")
        .args(["-D", "--defined-only", "--format=just-symbols"])
        .arg(&library)
        .output()
        .expect("run nm (binutils)");
    assert!(output.status.success(), "nm failed");
    let exported: std::collections::BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|s| s.starts_with("modhash_"))
        .map(str::to_owned)
        .collect();
    let declared: std::collections::BTreeSet<String> = declared_functions().into_iter().collect();
    assert!(
        declared.len() > 40,
        "the header parser found too few functions: {declared:?}"
    );
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty() && undeclared.is_empty(),
        "declared in modhash.h, not exported: {missing:?}; exported, not declared: {undeclared:?}"
    );
}

/// The status values modhash.h gives, by name, in order.
fn declared_statuses() -> Vec<(String, i32)> {
    let header = std::fs::read_to_string(root().join("crates/modhash-capi/include/modhash.h"))
        .expect("modhash.h");
    let body = header
        .split_once("typedef enum modhash_status {")
        .and_then(|(_, rest)| rest.split_once("} modhash_status;"))
        .expect("the modhash_status enum")
        .0;
    body.lines()
        .filter_map(|line| {
            let (name, value) = line.trim().trim_end_matches(',').split_once(" = ")?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The library names each status the header declares after the header's
/// own enumerator: the values in modhash.h and in the Rust enum agree.
#[test]
fn the_header_and_the_library_agree_on_every_status() {
    let statuses = declared_statuses();
    assert!(statuses.len() >= 16, "found {statuses:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let program = dir.path().join("statuses.c");
    let mut source = String::from("#include <stdio.h>\n#include <modhash.h>\nint main(void)\n{\n");
    for (name, _) in &statuses {
        source.push_str(&format!(
            "\tprintf(\"%d %s\\n\", (int){name}, modhash_status_name({name}));\n"
        ));
    }
    source.push_str("\tprintf(\"%s\\n\", modhash_status_name(-1));\n\treturn 0;\n}\n");
    std::fs::write(&program, source).expect("write");
    let exe = dir.path().join("statuses");
    let compiled = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Werror"])
        .args(include_args())
        .arg(&program)
        .arg("-o")
        .arg(&exe)
        .args(link_args(dir.path()))
        .status()
        .expect("run cc");
    assert!(compiled.success());
    let output = Command::new(&exe).output().expect("run the program");
    let expected: String = statuses
        .iter()
        .map(|(name, value)| format!("{value} {name}\n"))
        .chain(["MODHASH_UNKNOWN_STATUS\n".to_owned()])
        .collect();
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}
