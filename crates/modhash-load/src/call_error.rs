//! How a call into a module fails, whichever backend runs it.
//!
//! Its own module because both backends produce these errors and the
//! [`Module`](crate::Module) that dispatches to them returns them: keeping it
//! apart lets the isolated backend and the module wrapper each depend on it
//! without depending on each other.

use modhash_plugin::host::Failure;

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
    /// The isolated module ran into a limit; its worker died.
    #[error("the isolated module exceeded its {limit} limit and its worker died; raise the limit in {setting} or fix the module, then Module::restart", limit = .0, setting = .0.setting())]
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

/// A sandbox limit a module ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The address-space limit (`SandboxPolicy::address_space`).
    Memory,
    /// The CPU-time limit (`SandboxPolicy::cpu_time`).
    CpuTime,
    /// The stderr flood limit (`StderrLimits::flood_per_second`).
    Output,
}

impl Limit {
    /// Where a host sets this limit.
    fn setting(self) -> &'static str {
        match self {
            Self::Memory | Self::CpuTime => "SandboxPolicy",
            Self::Output => "WorkerConfig::stderr",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::CpuTime => "CPU time",
            Self::Output => "stderr output",
        })
    }
}
