//! What the loader asks of a policy: which profile's image to load, a
//! verdict on the sealed image, and what to do with untrusted modules.
//!
//! The loader computes the digest itself, from the sealed bytes, and hands
//! it to the policy; the policy cannot pick which bytes are loaded.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use modhash::policy::{Policy, UntrustedReason};
use modhash::proof::InclusionProof;
use modhash::{Digest, Profile};

/// The verdict type is the core's: trusted by hash, by signature, or
/// untrusted with every reason.
pub use modhash::policy::Verdict;

/// A module the loader has read and sealed, as shown to a policy.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The path given to [`Loader::load`](crate::Loader::load), for
    /// messages and for finding sidecar signatures. The module itself is
    /// never read from it again.
    pub path: &'a Path,
    /// The snapshot of the file that was read (signatures over whole files
    /// are checked against it; the image loaded is derived from it).
    pub file: &'a [u8],
    /// SHA-256 of the sealed image: the bytes that will be mapped.
    pub digest: Digest,
}

/// What happens to a module that is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Refuse to load it.
    Reject,
    /// Run it in a sandboxed worker process.
    Isolate,
    /// Load it in-process, log it and list it in
    /// [`Loader::tainted`](crate::Loader::tainted).
    Taint,
}

impl Action {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Isolate => "isolate",
            Action::Taint => "taint",
        }
    }
}

/// A policy name other than `reject`, `isolate` or `taint`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}: give reject, isolate or taint")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// The names [`Action::name`] gives.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [Action::Reject, Action::Isolate, Action::Taint]
            .into_iter()
            .find(|action| action.name() == name)
            .ok_or_else(|| UnknownAction(name.to_owned()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A trust policy the loader can apply.
pub trait Judge: Send + Sync {
    /// The profile whose canonical image is sealed, hashed and loaded.
    fn profile(&self) -> Profile;
    /// The verdict on a sealed module.
    fn judge(&self, module: &Candidate<'_>) -> Verdict;
    /// What to do with an untrusted module.
    fn untrusted(&self) -> Action;
}

/// A policy that trusts a fixed set of digests, compiled into the host or
/// computed by it (tests, benchmarks, hosts without an anchor). It must not
/// be filled from a file or the environment: that would let whoever can
/// write the file add trust.
#[derive(Debug, Clone)]
pub struct DigestSet {
    profile: Profile,
    digests: BTreeSet<Digest>,
    untrusted: Action,
}

impl DigestSet {
    /// Trusts `digests` of `profile` images; applies `untrusted` to others.
    pub fn new(
        profile: Profile,
        digests: impl IntoIterator<Item = Digest>,
        untrusted: Action,
    ) -> Self {
        Self {
            profile,
            digests: digests.into_iter().collect(),
            untrusted,
        }
    }
}

impl Judge for DigestSet {
    fn profile(&self) -> Profile {
        self.profile
    }

    fn judge(&self, module: &Candidate<'_>) -> Verdict {
        if self.digests.contains(&module.digest) {
            Verdict::TrustedByHash
        } else {
            Verdict::Untrusted {
                reasons: vec![UntrustedReason::NotInManifest(module.digest)],
            }
        }
    }

    fn untrusted(&self) -> Action {
        self.untrusted
    }
}

/// A host's policy: the anchor and manifest trust by hash, the keys
/// compiled into the host (`Policy::with_signatures`) trust by signature,
/// and `untrusted` says what happens to the rest.
#[derive(Debug)]
pub struct HostPolicy {
    policy: Policy,
    untrusted: Action,
}

impl HostPolicy {
    /// `policy` decides; `untrusted` acts on what it does not trust.
    pub fn new(policy: Policy, untrusted: Action) -> Self {
        Self { policy, untrusted }
    }
}

impl Judge for HostPolicy {
    fn profile(&self) -> Profile {
        self.policy.profile()
    }

    /// Uses the proof that travels with the module (appended to the
    /// snapshot, or beside it) along with the manifest.
    fn judge(&self, module: &Candidate<'_>) -> Verdict {
        let proof = InclusionProof::travelling_with(module.path, module.file);
        self.policy
            .decide_module_digest(module.path, module.file, module.digest, proof.as_ref())
    }

    fn untrusted(&self) -> Action {
        self.untrusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_from_their_names_only() {
        for action in [Action::Reject, Action::Isolate, Action::Taint] {
            assert_eq!(action.name().parse(), Ok(action));
        }
        assert_eq!(
            "Reject".parse::<Action>(),
            Err(UnknownAction("Reject".to_owned()))
        );
    }
}
