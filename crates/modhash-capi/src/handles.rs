//! What the opaque C handles hold: Rust values, and the C strings read from
//! them, made once so that the `const char *` getters hand out pointers
//! that live as long as the handle.

use std::ffi::{c_char, c_int, CStr, CString, OsStr};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use modhash::policy::{HashEvidence, Policy, SignatureTrust, Verdict};
use modhash::signature::Keyring;
use modhash::{Anchor, Digest, Manifest};
use modhash_load::isolated::{WorkerConfig, WORKER_NAME};
use modhash_load::{Action, HostPolicy, Judged, Loader, Module, RawLibrary};

use crate::error::modhash_status::{
    MODHASH_ERR_ANCHOR, MODHASH_ERR_IO, MODHASH_ERR_KEY, MODHASH_ERR_MANIFEST,
    MODHASH_ERR_UNSEALED, MODHASH_ERR_WORKER,
};
use crate::error::Failure;

/// `modhash_trust` in C.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, reason = "the C names")]
pub enum modhash_trust {
    MODHASH_TRUSTED_BY_HASH = 1,
    MODHASH_TRUSTED_BY_SIGNATURE = 2,
    MODHASH_UNTRUSTED = 3,
}

/// `modhash_untrusted_action` in C. Received as an integer and parsed, so
/// an unknown value from C is an error, not undefined behaviour.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, reason = "the C names")]
pub enum modhash_untrusted_action {
    MODHASH_REJECT = 0,
    MODHASH_ISOLATE = 1,
    MODHASH_TAINT = 2,
}

impl modhash_untrusted_action {
    /// The action numbered `value` in C.
    pub fn parse(value: c_int) -> Result<Action, Failure> {
        match value {
            0 => Ok(Action::Reject),
            1 => Ok(Action::Isolate),
            2 => Ok(Action::Taint),
            other => Err(Failure::argument(format!(
                "{other} is not a modhash_untrusted_action; use MODHASH_REJECT, MODHASH_ISOLATE or MODHASH_TAINT"
            ))),
        }
    }
}

/// A path argument: NUL-terminated bytes, not necessarily UTF-8.
pub fn path_arg<'a>(path: *const c_char, what: &'static str) -> Result<&'a Path, Failure> {
    if path.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL; every caller documents in the header that path
    // arguments are NUL-terminated strings valid for the call.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    Ok(Path::new(OsStr::from_bytes(bytes)))
}

/// A string for C; interior NULs (never in verdict texts) become spaces.
fn c_string(text: impl Into<String>) -> CString {
    let text: String = text.into().replace('\0', " ");
    CString::new(text).unwrap_or_default()
}

/// A verdict and its strings, ready for the getters.
#[derive(Debug, Clone)]
pub struct VerdictHandle {
    pub trust: modhash_trust,
    pub text: CString,
    pub signer: Option<CString>,
    pub reasons: Vec<CString>,
    pub digest: CString,
}

impl VerdictHandle {
    fn new(verdict: &Verdict, digest: Digest) -> Self {
        let (trust, signer, reasons) = match verdict {
            Verdict::TrustedByHash => (modhash_trust::MODHASH_TRUSTED_BY_HASH, None, Vec::new()),
            Verdict::TrustedBySignature { key } => (
                modhash_trust::MODHASH_TRUSTED_BY_SIGNATURE,
                Some(c_string(key.as_str())),
                Vec::new(),
            ),
            Verdict::Untrusted { reasons } => (
                modhash_trust::MODHASH_UNTRUSTED,
                None,
                reasons.iter().map(|r| c_string(r.to_string())).collect(),
            ),
        };
        Self {
            trust,
            text: c_string(verdict.to_string()),
            signer,
            reasons,
            digest: c_string(digest.to_hex()),
        }
    }

    fn of(judged: &Judged) -> Self {
        Self::new(judged.verdict(), judged.digest())
    }
}

/// What `modhash_host_builder_*` collect; read by `build`.
#[derive(Debug)]
pub struct HostBuilder {
    anchor: Anchor,
    pub manifest: Option<PathBuf>,
    key_files: Vec<PathBuf>,
    keyring: Keyring,
    pub signtab: Option<PathBuf>,
    pub action: Action,
    pub worker: Option<PathBuf>,
    pub allow_unsealed: bool,
}

impl HostBuilder {
    /// Fails unless `len` is the length of an anchor record.
    pub fn check_record_len(len: usize) -> Result<(), Failure> {
        if len == modhash::anchor::RECORD_LEN {
            return Ok(());
        }
        Err(Failure::new(
            MODHASH_ERR_ANCHOR,
            format!(
                "anchor: {len} bytes given, a record is {}; pass &anchor, sizeof anchor for the record declared with MODHASH_ANCHOR",
                modhash::anchor::RECORD_LEN
            ),
        ))
    }

    /// A builder for the host whose anchor record is `record`.
    pub fn new(record: &[u8]) -> Result<Self, Failure> {
        Self::check_record_len(record.len())?;
        let anchor = Anchor::parse(record)
            .map_err(|e| Failure::new(MODHASH_ERR_ANCHOR, format!("anchor: {e}")))?;
        Ok(Self {
            anchor,
            manifest: None,
            key_files: Vec::new(),
            keyring: Keyring::new(),
            signtab: None,
            action: Action::Reject,
            worker: None,
            allow_unsealed: false,
        })
    }

    /// Remembers a key file, read by `build`.
    pub fn key_file(&mut self, path: &Path) -> Result<(), Failure> {
        self.key_files.push(path.to_owned());
        Ok(())
    }

    /// Adds the keys in `bytes`; `what` names them in messages.
    pub fn key_bytes(&mut self, bytes: &[u8], what: &str) -> Result<(), Failure> {
        self.keyring
            .add_file(bytes)
            .map(drop)
            .map_err(|e| Failure::new(MODHASH_ERR_KEY, format!("{what}: {e}")))
    }

    /// Adds libcamera's RSA key, refusing any other kind of key.
    pub fn libcamera_key(&mut self, spki_der: &[u8]) -> Result<(), Failure> {
        let mut one = Keyring::new();
        one.add_file(spki_der)
            .map_err(|e| Failure::new(MODHASH_ERR_KEY, format!("libcamera key: {e}")))?;
        if let Some(other) = one.describe().into_iter().find(|key| key.kind != "rsa") {
            return Err(Failure::new(
                MODHASH_ERR_KEY,
                format!(
                    "libcamera key: a {} key; libcamera signs IPA modules with RSA (give the DER SubjectPublicKeyInfo of its public key)",
                    other.kind
                ),
            ));
        }
        self.key_bytes(spki_der, "libcamera key")
    }

    /// Reads the manifest and key files and checks them against the anchor
    /// and the policy, so that a misconfigured host fails here, naming the
    /// file, and not at its first module.
    pub fn build(mut self) -> Result<HostInner, Failure> {
        if !self.anchor.is_sealed() && !self.allow_unsealed {
            return Err(Failure::new(
                MODHASH_ERR_UNSEALED,
                "anchor: the host is unsealed, so it trusts nothing by hash; run `modhash seal HOST --manifest M` after building the modules, or allow an unsealed host for development",
            ));
        }
        let evidence = match &self.manifest {
            None => HashEvidence::None,
            Some(path) => HashEvidence::Manifest(read_manifest(path, &self.anchor)?),
        };
        for path in std::mem::take(&mut self.key_files) {
            let bytes =
                std::fs::read(&path).map_err(|e| Failure::about(MODHASH_ERR_IO, &path, &e))?;
            self.key_bytes(&bytes, &path.display().to_string())?;
        }
        let mut policy = Policy::new(self.anchor, evidence);
        if !self.keyring.is_empty() || self.signtab.is_some() {
            policy = policy.with_signatures(SignatureTrust {
                keyring: self.keyring,
                signtab: self.signtab,
            });
        }
        let mut worker = WorkerConfig::default();
        worker.worker = self.worker;
        let loader =
            Loader::new(HostPolicy::new(policy, self.action)).with_worker_config(worker.clone());
        if self.action == Action::Isolate || loader.forces_isolation() {
            check_worker(worker.worker)?;
        }
        Ok(HostInner {
            loader,
            tainted: Mutex::new(Vec::new()),
        })
    }
}

/// The manifest at `path`, which must be the one `anchor` is sealed with.
fn read_manifest(path: &Path, anchor: &Anchor) -> Result<Manifest, Failure> {
    let text = std::fs::read(path).map_err(|e| Failure::about(MODHASH_ERR_IO, path, &e))?;
    let text = String::from_utf8(text).map_err(|_| {
        Failure::new(
            MODHASH_ERR_MANIFEST,
            format!(
                "{}: not a modhash manifest (not UTF-8 text)",
                path.display()
            ),
        )
    })?;
    let manifest: Manifest = text
        .parse()
        .map_err(|e| Failure::about(MODHASH_ERR_MANIFEST, path, &e))?;
    if anchor.is_sealed() && !anchor.anchors(&manifest) {
        return Err(Failure::new(
            MODHASH_ERR_MANIFEST,
            format!(
                "{}: root {} is not the one sealed in the host ({anchor}); ship the manifest the host was sealed with, or re-run `modhash manifest` and `modhash seal`",
                path.display(),
                manifest.root()
            ),
        ));
    }
    Ok(manifest)
}

/// Fails unless the worker executable exists: where it is configured, or
/// next to the host's executable.
fn check_worker(configured: Option<PathBuf>) -> Result<(), Failure> {
    let path = match configured {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| {
                Failure::new(
                    MODHASH_ERR_WORKER,
                    format!(
                        "cannot find the host executable to look for {WORKER_NAME} beside it: {e}"
                    ),
                )
            })?
            .with_file_name(WORKER_NAME),
    };
    if path.is_file() {
        return Ok(());
    }
    Err(Failure::new(
        MODHASH_ERR_WORKER,
        format!(
            "{}: no such worker executable, and the policy can isolate modules; install {WORKER_NAME} there or give its path",
            path.display()
        ),
    ))
}

/// A built host: the loader, and the taint list as C strings.
#[derive(Debug)]
pub struct HostInner {
    loader: Loader<HostPolicy>,
    /// The loader's taint list converted so far; entries are boxed, never
    /// removed, so pointers into them stay valid until the host is freed.
    #[allow(
        clippy::vec_box,
        reason = "boxed so the entries never move when the list grows"
    )]
    tainted: Mutex<Vec<Box<(CString, VerdictHandle)>>>,
}

impl HostInner {
    /// Judges the module at `path`.
    fn judge(&self, path: &Path) -> Result<Judged, Failure> {
        self.loader.judge(path).map_err(|e| Failure::load(path, &e))
    }

    /// The verdict on the module at `path`.
    pub fn verify(&self, path: &Path) -> Result<VerdictHandle, Failure> {
        self.judge(path).map(|judged| VerdictHandle::of(&judged))
    }

    /// The verdict on the module open as `fd`.
    pub fn verify_fd(
        &self,
        fd: BorrowedFd<'_>,
        name: Option<&Path>,
    ) -> Result<VerdictHandle, Failure> {
        let unnamed = PathBuf::from(format!("fd {}", std::os::fd::AsRawFd::as_raw_fd(&fd)));
        let name = name.unwrap_or(&unnamed);
        self.loader
            .judge_fd(fd, name)
            .map(|judged| VerdictHandle::of(&judged))
            .map_err(|e| Failure::load(name, &e))
    }

    /// Loads the module at `path`.
    pub fn load(&self, path: &Path) -> Result<ModuleHandle, Failure> {
        let module = self
            .loader
            .load(path)
            .map_err(|e| Failure::load(path, &e))?;
        Ok(ModuleHandle {
            name: c_string(module.name()),
            verdict: VerdictHandle::new(module.trust(), module.digest()),
            module,
        })
    }

    /// Brings the converted taint list up to the loader's.
    #[allow(clippy::vec_box, reason = "see `tainted`")]
    fn tainted_entries(&self) -> std::sync::MutexGuard<'_, Vec<Box<(CString, VerdictHandle)>>> {
        let mut converted = self.tainted.lock().unwrap_or_else(PoisonError::into_inner);
        let all = self.loader.tainted();
        for entry in all.get(converted.len()..).unwrap_or_default() {
            converted.push(Box::new((
                c_string(entry.path.as_os_str().to_string_lossy()),
                VerdictHandle::new(&entry.verdict, entry.digest),
            )));
        }
        converted
    }

    /// How many modules were tainted.
    pub fn tainted_count(&self) -> usize {
        self.tainted_entries().len()
    }

    /// Tainted entry `i`: its path and verdict, valid while the host lives.
    pub fn tainted(&self, i: usize) -> Option<(*const c_char, *const VerdictHandle)> {
        let entries = self.tainted_entries();
        let entry = entries.get(i)?;
        // The boxes never move or drop before the host does.
        Some((entry.0.as_ptr(), &entry.1))
    }
}

/// A judged image; the judged value is taken when it is opened.
#[derive(Debug)]
pub struct Image {
    host: std::sync::Arc<HostInner>,
    judged: Option<Judged>,
    verdict: VerdictHandle,
}

impl Image {
    /// Judges the module at `path` for `host`.
    pub fn judge(host: &std::sync::Arc<HostInner>, path: &Path) -> Result<Self, Failure> {
        let judged = host.judge(path)?;
        Ok(Self {
            host: host.clone(),
            verdict: VerdictHandle::of(&judged),
            judged: Some(judged),
        })
    }

    /// The image's verdict.
    pub fn verdict(&self) -> *const VerdictHandle {
        &self.verdict
    }

    /// Applies the policy and opens the image with `dlopen_flags`.
    pub fn open_library(&mut self, dlopen_flags: c_int) -> Result<Library, Failure> {
        let judged = self.judged.take().ok_or_else(|| {
            Failure::argument(
                "this image was already opened; judge the module again to open it again",
            )
        })?;
        let path = judged.path().to_owned();
        let flags = if dlopen_flags == 0 {
            libc::RTLD_NOW | libc::RTLD_LOCAL
        } else {
            dlopen_flags
        };
        let raw = self
            .host
            .loader
            .open_library(judged, flags)
            .map_err(|e| Failure::load(&path, &e))?;
        Ok(Library {
            raw,
            verdict: self.verdict.clone(),
        })
    }
}

/// An opened library.
#[derive(Debug)]
pub struct Library {
    raw: RawLibrary,
    pub verdict: VerdictHandle,
}

impl Library {
    /// The `dlopen` handle.
    pub fn handle(&self) -> *mut std::ffi::c_void {
        self.raw.handle()
    }
}

/// A loaded module and its strings.
#[derive(Debug)]
pub struct ModuleHandle {
    pub module: Module,
    pub name: CString,
    pub verdict: VerdictHandle,
}

impl ModuleHandle {
    /// Calls the module.
    pub fn call(&self, method: u32, input: &[u8]) -> Result<Vec<u8>, Failure> {
        self.module
            .call(method, input)
            .map_err(|e| Failure::call(self.module.path(), &e))
    }
}
