//! The host reads the root `modhash seal` wrote into its own binary, not the
//! placeholder its compiler saw: this binary is built optimised (see the
//! workspace's profile override), where a plain read would be folded.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use modhash::{Digest, Manifest, Profile};

fn run_anchor(host: &std::path::Path) -> String {
    let out = Command::new(host)
        .arg("anchor")
        .output()
        .expect("run the host");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn a_sealed_host_prints_its_real_root() {
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_example-host"));
    assert_eq!(run_anchor(built), "unsealed\n");

    let manifest = Manifest::new(
        Profile::ElfImage,
        (0..3u8).map(|i| (format!("plugin-{i}.so"), Digest::sha256(&[i]))),
    )
    .expect("manifest");
    let sealed =
        modhash::seal::seal(&std::fs::read(built).expect("read host"), &manifest).expect("seal");
    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("example-host");
    std::fs::write(&host, &sealed).expect("write host");
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    assert_eq!(
        run_anchor(&host),
        format!(
            "sealed profile=elf-image count=3 root={}\n",
            manifest.root()
        )
    );
}
