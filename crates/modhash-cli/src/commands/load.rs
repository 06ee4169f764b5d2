//! `modhash load`: load a module exactly as a host would, for packagers to
//! test a module set.

use std::path::{Path, PathBuf};

use modhash::policy::Verdict;
use modhash_load::{Action, HostPolicy, LoadError, Loader};

use crate::output::{print_json, CommandResult, Failure, Outcome};
use crate::trust::TrustArgs;

/// Load MODULE as HOST would, and print its verdict and module name.
///
/// Reads MODULE once into a sealed memory file, judges it by HOST's anchor
/// (with --manifest, or a proof appended to MODULE or beside it as
/// MODULE.proof) and --keys, then loads it in-process, isolates it or
/// refuses it as --policy says. Prints the verdict and the name the module
/// reports through the module ABI. Exit 0 if the module loaded, 1 if the policy refused it, 2 if it is
/// not a loadable module or an input is bad.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
    /// What happens to an untrusted module.
    #[arg(long, value_enum, default_value_t = PolicyArg::Reject)]
    policy: PolicyArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The module to load.
    module: PathBuf,
}

/// `--policy` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    /// Refuse untrusted modules.
    Reject,
    /// Run untrusted modules in a sandboxed worker.
    Isolate,
    /// Load untrusted modules in-process and mark them tainted.
    Taint,
}

impl From<PolicyArg> for Action {
    fn from(arg: PolicyArg) -> Self {
        match arg {
            PolicyArg::Reject => Action::Reject,
            PolicyArg::Isolate => Action::Isolate,
            PolicyArg::Taint => Action::Taint,
        }
    }
}

#[derive(serde::Serialize)]
struct Report<'a> {
    path: &'a Path,
    #[serde(flatten)]
    verdict: &'a Verdict,
    /// Whether the module was loaded.
    loaded: bool,
    /// The name the module reports, when loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    /// Whether it runs in a worker process.
    isolated: bool,
    tainted: bool,
}

pub fn run(args: Args) -> CommandResult {
    let judge = HostPolicy::new(args.trust.policy()?, args.policy.into());
    let loader = Loader::new(judge);
    let (report_verdict, module) = match loader.load(&args.module) {
        Ok(module) => (module.trust().clone(), Some(module)),
        Err(LoadError::Rejected { verdict, .. }) => (verdict, None),
        Err(error) => return Err(Failure::at(&args.module, error)),
    };
    let report = Report {
        path: &args.module,
        verdict: &report_verdict,
        loaded: module.is_some(),
        name: module.as_ref().map(|m| m.name()),
        isolated: module.as_ref().is_some_and(|m| m.is_isolated()),
        tainted: !loader.tainted().is_empty(),
    };
    if args.json {
        print_json(&report)?;
    } else {
        let how = match (&module, report.isolated, report.tainted) {
            (None, _, _) => "refused by policy reject".to_owned(),
            (Some(m), true, _) => format!("loaded `{}` in an isolated worker", m.name()),
            (Some(m), false, true) => format!("loaded `{}` in-process, tainted", m.name()),
            (Some(m), false, false) => format!("loaded `{}` in-process", m.name()),
        };
        println!("{}: {}; {how}", args.module.display(), report.verdict);
    }
    Ok(Outcome::from_bool(module.is_some()))
}
