//! Reading a module once, and sealing its canonical image in a memfd: the
//! bytes that are hashed are the bytes that are mapped.
//!
//! [`read_module`] opens the path exactly once and reads a snapshot of it;
//! nothing here ever opens the path again. [`SealedImage::new`] copies the
//! image into an anonymous memory file, seals it against every change, and
//! only then hashes it, reading the sealed pages themselves, so nothing can
//! change between the hash and the `dlopen` (or the hand-over to a worker).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use modhash::elf_image::{ImageRun, LoadableRanges};
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

/// Alignment of the buffers the kernel copies module bytes into.
///
/// The kernel copies page-cache pages to user space with `rep movsb`, which
/// on CPUs such as AMD Zen is about 5× slower when the destination lies 1 to
/// 31 bytes past a page boundary (390 KB: 145 µs instead of 28 µs). glibc's
/// malloc puts every block of 128 KiB or more exactly 16 bytes past a page,
/// so a plain `Vec<u8>` snapshot of a module always hits it; a cache-line
/// boundary never does.
const ALIGN: usize = 64;

/// How much more room to make when a file turns out longer than fstat said.
const GROWTH_CHUNK: usize = 64 * 1024;

/// A snapshot of a module file's bytes, stored at a cache-line boundary
/// (see `ALIGN` in the source). Dereferences to the bytes.
///
/// [`read_module_into`] reuses its allocation: a fresh buffer for every
/// load means fresh heap pages, and faulting them in costs more than
/// reading the file (about 1 µs per 4 KiB page).
#[derive(Clone, Default)]
pub struct ModuleBytes {
    buf: Vec<u8>,
    start: usize,
}

impl ModuleBytes {
    /// An empty snapshot, to be filled by [`read_module_into`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the buffer and makes room for `len` bytes starting at a
    /// cache-line boundary, reallocating only if it is too small.
    fn clear_for(&mut self, len: usize) {
        let needed = len.saturating_add(ALIGN);
        if self.buf.capacity() < needed {
            self.buf = Vec::with_capacity(needed);
        }
        // `align_offset` may decline to compute an offset; the buffer is
        // then merely slower, never wrong.
        self.start = self.buf.as_ptr().align_offset(ALIGN).min(ALIGN - 1);
        self.buf.clear();
        self.buf.resize(self.start, 0);
    }

    /// An empty snapshot with room for `capacity` bytes.
    #[cfg(test)]
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut bytes = Self::new();
        bytes.clear_for(capacity);
        bytes
    }

    /// Bytes allocated, held or not.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes held.
    fn held(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }
}

/// The length only: a module's bytes are no use in a debug dump.
impl std::fmt::Debug for ModuleBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleBytes({} bytes)", self.len())
    }
}

impl std::ops::Deref for ModuleBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// Opens `path` once (`O_CLOEXEC`; a symlink is resolved once, by this
/// open), checks that it is a regular file no larger than `cap`, and returns
/// a snapshot of its bytes.
///
/// The snapshot is what everything after works on: if the file is rewritten
/// while it is read, the result may be a mix of versions, but it is the one
/// mix that is then hashed and loaded.
pub fn read_module(path: &Path, cap: u64) -> Result<ModuleBytes, ImageError> {
    let mut bytes = ModuleBytes::new();
    read_module_into(path, cap, &mut bytes)?;
    Ok(bytes)
}

/// [`read_module`] into `into`, reusing its allocation; `into` holds the
/// snapshot afterwards (and nothing meaningful after an error).
pub fn read_module_into(path: &Path, cap: u64, into: &mut ModuleBytes) -> Result<(), ImageError> {
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
    let limit = usize::try_from(cap).unwrap_or(usize::MAX);
    // One byte more than fstat said, so that the end of the file is seen
    // without growing the buffer (growing it could move it off the
    // alignment).
    into.clear_for(usize::try_from(size).unwrap_or(0).saturating_add(1));
    loop {
        // More than `cap` bytes: the file grew after fstat.
        if into.held() > limit {
            return Err(ImageError::TooLarge { cap });
        }
        // Still not at the end: the file grew; read on in chunks.
        if into.buf.len() == into.buf.capacity() {
            into.buf.reserve(GROWTH_CHUNK);
        }
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut into.buf)) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(ImageError::Read(e.into())),
        }
    }
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
        let run = ImageRun {
            offset: 0,
            bytes: image.into(),
        };
        Self::from_runs(
            image.len(),
            std::iter::once(run),
            &mut ModuleBytes::new(),
            |_| {},
        )
    }

    /// The canonical `elf-image` image of `file`, which `ranges` were parsed
    /// from, written straight into a new memfd, sealed and hashed: each byte
    /// of the image is copied once, from the snapshot into the memfd's
    /// pages, and no image is assembled in between. `sealed` receives the
    /// sealed bytes as they were read back to be hashed, for parsing what
    /// was hashed (the dynamic section) without reading it again.
    pub fn canonical(
        file: &[u8],
        ranges: &LoadableRanges,
        sealed: &mut ModuleBytes,
    ) -> Result<Self, ImageError> {
        Self::from_runs(ranges.image_len(), ranges.runs(file), sealed, |_| {})
    }

    /// A memfd of `len` bytes holding `runs` and zero elsewhere, sealed and
    /// hashed; `sealed` receives its sealed bytes. `before_sealing` runs on
    /// the memfd once the runs are written (a test writes to it there, as
    /// an attacker would).
    ///
    /// The hash is taken after sealing, from the sealed pages, never while
    /// the runs are copied: until the seals are on, any process allowed to
    /// open `/proc/PID/fd` of this one (the same user, even where Yama
    /// forbids it to ptrace) could write the memfd, and bytes hashed before
    /// such a write would not be the bytes loaded. Hashing on a second
    /// thread while the first builds the memfd, and comparing the sealed
    /// bytes with the hashed ones afterwards, was tried with a prototype
    /// and not kept: on this project's 2-vCPU machine it made the step 1.6
    /// times slower (400 against 251 µs for a 306 KB image), the two
    /// threads slowing each other down.
    fn from_runs<'a>(
        len: usize,
        runs: impl Iterator<Item = ImageRun<'a>>,
        sealed: &mut ModuleBytes,
        before_sealing: impl FnOnce(BorrowedFd<'_>),
    ) -> Result<Self, ImageError> {
        let memfd = |e: rustix::io::Errno| ImageError::Memfd(e.into());
        let fd = create_memfd().map_err(ImageError::Memfd)?;
        let size = u64::try_from(len).unwrap_or(u64::MAX);
        rustix::fs::ftruncate(&fd, size).map_err(memfd)?;
        for run in runs {
            pwrite_all(fd.as_fd(), &run.bytes, run.offset).map_err(ImageError::Memfd)?;
        }
        before_sealing(fd.as_fd());
        rustix::fs::fcntl_add_seals(&fd, SEALS).map_err(memfd)?;
        Self::from_sealed_into(fd, sealed)
    }

    /// Takes a memfd that must already carry every seal (for example one
    /// received by an isolated worker), checks the seals, and hashes it.
    pub(crate) fn from_sealed(fd: OwnedFd) -> Result<Self, ImageError> {
        Self::from_sealed_into(fd, &mut ModuleBytes::new())
    }

    /// [`SealedImage::from_sealed`], reading the sealed bytes into `sealed`.
    fn from_sealed_into(fd: OwnedFd, sealed: &mut ModuleBytes) -> Result<Self, ImageError> {
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
        read_sealed(fd.as_fd(), len, sealed).map_err(ImageError::Memfd)?;
        let digest = Digest::sha256(sealed);
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
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Writes all of `bytes` at `offset` of `fd`.
fn pwrite_all(fd: BorrowedFd<'_>, bytes: &[u8], offset: usize) -> io::Result<()> {
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|rest| !rest.is_empty()) {
        let at = u64::try_from(offset + done).unwrap_or(u64::MAX);
        match rustix::io::pwrite(fd, rest, at) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
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

/// Reads the `len` bytes of a sealed memfd into `into`, which is then
/// hashed: the hash covers the bytes read back from the sealed pages, and
/// what is parsed after it (the dynamic section) is those same bytes.
///
/// Reading beats mapping here: a private mapping of fresh shmem pages costs
/// page faults and a TLB shootdown on unmap, more than copying them into a
/// buffer that stays in the cache (see docs/performance.md).
fn read_sealed(fd: BorrowedFd<'_>, len: usize, into: &mut ModuleBytes) -> io::Result<()> {
    into.clear_for(len);
    while into.held() < len {
        let offset = u64::try_from(into.held()).unwrap_or(u64::MAX);
        match rustix::io::pread(fd, rustix::buffer::spare_capacity(&mut into.buf), offset) {
            // Sealed against shrinking: an early end would mean the size
            // changed, which the seals rule out; refuse rather than hash
            // fewer bytes.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sealed memfd is shorter than its size",
                ))
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if into.held() > len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the sealed memfd is longer than its size",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sealed_images_hash_their_bytes_and_refuse_writes() {
        let image = SealedImage::new(b"module bytes").expect("seal");
        assert_eq!(image.digest(), Digest::sha256(b"module bytes"));
        assert_eq!(image.len(), 12);
        let mut file = std::fs::File::from(image.fd().try_clone_to_owned().expect("dup"));
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
    fn images_of_every_length_around_a_page_hash_like_memory() {
        for len in [0, 1, 4095, 4096, 4097, 3 * 32 * 1024 + 7] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let image = SealedImage::new(&bytes).expect("seal");
            assert_eq!(image.digest(), Digest::sha256(&bytes), "length {len}");
        }
    }

    /// The attack hashing after sealing exists for: another process opens
    /// the memfd through `/proc/PID/fd` and writes one byte between the
    /// copy and the seals. The digest is of what it wrote, so the image
    /// can only be trusted as what it now is.
    #[test]
    fn a_write_before_the_seals_is_in_the_digest() {
        let image = vec![0x90u8; 300_000];
        let run = ImageRun {
            offset: 0,
            bytes: image.as_slice().into(),
        };
        let attack = |fd: BorrowedFd<'_>| {
            let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            let mut other = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .expect("open");
            std::io::Seek::seek(&mut other, std::io::SeekFrom::Start(150_000)).expect("seek");
            other.write_all(&[0xcc]).expect("write");
        };
        let mut sealed = ModuleBytes::new();
        let built = SealedImage::from_runs(image.len(), std::iter::once(run), &mut sealed, attack)
            .expect("seal");
        let mut attacked = image.clone();
        attacked[150_000] = 0xcc;
        assert_eq!(&*sealed, attacked.as_slice());
        assert_eq!(built.digest(), Digest::sha256(&attacked));
        assert_ne!(built.digest(), Digest::sha256(&image));
    }

    #[test]
    fn a_reused_snapshot_holds_exactly_the_new_file_at_a_cache_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (big, small) = (dir.path().join("big"), dir.path().join("small"));
        std::fs::write(&big, vec![7u8; 100_000]).expect("write");
        std::fs::write(&small, b"small module").expect("write");
        let mut bytes = ModuleBytes::new();
        for (path, expected) in [
            (&big, vec![7u8; 100_000]),
            (&small, b"small module".to_vec()),
            (&big, vec![7u8; 100_000]),
        ] {
            read_module_into(path, DEFAULT_SIZE_CAP, &mut bytes).expect("read");
            assert_eq!(&*bytes, expected.as_slice());
            assert_eq!(bytes.as_ptr().align_offset(ALIGN), 0, "not aligned");
        }
    }

    #[test]
    fn files_longer_than_fstat_says_are_read_whole_and_capped() {
        // procfs files report size 0 and then return content: the same as a
        // file that grew between fstat and read.
        let path = Path::new("/proc/self/maps");
        let bytes = read_module(path, DEFAULT_SIZE_CAP).expect("read");
        assert!(bytes.len() > 100, "read {} bytes", bytes.len());
        assert!(bytes.ends_with(b"\n"), "read stopped early");
        assert!(matches!(
            read_module(path, 10),
            Err(ImageError::TooLarge { cap: 10 })
        ));
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
