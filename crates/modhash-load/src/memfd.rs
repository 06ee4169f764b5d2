//! Reading a module once, and sealing its canonical image in a memfd: the
//! bytes that are hashed are the bytes that are mapped.
//!
//! [`read_module`] opens the path exactly once and reads a snapshot of it;
//! nothing here ever opens the path again. [`SealedImage::new`] copies the
//! image into an anonymous memory file, seals it against every change, and
//! only then hashes it, reading the sealed pages themselves, so nothing can
//! change between the hash and the `dlopen` (or the hand-over to a worker).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use modhash::Digest;
use rustix::fs::{FileType, MemfdFlags, Mode, OFlags, SealFlags};

/// Largest module the loader reads by default: far above any real shared
/// object, low enough that a hostile path cannot make the host read
/// gigabytes.
pub const DEFAULT_SIZE_CAP: u64 = 256 * 1024 * 1024;

/// Every seal: the image can no longer shrink, grow or be written, and no
/// further seal can be changed.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE)
    .union(SealFlags::SEAL);

/// Why a module file could not be read or sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The path could not be opened or read.
    #[error("cannot read the module: {0}")]
    Read(#[source] io::Error),
    /// The path is a directory, device, FIFO or socket.
    #[error("not a regular file; give the path of a module file")]
    NotRegular,
    /// Larger than the cap.
    #[error("the module is larger than the {cap}-byte limit; raise the loader's size cap if it is genuine")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// Creating, writing, sealing or mapping the memfd failed.
    #[error("cannot build the sealed module image in memory: {0}")]
    Memfd(#[source] io::Error),
}

/// Opens `path` once (`O_CLOEXEC`; a symlink is resolved once, by this
/// open), checks that it is a regular file no larger than `cap`, and returns
/// a snapshot of its bytes.
///
/// The snapshot is what everything after works on: if the file is rewritten
/// while it is read, the result may be a mix of versions, but it is the one
/// mix that is then hashed and loaded.
pub fn read_module(path: &Path, cap: u64) -> Result<Vec<u8>, ImageError> {
    // O_NONBLOCK so that opening a FIFO does not hang; it changes nothing
    // for regular files. O_NOCTTY so a terminal cannot become ours.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| ImageError::Read(e.into()))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| ImageError::Read(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(ImageError::NotRegular);
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > cap {
        return Err(ImageError::TooLarge { cap });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Read one byte past the cap to notice a file that grew after fstat.
    File::from(fd)
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ImageError::Read)?;
    if bytes.len() as u64 > cap {
        return Err(ImageError::TooLarge { cap });
    }
    Ok(bytes)
}

/// A module image in a sealed memfd, with the SHA-256 of its sealed bytes.
///
/// Keep it alive for as long as a library loaded from it is loaded: glibc
/// identifies libraries by their path string, `/proc/self/fd/N`, so a later
/// memfd reusing the number `N` would otherwise be taken for this one.
#[derive(Debug)]
pub struct SealedImage {
    fd: OwnedFd,
    len: usize,
    digest: Digest,
}

impl SealedImage {
    /// Copies `image` into a new memfd, seals it and hashes the sealed bytes.
    pub fn new(image: &[u8]) -> Result<Self, ImageError> {
        let fd = create_memfd().map_err(ImageError::Memfd)?;
        let mut file = File::from(fd);
        file.write_all(image).map_err(ImageError::Memfd)?;
        let fd = OwnedFd::from(file);
        rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(|e| ImageError::Memfd(e.into()))?;
        Self::from_sealed(fd)
    }

    /// Takes a memfd that must already carry every seal (for example one
    /// received by an isolated worker), checks the seals, and hashes it.
    pub fn from_sealed(fd: OwnedFd) -> Result<Self, ImageError> {
        let seals = rustix::fs::fcntl_get_seals(&fd).map_err(|e| ImageError::Memfd(e.into()))?;
        if !seals.contains(SEALS) {
            return Err(ImageError::Memfd(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the memfd is not sealed against shrinking, growing and writing",
            )));
        }
        let stat = rustix::fs::fstat(&fd).map_err(|e| ImageError::Memfd(e.into()))?;
        let len = usize::try_from(stat.st_size).map_err(|_| {
            ImageError::Memfd(io::Error::new(io::ErrorKind::InvalidInput, "negative size"))
        })?;
        let digest = hash_sealed(fd.as_fd(), len).map_err(ImageError::Memfd)?;
        Ok(Self { fd, len, digest })
    }

    /// SHA-256 of the sealed bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Length of the image in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the image is empty (no loader accepts an empty module).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sealed memfd, for `dlopen` or to pass to a worker.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Gives up the memfd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// A memfd that can be sealed and never leaks into a child. Where the kernel
/// has `MFD_NOEXEC_SEAL` (6.3+) the file is also sealed non-executable: it
/// can still be mapped executable by `dlopen`, but never `execve`d, and
/// kernels with `vm.memfd_noexec=2` refuse memfds created without it.
fn create_memfd() -> io::Result<OwnedFd> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    match rustix::fs::memfd_create("modhash-module", flags | MemfdFlags::NOEXEC_SEAL) {
        Err(rustix::io::Errno::INVAL) => Ok(rustix::fs::memfd_create("modhash-module", flags)?),
        other => Ok(other?),
    }
}

/// SHA-256 of the `len` bytes of a sealed memfd, read through a private
/// read-only mapping (no copy).
fn hash_sealed(fd: BorrowedFd<'_>, len: usize) -> io::Result<Digest> {
    if len == 0 {
        return Ok(Digest::sha256(&[]));
    }
    // SAFETY: a fresh mapping at an address the kernel chooses, so no
    // existing memory is affected.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
            fd,
            0,
        )
    }?;
    // SAFETY: the mapping covers `len` readable bytes. The memfd is sealed
    // against shrinking (so no access can fault with SIGBUS) and against
    // writing (so no one can change the bytes while they are borrowed).
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    let digest = Digest::sha256(bytes);
    // SAFETY: unmaps exactly the mapping made above; `bytes` is not used
    // after this.
    unsafe { rustix::mm::munmap(ptr, len) }?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_images_hash_their_bytes_and_refuse_writes() {
        let image = SealedImage::new(b"module bytes").expect("seal");
        assert_eq!(image.digest(), Digest::sha256(b"module bytes"));
        assert_eq!(image.len(), 12);
        let mut file = File::from(image.fd().try_clone_to_owned().expect("dup"));
        assert!(
            file.write_all(b"x").is_err(),
            "sealed memfd accepted a write"
        );
        assert!(
            rustix::fs::ftruncate(image.fd(), 1).is_err(),
            "sealed memfd shrank"
        );
    }

    #[test]
    fn unsealed_memfds_are_refused() {
        let fd = create_memfd().expect("memfd");
        assert!(matches!(
            SealedImage::from_sealed(fd),
            Err(ImageError::Memfd(_))
        ));
    }

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let dir = std::env::temp_dir();
        assert!(matches!(
            read_module(&dir, DEFAULT_SIZE_CAP),
            Err(ImageError::NotRegular)
        ));
        let file = dir.join(format!("modhash-load-cap-{}", std::process::id()));
        std::fs::write(&file, [0u8; 100]).expect("write");
        assert!(matches!(
            read_module(&file, 99),
            Err(ImageError::TooLarge { cap: 99 })
        ));
        assert_eq!(read_module(&file, 100).expect("read").len(), 100);
        std::fs::remove_file(&file).expect("remove");
        assert!(matches!(read_module(&file, 100), Err(ImageError::Read(_))));
    }
}
