//! `modhash verify`: the verdict a host would reach on each module.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use modhash::compressed;
use modhash::module_hashes::{self, image::ImageError};
use modhash::policy::kernel::KernelPolicy;
use modhash::policy::{Policy, UntrustedReason, Verdict};
use modhash::proof::InclusionProof;
use modhash::signature::kernel_image::{self, KernelImageError};

use crate::output::{one_line, print_json, progress, CommandResult, Failure, Outcome};
use crate::trust::TrustArgs;

/// Decide, as HOST (or a Linux kernel IMAGE) would, whether each MODULE is
/// trusted.
///
/// Prints one line per module: `trusted-by-hash`, `trusted-by-signature
/// <key id>` or `untrusted: <every reason>`. The hash profile comes from the
/// host's anchor. A module whose hash is not anchored is trusted if a
/// signature by one of --keys verifies: an appended Linux module signature,
/// MODULE.sign (libcamera), MODULE.modsig or a --signtab entry.
///
/// With --kernel, a module with an appended module hash proof is trusted by
/// hash if the proof leads to the image's `.module_hashes` root, and a module
/// with a PKCS#7 signature by signature if a certificate built into the image
/// (or given with --keys) verifies it, as that kernel decides. Compressed
/// modules (.ko.xz, .ko.zst, .ko.gz) are judged decompressed. Exit 0 if
/// every module is trusted, 1 if any is not.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
    /// A Linux kernel image (vmlinux or bzImage) whose module hashes root and
    /// built-in certificates decide.
    #[arg(
        long,
        value_name = "IMAGE",
        conflicts_with_all = ["host", "manifest", "signtab"]
    )]
    kernel: Option<PathBuf>,
    /// An inclusion proof, one per MODULE in the same order (`modhash
    /// proof`). Without --proof, a proof appended to the module as a
    /// modhash trailer, else MODULE.proof beside it, is used; with
    /// --manifest too, either one suffices.
    #[arg(
        long = "proof",
        value_name = "P",
        requires = "host",
        conflicts_with = "manifest"
    )]
    proofs: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The modules to check.
    #[arg(required = true)]
    modules: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    path: &'a Path,
    #[serde(flatten)]
    verdict: Verdict,
}

pub fn run(args: Args) -> CommandResult {
    if !args.proofs.is_empty() && args.proofs.len() != args.modules.len() {
        return Err(Failure::usage(format!(
            "{} proofs for {} modules; give one --proof per module, in the same order",
            args.proofs.len(),
            args.modules.len()
        )));
    }
    let proofs = args
        .proofs
        .iter()
        .map(|p| read_proof(p))
        .collect::<Result<Vec<_>, _>>()?;
    let judge = match &args.kernel {
        Some(image) => Judge::Kernel(kernel_policy(image, &args.trust)?),
        None if args.trust.host.is_none() && args.trust.keys.is_empty() => {
            return Err(Failure::usage(
                "give --host, --keys (or both), or --kernel: what decides which modules are trusted",
            ))
        }
        None => Judge::Host(args.trust.policy()?),
    };

    let bar = progress(args.modules.len(), "verifying");
    let reports: Vec<Report<'_>> = args
        .modules
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let verdict = verdict_for(&judge, path, proofs.get(i));
            bar.inc(1);
            Report { path, verdict }
        })
        .collect();
    bar.finish_and_clear();
    let all_trusted = reports.iter().all(|r| r.verdict.is_trusted());
    if args.json {
        print_json(&reports)?;
    } else {
        for report in &reports {
            println!(
                "{}",
                one_line(&format!("{}: {}", report.path.display(), report.verdict))
            );
        }
    }
    Ok(Outcome::from_bool(all_trusted))
}

/// Who decides: a host's policy, or a kernel image's.
enum Judge {
    Host(Policy),
    Kernel(KernelPolicy),
}

/// The policy of the kernel `image`: its root, if it has a `.module_hashes`
/// section, and its certificates plus those of --keys.
fn kernel_policy(image: &Path, trust: &TrustArgs) -> Result<KernelPolicy, Failure> {
    let bytes = crate::files::read_module(image)?;
    let root = match module_hashes::image::read(&bytes) {
        Ok(found) => Some(found.root),
        Err(ImageError::NoSection) => None,
        Err(e) => return Err(Failure::at(image, e)),
    };
    let mut keyring = trust.keyring()?;
    match kernel_image::certificates(&bytes) {
        // Only the keys the kernel itself trusts: not blacklisted, not
        // revoked by the image.
        Ok(found) => {
            for cert in found.certificates.iter().filter(|c| c.is_trusted()) {
                keyring
                    .add_file(&cert.der)
                    .map_err(|e| Failure::at(image, e))?;
            }
        }
        // A kernel without builtin keys trusts modules by hash alone.
        Err(KernelImageError::NoCertificates(_) | KernelImageError::NoSystemList(_)) => {}
        Err(e) => return Err(Failure::at(image, e)),
    }
    Ok(KernelPolicy::new(root, keyring))
}

fn verdict_for(judge: &Judge, path: &Path, proof: Option<&InclusionProof>) -> Verdict {
    // A compressed kernel module is judged as the kernel loads it.
    let bytes = match compressed::read(path) {
        Ok(module) => module.bytes,
        Err(e) => {
            return Verdict::Untrusted {
                reasons: vec![UntrustedReason::Unreadable(e.to_string())],
            }
        }
    };
    match judge {
        Judge::Kernel(policy) => policy.decide(&bytes),
        Judge::Host(policy) => {
            let travelling = match proof {
                Some(_) => None,
                None => InclusionProof::travelling_with(path, &bytes),
            };
            policy.decide_module(path, &bytes, proof.or(travelling.as_ref()))
        }
    }
}

/// Reads and parses a proof file.
pub fn read_proof(path: &Path) -> Result<InclusionProof, Failure> {
    let bytes = crate::files::read(path, crate::files::MAX_SMALL_FILE)?;
    let text =
        String::from_utf8(bytes).map_err(|_| Failure::at(path, "proof is not UTF-8 text"))?;
    text.parse().map_err(|e| Failure::at(path, e))
}
