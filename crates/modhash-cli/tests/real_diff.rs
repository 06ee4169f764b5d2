//! `modhash diff` on a real Debian kernel module tree: the signed tree
//! against a copy with every signature stripped is the same build; changing
//! one module or removing one is found, and the changed ELF section named.
//!
//! Needs the test data from `scripts/fetch-testdata` in `MODHASH_TESTDATA`.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failed expectation is a test failure, and JSON indexing yields Null, not a panic"
)]

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `modhash diff --json A B`: the exit code and the report.
fn diff_json(a: &Path, b: &Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_modhash"))
        .args(["diff", "--json"])
        .args([a, b])
        .output()
        .expect("run modhash");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn count(report: &Value, class: &str) -> u64 {
    report["counts"][class].as_u64().unwrap_or(u64::MAX)
}

fn paths_of(report: &Value, class: &str) -> Vec<String> {
    report["pairs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["class"] == class)
        .filter_map(|p| p["path"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn signed_tree_against_stripped_copy_changed_module_and_removed_file() {
    let Some(data) = common::testdata() else {
        return;
    };
    let tree = common::kernel_modules(&data);
    let scratch = tempfile::tempdir().expect("temporary directory");
    let copy = scratch.path().join("kernel");
    let files = common::copy_stripped(&tree, &copy);
    assert!(
        files > 1000,
        "expected the full module tree, found {files} files"
    );

    // Stripping the signatures is the only difference.
    let (code, report) = diff_json(&tree, &copy);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(count(&report, "identical-except-signature"), files as u64);
    assert_eq!(report["same"], true);

    // One module's .modinfo changed: exactly one pair differs, and the
    // difference is located in that section.
    let changed = "net/key/af_key.ko";
    let module = copy.join(changed);
    let mut bytes = std::fs::read(&module).expect("read module");
    let at = bytes
        .windows(8)
        .position(|w| w == b"license=")
        .expect("every module declares its license in .modinfo")
        + 8;
    if let Some(byte) = bytes.get_mut(at) {
        *byte ^= 0x20;
    }
    std::fs::write(&module, &bytes).expect("write changed module");
    let (code, report) = diff_json(&tree, &copy);
    assert_eq!(code, 1);
    assert_eq!(paths_of(&report, "differs"), [changed]);
    assert_eq!(
        count(&report, "identical-except-signature"),
        files as u64 - 1
    );
    let pair = report["pairs"]
        .as_array()
        .and_then(|pairs| pairs.iter().find(|p| p["path"] == changed))
        .expect("the changed module is reported");
    let sections: Vec<(&str, &Value)> = pair["detail"]["elf"]["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["name"].as_str().unwrap_or(""), &s["differs"]))
        .collect();
    assert_eq!(
        sections,
        [(".modinfo", &serde_json::json!(["contents"]))],
        "{pair:#}"
    );

    // The human report names the section too.
    let out = Command::new(env!("CARGO_BIN_EXE_modhash"))
        .arg("diff")
        .args([&tree, &copy])
        .output()
        .expect("run modhash");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("differs: {changed}\n")), "{text}");
    assert!(
        text.contains("  section .modinfo: contents (A: offset 0x"),
        "{text}"
    );

    // A removed module is only in A.
    let removed = "net/vmw_vsock/vsock_loopback.ko";
    std::fs::remove_file(copy.join(removed)).expect("remove module");
    let (code, report) = diff_json(&tree, &copy);
    assert_eq!(code, 1);
    assert_eq!(paths_of(&report, "only-in-a"), [removed]);
    assert_eq!(paths_of(&report, "differs"), [changed]);
    assert_eq!(
        count(&report, "identical-except-signature"),
        files as u64 - 2
    );
}
