//! A loaded module, whichever way it runs.

use std::path::{Path, PathBuf};

use modhash::Digest;
use modhash_plugin::host::Failure;

use crate::inprocess::InProcess;
use crate::judge::Verdict;

/// Why a call into a module failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The module returned an error, or caught a panic at the boundary.
    #[error(transparent)]
    Module(#[from] Failure),
}

/// Where a module's code runs. Each backend answers [`Module::call`] the
/// same way, so hosts do not care which one a policy chose.
#[derive(Debug)]
pub(crate) enum Backend {
    /// `dlopen`ed into this process.
    InProcess(InProcess),
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
        }
    }
}
