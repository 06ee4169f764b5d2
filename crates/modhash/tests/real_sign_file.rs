//! Module signatures made by the kernel's own `sign-file` (Debian's
//! linux-kbuild package, fetched by `scripts/fetch-testdata`) and by
//! `openssl cms`, over a real Debian module: the verdict is the one the
//! kernel's `mod_verify_sig` would reach (docs/signatures.md has the table).
//!
//! Needs `MODHASH_TESTDATA`; without it each test says it is skipped. Needs
//! the `openssl` command.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use modhash::linux_trailer::TrailerError;
use modhash::signature::linux::{self, LinuxError};
use modhash::signature::{Keyring, Rejection, Scheme};

struct Setup {
    dir: tempfile::TempDir,
    sign_file: PathBuf,
    /// A real module without its signature.
    payload: Vec<u8>,
}

fn setup() -> Option<Setup> {
    let Some(data) = std::env::var_os("MODHASH_TESTDATA").map(PathBuf::from) else {
        eprintln!("skipped: set MODHASH_TESTDATA (scripts/fetch-testdata)");
        return None;
    };
    let kbuild = data.join("linux-kbuild/usr/lib");
    let sign_file = std::fs::read_dir(&kbuild)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-testdata", kbuild.display()))
        .filter_map(Result::ok)
        .map(|e| e.path().join("scripts/sign-file"))
        .find(|p| p.is_file())
        .expect("linux-kbuild-*/scripts/sign-file in the test data");
    let modules = data.join("linux-image/lib/modules");
    let version = std::fs::read_dir(&modules)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let module = std::fs::read(version.join("kernel/lib/crc7.ko")).unwrap();
    let payload = linux::strip(&module).unwrap().to_vec();
    Some(Setup {
        dir: tempfile::tempdir().unwrap(),
        sign_file,
        payload,
    })
}

fn run(program: &Path, args: &[&str], cwd: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(args: &[&str], cwd: &Path) {
    run(Path::new("openssl"), args, cwd);
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A self-signed certificate `NAME.crt` and key `NAME.key`.
    fn key(&self, name: &str, key_options: &[&str], extensions: &[&str]) {
        let subject = format!("/CN=sign-file test {name}");
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        let mut args = vec![
            "req", "-x509", "-new", "-nodes", "-days", "36500", "-subj", &subject, "-keyout", &key,
            "-out", &crt,
        ];
        args.extend_from_slice(key_options);
        for extension in extensions {
            args.extend_from_slice(&["-addext", extension]);
        }
        openssl(&args, self.dir.path());
    }

    /// `sign-file HASH NAME.key NAME.crt` over the payload.
    fn sign_file(&self, hash: &str, name: &str) -> Vec<u8> {
        let module = self.path(&format!("{name}-{hash}.ko"));
        std::fs::write(&module, &self.payload).unwrap();
        let (key, crt) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.crt")),
        );
        run(
            &self.sign_file,
            &[
                hash,
                key.to_str().unwrap(),
                crt.to_str().unwrap(),
                module.to_str().unwrap(),
            ],
            self.dir.path(),
        );
        std::fs::read(&module).unwrap()
    }

    /// `openssl cms -sign` over the payload with the given signers and
    /// options, appended by `sign-file -s` as the kernel's build would.
    fn openssl_cms(&self, signers: &[&str], options: &[&str]) -> Vec<u8> {
        let payload = self.path("payload");
        std::fs::write(&payload, &self.payload).unwrap();
        let mut args: Vec<String> = [
            "cms", "-sign", "-binary", "-nocerts", "-outform", "DER", "-md", "sha256", "-in",
            "payload", "-out", "cms.der",
        ]
        .map(str::to_owned)
        .to_vec();
        for signer in signers {
            args.extend(["-signer".into(), format!("{signer}.crt")]);
            args.extend(["-inkey".into(), format!("{signer}.key")]);
        }
        args.extend(options.iter().map(|o| (*o).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(&args, self.dir.path());
        let first = self.path(&format!("{}.crt", signers[0]));
        run(
            &self.sign_file,
            &[
                "-s",
                "cms.der",
                "sha256",
                first.to_str().unwrap(),
                "payload",
            ],
            self.dir.path(),
        );
        std::fs::read(&payload).unwrap()
    }

    fn ring(&self, names: &[&str]) -> Keyring {
        let files: Vec<Vec<u8>> = names
            .iter()
            .map(|n| std::fs::read(self.path(&format!("{n}.crt"))).unwrap())
            .collect();
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        Keyring::from_files(&refs).unwrap()
    }

    fn verdict(&self, ring: &Keyring, module: &[u8]) -> Result<String, Vec<Rejection>> {
        ring.check(Path::new("m.ko"), module, None)
            .map(|signer| {
                assert_eq!(signer.scheme(), Scheme::Linux);
                signer.id().to_owned()
            })
            .map_err(|r| r.0)
    }
}

/// The signer of a module that must be trusted.
fn trusted(result: Result<String, Vec<Rejection>>) -> String {
    result.unwrap_or_else(|rejections| panic!("expected trusted, got {rejections:?}"))
}

fn linux_error(result: Result<String, Vec<Rejection>>) -> LinuxError {
    match result {
        Err(rejections) => match rejections.as_slice() {
            [Rejection::Linux(error)] => error.clone(),
            other => panic!("expected one Linux rejection, got {other:?}"),
        },
        Ok(signer) => panic!("expected a rejection, trusted by {signer}"),
    }
}

#[test]
fn sign_file_signatures_the_kernel_accepts_are_trusted() {
    let Some(s) = setup() else { return };
    s.key(
        "rsa",
        &["-newkey", "rsa:2048"],
        &["subjectKeyIdentifier=hash"],
    );
    s.key(
        "p256",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &[],
    );
    s.key(
        "p384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        &[],
    );
    // A key usage that excludes digitalSignature, for TLS servers: Linux
    // 6.1 checks neither keyUsage nor extendedKeyUsage for module keys.
    s.key(
        "tls",
        &["-newkey", "rsa:2048"],
        &[
            "keyUsage=critical,keyCertSign",
            "extendedKeyUsage=serverAuth",
        ],
    );
    let ring = s.ring(&["rsa", "p256", "p384", "tls"]);
    for (hash, name) in [
        ("sha256", "rsa"),
        ("sha512", "rsa"),
        ("sha256", "p256"),
        ("sha384", "p384"),
        ("sha256", "tls"),
    ] {
        let module = s.sign_file(hash, name);
        assert_eq!(
            trusted(s.verdict(&ring, &module)),
            format!("sign-file test {name}"),
            "{name} {hash}"
        );
        let mut changed = module.clone();
        changed[100] ^= 1;
        assert!(matches!(
            linux_error(s.verdict(&ring, &changed)),
            LinuxError::BadSignature { .. }
        ));
    }
}

#[test]
fn an_expired_certificate_is_trusted_as_the_kernel_trusts_it() {
    // The kernel never checks a builtin key's validity period.
    let Some(s) = setup() else { return };
    let dir = s.dir.path();
    std::fs::write(
        s.path("ca.cnf"),
        "[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n\
         default_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
    )
    .unwrap();
    std::fs::write(s.path("index.txt"), "").unwrap();
    std::fs::write(s.path("serial"), "01\n").unwrap();
    openssl(
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=sign-file test expired",
            "-keyout",
            "expired.key",
            "-out",
            "expired.csr",
        ],
        dir,
    );
    openssl(
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "expired.key",
            "-in",
            "expired.csr",
            "-startdate",
            "20000101000000Z",
            "-enddate",
            "20010101000000Z",
            "-out",
            "expired.crt",
        ],
        dir,
    );
    let module = s.sign_file("sha256", "expired");
    assert_eq!(
        trusted(s.verdict(&s.ring(&["expired"]), &module)),
        "sign-file test expired"
    );
}

#[test]
fn signatures_the_kernel_refuses_are_refused() {
    let Some(s) = setup() else { return };
    s.key("rsa", &["-newkey", "rsa:2048"], &[]);
    s.key("other", &["-newkey", "rsa:2048"], &[]);
    s.key(
        "p521",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        &[],
    );
    let ring = s.ring(&["rsa", "other", "p521"]);

    // Linux before 6.10 cannot use a P-521 key.
    assert!(matches!(
        linux_error(s.verdict(&ring, &s.sign_file("sha512", "p521"))),
        LinuxError::P521 { .. }
    ));
    // openssl cms without -noattr adds signed attributes: the kernel
    // refuses every module signature carrying them.
    assert_eq!(
        linux_error(s.verdict(&ring, &s.openssl_cms(&["rsa"], &[]))),
        LinuxError::SignedAttributes
    );
    // Two SignerInfos: sign-file makes one; modhash takes exactly one.
    assert_eq!(
        linux_error(s.verdict(&ring, &s.openssl_cms(&["rsa", "other"], &["-noattr"]))),
        LinuxError::SignerCount(2)
    );
    // The same as sign-file makes it is trusted.
    assert_eq!(
        trusted(s.verdict(&ring, &s.openssl_cms(&["rsa"], &["-noattr"]))),
        "sign-file test rsa"
    );
    // A signer_len the kernel requires to be zero: the bytes it would skip
    // are covered by nothing.
    let mut module = s.sign_file("sha256", "rsa");
    let record = module.len() - 28 - 12;
    module[record + 3] = 16;
    assert_eq!(
        linux_error(s.verdict(&ring, &module)),
        LinuxError::Trailer(TrailerError::ModuleSignatureFields("signer_len"))
    );
}
