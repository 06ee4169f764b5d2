//! How every verb reads its inputs and writes its outputs: inputs through
//! `modhash::input` (non-blocking open, checks on the open descriptor, a
//! size cap), failures as `Failure`s naming the file; outputs atomically,
//! so a failure never leaves a partial file behind.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use modhash::input::DEFAULT_MAX_LEN;

use crate::output::Failure;

/// Largest key, signature or proof file read: all are small.
pub const MAX_SMALL_FILE: u64 = 16 << 20;

/// Reads the whole regular file at `path`, of at most `max_len` bytes.
pub fn read(path: &Path, max_len: u64) -> Result<Vec<u8>, Failure> {
    modhash::input::read_regular(path, max_len).map_err(|e| Failure::at(path, e))
}

/// Reads a module, host or manifest: anything up to the module size cap.
pub fn read_module(path: &Path) -> Result<Vec<u8>, Failure> {
    read(path, DEFAULT_MAX_LEN)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so readers see the old file or the new one, never a part.
/// A replaced file keeps its permission bits; a new one gets 0644, as a
/// shell redirection would under the usual umask.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode());
    write_atomically_with_mode(path, bytes, mode)
}

/// [`write_atomically`] with explicit permission bits.
pub fn write_atomically_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
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
