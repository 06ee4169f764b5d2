//! What `kernel tree --append` and `strip` write back for compressed
//! modules: the same compression, holding the module the kernel will load
//! (the CLI cases only see the exit code and stdout).
#![allow(clippy::panic, reason = "a failed expectation is a test failure")]

use std::path::Path;
use std::process::Command;

use modhash::compressed::{self, Compression};

fn modhash(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_modhash"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run modhash");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn append_and_strip_keep_each_module_compressed_the_same_way() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/kernel");
    let dir = tempfile::tempdir().expect("temporary directory");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&fixtures)
        .arg(dir.path().join("kernel"))
        .status()
        .expect("cp");
    assert!(copied.success());
    let kernel = dir.path().join("kernel");
    let modules = [
        ("compressed/a.ko.xz", Some(Compression::Xz)),
        ("compressed/net/b.ko.zst", Some(Compression::Zstd)),
        ("compressed/c.ko.gz", Some(Compression::Gzip)),
        ("compressed/d.ko.xz", Some(Compression::Xz)),
        ("compressed/e.ko", None),
    ];
    // Remove each module's proof first (keeping its compression), so only
    // --append can make them trusted again.
    let tree_root = modhash(&kernel, &["kernel", "tree", "tree"]);
    for (path, _) in modules {
        let installed = kernel.join(path);
        let module = compressed::read(&installed).expect("read module");
        let payload = modhash::linux_trailer::split(&module.bytes)
            .expect("a trailer")
            .payload
            .to_vec();
        let replaced = match module.compression {
            Some(c) => c.compress(&payload).expect("compress"),
            None => payload,
        };
        std::fs::write(&installed, replaced).expect("write");
    }
    assert_eq!(
        modhash(&kernel, &["kernel", "tree", "compressed", "--append"]),
        tree_root
    );
    let mut verify = vec!["verify", "--kernel", "vmlinux-sealed"];
    verify.extend(modules.iter().map(|(p, _)| *p));
    let verdicts = modhash(&kernel, &verify);
    assert_eq!(
        verdicts.matches(": trusted-by-hash\n").count(),
        5,
        "{verdicts}"
    );
    for (path, compression) in modules {
        let file = std::fs::read(kernel.join(path)).expect("module");
        assert_eq!(Compression::detect(&file), compression, "{path}");
    }

    modhash(
        &kernel,
        &["strip", "signed-a.ko.xz", "-o", "stripped.ko.xz"],
    );
    let stripped = std::fs::read(kernel.join("stripped.ko.xz")).expect("stripped");
    assert_eq!(Compression::detect(&stripped), Some(Compression::Xz));
    let module = compressed::decompress(&stripped, compressed::MAX_DECOMPRESSED).expect("xz");
    let signed = std::fs::read(kernel.join("tree/a.ko")).expect("signed module");
    let payload = modhash::linux_trailer::split(&signed)
        .expect("a signature")
        .payload;
    assert!(module.bytes.as_ref() == payload, "strip kept the signature");
}
