//! `modhash completions`: shell completions generated from the same clap
//! definitions as the parser, so they cannot drift from it.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::output::{CommandResult, Outcome};

/// Print the completion script for SHELL on stdout.
///
/// bash: `modhash completions bash > /usr/share/bash-completion/completions/modhash`;
/// zsh: `modhash completions zsh > "${fpath[1]}/_modhash"`;
/// fish: `modhash completions fish > ~/.config/fish/completions/modhash.fish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    shell: Shell,
}

pub fn run(args: Args) -> CommandResult {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "modhash", &mut std::io::stdout());
    Ok(Outcome::Yes)
}
