//! `modhash keygen`: a new Ed25519 key pair for native signatures.

use std::path::{Path, PathBuf};

use modhash::signature::native::SigningKey;

use crate::commands::sign::public_key_path;
use crate::files::write_output_with_mode;
use crate::output::{print_json, CommandResult, Failure, Outcome};

/// Write a new Ed25519 secret key to NAME (mode 0600) and its public key to
/// NAME.pub, both in OpenSSH format.
///
/// The public key file is what a host compiles into its key ring and what
/// `modhash verify --keys` takes. The secret key is not passphrase-protected:
/// keep it offline, or sign with `ssh-keygen -Y sign -n modhash` and a
/// protected key instead.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the secret key; the public key goes to NAME.pub.
    #[arg(long, short, value_name = "NAME")]
    output: PathBuf,
    /// The key's comment, shown in NAME.pub.
    #[arg(long, default_value = "modhash signing key")]
    comment: String,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    secret_key: &'a Path,
    public_key: &'a Path,
    id: String,
}

pub fn run(args: Args) -> CommandResult {
    let public_path = public_key_path(&args.output);
    if !args.force {
        for path in [&args.output, &public_path] {
            if path.exists() {
                return Err(Failure::at(
                    path,
                    "already exists; pass --force to replace it",
                ));
            }
        }
    }
    let key = SigningKey::generate(&args.comment).map_err(Failure::usage)?;
    let secret = key.to_openssh().map_err(Failure::usage)?;
    let public = key.public_openssh().map_err(Failure::usage)?;
    write_output_with_mode(&args.output, secret.as_bytes(), 0o600)?;
    write_output_with_mode(&public_path, format!("{public}\n").as_bytes(), 0o644)?;
    let report = Report {
        secret_key: &args.output,
        public_key: &public_path,
        id: key.fingerprint(),
    };
    if args.json {
        print_json(&report)?;
    } else {
        println!("{}  {}", report.id, report.public_key.display());
    }
    Ok(Outcome::Yes)
}
