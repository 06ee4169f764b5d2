//! What the opaque C handles hold: Rust values, and the C strings read from
//! them, made once so that the `const char *` getters hand out pointers
//! that live as long as the handle.

use std::ffi::{c_char, c_int, CStr, CString, OsStr};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use modhash::manifest::ManifestFileError;
use modhash::policy::Verdict;
use modhash::signature::Keyring;
use modhash::{Anchor, Digest};
use modhash_load::isolated::WorkerConfig;
use modhash_load::{Action, BuildError, Host, Judged, Module, RawLibrary};

use crate::error::modhash_status::{
    MODHASH_ERR_ANCHOR, MODHASH_ERR_IO, MODHASH_ERR_KEY, MODHASH_ERR_MANIFEST,
    MODHASH_ERR_UNSEALED, MODHASH_ERR_WORKER,
};
use crate::error::{chain, Failure};

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
            // A kind of verdict this library does not know yet: C callers
            // are told the safe thing, and the text says what it is.
            _ => (modhash_trust::MODHASH_UNTRUSTED, None, Vec::new()),
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

/// A `modhash_load::HostBuilder` being configured from C. Its methods take
/// the builder by value, so it is held in an `Option` while one runs.
#[derive(Debug)]
pub struct HostBuilder {
    inner: Option<modhash_load::HostBuilder>,
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
            inner: Some(Host::builder(anchor)),
        })
    }

    /// Applies one `HostBuilder` method.
    pub fn set(
        &mut self,
        f: impl FnOnce(modhash_load::HostBuilder) -> modhash_load::HostBuilder,
    ) -> Result<(), Failure> {
        let inner = self.take()?;
        self.inner = Some(f(inner));
        Ok(())
    }

    fn take(&mut self) -> Result<modhash_load::HostBuilder, Failure> {
        self.inner.take().ok_or_else(|| {
            Failure::argument("this builder failed inside an earlier call; start a new one")
        })
    }

    /// Trusts the keys in `bytes`, checked now so the caller learns which
    /// call was wrong; `what` names them in messages.
    pub fn key_bytes(&mut self, bytes: &[u8], what: &str) -> Result<(), Failure> {
        Keyring::new()
            .add_file(bytes)
            .map_err(|e| Failure::new(MODHASH_ERR_KEY, format!("{what}: {e}")))?;
        self.set(|b| b.trusted_key(bytes))
    }

    /// Trusts libcamera's RSA key, refusing any other kind of key.
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
        self.set(|b| b.trusted_key(spki_der))
    }

    /// The worker executable.
    pub fn worker(&mut self, path: &Path) -> Result<(), Failure> {
        let mut worker = WorkerConfig::default();
        worker.worker = Some(path.to_owned());
        self.set(|b| b.worker(worker))
    }

    /// Builds the host: `Host::build` reads the manifest and keys and
    /// checks them against the anchor, so a misconfigured host fails here,
    /// naming the file.
    pub fn build(mut self) -> Result<HostInner, Failure> {
        let host = self.take()?.build().map_err(|e| {
            let status = match &e {
                BuildError::Unsealed => MODHASH_ERR_UNSEALED,
                BuildError::AnchorInvalid(_) => MODHASH_ERR_ANCHOR,
                BuildError::Manifest(ManifestFileError::Read { .. })
                | BuildError::KeyFile { .. } => MODHASH_ERR_IO,
                BuildError::Manifest(_) | BuildError::ManifestNotAnchored { .. } => {
                    MODHASH_ERR_MANIFEST
                }
                BuildError::Key { .. } => MODHASH_ERR_KEY,
                BuildError::Worker { .. } => MODHASH_ERR_WORKER,
                _ => MODHASH_ERR_IO,
            };
            // The facade's messages name its Rust methods; a C host knows
            // them by their C names.
            let message = chain(&e)
                .replace(
                    "HostBuilder::allow_unsealed()",
                    "modhash_host_builder_allow_unsealed()",
                )
                .replace("HostBuilder::worker", "modhash_host_builder_worker()");
            Failure::new(status, message)
        })?;
        Ok(HostInner {
            host,
            tainted: Mutex::new(Vec::new()),
        })
    }
}

/// A built host, and its taint list as C strings.
#[derive(Debug)]
pub struct HostInner {
    host: Host,
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
        self.host.judge(path).map_err(|e| Failure::load(path, &e))
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
        self.host
            .judge_fd(fd, name)
            .map(|judged| VerdictHandle::of(&judged))
            .map_err(|e| Failure::load(name, &e))
    }

    /// Loads the module at `path`.
    pub fn load(&self, path: &Path) -> Result<ModuleHandle, Failure> {
        let module = self.host.load(path).map_err(|e| Failure::load(path, &e))?;
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
        let all = self.host.tainted();
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
            .host
            .open_library_with_flags(judged, flags)
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
