//! An example host program. It declares the anchor slot that `modhash seal`
//! fills after its plugins are built, and reports what it trusts.
//!
//! `example-host anchor` prints the anchor as the running program sees it:
//! `unsealed` straight from the compiler, `sealed profile=… count=… root=…`
//! after `modhash seal`. The volatile read inside `modhash::anchor!()` is
//! what makes the optimised binary print the sealed root rather than the
//! placeholder the compiler saw.

use std::process::ExitCode;

/// The host's one anchor slot.
fn anchor() -> modhash::Anchor {
    modhash::anchor!()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("anchor") => {
            println!("{}", anchor());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: example-host anchor");
            ExitCode::from(2)
        }
    }
}
