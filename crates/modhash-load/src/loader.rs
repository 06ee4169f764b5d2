//! The loader: read once, seal, hash, judge, then load, isolate or refuse.

use std::ffi::{c_int, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};

use modhash::elf_dynamic::Dynamic;
use modhash::elf_image::{ElfImageError, LoadableRanges};
use modhash::profile::ProfileError;
use modhash::{Digest, Profile};

use crate::deps::{Dependencies, JudgedLibrary, Seal};
use crate::inprocess::{InProcess, OpenError, RawLibrary};
use crate::isolated::{Isolated, SpawnError, WorkerConfig};
use crate::judge::{Action, Candidate, Judge, Verdict};
use crate::memfd::{read_module_into, ImageError, ModuleBytes, SealedImage, DEFAULT_SIZE_CAP};
use crate::module::{Backend, Module};

/// The environment variable that makes every module run isolated. It can
/// only tighten the policy, and is ignored in setuid/AT_SECURE processes.
pub const FORCE_ISOLATION_ENV: &str = "MODHASH_FORCE_ISOLATION";

/// Why a module was not loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the file or building the sealed image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The file has no image under the policy's profile.
    #[error("no {profile} digest: {source}")]
    Profile {
        /// The policy's profile.
        profile: modhash::Profile,
        /// Why.
        #[source]
        source: ProfileError,
    },
    /// Untrusted, and the policy rejects untrusted modules.
    #[error("refused: the module is {verdict}; the policy rejects untrusted modules")]
    Rejected {
        /// The verdict.
        verdict: Verdict,
        /// SHA-256 of the image that was judged.
        digest: Digest,
    },
    /// The module must run isolated ({why}) and its worker did not start.
    #[error("the module must run isolated ({why}): {source}")]
    Isolation {
        /// Why it must be isolated.
        why: &'static str,
        /// Why the worker did not start.
        #[source]
        source: SpawnError,
    },
    /// The policy runs this module isolated, and it was asked for as a
    /// `dlopen` handle, which cannot be isolated.
    #[error("the module must run isolated ({why}); load it as a module instead of opening it with dlopen")]
    MustIsolate {
        /// Why it must be isolated.
        why: &'static str,
    },
    /// Loading it in-process failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The judged module was handed to another loader than the one whose
    /// policy judged it.
    #[error("the module was judged by another loader's policy; load or open it with the loader (or Host) that judged it")]
    JudgedElsewhere,
    /// Untrusted, the policy taints, but a needed library cannot be pinned
    /// to judged bytes: loading it would run code nobody judged.
    #[error("refused: the module is {verdict}; a needed library cannot be pinned to judged bytes, so it cannot load even tainted")]
    Unpinned {
        /// The verdict, naming the dependency.
        verdict: Verdict,
        /// Its digest under the policy's profile.
        digest: Digest,
    },
}

/// A module loaded despite being untrusted, under policy `taint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tainted {
    /// The path it was read from.
    pub path: PathBuf,
    /// SHA-256 of the image loaded.
    pub digest: Digest,
    /// The verdict (why it is untrusted).
    pub verdict: Verdict,
}

/// Set, never cleared, once any loader is about to map an untrusted module
/// into this process.
static PROCESS_TAINTED: AtomicBool = AtomicBool::new(false);

/// Whether an untrusted module was ever loaded into this process (policy
/// `taint`), by any [`Loader`]. Set before the module's constructors run,
/// so it stays set even if the load then fails, and never cleared:
/// unloading a module does not undo what its code may have done.
pub fn process_tainted() -> bool {
    PROCESS_TAINTED.load(Ordering::SeqCst)
}

/// A module read once, sealed and judged; none of its code has run.
#[derive(Debug)]
pub struct Judged {
    /// The [`Loader`] whose policy reached the verdict.
    judged_by: u64,
    path: PathBuf,
    sealed: SealedImage,
    digest: Digest,
    /// The verdict on the module and its libraries.
    verdict: Verdict,
    dependencies: Dependencies,
    /// Why it has no `elf-image` to map, when it has none.
    unloadable: Option<ElfImageError>,
}

impl Judged {
    /// The policy's verdict on the sealed image and on every library it
    /// needs (an untrusted or unpinned library makes it untrusted, named).
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The digest it was judged by, under the policy's profile (under
    /// `elf-image`, SHA-256 of the sealed image that would be mapped).
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// What satisfies each library it needs (see [`crate::deps`]).
    pub fn dependencies(&self) -> &Dependencies {
        &self.dependencies
    }

    /// The path the module was read from (once).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where a module may run under the policy.
enum Placement {
    /// In this process; `taint` when it is untrusted and the policy taints.
    InProcess { taint: bool },
    /// In a worker, for this reason.
    Isolated(&'static str),
}

/// Loads modules under a policy. See the crate documentation.
#[derive(Debug)]
pub struct Loader<J> {
    /// Which loader this is, so that a verdict is acted on only by the
    /// policy that reached it.
    id: u64,
    judge: J,
    size_cap: u64,
    force_isolation: bool,
    worker: WorkerConfig,
    tainted: Mutex<Vec<Tainted>>,
    scratch: Mutex<Scratch>,
}

/// Buffers a [`Loader`] reuses from one load to the next. Fresh buffers
/// would be fresh heap pages on every load, and faulting those in costs more
/// than the copies themselves; buffers above [`SCRATCH_KEEP`] are not kept.
#[derive(Default)]
struct Scratch {
    /// The snapshot of the file.
    file: ModuleBytes,
    /// The sealed canonical `elf-image` image, as read back to be hashed.
    image: ModuleBytes,
}

/// Sizes only: the buffers hold the last module's bytes.
impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("file", &self.file)
            .field("image", &self.image)
            .finish()
    }
}

/// Largest buffer a loader keeps between loads: real modules fit, one huge
/// module does not pin its size in memory for the life of the loader.
const SCRATCH_KEEP: usize = 16 * 1024 * 1024;

impl Scratch {
    /// Drops buffers too large to keep.
    fn trim(&mut self) {
        if self.file.capacity() > SCRATCH_KEEP {
            self.file = ModuleBytes::new();
        }
        if self.image.capacity() > SCRATCH_KEEP {
            self.image = ModuleBytes::new();
        }
    }
}

impl<J: Judge> Loader<J> {
    /// A loader applying `judge`. Reads [`FORCE_ISOLATION_ENV`] once, here;
    /// it is ignored when the process runs with AT_SECURE (setuid, file
    /// capabilities), where the environment belongs to someone else.
    pub fn new(judge: J) -> Self {
        Self::with_environment(judge, std::env::var_os(FORCE_ISOLATION_ENV), at_secure())
    }

    /// [`Loader::new`] with the environment given, not read.
    fn with_environment(judge: J, force: Option<OsString>, secure: bool) -> Self {
        let force_isolation = !secure && force.is_some_and(|value| !value.is_empty());
        /// The next loader's id.
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            judge,
            size_cap: DEFAULT_SIZE_CAP,
            force_isolation,
            worker: WorkerConfig::default(),
            tainted: Mutex::new(Vec::new()),
            scratch: Mutex::new(Scratch::default()),
        }
    }

    /// Refuse files larger than `cap` bytes (default
    /// [`DEFAULT_SIZE_CAP`]).
    #[must_use]
    pub fn with_size_cap(mut self, cap: u64) -> Self {
        self.size_cap = cap;
        self
    }

    /// How isolated modules run: where the worker executable is, call
    /// timeouts, and the sandbox policy (default [`WorkerConfig::default`]).
    #[must_use]
    pub fn with_worker_config(mut self, worker: WorkerConfig) -> Self {
        self.worker = worker;
        self
    }

    /// Whether every module is run isolated ([`FORCE_ISOLATION_ENV`]).
    pub fn forces_isolation(&self) -> bool {
        self.force_isolation
    }

    /// Loads the module at `path` with an empty configuration.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Module, LoadError> {
        self.load_with_config(path, &[])
    }

    /// Loads the module at `path` and creates its instance with `config`.
    ///
    /// The path is opened once; the snapshot read is sealed as the
    /// profile's canonical image, hashed from the sealed bytes, judged, and
    /// then that sealed image, and nothing else, is loaded.
    pub fn load_with_config(
        &self,
        path: impl AsRef<Path>,
        config: &[u8],
    ) -> Result<Module, LoadError> {
        self.load_judged(self.judge(path)?, config)
    }

    /// Reads `path` once, seals the profile's image of it and judges the
    /// sealed bytes. None of the module's code runs; the policy's action
    /// applies when the result is loaded ([`Loader::load_judged`]) or
    /// opened ([`Loader::open_library`]).
    pub fn judge(&self, path: impl AsRef<Path>) -> Result<Judged, LoadError> {
        let path = path.as_ref();
        self.judge_read(path, path)
    }

    /// [`Loader::judge`] for a file already open as `fd`: it is read through
    /// `/proc/self/fd`, which reaches the same file whatever its path is now
    /// (and leaves the fd's offset alone). `name` is its path, for messages
    /// and for finding signatures beside it.
    pub fn judge_fd(&self, fd: BorrowedFd<'_>, name: &Path) -> Result<Judged, LoadError> {
        let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        self.judge_read(&via, name)
    }

    /// Reads `read` once, seals and judges it as the module `name`.
    fn judge_read(&self, read: &Path, name: &Path) -> Result<Judged, LoadError> {
        // Loads on other threads at the same time get buffers of their own.
        let mut shared = match self.scratch.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut own = Scratch::default();
        let scratch = shared.as_deref_mut().unwrap_or(&mut own);
        let library = self.seal_and_judge(read, name, scratch);
        scratch.trim();
        drop(shared);
        let JudgedLibrary {
            sealed,
            digest,
            verdict,
            dynamic,
            unloadable,
        } = library?;
        let dependencies = Dependencies::resolve(name, &dynamic, self.judge.system_dirs(), self);
        Ok(Judged {
            judged_by: self.id,
            path: name.to_owned(),
            sealed,
            digest,
            verdict: dependencies.judge(verdict),
            dependencies,
            unloadable,
        })
    }

    /// Reads `read` once, seals the canonical `elf-image` of the bytes the
    /// profile hashes, and judges it as `name`.
    ///
    /// Whatever the profile, what is sealed (and later mapped) is the
    /// `elf-image` image: every profile's digest covers those bytes, and
    /// bytes outside it (padding between segments, which `mmap` maps with
    /// the pages around it) are zero, whatever a signature over another
    /// image left uncovered. Under `elf-image` the digest is taken from the
    /// sealed bytes; under `file` and `payload` from the snapshot the image
    /// is derived from, which no one else can write.
    fn seal_and_judge(
        &self,
        read: &Path,
        name: &Path,
        scratch: &mut Scratch,
    ) -> Result<JudgedLibrary, LoadError> {
        read_module_into(read, self.size_cap, &mut scratch.file)?;
        let profile = self.judge.profile();
        let hashed = match profile {
            Profile::ElfImage => None,
            other => Some(
                other
                    .hashed_bytes(&scratch.file)
                    .map_err(|source| LoadError::Profile { profile, source })?,
            ),
        };
        let source = hashed.as_deref().unwrap_or(&scratch.file);
        // Under `file` or `payload` a file without an `elf-image` (a kernel
        // module) is still judged, but can never be mapped.
        let (sealed, dynamic, unloadable) = match LoadableRanges::parse(source) {
            Ok(ranges) => {
                let sealed = SealedImage::canonical(source, &ranges, &mut scratch.image)?;
                (sealed, Dynamic::try_from(&*scratch.image), None)
            }
            Err(error) if hashed.is_some() => (
                SealedImage::new(source)?,
                Ok(Dynamic::default()),
                Some(error),
            ),
            Err(error) => {
                return Err(LoadError::Profile {
                    profile,
                    source: error.into(),
                })
            }
        };
        let digest = hashed.map_or(sealed.digest(), |bytes| Digest::sha256(&bytes));
        let verdict = self.judge.judge(&Candidate {
            path: name,
            file: &scratch.file,
            digest,
        });
        Ok(JudgedLibrary {
            sealed,
            digest,
            verdict,
            dynamic,
            unloadable,
        })
    }

    /// Applies the policy to a judged module: loads it in-process, hands
    /// it to a worker, or refuses it; creates its instance with `config`.
    pub fn load_judged(&self, judged: Judged, config: &[u8]) -> Result<Module, LoadError> {
        let digest = judged.digest;
        let backend = match self.placement(&judged)? {
            Placement::Isolated(why) => self.isolate(judged.sealed, config, why)?,
            Placement::InProcess { taint } => {
                if taint {
                    self.record_taint(&judged.path, digest, &judged.verdict);
                }
                Backend::InProcess(InProcess::open_with(
                    judged.sealed,
                    judged.dependencies,
                    config,
                )?)
            }
        };
        Ok(Module::new(judged.path, digest, judged.verdict, backend))
    }

    /// Applies the policy to a judged module and `dlopen`s its sealed image
    /// with `flags`, for a host that looks its symbols up itself. A module
    /// the policy would isolate is refused ([`LoadError::MustIsolate`]): a
    /// `dlopen` handle cannot be isolated.
    pub fn open_library(&self, judged: Judged, flags: c_int) -> Result<RawLibrary, LoadError> {
        let digest = judged.digest;
        match self.placement(&judged)? {
            Placement::Isolated(why) => Err(LoadError::MustIsolate { why }),
            Placement::InProcess { taint } => {
                if taint {
                    self.record_taint(&judged.path, digest, &judged.verdict);
                }
                Ok(RawLibrary::open(judged.sealed, judged.dependencies, flags)?)
            }
        }
    }

    /// Where the policy lets a judged module run.
    fn placement(&self, judged: &Judged) -> Result<Placement, LoadError> {
        if judged.judged_by != self.id {
            return Err(LoadError::JudgedElsewhere);
        }
        if let Some(error) = &judged.unloadable {
            return Err(LoadError::Profile {
                profile: Profile::ElfImage,
                source: error.clone().into(),
            });
        }
        match (judged.verdict.is_trusted(), self.judge.untrusted()) {
            (false, Action::Reject) => Err(LoadError::Rejected {
                verdict: judged.verdict.clone(),
                digest: judged.digest,
            }),
            _ if self.force_isolation => Ok(Placement::Isolated(FORCE_ISOLATION_ENV)),
            (true, _) => Ok(Placement::InProcess { taint: false }),
            (false, Action::Isolate) => Ok(Placement::Isolated("policy isolate")),
            (false, Action::Taint) if !judged.dependencies.pinned() => Err(LoadError::Unpinned {
                verdict: judged.verdict.clone(),
                digest: judged.digest,
            }),
            (false, Action::Taint) => Ok(Placement::InProcess { taint: true }),
        }
    }

    /// Lists an untrusted module about to be loaded in-process, and logs
    /// it, before any of its code (constructors included) runs: a module
    /// that takes the process down is still on record.
    fn record_taint(&self, path: &Path, digest: Digest, verdict: &Verdict) {
        PROCESS_TAINTED.store(true, Ordering::SeqCst);
        tracing::warn!(path = %path.display(), %digest, %verdict, "loading an untrusted module (policy taint)");
        self.tainted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Tainted {
                path: path.to_owned(),
                digest,
                verdict: verdict.clone(),
            });
    }

    /// Hands a sealed image to an isolated worker.
    fn isolate(
        &self,
        sealed: SealedImage,
        config: &[u8],
        why: &'static str,
    ) -> Result<Backend, LoadError> {
        Isolated::spawn(sealed, config, self.worker.clone())
            .map(|isolated| Backend::Isolated(Box::new(isolated)))
            .map_err(|source| LoadError::Isolation { why, source })
    }

    /// The untrusted modules loaded in-process so far, oldest first.
    pub fn tainted(&self) -> Vec<Tainted> {
        self.tainted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A library a module needs is found and judged exactly as the module is.
impl<J: Judge> Seal for Loader<J> {
    fn seal(&self, path: &Path) -> Result<JudgedLibrary, String> {
        let library = self
            .seal_and_judge(path, path, &mut Scratch::default())
            .map_err(|e| e.to_string())?;
        match &library.unloadable {
            Some(error) => Err(format!("no elf-image: {error}")),
            None => Ok(library),
        }
    }
}

/// Whether the kernel marked this process AT_SECURE (setuid, setgid, file
/// capabilities or an LSM asked for secure mode).
fn at_secure() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel passed
    // at exec; it has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::DigestSet;
    use modhash::Profile;

    fn judge(action: Action) -> DigestSet {
        DigestSet::new(Profile::File, [], action)
    }

    #[test]
    fn the_environment_only_ever_tightens() {
        for value in ["1", "0", "no", "trusted", "taint"] {
            let loader = Loader::with_environment(judge(Action::Taint), Some(value.into()), false);
            assert!(loader.forces_isolation(), "{value:?} must force isolation");
        }
        let loader = Loader::with_environment(judge(Action::Taint), Some("".into()), false);
        assert!(!loader.forces_isolation());
        let loader = Loader::with_environment(judge(Action::Taint), None, false);
        assert!(!loader.forces_isolation());
    }

    #[test]
    fn scratch_keeps_ordinary_buffers_and_drops_huge_ones() {
        let mut scratch = Scratch {
            file: ModuleBytes::new(),
            image: ModuleBytes::with_capacity(1024),
        };
        scratch.trim();
        assert!(scratch.image.capacity() >= 1024);
        scratch.image = ModuleBytes::with_capacity(SCRATCH_KEEP + 1);
        scratch.trim();
        assert_eq!(scratch.image.capacity(), 0);
    }

    #[test]
    fn the_environment_is_ignored_with_at_secure() {
        let loader = Loader::with_environment(judge(Action::Taint), Some("1".into()), true);
        assert!(!loader.forces_isolation());
    }
}
