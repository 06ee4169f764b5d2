//! A loaded module, whichever way it runs.

use std::path::{Path, PathBuf};

use modhash::Digest;

use crate::call_error::CallError;
use crate::inprocess::InProcess;
use crate::isolated::{Isolated, SpawnError};
use crate::judge::Verdict;

/// Where a module's code runs. Each backend answers [`Module::call`] the
/// same way, so hosts do not care which one a policy chose.
#[derive(Debug)]
pub(crate) enum Backend {
    /// `dlopen`ed into this process.
    InProcess(InProcess),
    /// In a sandboxed worker process (boxed: it is several times the size
    /// of the in-process backend).
    Isolated(Box<Isolated>),
}

/// A verified, loaded module with one instance.
///
/// Dropping it destroys the instance and unloads the module.
#[derive(Debug)]
pub struct Module {
    path: PathBuf,
    digest: Digest,
    verdict: Verdict,
    name: String,
    backend: Backend,
}

impl Module {
    pub(crate) fn new(path: PathBuf, digest: Digest, verdict: Verdict, backend: Backend) -> Self {
        let name = match &backend {
            Backend::InProcess(module) => module.name().to_owned(),
            Backend::Isolated(module) => module.name().to_owned(),
        };
        Self {
            path,
            digest,
            verdict,
            name,
            backend,
        }
    }

    /// Calls `method` with `input` and returns the module's output. Calls on
    /// one module are serialised; use one module per thread for parallelism.
    pub fn call(&self, method: u32, input: &[u8]) -> Result<Vec<u8>, CallError> {
        match &self.backend {
            Backend::InProcess(module) => Ok(module.call(method, input)?),
            Backend::Isolated(module) => module.call(method, input),
        }
    }

    /// Starts a fresh worker for an isolated module (after a crash, a
    /// timeout or a denial, or to reset its state); a no-op in-process.
    pub fn restart(&self) -> Result<(), SpawnError> {
        match &self.backend {
            Backend::InProcess(_) => Ok(()),
            Backend::Isolated(module) => module.restart(),
        }
    }

    /// The isolated backend, for its sandbox report and worker pid; `None`
    /// in-process.
    pub fn isolated(&self) -> Option<&Isolated> {
        match &self.backend {
            Backend::InProcess(_) => None,
            Backend::Isolated(module) => Some(module),
        }
    }

    /// The policy's verdict on the loaded bytes.
    pub fn trust(&self) -> &Verdict {
        &self.verdict
    }

    /// The name the module reports through the ABI.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the sealed image that was loaded.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The path the module was read from (once).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the module runs in an isolated worker.
    pub fn is_isolated(&self) -> bool {
        match &self.backend {
            Backend::InProcess(_) => false,
            Backend::Isolated(_) => true,
        }
    }
}
