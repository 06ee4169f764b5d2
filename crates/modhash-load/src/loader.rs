//! The loader: read once, seal, hash, judge, then load, isolate or refuse.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, TryLockError};

use modhash::elf_image::LoadableRanges;
use modhash::profile::ProfileError;
use modhash::{Digest, Profile};

use crate::inprocess::{InProcess, Library, OpenError};
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
    /// Loading it in-process failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A raw library was asked for, but the policy runs this module only
    /// in a worker.
    #[error("the module must run isolated ({why}), and a raw library handle cannot be; load it as a Module (Judged::load) instead")]
    MustIsolate {
        /// Why it must be isolated.
        why: &'static str,
    },
}

/// Where the policy puts a judged module.
enum Placement {
    /// `dlopen`ed in this process.
    InProcess,
    /// Untrusted, `dlopen`ed in this process anyway and listed as tainted.
    Tainted,
    /// In a sandboxed worker, for this reason.
    Isolated(&'static str),
    /// Not at all.
    Rejected,
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
        let (sealed, verdict) = self.judge_path(path)?;
        self.place(path, sealed, verdict, config)
    }

    /// Reads `path` once, seals the profile's image of it and judges it,
    /// running none of its code.
    pub(crate) fn judge_path(&self, path: &Path) -> Result<(SealedImage, Verdict), LoadError> {
        // Loads on other threads at the same time get buffers of their own.
        let mut shared = match self.scratch.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let mut own = Scratch::default();
        let scratch = shared.as_deref_mut().unwrap_or(&mut own);
        let judged = self.seal_and_judge(path, scratch);
        scratch.trim();
        judged
    }

    /// Where the policy puts a module with `verdict`.
    fn placement(&self, verdict: &Verdict) -> Placement {
        match (verdict.is_trusted(), self.judge.untrusted()) {
            (true, _) if self.force_isolation => Placement::Isolated(FORCE_ISOLATION_ENV),
            (true, _) => Placement::InProcess,
            (false, Action::Reject) => Placement::Rejected,
            (false, Action::Isolate) => Placement::Isolated("policy isolate"),
            (false, Action::Taint) if self.force_isolation => {
                Placement::Isolated(FORCE_ISOLATION_ENV)
            }
            (false, Action::Taint) => Placement::Tainted,
        }
    }

    /// Runs a judged image where the policy says, with an instance created
    /// with `config`.
    pub(crate) fn place(
        &self,
        path: &Path,
        sealed: SealedImage,
        verdict: Verdict,
        config: &[u8],
    ) -> Result<Module, LoadError> {
        let digest = sealed.digest();
        let backend = match self.placement(&verdict) {
            Placement::InProcess => Backend::InProcess(InProcess::open(sealed, config)?),
            Placement::Rejected => return Err(LoadError::Rejected { verdict, digest }),
            Placement::Isolated(why) => self.isolate(sealed, config, why)?,
            Placement::Tainted => {
                self.record_taint(path, digest, &verdict);
                Backend::InProcess(InProcess::open(sealed, config)?)
            }
        };
        Ok(Module::new(path.to_owned(), digest, verdict, backend))
    }

    /// `dlopen`s a judged image in-process, as a raw library, if the policy
    /// lets it run here.
    pub(crate) fn open_library(
        &self,
        path: &Path,
        sealed: SealedImage,
        verdict: Verdict,
    ) -> Result<Library, LoadError> {
        let digest = sealed.digest();
        match self.placement(&verdict) {
            Placement::InProcess => Ok(Library::open(sealed)?),
            Placement::Rejected => Err(LoadError::Rejected { verdict, digest }),
            Placement::Isolated(why) => Err(LoadError::MustIsolate { why }),
            Placement::Tainted => {
                self.record_taint(path, digest, &verdict);
                Ok(Library::open(sealed)?)
            }
        }
    }

    /// Lists an untrusted module as tainted, before any of its code runs.
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

    /// Reads `path` once, seals the profile's image of it and judges the
    /// sealed bytes.
    fn seal_and_judge(
        &self,
        path: &Path,
        scratch: &mut Scratch,
    ) -> Result<(SealedImage, Verdict), LoadError> {
        read_module_into(path, self.size_cap, &mut scratch.file)?;
        let profile = self.judge.profile();
        let image = image_of(profile, &scratch.file, &mut scratch.image)
            .map_err(|source| LoadError::Profile { profile, source })?;
        let sealed = SealedImage::new(image)?;
        let verdict = self.judge.judge(&Candidate {
            path,
            file: &scratch.file,
            digest: sealed.digest(),
        });
        Ok((sealed, verdict))
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
