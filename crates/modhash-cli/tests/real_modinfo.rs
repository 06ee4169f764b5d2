//! `modhash inspect` names a kernel module's signature as `modinfo` (kmod)
//! does, field for field, on Debian's signed modules: modinfo parses the
//! PKCS#7 with its own code, so the two agreeing is independent evidence.
#![allow(clippy::unwrap_used, clippy::panic, reason = "test assertions")]
#![allow(clippy::indexing_slicing, reason = "JSON of known shape")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// How many modules are compared: one `modinfo` process each.
const SAMPLE: usize = 60;

/// The `sig_id`, `signer`, `sig_key` and `sig_hashalgo` lines `modinfo`
/// prints for `module`.
fn modinfo(module: &Path) -> BTreeMap<String, String> {
    let out = Command::new("modinfo")
        .arg(module)
        .output()
        .unwrap_or_else(|e| panic!("run modinfo ({e}); install kmod"));
    assert!(out.status.success(), "modinfo {}", module.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| ["sig_id", "signer", "sig_key", "sig_hashalgo"].contains(key))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect()
}

/// The same fields from `modhash inspect --json`.
fn inspect(module: &Path) -> BTreeMap<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_modhash"))
        .args(["inspect", "--json"])
        .arg(module)
        .output()
        .unwrap();
    assert!(out.status.success(), "inspect {}", module.display());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = json["trailer"]["modinfo"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: no modinfo fields in {json}", module.display()));
    fields
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn inspect_names_debian_module_signatures_as_modinfo_does() {
    let Some(data) = common::testdata() else {
        return;
    };
    let files = common::kernel_module_files(&common::kernel_modules(&data));
    let step = (files.len() / SAMPLE).max(1);
    let mut compared = 0;
    for module in files.iter().step_by(step) {
        let theirs = modinfo(module);
        assert_eq!(
            theirs.len(),
            4,
            "{}: modinfo printed {theirs:?}",
            module.display()
        );
        assert_eq!(inspect(module), theirs, "{}", module.display());
        compared += 1;
    }
    eprintln!("{compared} Debian modules: inspect's signature fields equal modinfo's");
}
