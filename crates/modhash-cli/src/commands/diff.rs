//! `modhash diff`: check that two builds are identical except for what a
//! rebuild cannot reproduce (appended signatures and modhash trailers).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use modhash::diff::{self, Class, Comparison, ContentDifference, Detail, RegionDifference, Span};
use modhash::ProfileRule;
use rayon::prelude::*;

use crate::files::include;
use crate::output::{print_json, progress, CommandResult, Failure, Outcome};
use modhash::tree::{describe_io, walk, Entry, EntryKind};

/// Most sections or segments listed per file in human output; `--json`
/// lists them all.
const MAX_REGIONS_SHOWN: usize = 20;

/// Check that two builds are identical except for signatures.
///
/// A and B are two directories, whose files are paired by relative path
/// (symlinks are compared by target, never followed), or two files. Pairs
/// that differ are listed, then the counts. Exit 0 when every pair is
/// identical or identical except for an appended signature or trailer, 1
/// otherwise, 2 on bad input.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which bytes must be equal: auto (each file's own profile, as
    /// `modhash hash` gives it), payload (all but an appended module
    /// signature or modhash trailer), elf-image (the loadable image) or
    /// file (every byte).
    #[arg(long, short, default_value_t)]
    profile: ProfileRule,
    /// Only compare files whose path relative to A and B matches this glob
    /// (repeatable), e.g. `--include '*.ko'`.
    #[arg(long = "include", value_name = "GLOB")]
    includes: Vec<String>,
    /// Print JSON: every pair with its class, and the counts.
    #[arg(long)]
    json: bool,
    /// The first build (a directory or a file).
    a: PathBuf,
    /// The second build (a directory or a file).
    b: PathBuf,
}

/// One pair of paths and how they compare.
#[derive(Debug, serde::Serialize)]
struct PairReport {
    /// Path relative to A and B; empty when two files were given.
    path: String,
    class: Class,
    a: Option<EntryKind>,
    b: Option<EntryKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Detail>,
}

/// A path found in A, in B or in both, waiting to be compared.
struct Planned {
    relative: String,
    sides: Sides,
}

enum Sides {
    OnlyA(Entry),
    OnlyB(Entry),
    Both(Entry, Entry),
}

#[derive(serde::Serialize)]
struct Report<'a> {
    a: &'a Path,
    b: &'a Path,
    profile: ProfileRule,
    /// Whether every pair is identical or identical except signature.
    same: bool,
    counts: Counts,
    pairs: &'a [PairReport],
}

/// How many pairs fell in each class, listed in [`Class::ALL`] order.
struct Counts([usize; Class::ALL.len()]);

impl Counts {
    fn of(pairs: &[PairReport]) -> Self {
        let mut counts = [0; Class::ALL.len()];
        for (slot, class) in counts.iter_mut().zip(Class::ALL) {
            *slot = pairs.iter().filter(|p| p.class == class).count();
        }
        Counts(counts)
    }

    fn iter(&self) -> impl Iterator<Item = (Class, usize)> + '_ {
        Class::ALL.into_iter().zip(self.0.iter().copied())
    }
}

impl serde::Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (class, n) in self.iter() {
            map.serialize_entry(class.name(), &n)?;
        }
        map.end()
    }
}

pub fn run(args: Args) -> CommandResult {
    let pairs = compare(&args.a, &args.b, args.profile, &args.includes)?;
    let same = pairs.iter().all(|p| p.class.is_same_build());
    let counts = Counts::of(&pairs);
    if args.json {
        print_json(&Report {
            a: &args.a,
            b: &args.b,
            profile: args.profile,
            same,
            counts,
            pairs: &pairs,
        })?;
    } else {
        let mut text = String::new();
        for pair in pairs.iter().filter(|p| !p.class.is_same_build()) {
            describe(&mut text, pair, &args.a, &args.b);
        }
        let total: usize = counts.0.iter().sum();
        let listed: Vec<String> = counts
            .iter()
            .map(|(class, n)| format!("{n} {class}"))
            .collect();
        let _ = writeln!(text, "{total} compared: {}", listed.join(", "));
        std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
    }
    Ok(Outcome::from_bool(same))
}

/// Pairs and compares A and B, two directories or two files.
fn compare(
    a: &Path,
    b: &Path,
    profile: ProfileRule,
    includes: &[String],
) -> Result<Vec<PairReport>, Failure> {
    let is_dir = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.is_dir())
            .map_err(|e| Failure::at(path, describe_io(&e)))
    };
    let planned = match (is_dir(a)?, is_dir(b)?) {
        (true, true) => {
            let include = include(includes)?;
            let walk_included = |root: &Path| -> Result<Vec<Entry>, Failure> {
                let mut entries = walk(root, &include).map_err(Failure::usage)?;
                // With --include, only what matches is compared: a directory
                // that does not match is no difference of its own, its
                // matching contents are paired one by one.
                if !includes.is_empty() {
                    entries
                        .retain(|e| e.kind != EntryKind::Directory || include.matches(&e.relative));
                }
                Ok(entries)
            };
            let (entries_a, entries_b) = rayon::join(|| walk_included(a), || walk_included(b));
            pair(entries_a?, entries_b?)
        }
        (false, false) => {
            let file = |path: &Path| Entry {
                relative: String::new(),
                path: path.to_owned(),
                kind: EntryKind::File,
            };
            vec![Planned {
                relative: String::new(),
                sides: Sides::Both(file(a), file(b)),
            }]
        }
        (true, false) => {
            return Err(Failure::at(
                b,
                "not a directory, but A is; give two directories or two files",
            ))
        }
        (false, true) => {
            return Err(Failure::at(
                b,
                "a directory, but A is not; give two directories or two files",
            ))
        }
    };
    let bar = progress(planned.len(), "comparing");
    let reports = planned
        .into_par_iter()
        .map(|p| {
            let report = compare_pair(p, profile);
            bar.inc(1);
            report
        })
        .collect::<Result<Vec<_>, _>>()?;
    bar.finish_and_clear();
    Ok(reports)
}

/// Merges two sorted walks by relative path. Directories present on both
/// sides are left out (their contents are paired instead); below a
/// directory that only one side has, or that is something else on the
/// other side, nothing more is listed: the directory stands for its tree,
/// as in `diff -r`.
fn pair(a: Vec<Entry>, b: Vec<Entry>) -> Vec<Planned> {
    let mut by_path: BTreeMap<String, (Option<Entry>, Option<Entry>)> = BTreeMap::new();
    for entry in a {
        let key = entry.relative.clone();
        by_path.entry(key).or_default().0 = Some(entry);
    }
    for entry in b {
        let key = entry.relative.clone();
        by_path.entry(key).or_default().1 = Some(entry);
    }
    // A parent path sorts before everything below it, so a directory is
    // marked before its contents are visited.
    let mut covered: HashSet<String> = HashSet::new();
    let mut planned = Vec::new();
    for (relative, (a, b)) in by_path {
        if ancestors(&relative).any(|dir| covered.contains(dir)) {
            continue;
        }
        let kinds = (a.as_ref().map(|e| e.kind), b.as_ref().map(|e| e.kind));
        match kinds {
            (Some(EntryKind::Directory), Some(EntryKind::Directory)) => continue,
            (Some(x), Some(y)) if x == y => {}
            (Some(EntryKind::Directory), _) | (_, Some(EntryKind::Directory)) => {
                covered.insert(relative.clone());
            }
            _ => {}
        }
        let sides = match (a, b) {
            (Some(a), Some(b)) => Sides::Both(a, b),
            (Some(a), None) => Sides::OnlyA(a),
            (None, Some(b)) => Sides::OnlyB(b),
            (None, None) => continue,
        };
        planned.push(Planned { relative, sides });
    }
    planned
}

/// `a/b/c` → `a/b`, `a`.
fn ancestors(relative: &str) -> impl Iterator<Item = &str> {
    relative
        .match_indices('/')
        .map(|(i, _)| relative.get(..i).unwrap_or_default())
}

fn compare_pair(p: Planned, profile: ProfileRule) -> Result<PairReport, Failure> {
    let (kind_a, kind_b, comparison) = match &p.sides {
        Sides::OnlyA(a) => (Some(a.kind), None, structural(Class::OnlyInA)),
        Sides::OnlyB(b) => (None, Some(b.kind), structural(Class::OnlyInB)),
        Sides::Both(a, b) => (Some(a.kind), Some(b.kind), compare_both(a, b, profile)?),
    };
    Ok(PairReport {
        path: p.relative,
        class: comparison.class,
        a: kind_a,
        b: kind_b,
        detail: comparison.detail,
    })
}

/// Compares what two trees hold at the same path.
fn compare_both(a: &Entry, b: &Entry, profile: ProfileRule) -> Result<Comparison, Failure> {
    if a.kind != b.kind {
        return Ok(structural(Class::TypeDiffers));
    }
    Ok(match a.kind {
        EntryKind::File => diff::compare_paths(profile, &a.path, &b.path).map_err(|e| {
            let path = match e.side {
                diff::Side::A => &a.path,
                diff::Side::B => &b.path,
            };
            Failure::at(path, e)
        })?,
        EntryKind::Symlink => {
            let target = |path: &Path| {
                std::fs::read_link(path).map_err(|e| Failure::at(path, describe_io(&e)))
            };
            diff::compare_symlink_targets(
                target(&a.path)?.as_os_str(),
                target(&b.path)?.as_os_str(),
            )
        }
        // Never opened: a FIFO would block and a device has no build
        // output to compare; the same kind on both sides is all there is.
        EntryKind::Directory | EntryKind::Special => structural(Class::Identical),
    })
}

fn structural(class: Class) -> Comparison {
    Comparison {
        class,
        detail: None,
    }
}

/// Appends the human description of a pair that differs.
fn describe(out: &mut String, pair: &PairReport, a: &Path, b: &Path) {
    let label = if pair.path.is_empty() {
        format!("{} and {}", a.display(), b.display())
    } else {
        pair.path.clone()
    };
    let kind = |k: Option<EntryKind>| k.map_or("nothing", kind_name);
    let _ = match pair.class {
        Class::OnlyInA => writeln!(out, "{}: {label} ({})", pair.class, kind(pair.a)),
        Class::OnlyInB => writeln!(out, "{}: {label} ({})", pair.class, kind(pair.b)),
        Class::TypeDiffers => writeln!(
            out,
            "{}: {label} (A: {}, B: {})",
            pair.class,
            kind(pair.a),
            kind(pair.b)
        ),
        _ => writeln!(out, "{}: {label}", pair.class),
    };
    match &pair.detail {
        Some(Detail::Contents(d)) => describe_contents(out, d),
        Some(Detail::SymlinkTarget { a, b }) => {
            let _ = writeln!(out, "  symlink target: A -> {a}, B -> {b}");
        }
        _ => {}
    }
}

fn describe_contents(out: &mut String, d: &ContentDifference) {
    if let Some(reason) = &d.whole_files_because {
        let _ = writeln!(out, "  whole files compared: {reason}");
    }
    let _ = writeln!(
        out,
        "  first difference at offset {:#x} (compared {} bytes in A, {} in B)",
        d.first_difference, d.len_a, d.len_b
    );
    let Some(elf) = &d.elf else { return };
    if !elf.header.is_empty() {
        let _ = writeln!(out, "  ELF header: {}", elf.header.join(", "));
    }
    describe_regions(out, "segment", &elf.segments);
    describe_regions(out, "section", &elf.sections);
    if elf.is_empty() {
        let _ = writeln!(out, "  no ELF section or segment differs: the bytes that differ lie outside them (padding, table offsets, appended data)");
    }
}

fn describe_regions(out: &mut String, what: &str, regions: &[RegionDifference]) {
    let span = |s: Span| format!("offset {:#x}, {:#x} bytes", s.offset, s.size);
    for r in regions.iter().take(MAX_REGIONS_SHOWN) {
        let _ = match (r.a, r.b) {
            (Some(a), Some(b)) => writeln!(
                out,
                "  {what} {}: {} (A: {}; B: {})",
                r.name,
                r.differs.join(", "),
                span(a),
                span(b)
            ),
            (Some(a), None) => writeln!(out, "  {what} {}: only in A ({})", r.name, span(a)),
            (None, Some(b)) => writeln!(out, "  {what} {}: only in B ({})", r.name, span(b)),
            (None, None) => Ok(()),
        };
    }
    if let Some(more) = regions
        .len()
        .checked_sub(MAX_REGIONS_SHOWN)
        .filter(|&n| n > 0)
    {
        let _ = writeln!(out, "  … and {more} more {what}s (--json lists all)");
    }
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Symlink => "symlink",
        EntryKind::Directory => "directory",
        EntryKind::Special => "special file",
    }
}
