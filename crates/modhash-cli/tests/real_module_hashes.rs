//! The kernel's module hash tree on Debian's real kernel modules.
//!
//! The signed modules of the Debian cloud kernel, their signatures removed,
//! listed in a shuffled `modules.order`: `modhash kernel tree` gives the
//! root, levels and `.merkle` files the independent reference
//! implementation gives, `--append` installs them as the reference does, a
//! vmlinux-shaped ELF compiled here is sealed, and then every module is
//! trusted by hash while a changed byte, a module proven at another line, a
//! proof from another tree, a truncated and an over-long proof are not.
//! Compressed copies verify the same. Separately, the signed modules
//! compressed with xz, zstd and gzip are all trusted by signature with the
//! certificate in the same package's kernel image.
//!
//! Needs the test data from `scripts/fetch-testdata` in `MODHASH_TESTDATA`,
//! gcc, python3, xz, zstd and gzip.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a test failure"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use modhash::Digest;

fn run(program: impl AsRef<OsStr>, args: &[&OsStr]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.to_string_lossy()))
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn modhash(args: &[&OsStr]) -> Output {
    run(env!("CARGO_BIN_EXE_modhash"), args)
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

fn reference(dir: &Path, mode: Option<&str>) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modhash/tests/module_hashes_vectors/reference.py");
    let order = dir.join("modules.order");
    let mut args = vec![os(&script), os(dir), os(&order)];
    args.extend(mode.map(os));
    stdout_of(&run("python3", &args)).trim().to_owned()
}

fn copy_tree(src: &Path, dst: &Path) {
    let out = run("cp", &[os("-r"), os(src), os(dst)]);
    stdout_of(&out);
}

/// The modules of `dir` as modules.order lines (`dir/name.o`), in a fixed
/// shuffled order: sorted by the SHA-256 of the line.
fn shuffled_order(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = common::kernel_module_files(dir)
        .iter()
        .map(|p| {
            let relative = p.strip_prefix(dir).expect("inside the tree");
            let relative = relative.to_str().expect("UTF-8 path");
            format!("{}.o", relative.strip_suffix(".ko").expect("a .ko file"))
        })
        .collect();
    lines.sort_by_key(|l| Digest::sha256(l.as_bytes()));
    lines
}

fn write_order(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join("modules.order"), text).expect("write modules.order");
}

fn module_path(dir: &Path, line: &str) -> PathBuf {
    dir.join(format!(
        "{}.ko",
        line.strip_suffix(".o").expect("a .o line")
    ))
}

/// A vmlinux-shaped ELF with the kernel's 36-byte zero placeholder in
/// `.module_hashes`, compiled here.
fn compile_vmlinux(scratch: &Path) -> PathBuf {
    let source = scratch.join("vmlinux.c");
    std::fs::write(
        &source,
        "struct module_hashes_root { unsigned int levels; unsigned char hash[32]; };\n\
         __attribute__((section(\".module_hashes\"), used))\n\
         const struct module_hashes_root module_hashes_root;\n\
         int main(void) { return 0; }\n",
    )
    .expect("write vmlinux.c");
    let vmlinux = scratch.join("vmlinux");
    stdout_of(&run(
        "gcc",
        &[os("-O2"), os("-o"), os(&vmlinux), os(&source)],
    ));
    vmlinux
}

/// `module` with its appended proof given one hash fewer or one more.
fn reshaped_proof(module: &[u8], extra: bool) -> Vec<u8> {
    let marker_at = module.len() - 28;
    let record = &module[marker_at - 12..marker_at];
    let sig_len = u32::from_be_bytes(record[8..12].try_into().expect("4 bytes")) as usize;
    let proof_at = marker_at - 12 - sig_len;
    let mut proof = module[proof_at..marker_at - 12].to_vec();
    if extra {
        proof.extend_from_slice(&[0x5a; 32]);
    } else {
        proof.truncate(proof.len() - 32);
    }
    let mut out = module[..proof_at].to_vec();
    out.extend_from_slice(&proof);
    out.extend_from_slice(&record[..8]);
    out.extend_from_slice(&(proof.len() as u32).to_be_bytes());
    out.extend_from_slice(&module[marker_at..]);
    out
}

/// Verdict lines of `modhash verify --kernel IMAGE MODULES...`, and its exit
/// code.
fn verify_kernel(image: &Path, modules: &[PathBuf]) -> (i32, Vec<String>) {
    let mut args = vec![os("verify"), os("--kernel"), os(image)];
    args.extend(modules.iter().map(os));
    let out = modhash(&args);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// Compresses each of `files` in place with `tool` (xz, zstd or gzip),
/// which appends its extension.
fn compress(tool: &[&str], files: &[PathBuf]) {
    for chunk in files.chunks(500) {
        let mut args: Vec<&OsStr> = tool[1..].iter().map(os).collect();
        args.extend(chunk.iter().map(os));
        stdout_of(&run(tool[0], &args));
    }
}

const COMPRESSORS: [&[&str]; 3] = [
    &["xz", "-1", "--check=crc32", "-q"],
    &["zstd", "-1", "-q", "--rm"],
    &["gzip", "-1", "-n"],
];

#[test]
fn debian_modules_tree_seal_verify_and_attacks() {
    let Some(data) = common::testdata() else {
        return;
    };
    let scratch = tempfile::tempdir().expect("temporary directory");
    let scratch = scratch.path();
    let pristine = scratch.join("pristine");
    let files = common::copy_stripped(&common::kernel_modules(&data), &pristine);
    let order = shuffled_order(&pristine);
    assert_eq!(order.len(), files);
    write_order(&pristine, &order);

    // The tree: modhash and the reference agree on levels and root.
    let tree = scratch.join("tree");
    copy_tree(&pristine, &tree);
    let record = scratch.join("root.bin");
    let json = stdout_of(&modhash(&[
        os("kernel"),
        os("tree"),
        os("--json"),
        os(&tree),
        os("-o"),
        os(&record),
    ]));
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(json["modules"], files);
    let summary = format!(
        "levels={} root={}",
        json["levels"],
        json["root"].as_str().expect("a root")
    );
    assert_eq!(summary, reference(&pristine, None));
    let record_bytes = std::fs::read(&record).expect("root record");
    assert_eq!(record_bytes.len(), 36);
    assert_eq!(
        record_bytes[..4],
        (json["levels"].as_u64().expect("levels") as u32).to_le_bytes()
    );

    // --proofs writes the reference's .merkle files byte for byte.
    let by_reference = scratch.join("by-reference");
    copy_tree(&pristine, &by_reference);
    reference(&by_reference, Some("--proofs"));
    let out = modhash(&[os("kernel"), os("tree"), os("--proofs"), os(&tree)]);
    assert_eq!(stdout_of(&out).trim(), summary);
    for line in &order {
        let merkle = |dir: &Path| {
            let path = module_path(dir, line).with_extension("merkle");
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        assert_eq!(merkle(&tree), merkle(&by_reference), "{line}");
    }

    // --append installs what the reference installs; the root is unchanged.
    reference(&by_reference, Some("--append"));
    let out = modhash(&[os("kernel"), os("tree"), os("--append"), os(&tree)]);
    assert_eq!(stdout_of(&out).trim(), summary);
    for line in &order {
        let read = |dir: &Path| std::fs::read(module_path(dir, line)).expect("module");
        assert!(read(&tree) == read(&by_reference), "{line}");
    }

    // Sealing changes only the 36 bytes of the record.
    let vmlinux = compile_vmlinux(scratch);
    let sealed = scratch.join("vmlinux.sealed");
    stdout_of(&modhash(&[
        os("kernel"),
        os("seal"),
        os(&vmlinux),
        os(&record),
        os("-o"),
        os(&sealed),
    ]));
    let (before, after) = (
        std::fs::read(&vmlinux).expect("vmlinux"),
        std::fs::read(&sealed).expect("sealed vmlinux"),
    );
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(!changed.is_empty() && changed.len() <= 36);
    assert!(changed.last().unwrap_or(&0) - changed[0] < 36);

    // Every installed module is trusted by hash.
    let installed: Vec<PathBuf> = order.iter().map(|l| module_path(&tree, l)).collect();
    let (code, lines) = verify_kernel(&sealed, &installed);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), files);
    assert!(lines.iter().all(|l| l.ends_with(": trusted-by-hash")));
    // The unsealed placeholder trusts none of them.
    let (code, _) = verify_kernel(&vmlinux, &installed[..3]);
    assert_eq!(code, 1);

    // Attacks on one module, each alone in its directory.
    let victim = &order[10];
    let attacks = scratch.join("attacks");
    std::fs::create_dir(&attacks).expect("attacks directory");
    let installed_victim = std::fs::read(module_path(&tree, victim)).expect("module");
    let mut attack_files = Vec::new();
    let mut write_attack = |name: &str, bytes: &[u8]| {
        let path = attacks.join(name);
        std::fs::write(&path, bytes).expect("write attack");
        attack_files.push(path);
    };
    let mut flipped = installed_victim.clone();
    flipped[installed_victim.len() / 2] ^= 1;
    write_attack("changed.ko", &flipped);
    write_attack(
        "truncated-proof.ko",
        &reshaped_proof(&installed_victim, false),
    );
    write_attack(
        "over-long-proof.ko",
        &reshaped_proof(&installed_victim, true),
    );
    // Moved: the same module proven at the next line of another order.
    let moved = scratch.join("moved");
    copy_tree(&pristine, &moved);
    let mut moved_order = order.clone();
    moved_order.swap(10, 11);
    write_order(&moved, &moved_order);
    stdout_of(&modhash(&[
        os("kernel"),
        os("tree"),
        os("--append"),
        os(&moved),
    ]));
    write_attack(
        "moved.ko",
        &std::fs::read(module_path(&moved, victim)).expect("moved module"),
    );
    // Another tree: the build without its last module (same levels).
    let other = scratch.join("other");
    copy_tree(&pristine, &other);
    write_order(&other, &order[..order.len() - 1]);
    stdout_of(&modhash(&[
        os("kernel"),
        os("tree"),
        os("--append"),
        os(&other),
    ]));
    write_attack(
        "other-tree.ko",
        &std::fs::read(module_path(&other, victim)).expect("module of the other tree"),
    );
    let (code, lines) = verify_kernel(&sealed, &attack_files);
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 5);
    for line in &lines {
        assert!(line.contains(": untrusted: module hash proof "), "{line}");
    }
    assert!(lines[0].contains("does not lead to the image's root"));
    assert!(lines[1].contains("the image's root needs"));
    assert!(lines[2].contains("the image's root needs"));
    assert!(lines[3].contains("does not lead to the image's root"));
    assert!(lines[4].contains("does not lead to the image's root"));

    // Compressed copies of the installed tree: the same root, every module
    // still trusted by hash.
    let compressed = scratch.join("compressed");
    copy_tree(&tree, &compressed);
    let modules: Vec<PathBuf> = order.iter().map(|l| module_path(&compressed, l)).collect();
    let mut renamed = Vec::new();
    for (i, tool) in COMPRESSORS.iter().enumerate() {
        let share: Vec<PathBuf> = modules.iter().skip(i).step_by(3).cloned().collect();
        compress(tool, &share);
        let extension = ["xz", "zst", "gz"][i];
        renamed.extend(share.iter().map(|p| {
            let mut name = p.clone().into_os_string();
            name.push(".");
            name.push(extension);
            PathBuf::from(name)
        }));
    }
    assert!(renamed.iter().all(|p| p.is_file()));
    assert!(modules.iter().all(|p| !p.exists()));
    let out = modhash(&[os("kernel"), os("tree"), os(&compressed)]);
    assert_eq!(stdout_of(&out).trim(), summary);
    let (code, lines) = verify_kernel(&sealed, &renamed);
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().all(|l| l.ends_with(": trusted-by-hash")));
}

/// Debian's newer kernels ship modules as `.ko.xz`, but no such kernel is
/// in this machine's package sources (bookworm without backports has only
/// 6.1, whose modules are not compressed): the real signed 6.1 modules are
/// compressed here, a third each with xz, zstd and gzip.
#[test]
fn compressed_debian_modules_are_trusted_by_the_image_certificate() {
    let Some(data) = common::testdata() else {
        return;
    };
    let scratch = tempfile::tempdir().expect("temporary directory");
    let tree = scratch.path().join("kernel");
    copy_tree(&common::kernel_modules(&data), &tree);
    let modules = common::kernel_module_files(&tree);
    let mut compressed = Vec::new();
    for (i, tool) in COMPRESSORS.iter().enumerate() {
        let share: Vec<PathBuf> = modules.iter().skip(i).step_by(3).cloned().collect();
        compress(tool, &share);
        let extension = ["xz", "zst", "gz"][i];
        compressed.extend(
            share
                .iter()
                .map(|p| PathBuf::from(format!("{}.{extension}", p.display()))),
        );
    }
    let (code, lines) = verify_kernel(&common::kernel_image(&data), &compressed);
    assert_eq!(
        code,
        0,
        "{:?}",
        lines.iter().find(|l| !l.contains("trusted"))
    );
    assert_eq!(lines.len(), modules.len());
    assert!(lines.iter().all(|l| l.contains(": trusted-by-signature ")));
}
