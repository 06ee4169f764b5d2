//! `modhash manifest`: hash every module below a directory, or listed in a
//! file, in parallel, and write the manifest with its Merkle root.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use modhash::tree::{manifest_of_files, manifest_of_tree};
use modhash::ProfileRule;

use crate::commands::root::RootReport;
use crate::files::{include, write_output};
use crate::output::{print_json, progress_spinner, CommandResult, Failure, Outcome};

/// Hash every regular file below DIR (symlinks are not followed), or each
/// file --files-from lists, and write the manifest; the root goes to
/// stderr (with --json, to stdout).
///
/// A manifest has one profile, named in its header. The default, auto,
/// gives each file the profile `modhash hash` gives it (elf-image for ELF
/// executables and shared objects, payload for kernel modules and files
/// with an appended trailer, file otherwise) and refuses a tree whose files
/// get different ones, naming two of them: give --profile, or make one
/// manifest per kind with --include. Only a manifest of profile file is
/// `sha256sum -c` input.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which bytes to hash: auto, file, payload or elf-image.
    #[arg(long, short, default_value_t)]
    profile: ProfileRule,
    /// Only files whose path relative to DIR matches this glob (repeatable),
    /// e.g. `--include '*.so'`.
    #[arg(long = "include", value_name = "GLOB", conflicts_with = "files_from")]
    includes: Vec<String>,
    /// Hash the files listed in FILE, one path relative to DIR per line
    /// (`-` reads the list from stdin), instead of walking DIR.
    #[arg(long, value_name = "FILE")]
    files_from: Option<PathBuf>,
    /// Write the manifest here instead of to stdout.
    #[arg(long, short, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Print the root, profile and counts as JSON on stdout (the manifest
    /// goes to --output).
    #[arg(long, requires = "output")]
    json: bool,
    /// The directory holding the modules; with --files-from, the directory
    /// the listed paths are relative to (default: the current one).
    #[arg(required_unless_present = "files_from")]
    dir: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    manifest: &'a Path,
    #[serde(flatten)]
    summary: RootReport,
}

pub fn run(args: Args) -> CommandResult {
    let dir = args.dir.as_deref().unwrap_or(Path::new("."));
    let bar = progress_spinner("hashing");
    let on_file = || bar.inc(1);
    let manifest = match &args.files_from {
        Some(list) => manifest_of_files(dir, read_list(list)?, args.profile, on_file),
        None => manifest_of_tree(dir, args.profile, &include(&args.includes)?, on_file),
    };
    bar.finish_and_clear();
    let manifest = manifest.map_err(Failure::usage)?;
    let text = manifest.to_string();
    match &args.output {
        Some(out) => write_output(out, text.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?,
    }
    if let (true, Some(out)) = (args.json, &args.output) {
        print_json(&Report {
            manifest: out,
            summary: RootReport::of(&manifest),
        })?;
    } else {
        eprintln!(
            "root {} (profile {}, {} modules, {} distinct digests)",
            manifest.root(),
            manifest.profile(),
            manifest.entries().count(),
            manifest.leaf_count()
        );
    }
    Ok(Outcome::Yes)
}

/// The paths of a --files-from list: one per line, blank lines skipped.
fn read_list(list: &Path) -> Result<Vec<String>, Failure> {
    let text = if list == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(|e| Failure::at("stdin", format!("cannot read the file list: {e}")))?;
        text
    } else {
        let bytes = crate::files::read(list, crate::files::MAX_SMALL_FILE)?;
        String::from_utf8(bytes).map_err(|_| Failure::at(list, "file list is not UTF-8 text"))?
    };
    Ok(text
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}
