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

/// Where file contents start in a [`ReadBuffer`]: a cache line.
const READ_ALIGN: usize = 64;

/// A buffer reused to read many files, one after the other: whole, or in
/// chunks as [`crate::stream`] reads them.
///
/// Why not a fresh `Vec` per file: every fresh buffer of a few hundred
/// kilobytes is new memory the kernel must fault in and zero, and malloc
/// places large blocks 16 bytes past a page boundary, where the kernel's
/// copy into user memory is several times slower on some x86 CPUs. Reading
/// into one buffer whose contents start on a 64-byte boundary avoids both
/// (`docs/performance.md`, "Manifest").
#[derive(Debug, Default)]
pub struct ReadBuffer {
    storage: Vec<u8>,
}

impl ReadBuffer {
    /// An empty buffer; it grows to the largest file read whole (a
    /// streamed file needs only a chunk and the bytes held back).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the whole of a regular file of at most `max_len` bytes, as
    /// [`read_regular`] does, into this buffer.
    pub fn read_regular(&mut self, path: &Path, max_len: u64) -> Result<&[u8], ReadError> {
        let (file, len) = open_regular(path, max_len)?;
        let len = usize::try_from(len).map_err(|_| ReadError::TooLarge { len, max: max_len })?;
        self.read_opened(&file, len)
    }

    /// Reads, from its current position, the whole of a file that
    /// [`open_regular`] found to be `len` bytes long, into this buffer.
    pub(crate) fn read_opened(&mut self, file: &File, len: usize) -> Result<&[u8], ReadError> {
        // One spare byte notices a file that grew since fstat.
        let window = self.window(len + 1);
        let filled = fill(file, window)?;
        if filled != len {
            return Err(ReadError::Changed);
        }
        window.get(..len).ok_or(ReadError::Changed)
    }

    /// Bytes the buffer holds, alignment included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.storage.len()
    }

    /// `room` bytes of the buffer, starting on a cache line; what they hold
    /// is left over from earlier reads.
    pub(crate) fn window(&mut self, room: usize) -> &mut [u8] {
        if self.storage.len() < room + READ_ALIGN {
            self.storage.resize(room + READ_ALIGN, 0);
        }
        let start = match self.storage.as_ptr().align_offset(READ_ALIGN) {
            offset if offset < READ_ALIGN => offset,
            _ => 0,
        };
        self.storage
            .get_mut(start..start + room)
            .unwrap_or_default()
    }
}

/// Reads from `file` until `buf` is full or the file ends; the number of
/// bytes read.
pub(crate) fn fill(mut file: &File, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
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
    fn a_reused_buffer_reads_each_file_whole() {
        let dir = std::env::temp_dir().join(format!("modhash-readbuffer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (big, small) = (dir.join("big"), dir.join("small"));
        std::fs::write(&big, vec![7u8; 100_000]).unwrap();
        std::fs::write(&small, b"small").unwrap();
        let mut buffer = ReadBuffer::new();
        assert_eq!(
            buffer.read_regular(&big, DEFAULT_MAX_LEN).unwrap(),
            vec![7u8; 100_000]
        );
        let read = buffer.read_regular(&small, DEFAULT_MAX_LEN).unwrap();
        assert_eq!(read, b"small");
        assert_eq!(read.as_ptr().align_offset(READ_ALIGN), 0);
        assert!(matches!(
            buffer.read_regular(&dir, DEFAULT_MAX_LEN),
            Err(ReadError::NotRegular(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_is_not_found() {
        assert!(matches!(
            read_regular(Path::new("/nonexistent/modhash"), DEFAULT_MAX_LEN),
            Err(ReadError::NotFound)
        ));
    }
}
