//! How results reach the user: errors as one line on stderr naming the file
//! and the reason, exit codes mapped in one place, JSON on request, and a
//! progress bar only when a person is watching.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

/// What a command concluded, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for holds (exit 0).
    Yes,
    /// A negative answer: untrusted, not sealed with that root, differs
    /// (exit 1).
    No,
}

impl Outcome {
    /// `Yes` when `ok`.
    pub fn from_bool(ok: bool) -> Self {
        if ok {
            Outcome::Yes
        } else {
            Outcome::No
        }
    }
}

/// Bad usage or bad input (exit 2): the file it concerns, and why.
#[derive(Debug)]
pub struct Failure {
    path: Option<PathBuf>,
    reason: String,
}

impl Failure {
    /// A failure concerning `path`.
    pub fn at(path: impl AsRef<Path>, reason: impl fmt::Display) -> Self {
        Self {
            path: Some(path.as_ref().to_owned()),
            reason: reason.to_string(),
        }
    }

    /// A failure whose message already starts with the file it concerns
    /// (the library's errors that carry their path).
    pub fn naming_its_file(error: impl fmt::Display) -> Self {
        Self {
            path: None,
            reason: error.to_string(),
        }
    }

    /// A failure of usage, naming no file.
    pub fn usage(reason: impl fmt::Display) -> Self {
        Self {
            path: None,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => f.write_str(&one_line(&format!("{}: {}", path.display(), self.reason))),
            None => f.write_str(&self.reason),
        }
    }
}

/// `text` with its control characters escaped (`\n`, `\r`, `\t`, else
/// `\u{..}`), so a file name cannot start a line of its own (forging
/// another file's verdict) or send terminal escape sequences.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// The result every command returns.
pub type CommandResult = Result<Outcome, Failure>;

/// Maps a command's result to the process exit code, printing failures.
pub fn exit(result: CommandResult) -> ExitCode {
    match result {
        Ok(Outcome::Yes) => ExitCode::SUCCESS,
        Ok(Outcome::No) => ExitCode::from(1),
        Err(failure) => {
            eprintln!("modhash: {failure}");
            ExitCode::from(2)
        }
    }
}

/// Writes `value` as one line of JSON to stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(|e| Failure::usage(format!("cannot write JSON: {e}")))?;
    writeln!(out).map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))
}

/// A progress bar over `len` items, drawn only when stderr is a terminal
/// (so never in pipes, logs or CI).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_owned());
    bar
}

/// A counter without a known total (the walk is still finding files),
/// drawn only when stderr is a terminal.
pub fn progress_spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{prefix} {spinner} {pos} files {per_sec}") {
        bar.set_style(style);
    }
    bar.set_prefix(what.to_owned());
    bar
}
