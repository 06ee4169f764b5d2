//! `modhash man`: manual pages generated from the same clap definitions as
//! the parser and `--help`, so they cannot drift from them.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::Man;

use crate::files::write_output;
use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Print the modhash(1) manual page (roff) on stdout, or write one page per
/// verb into DIR.
///
/// `modhash man | man -l -` reads it; `modhash man -o /usr/share/man/man1`
/// installs modhash.1, modhash-hash.1, modhash-key-extract.1 and the rest.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write modhash.1 and a page per verb (modhash-VERB.1) into this
    /// existing directory.
    #[arg(long, short, value_name = "DIR")]
    output: Option<PathBuf>,
    /// With -o, print the pages written as JSON.
    #[arg(long, requires = "output")]
    json: bool,
}

pub fn run(args: Args) -> CommandResult {
    let mut command = crate::Cli::command().disable_help_subcommand(true);
    command.build();
    let Some(dir) = &args.output else {
        let page = render(command)
            .map_err(|e| Failure::usage(format!("cannot render the manual page: {e}")))?;
        std::io::Write::write_all(&mut std::io::stdout().lock(), &page)
            .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
        return Ok(Outcome::Yes);
    };
    if !dir.is_dir() {
        return Err(Failure::at(dir, "not a directory; create it first"));
    }
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    if args.json {
        print_json(&written)?;
    } else {
        for path in &written {
            println!("{}", path.display());
        }
    }
    Ok(Outcome::Yes)
}

/// Writes the page of `command` and, depth first, of each of its verbs.
fn write_pages(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), Failure> {
    let man = Man::new(command.clone());
    let path = dir.join(man.get_filename());
    let page = render(command.clone()).map_err(|e| Failure::at(&path, e))?;
    write_output(&path, &page)?;
    written.push(path);
    for verb in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        write_pages(verb.clone(), dir, written)?;
    }
    Ok(())
}

fn render(command: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    Man::new(command).render(&mut page)?;
    Ok(page)
}
