//! An example host program, the way a program with plugins uses modhash.
//!
//! - It declares the anchor slot that `modhash seal` fills after its
//!   in-tree plugins are built (`modhash::anchor!()`).
//! - It compiles in the public key of a vendor whose out-of-tree plugins it
//!   accepts (`include_bytes!`): keys exist before the host is built.
//! - It loads plugins through `modhash_load::Loader`, which reads each file
//!   once into a sealed memfd and judges exactly those bytes: trusted ones
//!   run in-process, the rest as `--policy` says (refused, isolated in a
//!   sandboxed worker, or loaded and marked tainted).
//!
//! Usage:
//!   example-host anchor
//!   example-host run --manifest M [--policy reject|isolate|taint] PLUGIN METHOD INPUT
//!
//! `anchor` prints the anchor as the running program sees it: `unsealed`
//! straight from the compiler, `sealed profile=… count=… root=…` after
//! `modhash seal` (the opaque read in `anchor!` makes an optimised build see
//! the sealed bytes, not the placeholder).

use std::path::Path;
use std::process::ExitCode;

use modhash::policy::{HashEvidence, Policy, SignatureTrust};
use modhash::signature::Keyring;
use modhash::Manifest;
use modhash_load::{Action, HostPolicy, Loader};

/// The host's one anchor slot.
fn anchor() -> modhash::Anchor {
    modhash::anchor!()
}

/// Keys whose signatures this host accepts, compiled in.
const VENDOR_KEY: &[u8] = include_bytes!("../../vendor-key/vendor.key.pub");

const USAGE: &str = "usage: example-host anchor\n       example-host run --manifest M [--policy reject|isolate|taint] PLUGIN METHOD INPUT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("anchor") if args.len() == 1 => {
            println!("{}", anchor());
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => run(args.get(1..).unwrap_or_default()),
        _ => Err(USAGE.to_owned()),
    };
    result.unwrap_or_else(|message| {
        eprintln!("example-host: {message}");
        ExitCode::from(2)
    })
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut manifest = None;
    let mut action = Action::Reject;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--manifest" => manifest = args.next(),
            "--policy" => {
                action = match args.next().map(String::as_str) {
                    Some("reject") => Action::Reject,
                    Some("isolate") => Action::Isolate,
                    Some("taint") => Action::Taint,
                    _ => return Err(USAGE.to_owned()),
                }
            }
            _ => rest.push(arg),
        }
    }
    let (Some(manifest), [plugin, method, input]) = (manifest, rest.as_slice()) else {
        return Err(USAGE.to_owned());
    };
    let method: u32 = method
        .parse()
        .map_err(|_| format!("method {method:?} is not a number"))?;

    let loader = Loader::new(HostPolicy::new(policy(Path::new(manifest))?, action));
    let module = loader.load(plugin).map_err(|e| format!("{plugin}: {e}"))?;
    let place = if module.is_isolated() {
        "isolated worker"
    } else if loader.tainted().is_empty() {
        "in-process"
    } else {
        "in-process, tainted"
    };
    println!("{plugin}: {}; {place}", module.trust());
    match module.call(method, input.as_bytes()) {
        Ok(output) => {
            println!(
                "{}({method}, {input:?}) = {:?}",
                module.name(),
                String::from_utf8_lossy(&output)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("{}({method}, {input:?}) failed: {error}", module.name());
            Ok(ExitCode::from(1))
        }
    }
}

/// Trust by the anchor and the build's manifest, and by the vendor's key.
fn policy(manifest_path: &Path) -> Result<Policy, String> {
    let text = std::fs::read_to_string(manifest_path)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest: Manifest = text
        .parse()
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let keyring = Keyring::from_files(&[VENDOR_KEY]).map_err(|e| format!("vendor key: {e}"))?;
    Ok(
        Policy::new(anchor(), HashEvidence::Manifest(manifest)).with_signatures(SignatureTrust {
            keyring,
            signtab: None,
        }),
    )
}
