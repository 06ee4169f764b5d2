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

/// A manifest of three made-up plugins.
fn manifest() -> Manifest {
    Manifest::new(
        Profile::ElfImage,
        (0..3u8).map(|i| (format!("plugin-{i}.so"), Digest::sha256(&[i]))),
    )
    .expect("manifest")
}

/// The example host sealed with `manifest`, written to `dir` alone (no
/// worker beside it).
fn sealed_host(dir: &std::path::Path, manifest: &Manifest) -> std::path::PathBuf {
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_example-host"));
    let sealed =
        modhash::seal::seal(&std::fs::read(built).expect("read host"), manifest).expect("seal");
    let host = dir.join("example-host");
    std::fs::write(&host, &sealed).expect("write host");
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    host
}

#[test]
fn a_sealed_host_prints_its_real_root() {
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_example-host"));
    assert_eq!(run_anchor(built), "unsealed\n");

    let manifest = manifest();
    let dir = tempfile::tempdir().expect("temp dir");
    let host = sealed_host(dir.path(), &manifest);
    assert_eq!(
        run_anchor(&host),
        format!(
            "sealed profile=elf-image count=3 root={}\n",
            manifest.root()
        )
    );
}

#[test]
fn forced_isolation_without_a_worker_fails_at_start_up_naming_it() {
    let manifest = manifest();
    let dir = tempfile::tempdir().expect("temp dir");
    let host = sealed_host(dir.path(), &manifest);
    let manifest_path = dir.path().join("manifest");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    // The plugin is never read: start-up fails first.
    let run = |force: Option<&str>| {
        let mut command = Command::new(&host);
        command.args(["run", "--manifest"]).arg(&manifest_path);
        command.args(["missing-plugin.so", "0", "x"]);
        command.env_remove("MODHASH_FORCE_ISOLATION");
        if let Some(value) = force {
            command.env("MODHASH_FORCE_ISOLATION", value);
        }
        command.output().expect("run the host")
    };

    let out = run(Some("1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let worker = dir.path().join("modhash-worker");
    assert!(
        stderr.starts_with(&format!(
            "example-host: {}: the isolation worker cannot be run",
            worker.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("MODHASH_FORCE_ISOLATION"), "{stderr}");

    // Without it, the policy (reject) never isolates: the host starts and
    // only the missing plugin fails.
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("example-host: missing-plugin.so: "),
        "{stderr}"
    );
}
