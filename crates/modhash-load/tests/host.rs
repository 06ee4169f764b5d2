//! The `Host` facade end to end, with real modules built from this
//! workspace and the C example: start-up checks that name the file at
//! fault, proofs that travel with a module, judging before opening, raw
//! libraries for hosts with their own module interface, whole directories.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use modhash::linux_trailer::append_modhash_trailer;
use modhash::policy::UntrustedReason;
use modhash::proof::InclusionProof;
use modhash::signature::native::SigningKey;
use modhash::{Anchor, Digest, Manifest, Profile};
use modhash_load::isolated::WorkerConfig;
use modhash_load::{Host, HostBuilder, LoadError, Untrusted, Verdict};

/// The example vendor's public key, as a host compiles it in.
const VENDOR_KEY: &[u8] = include_bytes!("../../../examples/vendor-key/vendor.key.pub");

fn elf_digest(bytes: &[u8]) -> Digest {
    Profile::ElfImage.digest(bytes).expect("elf-image digest")
}

/// A manifest of the given module files, as `modhash manifest` makes one.
fn manifest_of(files: &[(&str, &[u8])]) -> Manifest {
    Manifest::new(
        Profile::ElfImage,
        files
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), elf_digest(bytes))),
    )
    .expect("manifest")
}

/// The anchor a host sealed with `manifest` reads.
fn sealed(manifest: &Manifest) -> Anchor {
    Anchor::from_record(&Anchor::sealed_record(manifest))
}

/// The variant module's two builds: A is the in-tree one, B an equally valid
/// module the build never produced.
fn variants() -> (Vec<u8>, Vec<u8>) {
    let a = fs::read(common::variant_a()).expect("read variant");
    let b = common::variant_b_bytes(&a);
    (a, b)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write");
    path
}

fn worker() -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.worker = Some(env!("CARGO_BIN_EXE_modhash-worker").into());
    config
}

/// A host sealed with `manifest`, reading it from `dir`.
fn host_with_manifest(dir: &Path, manifest: &Manifest, untrusted: Untrusted) -> Host {
    let path = write(dir, "modules.manifest", manifest.to_string());
    Host::builder(sealed(manifest))
        .manifest_file(path)
        .untrusted(untrusted)
        .worker(worker())
        .build()
        .expect("build host")
}

/// Checks that `builder` is refused with a message that starts with
/// `names` (the file at fault) and says `says`.
fn refused(builder: HostBuilder, names: impl std::fmt::Display, says: &str) {
    let error = builder.build().expect_err("build must fail");
    let message = error.to_string();
    assert!(message.starts_with(&names.to_string()), "{message}");
    assert!(message.contains(says), "{message}");
    // `main` returning the error with `?` prints its Debug form.
    assert_eq!(format!("{error:?}"), message);
}

#[test]
fn every_start_up_error_names_the_file_at_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (a, b) = variants();
    let anchored = manifest_of(&[("liba.so", &a)]);
    let anchor = sealed(&anchored);
    let host = || Host::builder(anchor.clone());
    let invalid = Anchor::from_record(&[0u8; modhash::anchor::RECORD_LEN]);
    let missing = dir.join("missing.manifest");
    let garbage = write(dir, "garbage.manifest", "not a manifest\n");
    // A manifest of another build: its root is not the sealed one.
    let stale = write(
        dir,
        "stale.manifest",
        manifest_of(&[("a.so", &b)]).to_string(),
    );
    let no_key = dir.join("vendor.pub");
    let bad_key = write(dir, "bad.pub", "ssh-ed25519 not-base64 x\n");
    let no_signtab = dir.join("signtab");
    let worker = dir.join("modhash-worker");
    let mut no_worker = WorkerConfig::default();
    no_worker.worker = Some(worker.clone());
    let isolating = || {
        host()
            .untrusted(Untrusted::Isolate)
            .worker(no_worker.clone())
    };
    let root = anchored.root().to_string();
    let shown = |path: &Path| path.display().to_string();

    // (builder, how the message starts: the file at fault, what it says)
    let cases = [
        (
            Host::builder(Anchor::Unsealed),
            "the host is unsealed".to_owned(),
            "allow_unsealed()",
        ),
        (
            Host::builder(invalid).allow_unsealed(),
            "the host's anchor".to_owned(),
            "seal it again",
        ),
        (
            host().manifest_file(&missing),
            shown(&missing),
            ": no such file",
        ),
        (
            host().manifest_file(&garbage),
            shown(&garbage),
            ": line 1: ",
        ),
        (host().manifest_file(&stale), shown(&stale), root.as_str()),
        (
            host().trusted_key_file(&no_key),
            shown(&no_key),
            "cannot read the key file",
        ),
        (
            host().trusted_key_file(&bad_key),
            shown(&bad_key),
            "not a usable trusted key",
        ),
        (
            host().trusted_key(VENDOR_KEY).trusted_key(b"x"),
            "trusted key #2: ".to_owned(),
            "usable",
        ),
        (
            host().trusted_key(VENDOR_KEY).signtab(&no_signtab),
            shown(&no_signtab),
            "not a directory",
        ),
        (
            isolating(),
            shown(&worker),
            "the isolation worker cannot be run",
        ),
    ];
    for (builder, names, says) in cases {
        refused(builder, names, says);
    }
    write(dir, "modhash-worker", "#!/bin/sh\n");
    refused(isolating(), shown(&worker), "not executable");

    // What is right builds; a policy that never isolates needs no worker.
    let good = write(dir, "good.manifest", anchored.to_string());
    Host::builder(anchor.clone())
        .manifest_file(&good)
        .trusted_key(VENDOR_KEY)
        .untrusted(Untrusted::Reject)
        .worker(no_worker)
        .build()
        .expect("a correct host builds");
    Host::builder(Anchor::Unsealed)
        .allow_unsealed()
        .trusted_key(VENDOR_KEY)
        .build()
        .expect("an unsealed host builds when allowed");
}

#[test]
fn a_host_loads_what_its_manifest_lists_and_refuses_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = variants();
    let host = host_with_manifest(
        dir.path(),
        &manifest_of(&[("liba.so", &a)]),
        Untrusted::Reject,
    );
    let module = host.load(common::variant_a()).expect("load");
    assert_eq!(module.trust(), &Verdict::TrustedByHash);
    assert_eq!(module.name(), "variant");
    assert!(!module.is_isolated());
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);

    let other = write(dir.path(), "libb.so", &b);
    let refused = host.load(&other).expect_err("not in the manifest");
    assert!(matches!(refused, LoadError::Rejected { .. }), "{refused}");
    assert!(host.tainted().is_empty());

    // What a host returns outlives it.
    drop(host);
    assert_eq!(module.call(1, b"still here").expect("call"), b"still here");
}

#[test]
fn proofs_beside_or_appended_make_a_module_trusted_without_the_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (a, b) = variants();
    let c = fs::read(common::c_module(dir)).expect("read C module");
    let manifest = manifest_of(&[("liba.so", &a), ("libupper.so", &c)]);
    let host = Host::builder(sealed(&manifest))
        .build()
        .expect("a sealed host without a manifest");
    let proof = |bytes: &[u8]| {
        InclusionProof::for_digest(&manifest, elf_digest(bytes))
            .expect("listed")
            .to_string()
    };

    // Beside it, as `modhash proof -o MODULE.proof` writes it.
    let beside = write(dir, "liba.so", &a);
    write(dir, "liba.so.proof", proof(&a));
    let module = host.load(&beside).expect("trusted by its proof");
    assert_eq!(module.trust(), &Verdict::TrustedByHash);
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);

    // Appended, as `modhash proof --embed` writes it.
    let embedded = append_modhash_trailer(&c, proof(&c).as_bytes()).expect("trailer");
    let embedded = write(dir, "libembedded.so", embedded);
    let module = host.load_with_config(&embedded, b"> ").expect("trusted");
    assert_eq!(module.trust(), &Verdict::TrustedByHash);
    assert_eq!(module.call(0, b"hi").expect("call"), b"> HI");

    // Attacks: another module's proof, and a proof to another tree.
    let impostor = write(dir, "libb.so", &b);
    write(dir, "libb.so.proof", proof(&a));
    assert!(matches!(
        host.verify(&impostor),
        Verdict::Untrusted { reasons } if matches!(reasons[..], [UntrustedReason::ProofForAnotherModule { .. }])
    ));
    assert!(host.load(&impostor).is_err());
    let foreign_tree = manifest_of(&[("libb.so", &b)]);
    let foreign_proof = InclusionProof::for_digest(&foreign_tree, elf_digest(&b)).expect("listed");
    write(dir, "libb.so.proof", foreign_proof.to_string());
    assert!(matches!(
        host.verify(&impostor),
        Verdict::Untrusted { reasons } if reasons == [UntrustedReason::ProofNotAnchored]
    ));
    assert!(host.load(&impostor).is_err());
}

#[test]
fn a_judged_module_opens_as_the_bytes_judged_even_if_the_file_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = variants();
    let host = host_with_manifest(
        dir.path(),
        &manifest_of(&[("liba.so", &a)]),
        Untrusted::Reject,
    );
    let path = write(dir.path(), "libmodule.so", &a);
    let judged = host.judge(&path).expect("judge");
    assert_eq!(judged.verdict(), &Verdict::TrustedByHash);
    assert_eq!(judged.digest(), elf_digest(&a));
    assert_eq!(judged.path(), path);

    // The file is replaced after the verdict: what opens is still A.
    fs::write(&path, &b).expect("replace");
    let library = host.open_library(judged).expect("open");
    let entry = library
        .symbol(modhash_plugin::SYMBOL)
        .expect("the ABI entry point");
    let name = std::ffi::CString::new(modhash_plugin::SYMBOL).expect("C string");
    // SAFETY: dlsym on the handle the library is open under, with a
    // NUL-terminated name; it only looks the symbol up.
    let direct = unsafe { libc::dlsym(library.handle(), name.as_ptr()) };
    assert_eq!(direct, entry, "the raw handle is the library's");
    // SAFETY: the module exports SYMBOL with the ABI's type, and the library
    // stays open while `table` and `instance` are used.
    let mut instance = unsafe {
        let entry: modhash_plugin::EntryFn = std::mem::transmute(entry);
        modhash_plugin::host::Table::from_raw(entry()).expect("table")
    }
    .create(b"")
    .expect("create");
    assert_eq!(instance.call(0, b"").expect("call"), common::MARKER_A);
    drop(instance);
    assert!(library.symbol("no_such_symbol").is_err());
}

#[test]
fn a_vendor_signed_module_is_trusted_by_the_compiled_in_key_even_stripped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (a, b) = variants();
    let host = Host::builder(sealed(&manifest_of(&[("libb.so", &b)])))
        .trusted_key(VENDOR_KEY)
        .build()
        .expect("host");
    let vendor =
        SigningKey::from_openssh(include_bytes!("../../../examples/vendor-key/vendor.key"))
            .expect("the example vendor key");
    let signed = write(dir, "libvendor.so", &a);
    let signature = vendor
        .sign(Profile::ElfImage, &elf_digest(&a))
        .expect("sign");
    write(dir, "libvendor.so.modsig", &signature);
    let module = host.load(&signed).expect("trusted by signature");
    assert_eq!(
        module.trust(),
        &Verdict::TrustedBySignature {
            key: vendor.fingerprint()
        }
    );
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);

    let stripped = dir.join("libstripped.so");
    let status = std::process::Command::new("strip")
        .args(["--strip-all", "-o"])
        .arg(&stripped)
        .arg(&signed)
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    write(dir, "libstripped.so.modsig", &signature);
    assert!(host.verify(&stripped).is_trusted());

    // Signed by a key the host does not hold.
    let stranger = SigningKey::generate("stranger").expect("key");
    let foreign = write(dir, "libforeign.so", &a);
    let signature = stranger
        .sign(Profile::ElfImage, &elf_digest(&a))
        .expect("sign");
    write(dir, "libforeign.so.modsig", signature);
    assert!(!host.verify(&foreign).is_trusted());
    assert!(host.load(&foreign).is_err());
}

#[test]
fn a_module_already_open_is_judged_through_its_descriptor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = variants();
    let manifest = manifest_of(&[("liba.so", &a), ("libb.so", &b)]);
    let host = Host::builder(sealed(&manifest))
        .build()
        .expect("a host trusting proofs only");
    let path = write(dir.path(), "liba.so", &a);
    let proof = InclusionProof::for_digest(&manifest, elf_digest(&a)).expect("listed");
    write(dir.path(), "liba.so.proof", proof.to_string());
    let file = fs::File::open(&path).expect("open");
    // Renamed away after it was opened: the descriptor still reads it, and
    // the name given still finds the proof beside it.
    let moved = dir.path().join("moved.so");
    fs::rename(&path, &moved).expect("rename");
    let judged = host
        .judge_fd(std::os::fd::AsFd::as_fd(&file), &path)
        .expect("judge");
    assert_eq!(judged.verdict(), &Verdict::TrustedByHash);
    assert_eq!(judged.path(), path);
    let module = host.load_judged(judged, b"").expect("load");
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_A);
}

#[test]
fn opening_an_untrusted_module_follows_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = variants();
    let manifest = manifest_of(&[("liba.so", &a)]);
    let path = write(dir.path(), "libb.so", &b);

    let reject = host_with_manifest(dir.path(), &manifest, Untrusted::Reject);
    let error = reject.open_library(reject.judge(&path).expect("judge"));
    assert!(matches!(error, Err(LoadError::Rejected { .. })));

    let isolate = host_with_manifest(dir.path(), &manifest, Untrusted::Isolate);
    let error = isolate.open_library(isolate.judge(&path).expect("judge"));
    assert!(
        matches!(error, Err(LoadError::MustIsolate { .. })),
        "{error:?}"
    );

    let taint = host_with_manifest(dir.path(), &manifest, Untrusted::Taint);
    let judged = taint.judge(&path).expect("judge");
    assert!(!judged.verdict().is_trusted());
    let library = taint.open_library(judged).expect("opened, tainted");
    let tainted = taint.tainted();
    assert_eq!(tainted.len(), 1);
    assert_eq!(tainted[0].path, path);
    assert_eq!(tainted[0].digest, elf_digest(&b));
    drop(library);

    // The same judged value loads as a module through the same policy.
    let module = taint
        .load_judged(taint.judge(&path).expect("judge"), b"")
        .expect("load");
    assert_eq!(module.call(0, b"").expect("call"), common::MARKER_B);
    assert_eq!(taint.tainted().len(), 2);

    // A verdict is acted on only by the host that reached it: B, trusted
    // by a host sealed with B's manifest, is not opened by `reject`.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let trusts_b = host_with_manifest(
        other_dir.path(),
        &manifest_of(&[("libb.so", &b)]),
        Untrusted::Reject,
    );
    let judged = trusts_b.judge(&path).expect("judge");
    assert!(judged.verdict().is_trusted());
    let error = reject.open_library(judged);
    assert!(
        matches!(error, Err(LoadError::JudgedElsewhere)),
        "{error:?}"
    );
    let judged = trusts_b.judge(&path).expect("judge");
    let error = reject.load_judged(judged, b"");
    assert!(
        matches!(error, Err(LoadError::JudgedElsewhere)),
        "{error:?}"
    );
}

#[test]
fn load_dir_loads_every_module_and_reports_each_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let (a, b) = variants();
    let manifest = manifest_of(&[("liba.so", &a)]);
    let host = host_with_manifest(dir, &manifest, Untrusted::Reject);
    let modules = dir.join("modules");
    fs::create_dir(&modules).expect("mkdir");
    write(&modules, "liba.so", &a);
    write(&modules, "libb.so", &b);
    write(&modules, "notes.so", "not a module");
    write(&modules, "liba.so.proof", "ignored");
    write(&modules, "README", "ignored");
    fs::create_dir(modules.join("sub.so")).expect("mkdir");

    let results = host.load_dir(&modules).expect("list");
    let names: Vec<_> = results
        .iter()
        .map(|(path, _)| path.file_name().expect("name").to_owned())
        .collect();
    assert_eq!(names, ["liba.so", "libb.so", "notes.so"]);
    let [(_, a), (_, b), (_, notes)] = &results[..] else {
        unreachable!("three entries checked above")
    };
    assert_eq!(
        a.as_ref().expect("trusted").trust(),
        &Verdict::TrustedByHash
    );
    assert!(matches!(b, Err(LoadError::Rejected { .. })));
    assert!(matches!(notes, Err(LoadError::Profile { .. })));

    let missing = dir.join("missing");
    let error = host.load_dir(&missing).expect_err("no directory");
    assert!(
        error
            .to_string()
            .starts_with(&missing.display().to_string()),
        "{error}"
    );
}

#[test]
fn verify_reads_unreadable_and_foreign_files_as_untrusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, _) = variants();
    let host = host_with_manifest(
        dir.path(),
        &manifest_of(&[("liba.so", &a)]),
        Untrusted::Reject,
    );
    assert_eq!(host.verify(common::variant_a()), Verdict::TrustedByHash);
    let text = write(dir.path(), "notes.so", "not a module");
    assert!(matches!(
        host.verify(&text),
        Verdict::Untrusted { reasons } if matches!(reasons[..], [UntrustedReason::NoDigest { .. }])
    ));
    assert!(matches!(
        host.verify(dir.path().join("missing.so")),
        Verdict::Untrusted { reasons } if matches!(reasons[..], [UntrustedReason::Unreadable(_)])
    ));
}

#[test]
fn hosts_and_what_they_return_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Host>();
    send_and_sync::<modhash_load::Judged>();
    send_and_sync::<modhash_load::RawLibrary>();
    send_and_sync::<modhash_load::Module>();
}
