//! Walking a module directory: deterministic, never following symlinks.
//!
//! Paths are reported relative to the root with `/` separators, sorted by
//! bytes, so a manifest or a diff does not depend on the order the
//! filesystem returns entries in or on where the tree sits.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::output::Failure;

/// What a directory entry is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// A FIFO, socket or device.
    Special,
}

/// One entry below the root.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub relative: String,
    /// Path to open.
    pub path: PathBuf,
    /// Its kind.
    pub kind: EntryKind,
}

/// Compiles `--include` globs; `None` when there are none (include all).
pub fn include_set(globs: &[String]) -> Result<Option<GlobSet>, Failure> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let glob = Glob::new(glob).map_err(|e| Failure::usage(format!("--include {glob}: {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| Failure::usage(format!("--include: {e}")))
}

/// Every entry below `root` (directories included), sorted by relative
/// path; entries not matching `include` are left out (directories always
/// stay, so a diff can report them).
pub fn walk(root: &Path, include: Option<&GlobSet>) -> Result<Vec<Entry>, Failure> {
    let mut entries = entries(root, include)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by(|a, b| a.relative.as_bytes().cmp(b.relative.as_bytes()));
    Ok(entries)
}

/// The entries of [`walk`] in the order the filesystem returns them, as
/// they are found, so work on the first ones can start before the walk
/// ends.
pub fn entries<'a>(
    root: &'a Path,
    include: Option<&'a GlobSet>,
) -> Result<impl Iterator<Item = Result<Entry, Failure>> + Send + 'a, Failure> {
    let meta = std::fs::metadata(root).map_err(|e| Failure::at(root, describe_io(&e)))?;
    if !meta.is_dir() {
        return Err(Failure::at(root, "not a directory"));
    }
    let walker = walkdir::WalkDir::new(root).follow_links(false).min_depth(1);
    Ok(walker.into_iter().filter_map(move |item| {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_owned();
                let reason = e.io_error().map_or_else(|| e.to_string(), describe_io);
                return Some(Err(Failure::at(path, reason)));
            }
        };
        let relative = match relative_path(root, item.path()) {
            Ok(relative) => relative,
            Err(failure) => return Some(Err(failure)),
        };
        let file_type = item.file_type();
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Special
        };
        if kind != EntryKind::Directory && include.is_some_and(|set| !set.is_match(&relative)) {
            return None;
        }
        Some(Ok(Entry {
            relative,
            path: item.into_path(),
            kind,
        }))
    }))
}

fn relative_path(root: &Path, path: &Path) -> Result<String, Failure> {
    let relative = path
        .strip_prefix(root)
        .map_err(|_| Failure::at(path, "walked outside the directory given"))?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts.map(|p| p.join("/")).ok_or_else(|| {
        Failure::at(
            path,
            "path is not valid UTF-8; rename it or leave it out with --include",
        )
    })
}

/// An I/O error as the short sentence users expect.
pub fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}
