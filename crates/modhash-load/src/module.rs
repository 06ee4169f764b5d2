//! A loaded module, whichever way it runs.

use std::path::{Path, PathBuf};

use modhash::Digest;
use modhash_plugin::host::Failure;

use crate::inprocess::InProcess;
use crate::isolated::{Isolated, Limit, SpawnError};
use crate::judge::Verdict;
use crate::protocol::ProtocolError;

/// Why a call into a module failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The module returned an error, or caught a panic at the boundary.
    #[error(transparent)]
    Module(#[from] Failure),
    /// The isolated module's worker crashed (a signal, or it exited); the
    /// text says how, with the worker's last stderr output.
    #[error(
        "the isolated module crashed: {0}; its worker is down, Module::restart starts a new one"
    )]
    Crashed(String),
    /// The isolated module did not answer in time; its worker was killed.
    #[error("the isolated module did not answer within {0:?} and its worker was killed; Module::restart starts a new one")]
    TimedOut(std::time::Duration),
    /// The isolated module ran into a sandbox limit; its worker died.
    #[error("the isolated module exceeded its {0} limit and its worker died; raise the limit in SandboxPolicy or fix the module, then Module::restart")]
    LimitExceeded(Limit),
    /// The isolated module tried something the sandbox forbids; its worker
    /// was killed.
    #[error("the sandbox denied the isolated module: {0}; its worker was killed")]
    Denied(String),
    /// The isolated module's worker broke the protocol; it was killed.
    #[error("the isolated module's worker broke the protocol ({0}) and was killed")]
    Protocol(ProtocolError),
    /// An earlier failure took the worker down.
    #[error("the isolated module's worker is down after an earlier failure; call Module::restart")]
    WorkerDown,
}

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

    /// The digest it was judged by, under the policy's profile (under
    /// `elf-image`, SHA-256 of the sealed image that was loaded).
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
