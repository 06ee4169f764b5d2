//! Reading a module file once, safely.
//!
//! A module path is attacker-influenced: it may name a FIFO (opening it for
//! reading would block forever), a device, a directory, a symlink loop or a
//! file far larger than any module. The file is opened non-blocking and
//! `fstat`ed through the same descriptor, so the checks apply to what is
//! read, not to what the path named a moment earlier.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Largest module read by default: 1 GiB, far above any real module.
pub const DEFAULT_MAX_LEN: u64 = 1 << 30;

/// Why a module file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The path does not exist.
    #[error("no such file")]
    NotFound,
    /// Permission denied.
    #[error("permission denied")]
    PermissionDenied,
    /// Not a regular file.
    #[error("not a regular file ({0}); give the path of a module file")]
    NotRegular(&'static str),
    /// Larger than the cap.
    #[error("file is {len} bytes, over the {max}-byte limit for a module")]
    TooLarge {
        /// The file's size.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// The file changed size while being read.
    #[error("file changed size while being read; retry when it is not being written")]
    Changed,
    /// Any other I/O failure.
    #[error("{0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied,
            std::io::ErrorKind::IsADirectory => ReadError::NotRegular("directory"),
            _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                ReadError::Io(std::io::Error::other("too many levels of symbolic links"))
            }
            _ => ReadError::Io(e),
        }
    }
}

fn kind_name(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else if file_type.is_symlink() {
        "symlink"
    } else {
        "special file"
    }
}

/// Opens `path` read-only without blocking and checks, on the open
/// descriptor, that it is a regular file of at most `max_len` bytes.
pub fn open_regular(path: &Path, max_len: u64) -> Result<(File, u64), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind_name(meta.file_type())));
    }
    if meta.len() > max_len {
        return Err(ReadError::TooLarge {
            len: meta.len(),
            max: max_len,
        });
    }
    Ok((file, meta.len()))
}

/// Reads the whole of a regular file of at most `max_len` bytes.
pub fn read_regular(path: &Path, max_len: u64) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path, max_len)?;
    read_opened(&file, len)
}

/// Reads, from its current position, the whole of a file that
/// [`open_regular`] found to be `len` bytes long.
pub fn read_opened(file: &File, len: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // Read one byte past the size seen by fstat to notice a file that grew.
    file.take(len + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(ReadError::Changed);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_is_refused() {
        let dir = std::env::temp_dir();
        assert!(matches!(
            read_regular(&dir, DEFAULT_MAX_LEN),
            Err(ReadError::NotRegular("directory"))
        ));
    }

    #[test]
    fn missing_file_is_not_found() {
        assert!(matches!(
            read_regular(Path::new("/nonexistent/modhash"), DEFAULT_MAX_LEN),
            Err(ReadError::NotFound)
        ));
    }
}
