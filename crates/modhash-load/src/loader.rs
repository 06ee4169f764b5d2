//! The loader: read once, seal, hash, judge, then load, isolate or refuse.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};

use modhash::elf_dynamic::Dynamic;
use modhash::elf_image::LoadableRanges;
use modhash::profile::ProfileError;
use modhash::{Digest, Profile};

use crate::deps::{Dependencies, Judged, Seal};
use crate::inprocess::{InProcess, OpenError};
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
        /// Its digest under the policy's profile.
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
    /// Loading it in-process failed.
    #[error(transparent)]
    Open(#[from] OpenError),
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

/// A module loaded despite being untrusted, under policy `taint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tainted {
    /// The path it was read from.
    pub path: PathBuf,
    /// Its digest under the policy's profile.
    pub digest: Digest,
    /// The verdict (why it is untrusted).
    pub verdict: Verdict,
}

/// Loads modules under a policy. See the crate documentation.
#[derive(Debug)]
pub struct Loader<J> {
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
        Self {
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
        let path = path.as_ref();
        // Loads on other threads at the same time get buffers of their own.
        let mut shared = match self.scratch.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut own = Scratch::default();
        let scratch = shared.as_deref_mut().unwrap_or(&mut own);
        let judged = self.seal_and_judge(path, scratch)?;
        scratch.trim();
        drop(shared);
        let Judged {
            sealed,
            digest,
            verdict,
            dynamic,
        } = judged;
        let dependencies = Dependencies::resolve(path, &dynamic, self.judge.system_dirs(), self);
        let verdict = dependencies.judge(verdict);

        let backend = match (verdict.is_trusted(), self.judge.untrusted()) {
            (true, _) if self.force_isolation => {
                self.isolate(sealed, config, FORCE_ISOLATION_ENV)?
            }
            (true, _) => Backend::InProcess(InProcess::open_with(sealed, dependencies, config)?),
            (false, Action::Reject) => return Err(LoadError::Rejected { verdict, digest }),
            (false, Action::Isolate) => self.isolate(sealed, config, "policy isolate")?,
            (false, Action::Taint) if self.force_isolation => {
                self.isolate(sealed, config, FORCE_ISOLATION_ENV)?
            }
            (false, Action::Taint) if !dependencies.pinned() => {
                return Err(LoadError::Unpinned { verdict, digest })
            }
            (false, Action::Taint) => {
                // Recorded before its constructors (or its libraries') run:
                // a module that fails after running code still tainted us.
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
                Backend::InProcess(InProcess::open_with(sealed, dependencies, config)?)
            }
        };
        Ok(Module::new(path.to_owned(), digest, verdict, backend))
    }

    /// Reads `path` once and judges it, without loading it: the module's
    /// verdict (its libraries' included) and what satisfies each library it
    /// needs, as [`Loader::load`] would find them now.
    pub fn inspect(&self, path: impl AsRef<Path>) -> Result<(Verdict, Dependencies), LoadError> {
        let path = path.as_ref();
        let judged = self.seal_and_judge(path, &mut Scratch::default())?;
        let dependencies =
            Dependencies::resolve(path, &judged.dynamic, self.judge.system_dirs(), self);
        Ok((dependencies.judge(judged.verdict), dependencies))
    }

    /// Reads `path` once, seals the canonical `elf-image` of the bytes the
    /// profile hashes, and judges it.
    ///
    /// Whatever the profile, what is sealed (and later mapped) is the
    /// `elf-image` image: every profile's digest covers those bytes, and
    /// bytes outside it (padding between segments, which `mmap` maps with
    /// the pages around it) are zero, whatever a signature over another
    /// image left uncovered. Under `elf-image` the digest is taken from the
    /// sealed bytes; under `file` and `payload` from the snapshot the image
    /// is derived from, which no one else can write.
    fn seal_and_judge(&self, path: &Path, scratch: &mut Scratch) -> Result<Judged, LoadError> {
        read_module_into(path, self.size_cap, &mut scratch.file)?;
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
        LoadableRanges::parse(source)
            .map_err(|e| LoadError::Profile {
                profile: Profile::ElfImage,
                source: e.into(),
            })?
            .write_image(source, &mut scratch.image);
        let dynamic = Dynamic::try_from(scratch.image.as_slice());
        let sealed = SealedImage::new(&scratch.image)?;
        let digest = hashed.map_or(sealed.digest(), |bytes| Digest::sha256(&bytes));
        let verdict = self.judge.judge(&Candidate {
            path,
            file: &scratch.file,
            digest,
        });
        Ok(Judged {
            sealed,
            digest,
            verdict,
            dynamic,
        })
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

    /// The untrusted modules this loader mapped, or began to map, into
    /// this process, oldest first. A module is listed before its
    /// constructors run, so one that then fails is listed too.
    pub fn tainted(&self) -> Vec<Tainted> {
        self.tainted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A library a module needs is found and judged exactly as the module is.
impl<J: Judge> Seal for Loader<J> {
    fn seal(&self, path: &Path) -> Result<Judged, String> {
        self.seal_and_judge(path, &mut Scratch::default())
            .map_err(|e| e.to_string())
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
    fn the_environment_is_ignored_with_at_secure() {
        let loader = Loader::with_environment(judge(Action::Taint), Some("1".into()), true);
        assert!(!loader.forces_isolation());
    }
}
