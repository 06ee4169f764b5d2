//! `modhash strip`: remove a kernel module's appended signature.

use std::path::PathBuf;

use modhash::signature::linux;

use crate::files::write_output;
use crate::output::{CommandResult, Failure, Outcome};

/// Remove the appended signature of a Linux kernel module, leaving exactly
/// the bytes it covered (what the build produced before `sign-file`).
///
/// Rewrites MODULE in place, or writes OUT; either way through a temporary
/// file and a rename, so a failure leaves no partial file.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the stripped module here instead of replacing MODULE.
    #[arg(long, short, value_name = "OUT")]
    output: Option<PathBuf>,
    /// The signed module.
    module: PathBuf,
}

pub fn run(args: Args) -> CommandResult {
    let bytes = crate::files::read_module(&args.module)?;
    let payload = linux::strip(&bytes).map_err(|e| Failure::at(&args.module, e))?;
    write_output(args.output.as_ref().unwrap_or(&args.module), payload)?;
    Ok(Outcome::Yes)
}
