//! What is mapped is the canonical `elf-image` of the snapshot, whichever
//! profile or signature judged the module: bytes written into the padding
//! after `.text` (covered by no `elf-image` digest, mapped by `mmap` with
//! the page around them) read as zero from inside the module, on every
//! trust path.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use modhash::policy::{Policy, SignatureTrust};
use modhash::signature::native::{self, SigningKey};
use modhash::signature::{sidecar_path, Keyring};
use modhash::Profile;
use modhash_load::{Action, DigestSet, HostPolicy, Judge, Loader, Verdict};
use object::elf::{FileHeader64, PF_X, PT_LOAD};
use object::read::elf::{FileHeader as _, ProgramHeader as _};
use object::LittleEndian;

/// What the attacker writes into the padding.
const PAYLOAD: [u8; 16] = [0xcc; 16];

/// The module, and a copy with [`PAYLOAD`] in the padding after the file
/// bytes of its executable segment.
fn module_and_tampered(dir: &Path) -> (PathBuf, PathBuf) {
    let clean = common::cc(&dir.join("libclean.so"), "module.c", &["-DREAD_PADDING"]);
    let mut bytes = fs::read(&clean).expect("read");
    let header = FileHeader64::<LittleEndian>::parse(bytes.as_slice()).expect("ELF");
    let phdrs = header
        .program_headers(LittleEndian, bytes.as_slice())
        .expect("phdrs");
    let text = phdrs
        .iter()
        .find(|p| p.p_type(LittleEndian) == PT_LOAD && p.p_flags(LittleEndian) & PF_X != 0)
        .expect("an executable segment");
    let end =
        usize::try_from(text.p_offset(LittleEndian) + text.p_filesz(LittleEndian)).expect("offset");
    let next = phdrs
        .iter()
        .map(|p| usize::try_from(p.p_offset(LittleEndian)).expect("offset"))
        .filter(|&o| o >= end)
        .min()
        .unwrap_or(bytes.len());
    assert!(
        end + PAYLOAD.len() <= next.min(end.next_multiple_of(4096)),
        "no padding after .text to write into"
    );
    bytes
        .get_mut(end..end + PAYLOAD.len())
        .expect("padding in the file")
        .copy_from_slice(&PAYLOAD);
    let tampered = dir.join("libtampered.so");
    fs::write(&tampered, &bytes).expect("write");
    assert_eq!(
        Profile::ElfImage.digest(&bytes).expect("digest"),
        Profile::ElfImage
            .digest(&fs::read(&clean).expect("read"))
            .expect("digest"),
        "the padding must be outside the elf-image"
    );
    (clean, tampered)
}

/// Loads `path` under `judge`, which must trust it, and returns what the
/// module reads from its padding.
fn padding_seen(judge: impl Judge, path: &Path) -> Vec<u8> {
    let loader = Loader::new(judge);
    let module = loader.load(path).expect("load");
    assert!(module.trust().is_trusted(), "{}", module.trust());
    module.call(0, b"").expect("call")
}

#[test]
fn trusted_by_hash_under_every_profile_maps_zero_padding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tampered) = module_and_tampered(dir.path());
    let bytes = fs::read(&tampered).expect("read");
    for profile in [Profile::ElfImage, Profile::Payload, Profile::File] {
        let digest = profile.digest(&bytes).expect("digest");
        let seen = padding_seen(DigestSet::new(profile, [digest], Action::Reject), &tampered);
        assert_eq!(
            seen, [0; 16],
            "{profile}: the module read bytes outside its image"
        );
    }
}

#[test]
fn trusted_by_native_signature_maps_zero_padding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clean, tampered) = module_and_tampered(dir.path());
    // Signed over the clean module's elf-image; the padding is not covered.
    let key = SigningKey::generate("test").expect("key");
    let digest = Profile::ElfImage
        .digest(&fs::read(&clean).expect("read"))
        .expect("digest");
    let signature = key.sign(Profile::ElfImage, &digest).expect("sign");
    fs::write(sidecar_path(&tampered, native::EXTENSION), signature).expect("write");
    let mut keyring = Keyring::new();
    keyring
        .add_file(key.public_openssh().expect("public").as_bytes())
        .expect("key");
    // No host: the loader runs on the `payload` profile, as an unsealed
    // host does.
    let policy = Policy::signatures_only(SignatureTrust {
        keyring,
        signtab: None,
    });
    assert_eq!(policy.profile(), Profile::Payload);
    let seen = padding_seen(HostPolicy::new(policy, Action::Reject), &tampered);
    assert_eq!(seen, [0; 16], "the module read bytes no signature covered");
}

#[test]
fn trusted_by_libcamera_signature_maps_zero_padding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, tampered) = module_and_tampered(dir.path());
    let key = dir.path().join("key.pem");
    let public = dir.path().join("key.pub.der");
    let openssl = |args: &[&std::ffi::OsStr]| {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "RSA".as_ref(),
        "-pkeyopt".as_ref(),
        "rsa_keygen_bits:2048".as_ref(),
        "-out".as_ref(),
        key.as_os_str(),
    ]);
    openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-pubout".as_ref(),
        "-outform".as_ref(),
        "DER".as_ref(),
        "-out".as_ref(),
        public.as_os_str(),
    ]);
    // libcamera signs the whole file: the padding bytes are covered.
    let sign = sidecar_path(&tampered, "sign");
    openssl(&[
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-sign".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        sign.as_os_str(),
        tampered.as_os_str(),
    ]);
    let mut keyring = Keyring::new();
    keyring
        .add_file(&fs::read(&public).expect("read"))
        .expect("key");
    let policy = Policy::signatures_only(SignatureTrust {
        keyring,
        signtab: None,
    });
    let seen = padding_seen(HostPolicy::new(policy, Action::Reject), &tampered);
    assert_eq!(seen, [0; 16], "the mapped image is not the canonical image");
}

#[test]
fn an_untampered_module_reads_zero_padding_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clean, _) = module_and_tampered(dir.path());
    let digest = Profile::ElfImage
        .digest(&fs::read(&clean).expect("read"))
        .expect("digest");
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [digest], Action::Reject));
    let module = loader.load(&clean).expect("load");
    assert_eq!(module.trust(), &Verdict::TrustedByHash);
    assert_eq!(module.call(0, b"").expect("call"), [0; 16]);
}
