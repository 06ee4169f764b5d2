//! Loading a sealed image into this process with `dlopen`, and calling it
//! through the module ABI.
//!
//! The library is opened as `/proc/self/fd/N` of the sealed memfd, so the
//! dynamic loader maps exactly the bytes that were hashed. glibc knows a
//! library by that path string alone, which has two consequences handled
//! here: the memfd stays open while the library is loaded (its number cannot
//! be reused), and a number that glibc still remembers from an earlier,
//! unreleased library is never used for a new one.

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use modhash_plugin::host::{AbiError, Failure, Instance, Table};
use modhash_plugin::{EntryFn, SYMBOL};

use crate::memfd::SealedImage;

/// How often to move the memfd to another number when glibc already knows
/// a library by `/proc/self/fd/N`.
const FD_RETRIES: usize = 16;

/// Why a sealed image could not be loaded in-process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The dynamic loader refused the image.
    #[error("the dynamic loader refused the module: {0}")]
    Dlopen(#[source] DynamicLoaderError),
    /// The image loaded but does not export the ABI entry point.
    #[error("not a modhash module: it exports no `{SYMBOL}` symbol; build it with modhash_plugin::export! or modhash_plugin.h")]
    NoEntryPoint(#[source] DynamicLoaderError),
    /// The table is unusable.
    #[error(transparent)]
    Abi(#[from] AbiError),
    /// The module's `create` failed.
    #[error("the module refused to start: {0}")]
    Create(#[source] Failure),
    /// Every fd number tried is still known to glibc under an old library.
    #[error("cannot find an unused /proc/self/fd path for the module; too many modules stay resident after unloading")]
    StalePaths,
    /// Duplicating the memfd to another number failed.
    #[error("cannot duplicate the module's memfd: {0}")]
    Dup(#[source] std::io::Error),
}

/// What the dynamic loader said (`dlerror`). Opaque, so the loading
/// library behind it is not part of this crate's API.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DynamicLoaderError(libloading::Error);

/// A module loaded into this process, with one instance.
///
/// Fields drop in declaration order: the instance is destroyed before the
/// library is closed.
#[derive(Debug)]
pub(crate) struct InProcess {
    instance: Mutex<Instance>,
    name: String,
    /// Held for its `Drop`: closes the library after the instance is gone.
    _loaded: Loaded,
}

impl InProcess {
    /// `dlopen`s `image` (running its constructors), checks its ABI table
    /// and creates an instance with `config`.
    pub(crate) fn open(image: SealedImage, config: &[u8]) -> Result<Self, OpenError> {
        let loaded = Loaded::open(image, RTLD_NOW | RTLD_LOCAL)?;
        let table = loaded.table()?;
        let name = table.name()?.to_owned();
        let instance = table.create(config).map_err(OpenError::Create)?;
        Ok(Self {
            instance: Mutex::new(instance),
            name,
            _loaded: loaded,
        })
    }

    /// The name the module reports.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Calls `method` with `input`; calls on one module are serialised.
    pub(crate) fn call(&self, method: u32, input: &[u8]) -> Result<Vec<u8>, Failure> {
        // A poisoned lock only means a host thread panicked while holding
        // it; module panics never unwind here.
        let mut instance = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        instance.call(method, input)
    }
}

/// A judged image opened with `dlopen` for a host that looks its symbols up
/// itself (a module interface of its own, as libcamera's IPA modules have),
/// not through the modhash module ABI.
///
/// Dropping it `dlclose`s the library; the memfd stays open as long as the
/// library is loaded.
#[derive(Debug)]
pub struct RawLibrary {
    loaded: Loaded,
}

impl RawLibrary {
    /// `dlopen`s exactly the sealed bytes of `image` with `flags`.
    pub(crate) fn open(image: SealedImage, flags: std::ffi::c_int) -> Result<Self, OpenError> {
        Loaded::open(image, flags).map(|loaded| Self { loaded })
    }

    /// The handle `dlopen` returned, for `dlsym`. Valid while `self` lives;
    /// never pass it to `dlclose`.
    pub fn handle(&self) -> *mut std::ffi::c_void {
        self.loaded.handle as *mut std::ffi::c_void
    }

    /// The address of the symbol `name`, as `dlsym` gives it: a function or
    /// variable of the module, valid while `self` lives. Using it is the
    /// caller's `unsafe`: its type is whatever the module's interface says.
    pub fn symbol(&self, name: &str) -> Result<*mut std::ffi::c_void, SymbolError> {
        // SAFETY: the symbol is read as a plain address, which every symbol
        // is; nothing is called or dereferenced here.
        let symbol = unsafe {
            self.loaded
                .library
                .get::<*mut std::ffi::c_void>(name.as_bytes())
        };
        symbol.map(|s| *s).map_err(|e| SymbolError {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// Why [`RawLibrary::symbol`] found nothing.
#[derive(Debug, thiserror::Error)]
#[error("the module exports no symbol `{name}`: {reason}")]
pub struct SymbolError {
    name: String,
    reason: String,
}

/// A loaded library, its path and the memfd that keeps the path unique.
#[derive(Debug)]
struct Loaded {
    /// The `dlopen` handle of `library`, as a number so that a module stays
    /// `Send` and `Sync` (the handle is only ever passed back to the dynamic
    /// loader, which is thread-safe).
    handle: usize,
    library: ManuallyDrop<Library>,
    path: String,
    /// Held, never read: its number must stay taken while the library is
    /// loaded.
    _fd: Option<OwnedFd>,
}

impl Loaded {
    /// `dlopen`s `image` with `flags` as a `/proc/self/fd` path no earlier
    /// library is known by.
    fn open(image: SealedImage, flags: std::ffi::c_int) -> Result<Self, OpenError> {
        let (fd, path) = unused_path(image.into_fd())?;
        // SAFETY: loading a library runs its constructors with the full
        // rights of this process. The caller's policy decided this module may
        // run here (trusted, or tainted by the host's explicit choice), and
        // the bytes mapped are the sealed bytes that policy judged.
        let library = unsafe { Library::open(Some(&path), flags) }
            .map_err(|e| OpenError::Dlopen(DynamicLoaderError(e)))?;
        let handle = library.into_raw();
        Ok(Self {
            // SAFETY: `handle` came from `into_raw` just above and is
            // released only by this value's `Drop`.
            library: ManuallyDrop::new(unsafe { Library::from_raw(handle) }),
            handle: handle as usize,
            path,
            _fd: Some(fd),
        })
    }

    fn table(&self) -> Result<Table, OpenError> {
        // SAFETY: the symbol is declared by the ABI as `EntryFn`; a module
        // exporting it with another type is broken in a way no loader can
        // detect, the same as any C plugin interface.
        let entry = unsafe { self.library.get::<EntryFn>(SYMBOL.as_bytes()) }
            .map_err(|e| OpenError::NoEntryPoint(DynamicLoaderError(e)))?;
        // SAFETY: calling the ABI entry point, which takes no arguments and
        // returns a pointer to a static table.
        let ptr = unsafe { entry() };
        // SAFETY: the table lives in the library, which `InProcess` keeps
        // loaded (in `loaded`, dropped after the instance) while it is used.
        Ok(unsafe { Table::from_raw(ptr) }?)
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: taken exactly once, here, and never used again.
        let library = unsafe { ManuallyDrop::take(&mut self.library) };
        if let Err(error) = library.close() {
            tracing::warn!(path = ?self.path, %error, "dlclose failed");
        }
        if is_resident(&self.path) {
            // The library stays mapped (NODELETE, or a thread-local
            // destructor pins it). Closing the memfd would let a later memfd
            // take its number, and glibc would hand back this library for
            // that path: keep the number taken for the life of the process.
            tracing::debug!(path = ?self.path, "module stays resident; keeping its memfd open");
            std::mem::forget(self._fd.take());
        }
    }
}

/// Moves `fd` to a number `N` whose `/proc/self/fd/N` glibc does not
/// already associate with a loaded library.
fn unused_path(mut fd: OwnedFd) -> Result<(OwnedFd, String), OpenError> {
    for _ in 0..FD_RETRIES {
        let path = proc_path(&fd);
        if !is_resident(&path) {
            return Ok((fd, path));
        }
        let next = fd.as_raw_fd().saturating_add(1);
        fd = rustix::io::fcntl_dupfd_cloexec(fd.as_fd(), next)
            .map_err(|e| OpenError::Dup(e.into()))?;
    }
    Err(OpenError::StalePaths)
}

fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Whether glibc has a library loaded under `path`.
fn is_resident(path: &str) -> bool {
    // SAFETY: RTLD_NOLOAD never loads anything or runs any code; it only
    // looks up an already loaded library by name and takes a reference,
    // which dropping the handle releases.
    let found = unsafe { Library::open(Some(path), RTLD_NOW | libc::RTLD_NOLOAD) };
    found.is_ok()
}
