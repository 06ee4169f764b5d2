//! The loader: read once, seal, hash, judge, then load, isolate or refuse.

use std::ffi::{c_int, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};

use modhash::elf_image::LoadableRanges;
use modhash::profile::ProfileError;
use modhash::{Digest, Profile};

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

/// A module read once, sealed and judged; none of its code has run.
#[derive(Debug)]
pub struct Judged {
    /// The [`Loader`] whose policy reached the verdict.
    judged_by: u64,
    path: PathBuf,
    sealed: SealedImage,
    verdict: Verdict,
}

impl Judged {
    /// The policy's verdict on the sealed image.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// SHA-256 of the sealed image: the bytes that would be mapped.
    pub fn digest(&self) -> Digest {
        self.sealed.digest()
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
    /// The canonical `elf-image` image built from it.
    image: Vec<u8>,
}

/// Sizes only: the buffers hold the last module's bytes.
impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("file", &self.file)
            .field("image_capacity", &self.image.capacity())
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
            self.image = Vec::new();
        }
    }
}

/// The bytes `profile` hashes in `file`: borrowed where they are a prefix
/// of it, else built in `out` (reusing its allocation).
fn image_of<'a>(
    profile: Profile,
    file: &'a [u8],
    out: &'a mut Vec<u8>,
) -> Result<&'a [u8], ProfileError> {
    if profile == Profile::ElfImage {
        LoadableRanges::parse(file)?.write_image(file, out);
        return Ok(out);
    }
    match profile.hashed_bytes(file)? {
        std::borrow::Cow::Borrowed(bytes) => Ok(bytes),
        std::borrow::Cow::Owned(bytes) => {
            *out = bytes;
            Ok(out)
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
        read_module_into(read, self.size_cap, &mut scratch.file)?;
        let profile = self.judge.profile();
        let image = image_of(profile, &scratch.file, &mut scratch.image)
            .map_err(|source| LoadError::Profile { profile, source })?;
        let sealed = SealedImage::new(image)?;
        let verdict = self.judge.judge(&Candidate {
            path: name,
            file: &scratch.file,
            digest: sealed.digest(),
        });
        scratch.trim();
        Ok(Judged {
            judged_by: self.id,
            path: name.to_owned(),
            sealed,
            verdict,
        })
    }

    /// Applies the policy to a judged module: loads it in-process, hands
    /// it to a worker, or refuses it; creates its instance with `config`.
    pub fn load_judged(&self, judged: Judged, config: &[u8]) -> Result<Module, LoadError> {
        let digest = judged.sealed.digest();
        let backend = match self.placement(&judged)? {
            Placement::Isolated(why) => self.isolate(judged.sealed, config, why)?,
            Placement::InProcess { taint } => {
                if taint {
                    self.record_taint(&judged.path, digest, &judged.verdict);
                }
                Backend::InProcess(InProcess::open(judged.sealed, config)?)
            }
        };
        Ok(Module::new(judged.path, digest, judged.verdict, backend))
    }

    /// Applies the policy to a judged module and `dlopen`s its sealed image
    /// with `flags`, for a host that looks its symbols up itself. A module
    /// the policy would isolate is refused ([`LoadError::MustIsolate`]): a
    /// `dlopen` handle cannot be isolated.
    pub fn open_library(&self, judged: Judged, flags: c_int) -> Result<RawLibrary, LoadError> {
        let digest = judged.sealed.digest();
        match self.placement(&judged)? {
            Placement::Isolated(why) => Err(LoadError::MustIsolate { why }),
            Placement::InProcess { taint } => {
                if taint {
                    self.record_taint(&judged.path, digest, &judged.verdict);
                }
                Ok(RawLibrary::open(judged.sealed, flags)?)
            }
        }
    }

    /// Where the policy lets a judged module run.
    fn placement(&self, judged: &Judged) -> Result<Placement, LoadError> {
        if judged.judged_by != self.id {
            return Err(LoadError::JudgedElsewhere);
        }
        match (judged.verdict.is_trusted(), self.judge.untrusted()) {
            (false, Action::Reject) => Err(LoadError::Rejected {
                verdict: judged.verdict.clone(),
                digest: judged.sealed.digest(),
            }),
            _ if self.force_isolation => Ok(Placement::Isolated(FORCE_ISOLATION_ENV)),
            (true, _) => Ok(Placement::InProcess { taint: false }),
            (false, Action::Isolate) => Ok(Placement::Isolated("policy isolate")),
            (false, Action::Taint) => Ok(Placement::InProcess { taint: true }),
        }
    }

    /// Lists an untrusted module about to be loaded in-process, and logs
    /// it, before any of its code (constructors included) runs: a module
    /// that takes the process down is still on record.
    fn record_taint(&self, path: &Path, digest: Digest, verdict: &Verdict) {
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
            image: Vec::with_capacity(1024),
        };
        scratch.trim();
        assert!(scratch.image.capacity() >= 1024);
        scratch.image = Vec::with_capacity(SCRATCH_KEEP + 1);
        scratch.trim();
        assert_eq!(scratch.image.capacity(), 0);
    }

    #[test]
    fn prefix_profiles_borrow_the_snapshot() {
        let file = b"not an ELF file".as_slice();
        let mut out = Vec::new();
        let image = image_of(Profile::File, file, &mut out).expect("file profile");
        assert!(std::ptr::eq(image, file));
        assert!(matches!(
            image_of(Profile::ElfImage, file, &mut out),
            Err(ProfileError::ElfImage(_))
        ));
    }

    #[test]
    fn the_environment_is_ignored_with_at_secure() {
        let loader = Loader::with_environment(judge(Action::Taint), Some("1".into()), true);
        assert!(!loader.forces_isolation());
    }
}
