//! How every verb reads its inputs and writes its outputs: inputs through
//! `modhash::input` (non-blocking open, checks on the open descriptor, a
//! size cap), failures as `Failure`s naming the file; outputs through
//! [`write_output`], so a failure never leaves a partial file behind and
//! `-o` never replaces a device node, a FIFO or a symlink.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use modhash::input::{ReadBuffer, DEFAULT_MAX_LEN};
use modhash::tree::Include;
use modhash::{Digest, Profile, ProfileRule};

use crate::output::Failure;
use modhash::tree::describe_io;

/// Largest key, signature or proof file read: all are small.
pub const MAX_SMALL_FILE: u64 = 16 << 20;

/// The files `--include` globs take.
pub fn include(globs: &[String]) -> Result<Include, Failure> {
    Include::globs(globs).map_err(|e| Failure::usage(format!("--include {}: {}", e.glob, e.reason)))
}

/// Reads and parses a manifest file.
pub fn read_manifest(path: &Path) -> Result<modhash::Manifest, Failure> {
    modhash::Manifest::from_file(path).map_err(Failure::naming_its_file)
}

/// Hashes the file at `path` under the profile `rule` gives it.
pub fn digest(
    path: &Path,
    rule: ProfileRule,
    buffer: &mut ReadBuffer,
) -> Result<(Profile, Digest), Failure> {
    modhash::tree::digest_file(path, rule, buffer).map_err(Failure::usage)
}

/// Reads the whole regular file at `path`, of at most `max_len` bytes.
pub fn read(path: &Path, max_len: u64) -> Result<Vec<u8>, Failure> {
    modhash::input::read_regular(path, max_len).map_err(|e| Failure::at(path, e))
}

/// Reads a module, host or manifest: anything up to the module size cap.
pub fn read_module(path: &Path) -> Result<Vec<u8>, Failure> {
    read(path, DEFAULT_MAX_LEN)
}

/// Writes `bytes` to the output `path` as tools like `sort -o` and
/// `curl -o` do, so `-o` never destroys what it names:
/// - a character device or FIFO (`/dev/null`, `/dev/stdout`, a pipe) is
///   written through; replacing it with a regular file would break every
///   later user of the node;
/// - a symlink is followed and its target replaced, so the link stays;
/// - a regular file or a new path is replaced through a temporary file in
///   the same directory and a rename, so readers see the old file or the
///   new one, never a part, and a failure leaves no partial file.
///
/// A replaced file keeps its permission bits; a new one gets 0644, as a
/// shell redirection would under the usual umask.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode());
    write_output_with_mode(path, bytes, mode)
}

/// [`write_output`] with the permission bits a new or replaced file gets.
pub fn write_output_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_char_device() || meta.file_type().is_fifo() => {
            write_through(path, bytes)
        }
        Ok(meta) if !meta.is_file() => Err(Failure::at(
            path,
            "is neither a regular file, a character device nor a FIFO; give a file path to -o",
        )),
        _ => replace_atomically(&final_target(path)?, bytes, mode),
    }
}

/// Writes into an existing device node or FIFO without creating,
/// truncating or replacing it.
fn write_through(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Failure::at(path, describe_io(&e)))?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| Failure::at(path, describe_io(&e)))
}

/// The file a chain of symlinks at `path` ends in, existing or not (a
/// dangling link names the file to create); `path` itself otherwise.
fn final_target(path: &Path) -> Result<PathBuf, Failure> {
    /// As many links as the kernel follows before `ELOOP`.
    const MAX_LINKS: usize = 40;
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)
                    .map_err(|e| Failure::at(&current, describe_io(&e)))?;
                current = match current.parent() {
                    Some(parent) => parent.join(target),
                    None => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Failure::at(path, "too many levels of symbolic links"))
}

fn replace_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Failure::at(path, e))?;
    temp.write_all(bytes)
        .and_then(|()| {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        })
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| Failure::at(path, e))?;
    temp.persist(path).map_err(|e| Failure::at(path, e.error))?;
    Ok(())
}
