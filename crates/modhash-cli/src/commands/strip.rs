//! `modhash strip`: remove a kernel module's appended signature.

use std::path::PathBuf;

use modhash::compressed;
use modhash::signature::linux;

use crate::files::write_atomically;
use crate::output::{CommandResult, Failure, Outcome};

/// Remove the appended signature of a Linux kernel module, leaving exactly
/// the bytes it covered (what the build produced before `sign-file`). A
/// .ko.xz, .ko.zst or .ko.gz module is stripped decompressed and written
/// compressed the same way.
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
    let file = crate::files::read_module(&args.module)?;
    let module = compressed::decompress(&file, compressed::MAX_DECOMPRESSED)
        .map_err(|e| Failure::at(&args.module, e))?;
    let payload = linux::strip(&module.bytes).map_err(|e| Failure::at(&args.module, e))?;
    // A compressed module stays compressed the same way, so it keeps
    // loading under its name.
    let stripped = match module.compression {
        None => std::borrow::Cow::Borrowed(payload),
        Some(compression) => std::borrow::Cow::Owned(
            compression
                .compress(payload)
                .map_err(|e| Failure::at(&args.module, format!("cannot recompress: {e}")))?,
        ),
    };
    write_atomically(args.output.as_ref().unwrap_or(&args.module), &stripped)?;
    Ok(Outcome::Yes)
}
