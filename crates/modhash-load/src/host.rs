//! The facade a host program uses: one builder that checks everything the
//! host trusts at start-up, then `load`, `load_dir`, `judge` and `verify`.
//!
//! [`HostBuilder::build`] fails at once, naming the file, where the lower
//! layer ([`Loader`], [`HostPolicy`], [`modhash::policy::Policy`]) would
//! instead make every module untrusted at its first load: an unsealed host,
//! a manifest that is not the one the host was sealed with, a key file that
//! cannot be read, a worker that cannot run when the policy may need it.
//!
//! ```no_run
//! use modhash_load::{Host, Untrusted};
//!
//! /// The key of a vendor whose modules this host accepts, compiled in
//! /// (usually `include_bytes!`).
//! const VENDOR_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIErJNjbkUH6YobYBpPIMer2Hljbc6JjbYqrjBa4wk+LD vendor";
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder(modhash::anchor!())
//!     .manifest_file("/usr/lib/myapp/modules.manifest")
//!     .trusted_key(VENDOR_KEY)
//!     .untrusted(Untrusted::Isolate)
//!     .build()?;
//! let module = host.load("/usr/lib/myapp/modules/libgreet.so")?;
//! println!("{} is {}", module.name(), module.trust());
//! let output = module.call(0, b"world")?;
//! # let _ = output;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use modhash::anchor::AnchorError;
use modhash::input::{self, ReadError};
use modhash::manifest::ManifestFileError;
use modhash::policy::{HashEvidence, Policy, SignatureTrust, UntrustedReason};
use modhash::signature::{KeyError, Keyring};
use modhash::{Anchor, Digest, Manifest, Profile};

use crate::inprocess::RawLibrary;
use crate::isolated::WorkerConfig;
use crate::judge::{Action, HostPolicy, Verdict};
use crate::loader::{Judged, LoadError, Loader, Tainted};
use crate::module::Module;

/// What happens to a module the host does not trust: the facade's name for
/// [`Action`].
pub use crate::judge::Action as Untrusted;

/// Largest key file read: certificate bundles are kilobytes.
const MAX_KEY_FILE: u64 = 16 << 20;

/// A host's trust, checked once at start-up, and the modules it loads.
///
/// `Send` and `Sync`: `&Host` is enough to load, from any thread. What it
/// returns ([`Module`], [`Judged`], [`RawLibrary`]) stays valid after it is
/// dropped.
#[derive(Debug)]
pub struct Host {
    loader: Loader<HostPolicy>,
}

/// Builds a [`Host`]; see [`Host::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct HostBuilder {
    anchor: Anchor,
    manifest: Option<PathBuf>,
    keys: Vec<KeySource>,
    signtab: Option<PathBuf>,
    untrusted: Action,
    allow_unsealed: bool,
    worker: WorkerConfig,
    size_cap: Option<u64>,
}

/// Where a trusted key comes from.
#[derive(Debug)]
enum KeySource {
    /// Bytes compiled into the host; the number counts these from 1.
    Bytes(usize, Vec<u8>),
    /// A key file.
    File(PathBuf),
}

/// Why [`HostBuilder::build`] refused to build a host; each message names
/// the file at fault and says what to do.
///
/// `Debug` prints the message too, so `main` returning it with `?` shows a
/// sentence.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The anchor is the compiler's placeholder.
    #[error("the host is unsealed, so it trusts nothing by hash; run `modhash seal HOST --manifest M` after building its modules, or call HostBuilder::allow_unsealed() while developing")]
    Unsealed,
    /// The anchor record is corrupt.
    #[error("the host's anchor record is invalid ({0}); rebuild the host and seal it again")]
    AnchorInvalid(AnchorError),
    /// The manifest cannot be read or parsed.
    #[error(transparent)]
    Manifest(ManifestFileError),
    /// The manifest is not the one the host was sealed with.
    #[error("{}: this manifest (root {manifest_root}, profile {manifest_profile}) is not the one the host was sealed with (root {anchor_root}, profile {anchor_profile}); ship the manifest the host was sealed with, or seal the host with this one", path.display())]
    ManifestNotAnchored {
        /// The manifest.
        path: PathBuf,
        /// Its root.
        manifest_root: Digest,
        /// Its profile.
        manifest_profile: Profile,
        /// The root sealed into the host.
        anchor_root: Digest,
        /// The profile sealed into the host.
        anchor_profile: Profile,
    },
    /// A key file cannot be read.
    #[error("{}: cannot read the key file: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: ReadError,
    },
    /// A key is not one modhash can use.
    #[error("{key}: not a usable trusted key: {source}")]
    Key {
        /// The key file's path, or `trusted key #N` for the N-th key given
        /// as bytes.
        key: String,
        /// What is wrong with it.
        source: KeyError,
    },
    /// The signtab is not a directory.
    #[error("{}: not a directory; give the signtab directory `modhash sign --signtab` wrote", path.display())]
    Signtab {
        /// The path given.
        path: PathBuf,
    },
    /// The policy can isolate modules and the worker cannot run.
    #[error("{}: the isolation worker cannot be run ({source}), and {why} can send modules to it; install modhash-worker next to the host executable or give its path with HostBuilder::worker", path.display())]
    Worker {
        /// The worker executable looked for.
        path: PathBuf,
        /// Why isolation can be needed.
        why: &'static str,
        /// Why it cannot be run.
        source: std::io::Error,
    },
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One file [`Host::load_dir`] found, and what loading it gave.
pub type DirModule = (PathBuf, Result<Module, LoadError>);

/// Why [`Host::load_dir`] could not list a directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadDirError {
    /// The directory cannot be listed.
    #[error("{}: cannot list the module directory: {source}", dir.display())]
    List {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Host {
    /// Starts building a host that trusts what `anchor` (its
    /// `modhash::anchor!()`) anchors. By default untrusted modules are
    /// rejected and no key is trusted.
    pub fn builder(anchor: Anchor) -> HostBuilder {
        HostBuilder {
            anchor,
            manifest: None,
            keys: Vec::new(),
            signtab: None,
            untrusted: Action::Reject,
            allow_unsealed: false,
            worker: WorkerConfig::default(),
            size_cap: None,
        }
    }

    /// Loads the module at `path` as the policy says (in-process, isolated,
    /// tainted or refused) and creates its instance with an empty
    /// configuration.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Module, LoadError> {
        self.loader.load(path)
    }

    /// [`Host::load`], creating the instance with `config`.
    pub fn load_with_config(
        &self,
        path: impl AsRef<Path>,
        config: &[u8],
    ) -> Result<Module, LoadError> {
        self.loader.load_with_config(path, config)
    }

    /// Loads every `*.so` regular file directly in `dir`, in file-name
    /// order, each with its own result, so that one refused module does not
    /// hide the others. Sidecars (`.sign`, `.modsig`, `.proof`) are not
    /// modules and are skipped by the same rule.
    pub fn load_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<DirModule>, LoadDirError> {
        let dir = dir.as_ref();
        let list = |source| LoadDirError::List {
            dir: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(list)? {
            let entry = entry.map_err(list)?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "so") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| {
                let module = self.load(&path);
                (path, module)
            })
            .collect())
    }

    /// Reads the module at `path` once into a sealed image and judges it,
    /// running none of its code: what a host with its own module interface
    /// inspects before it decides. [`Host::open_library`] or
    /// [`Host::load_judged`] then use exactly that image, never the path
    /// again.
    pub fn judge(&self, path: impl AsRef<Path>) -> Result<Judged, LoadError> {
        self.loader.judge(path)
    }

    /// [`Host::judge`] for a file the host already has open; `name` is its
    /// path, for messages and for finding signatures and proofs beside it.
    pub fn judge_fd(&self, fd: BorrowedFd<'_>, name: &Path) -> Result<Judged, LoadError> {
        self.loader.judge_fd(fd, name)
    }

    /// `dlopen`s a module this host judged (`RTLD_NOW | RTLD_LOCAL`) and
    /// returns the raw library, if the policy lets it run here: trusted
    /// modules open; untrusted ones are refused ([`LoadError::Rejected`]),
    /// refused because they must run isolated ([`LoadError::MustIsolate`]),
    /// or, under [`Untrusted::Taint`], listed in [`Host::tainted`] before
    /// any of their code runs and then opened. A module judged by another
    /// host is refused ([`LoadError::JudgedElsewhere`]).
    pub fn open_library(&self, judged: Judged) -> Result<RawLibrary, LoadError> {
        self.loader
            .open_library(judged, libc::RTLD_NOW | libc::RTLD_LOCAL)
    }

    /// [`Host::open_library`] with other `dlopen` flags than `RTLD_NOW |
    /// RTLD_LOCAL`, for a host whose modules need them (`RTLD_GLOBAL`,
    /// `RTLD_LAZY`); the C API passes its caller's flags through here.
    pub fn open_library_with_flags(
        &self,
        judged: Judged,
        flags: std::ffi::c_int,
    ) -> Result<RawLibrary, LoadError> {
        self.loader.open_library(judged, flags)
    }

    /// Loads a module this host judged as a modhash module ([`Host::load`]
    /// with the judging already done), creating its instance with `config`.
    pub fn load_judged(&self, judged: Judged, config: &[u8]) -> Result<Module, LoadError> {
        self.loader.load_judged(judged, config)
    }

    /// The verdict [`Host::load`] would act on, without loading anything. A
    /// module that cannot be read, or has no digest under the anchored
    /// profile, is untrusted for that reason.
    pub fn verify(&self, path: impl AsRef<Path>) -> Verdict {
        match self.loader.judge(path) {
            Ok(judged) => judged.verdict().clone(),
            Err(LoadError::Profile { profile, source }) => Verdict::Untrusted {
                reasons: vec![UntrustedReason::NoDigest {
                    profile,
                    error: source.to_string(),
                }],
            },
            Err(error) => Verdict::Untrusted {
                reasons: vec![UntrustedReason::Unreadable(error.to_string())],
            },
        }
    }

    /// The untrusted modules loaded in-process so far (policy taint),
    /// oldest first.
    pub fn tainted(&self) -> Vec<Tainted> {
        self.loader.tainted()
    }

    /// Whether every module runs isolated
    /// ([`FORCE_ISOLATION_ENV`](crate::loader::FORCE_ISOLATION_ENV)).
    pub fn forces_isolation(&self) -> bool {
        self.loader.forces_isolation()
    }
}

impl HostBuilder {
    /// The build's manifest: modules it lists are trusted by hash. It must
    /// be the manifest the host was sealed with. Without one, a sealed host
    /// trusts by hash only modules that carry a proof (`modhash proof`,
    /// appended or as `MODULE.proof` beside them).
    pub fn manifest_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest = Some(path.into());
        self
    }

    /// Trusts signatures by a key compiled into the host
    /// (`include_bytes!`): an OpenSSH `ssh-ed25519` public key (`modhash
    /// keygen`), a DER or PEM SubjectPublicKeyInfo (libcamera's
    /// `publicKeyData`, `modhash key extract --libcamera`), or X.509
    /// certificates, DER or PEM (`modhash key extract --kernel`).
    pub fn trusted_key(mut self, key: impl AsRef<[u8]>) -> Self {
        let number = 1 + self
            .keys
            .iter()
            .filter(|k| matches!(k, KeySource::Bytes(..)))
            .count();
        self.keys
            .push(KeySource::Bytes(number, key.as_ref().to_owned()));
        self
    }

    /// [`HostBuilder::trusted_key`] from a file, read by `build`. The file
    /// must be as trustworthy as the host binary: whoever can write it can
    /// add trust.
    pub fn trusted_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.keys.push(KeySource::File(path.into()));
        self
    }

    /// Also looks for native signatures in `dir`, named by digest (`modhash
    /// sign --signtab`); they count only for the trusted keys.
    pub fn signtab(mut self, dir: impl Into<PathBuf>) -> Self {
        self.signtab = Some(dir.into());
        self
    }

    /// What happens to modules trusted neither by hash nor by signature
    /// (default [`Untrusted::Reject`]).
    pub fn untrusted(mut self, action: Untrusted) -> Self {
        self.untrusted = action;
        self
    }

    /// Builds even if the host is unsealed, for development: nothing is
    /// then trusted by hash (the manifest is still read and checked for
    /// syntax); signatures still work.
    pub fn allow_unsealed(mut self) -> Self {
        self.allow_unsealed = true;
        self
    }

    /// How isolated modules run (worker path, timeouts, sandbox).
    pub fn worker(mut self, worker: WorkerConfig) -> Self {
        self.worker = worker;
        self
    }

    /// Refuses module files larger than `cap` bytes (default
    /// [`DEFAULT_SIZE_CAP`](crate::memfd::DEFAULT_SIZE_CAP)).
    pub fn size_cap(mut self, cap: u64) -> Self {
        self.size_cap = Some(cap);
        self
    }

    /// Checks the anchor, reads and checks the manifest, reads the keys and
    /// checks that the worker can run if the policy can isolate, and builds
    /// the host.
    pub fn build(self) -> Result<Host, BuildError> {
        let manifest = match &self.manifest {
            Some(path) => Some(Manifest::from_file(path).map_err(BuildError::Manifest)?),
            None => None,
        };
        match (&self.anchor, &manifest, &self.manifest) {
            (Anchor::Unsealed, _, _) if !self.allow_unsealed => return Err(BuildError::Unsealed),
            (Anchor::Invalid(error), _, _) => return Err(BuildError::AnchorInvalid(error.clone())),
            (
                Anchor::Sealed {
                    profile,
                    count: _,
                    root,
                },
                Some(manifest),
                Some(path),
            ) if !self.anchor.anchors(manifest) => {
                return Err(BuildError::ManifestNotAnchored {
                    path: path.clone(),
                    manifest_root: manifest.root(),
                    manifest_profile: manifest.profile(),
                    anchor_root: *root,
                    anchor_profile: *profile,
                })
            }
            _ => {}
        }
        let evidence = manifest.map_or(HashEvidence::None, HashEvidence::Manifest);
        let mut policy = Policy::new(self.anchor, evidence);
        if let Some(dir) = self.signtab.as_ref().filter(|dir| !dir.is_dir()) {
            return Err(BuildError::Signtab { path: dir.clone() });
        }
        if !self.keys.is_empty() {
            policy = policy.with_signatures(SignatureTrust {
                keyring: keyring(&self.keys)?,
                signtab: self.signtab,
            });
        }
        let mut loader = Loader::new(HostPolicy::new(policy, self.untrusted))
            .with_worker_config(self.worker.clone());
        if let Some(cap) = self.size_cap {
            loader = loader.with_size_cap(cap);
        }
        let isolation = if loader.forces_isolation() {
            Some(crate::loader::FORCE_ISOLATION_ENV)
        } else if self.untrusted == Action::Isolate {
            Some("policy isolate")
        } else {
            None
        };
        if let Some(why) = isolation {
            check_worker(&self.worker, why)?;
        }
        Ok(Host { loader })
    }
}

/// A keyring of every key given, in order.
fn keyring(keys: &[KeySource]) -> Result<Keyring, BuildError> {
    let mut keyring = Keyring::new();
    for key in keys {
        let (name, result) = match key {
            KeySource::Bytes(number, bytes) => {
                (format!("trusted key #{number}"), keyring.add_file(bytes))
            }
            KeySource::File(path) => {
                let bytes = input::read_regular(path, MAX_KEY_FILE).map_err(|source| {
                    BuildError::KeyFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                (path.display().to_string(), keyring.add_file(&bytes))
            }
        };
        result.map_err(|source| BuildError::Key { key: name, source })?;
    }
    Ok(keyring)
}

/// Checks that the worker executable exists and may be executed.
fn check_worker(worker: &WorkerConfig, why: &'static str) -> Result<(), BuildError> {
    let path = worker.worker_path().map_err(|source| BuildError::Worker {
        path: PathBuf::from(crate::isolated::WORKER_NAME),
        why,
        source,
    })?;
    let fail = |source| BuildError::Worker {
        path: path.clone(),
        why,
        source,
    };
    let metadata = std::fs::metadata(&path).map_err(fail)?;
    if !metadata.is_file() {
        return Err(fail(std::io::Error::other("not a regular file")));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(fail(std::io::Error::other("not executable")));
    }
    Ok(())
}
