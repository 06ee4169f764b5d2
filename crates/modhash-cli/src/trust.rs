//! The options that say what a host trusts — its anchor, the build's
//! manifest, compiled-in keys, a signtab — shared by `verify` and `load` so
//! both reach the same verdict on the same module.

use std::path::{Path, PathBuf};

use modhash::policy::{HashEvidence, Policy, SignatureTrust};
use modhash::seal;
use modhash::signature::Keyring;

use crate::commands::root::read_manifest;
use crate::output::Failure;

/// What the host trusts.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The host binary whose anchor decides.
    #[arg(long, value_name = "HOST")]
    pub host: Option<PathBuf>,
    /// The build's manifest.
    #[arg(long, short, value_name = "M", requires = "host")]
    pub manifest: Option<PathBuf>,
    /// Key files whose signatures are trusted: `ssh-ed25519` public keys
    /// (`modhash keygen`), a DER or PEM public key (`modhash key extract
    /// --libcamera`), PEM or DER certificates (`modhash key extract
    /// --kernel`). Repeat for several files.
    #[arg(long, value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// A directory of native signatures named `<hex digest>.modsig`
    /// (`modhash sign --signtab`).
    #[arg(long, value_name = "DIR", requires = "keys")]
    pub signtab: Option<PathBuf>,
}

impl TrustArgs {
    /// The policy these options describe.
    pub fn policy(&self) -> Result<Policy, Failure> {
        let signatures = self.signature_trust()?;
        match (&self.host, signatures) {
            (Some(host_path), signatures) => {
                let host = crate::files::read_module(host_path)?;
                let (_, anchor) = seal::read(&host).map_err(|e| Failure::at(host_path, e))?;
                let evidence = match &self.manifest {
                    Some(path) => HashEvidence::Manifest(read_manifest(path)?),
                    None => HashEvidence::None,
                };
                let policy = Policy::new(anchor, evidence);
                Ok(match signatures {
                    Some(signatures) => policy.with_signatures(signatures),
                    None => policy,
                })
            }
            (None, Some(signatures)) => Ok(Policy::signatures_only(signatures)),
            (None, None) => Err(Failure::usage("give --host, --keys or both")),
        }
    }

    /// The keys of --keys (none if not given).
    pub fn keyring(&self) -> Result<Keyring, Failure> {
        let mut keyring = Keyring::new();
        for path in &self.keys {
            let bytes = crate::files::read(path, crate::files::MAX_SMALL_FILE)?;
            keyring.add_file(&bytes).map_err(|e| Failure::at(path, e))?;
        }
        Ok(keyring)
    }

    fn signature_trust(&self) -> Result<Option<SignatureTrust>, Failure> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let keyring = self.keyring()?;
        if let Some(dir) = &self.signtab {
            if !dir.is_dir() {
                return Err(Failure::at(
                    dir,
                    "not a directory; give the signtab directory `modhash sign --signtab` wrote",
                ));
            }
        }
        Ok(Some(SignatureTrust {
            keyring,
            signtab: self.signtab.as_deref().map(Path::to_owned),
        }))
    }
}
