//! Native signatures are OpenSSH `sshsig` signatures: `ssh-keygen -Y sign`
//! makes ones modhash accepts, `ssh-keygen -Y check-novalidate` accepts the
//! ones modhash makes, and a `reserved` field that OpenSSH would verify
//! differently from modhash is refused.
//!
//! Needs the `ssh-keygen` command (Debian's openssh-client).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed expectation is a test failure"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64ct::{Base64, Encoding};
use modhash::signature::native::{self, NativeError, SigningKey};
use modhash::signature::{Keyring, Rejection, Scheme};
use modhash::{Digest, Profile};
use sha2::Digest as _;

const MODULE: &[u8] = b"a module that is not an ELF file\n";

fn ssh_keygen(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen is installed (openssh-client)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The message a native signature of [`MODULE`] under `file` covers.
fn message() -> Vec<u8> {
    native::message(Profile::File, &Digest::sha256(MODULE))
}

/// Checks the signature `armored` of [`MODULE`] with the public key
/// `public`, as `modhash verify` does: from a sidecar next to the module.
fn modhash_check(dir: &Path, public: &str, armored: &[u8]) -> Result<String, Vec<Rejection>> {
    let module = dir.join("plugin.bin");
    std::fs::write(&module, MODULE).unwrap();
    std::fs::write(dir.join("plugin.bin.modsig"), armored).unwrap();
    let ring = Keyring::from_files(&[public.as_bytes()]).unwrap();
    match ring.check(&module, MODULE, None) {
        Ok(signer) => {
            assert_eq!(signer.scheme(), Scheme::Native);
            Ok(signer.id().to_owned())
        }
        Err(rejections) => Err(rejections.0),
    }
}

/// `ssh-keygen -Y check-novalidate` of [`message`] with `armored`.
fn openssh_accepts(dir: &Path, armored: &[u8]) -> bool {
    let sig = dir.join("check.sig");
    std::fs::write(&sig, armored).unwrap();
    ssh_keygen(
        &[
            "-Y",
            "check-novalidate",
            "-n",
            "modhash",
            "-s",
            sig.to_str().unwrap(),
        ],
        &message(),
    )
    .status
    .success()
}

#[test]
fn ssh_keygen_signatures_verify_in_modhash() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let made = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "t",
            "-f",
            key.to_str().unwrap(),
        ],
        b"",
    );
    assert!(made.status.success(), "{made:?}");
    let message_file = dir.path().join("message");
    std::fs::write(&message_file, message()).unwrap();
    let signed = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-n",
            "modhash",
            "-f",
            key.to_str().unwrap(),
            message_file.to_str().unwrap(),
        ],
        b"",
    );
    assert!(signed.status.success(), "{signed:?}");
    let armored = std::fs::read(dir.path().join("message.sig")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("key.pub")).unwrap();
    modhash_check(dir.path(), &public, &armored).expect("modhash accepts ssh-keygen's signature");
}

#[test]
fn modhash_signatures_verify_in_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("t").unwrap();
    let armored = key.sign(Profile::File, &Digest::sha256(MODULE)).unwrap();
    assert!(openssh_accepts(dir.path(), armored.as_bytes()));
    modhash_check(
        dir.path(),
        &key.public_openssh().unwrap(),
        armored.as_bytes(),
    )
    .unwrap();
}

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An Ed25519 `sshsig` of [`message`] by hand (PROTOCOL.sshsig), with
/// `reserved` in the blob and `signed_reserved` in the data signed: the
/// public key line and the armored signature.
fn hand_made(reserved: &[u8], signed_reserved: &[u8]) -> (String, Vec<u8>) {
    let key = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let mut public_blob = Vec::new();
    string(&mut public_blob, b"ssh-ed25519");
    string(&mut public_blob, key.public_key().as_ref());

    let mut signed = b"SSHSIG".to_vec();
    string(&mut signed, b"modhash");
    string(&mut signed, signed_reserved);
    string(&mut signed, b"sha512");
    string(&mut signed, &sha2::Sha512::digest(message()));
    let mut signature_blob = Vec::new();
    string(&mut signature_blob, b"ssh-ed25519");
    string(&mut signature_blob, key.sign(&signed).as_ref());

    let mut blob = b"SSHSIG".to_vec();
    blob.extend_from_slice(&1u32.to_be_bytes());
    string(&mut blob, &public_blob);
    string(&mut blob, b"modhash");
    string(&mut blob, reserved);
    string(&mut blob, b"sha512");
    string(&mut blob, &signature_blob);

    let body = Base64::encode_string(&blob);
    let mut armored = b"-----BEGIN SSH SIGNATURE-----\n".to_vec();
    for line in body.as_bytes().chunks(70) {
        armored.extend_from_slice(line);
        armored.push(b'\n');
    }
    armored.extend_from_slice(b"-----END SSH SIGNATURE-----\n");
    let public = format!("ssh-ed25519 {}\n", Base64::encode_string(&public_blob));
    (public, armored)
}

fn refused_for_reserved(result: Result<String, Vec<Rejection>>) -> bool {
    matches!(
        result.as_ref().map_err(Vec::as_slice),
        Err([Rejection::Native {
            error: NativeError::Reserved,
            ..
        }])
    )
}

#[test]
fn the_hand_made_encoding_is_the_one_both_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (public, armored) = hand_made(b"", b"");
    assert!(openssh_accepts(dir.path(), &armored));
    modhash_check(dir.path(), &public, &armored).unwrap();
}

#[test]
fn a_signed_reserved_field_that_openssh_refuses_is_refused() {
    // Signed over a non-empty reserved field: OpenSSH verifies with it
    // empty and refuses; ssh-key alone would verify it as signed.
    let dir = tempfile::tempdir().unwrap();
    let (public, armored) = hand_made(b"x", b"x");
    assert!(!openssh_accepts(dir.path(), &armored));
    assert!(refused_for_reserved(modhash_check(
        dir.path(),
        &public,
        &armored
    )));
}

#[test]
fn an_unsigned_reserved_field_is_refused() {
    // Bytes in the blob that no signature covers: OpenSSH ignores them and
    // accepts; modhash refuses rather than trust a signature carrying
    // unsigned bytes.
    let dir = tempfile::tempdir().unwrap();
    let (public, armored) = hand_made(b"x", b"");
    assert!(openssh_accepts(dir.path(), &armored));
    assert!(refused_for_reserved(modhash_check(
        dir.path(),
        &public,
        &armored
    )));
}
