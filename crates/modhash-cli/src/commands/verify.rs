//! `modhash verify`: the verdict a host would reach on each module.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use modhash::linux_trailer::{self, Trailer};
use modhash::policy::{Policy, UntrustedReason, Verdict};
use modhash::proof::InclusionProof;

use crate::output::{one_line, print_json, progress, CommandResult, Failure, Outcome};
use crate::trust::TrustArgs;

/// Decide, as HOST would, whether each MODULE is trusted.
///
/// Prints one line per module: `trusted-by-hash`, `trusted-by-signature
/// <key id>` or `untrusted: <every reason>`. The hash profile comes from the
/// host's anchor. A module whose hash is not anchored is trusted if a
/// signature by one of --keys verifies: an appended Linux module signature,
/// MODULE.sign (libcamera), MODULE.modsig or a --signtab entry. Exit 0 if
/// every module is trusted, 1 if any is not.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
    /// An inclusion proof, one per MODULE in the same order (`modhash
    /// proof`). Without --manifest or --proof, a proof appended to the
    /// module as a modhash trailer is used.
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
    let policy = args.trust.policy()?;

    let bar = progress(args.modules.len(), "verifying");
    let reports: Vec<Report<'_>> = args
        .modules
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let verdict = verdict_for(&policy, path, proofs.get(i));
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

fn verdict_for(policy: &Policy, path: &Path, proof: Option<&InclusionProof>) -> Verdict {
    let bytes = match modhash::input::read_regular(path, modhash::input::DEFAULT_MAX_LEN) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Verdict::Untrusted {
                reasons: vec![UntrustedReason::Unreadable(e.to_string())],
            }
        }
    };
    let embedded = match proof {
        Some(_) => None,
        None => embedded_proof(&bytes),
    };
    policy.decide_module(path, &bytes, proof.or(embedded.as_ref()))
}

/// A proof carried in a modhash trailer, if the module has one that parses.
fn embedded_proof(bytes: &[u8]) -> Option<InclusionProof> {
    match linux_trailer::split(bytes).ok()?.trailer {
        Trailer::Modhash { body } => std::str::from_utf8(body).ok()?.parse().ok(),
        _ => None,
    }
}

/// Reads and parses a proof file.
pub fn read_proof(path: &Path) -> Result<InclusionProof, Failure> {
    let bytes = crate::files::read(path, crate::files::MAX_SMALL_FILE)?;
    let text =
        String::from_utf8(bytes).map_err(|_| Failure::at(path, "proof is not UTF-8 text"))?;
    text.parse().map_err(|e| Failure::at(path, e))
}
