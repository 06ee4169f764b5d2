//! The X.509 certificates a Linux kernel image trusts for module
//! signatures, and the ones it distrusts.
//!
//! The kernel loads its builtin trusted keys from one place only: the DER
//! certificates, back to back, at `system_certificate_list`, whose length is
//! the 8-byte `system_certificate_list_size` that follows
//! (`certs/system_certificates.S`). The same image may hold certificates it
//! distrusts: `revocation_certificate_list` (`CONFIG_SYSTEM_REVOCATION_KEYS`)
//! and `blacklist_hashes`, strings `tbs:<hex>` (hash of a certificate's
//! TBSCertificate: the kernel refuses to load that certificate) and
//! `bin:<hex>`. Only certificates of the system list that none of these
//! name are trusted keys; a certificate anywhere else in the image (a test
//! vector, a revocation entry) never is.
//!
//! A vmlinux with a symbol table is read through those symbols. A
//! distribution's bzImage payload has its symbol table stripped (and
//! Debian's `System.map` is a stub), so the list is then recognised by the
//! layout `system_certificates.S` gives it: 8-byte aligned, certificates
//! back to back (each `30 82 hi lo`, as the kernel's loader requires), zero
//! padding (to 8 bytes; 256 on arm64 kernels from before `.balign`), the
//! list's length as a little-endian u64, then `module_cert_size`, the length
//! of the first certificate (the module signing key). The revocation list has the same layout but no
//! `module_cert_size`; any other length-prefixed run of certificates is
//! taken as revocation, which can only remove trust. Exactly one list may
//! match the system layout, else the image is refused. `tbs:`/`bin:`
//! strings are collected from the whole image: more of them can only
//! distrust more.
//!
//! A distribution ships the kernel as a bzImage: a setup header whose
//! `payload_offset`/`payload_length` fields (boot protocol 2.08+) locate the
//! compressed vmlinux, compressed with gzip, xz, zstd or LZ4 (legacy frame
//! format, as the kernel's `lz4 -l` writes it).

use std::io::Read;

use der::{Decode, Encode};
use sha2::Digest as _;
use x509_cert::Certificate;

use super::keyring::subject_key_id;

/// Largest vmlinux decompressed: far above any real kernel, and a bound on
/// what a hostile image can make us allocate.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Offset of the setup header fields this reads (Documentation/arch/x86/boot.rst).
const SETUP_SECTS: usize = 0x1f1;
const HEADER_MAGIC: usize = 0x202;
const BOOT_PROTOCOL: usize = 0x206;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;

/// How a bzImage payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// An uncompressed vmlinux (ELF).
    None,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
    /// zstd.
    Zstd,
    /// LZ4, legacy frame format.
    Lz4,
}

impl std::fmt::Display for Compression {
    /// How error messages name the vmlinux's storage.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed vmlinux",
            Compression::Gzip => "gzip payload",
            Compression::Xz => "xz payload",
            Compression::Zstd => "zstd payload",
            Compression::Lz4 => "lz4 payload",
        })
    }
}

/// Why no certificates could be read from a kernel image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelImageError {
    /// Neither a bzImage nor an ELF vmlinux.
    #[error("not a kernel image: neither a bzImage (no `HdrS` setup header) nor an ELF vmlinux")]
    NotKernel,
    /// The bzImage's boot protocol predates the payload fields.
    #[error("bzImage boot protocol {major}.{minor:02} has no payload_offset field (needs 2.08 or later); decompress it with scripts/extract-vmlinux and pass the vmlinux")]
    OldProtocol {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The header's payload range leaves the file.
    #[error(
        "bzImage payload [{start}, {end}) lies outside the {len}-byte file; the image is truncated"
    )]
    PayloadOutside {
        /// Start offset.
        start: u64,
        /// End offset.
        end: u64,
        /// File length.
        len: u64,
    },
    /// A compression this does not read.
    #[error("bzImage payload starts with {0}, not a gzip, xz, zstd or lz4 stream; decompress it with scripts/extract-vmlinux and pass the vmlinux")]
    UnknownCompression(String),
    /// The payload does not decompress.
    #[error("cannot decompress the {compression:?} payload: {reason}")]
    Decompress {
        /// The compression.
        compression: Compression,
        /// What the decoder said.
        reason: String,
    },
    /// Decompressing went past the cap.
    #[error(
        "the payload decompresses to more than {MAX_DECOMPRESSED} bytes; this is not a kernel"
    )]
    TooLarge,
    /// The system certificate list holds no certificate.
    #[error("the kernel image's system certificate list ({0}) is empty; it was built without module signing or trusted keys")]
    NoCertificates(Compression),
    /// The system certificate list cannot be located.
    #[error("cannot locate system_certificate_list in the kernel image ({0}): no symbol table names it and no certificate list has the layout certs/system_certificates.S gives it; pass the vmlinux with its symbols (Debian: the linux-image-*-dbg package)")]
    NoSystemList(Compression),
    /// More than one run of certificates has the system list's layout.
    #[error("{0} certificate lists in the kernel image have the layout of system_certificate_list, so which one the kernel trusts is unknown; pass the vmlinux with its symbols")]
    SeveralSystemLists(usize),
    /// The symbols name bytes that are not a certificate list.
    #[error("the image's {symbol} symbol {reason}; the vmlinux is corrupt")]
    BadSymbol {
        /// The symbol.
        symbol: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Which of the image's certificate lists a certificate is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CertificateList {
    /// `system_certificate_list`: the builtin trusted keys.
    System,
    /// `revocation_certificate_list`: keys whose signatures the kernel
    /// refuses.
    Revocation,
}

/// Why a certificate of the system list is not a trusted key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "hash")]
#[non_exhaustive]
pub enum Distrust {
    /// Its TBSCertificate's hash is a `tbs:` entry: the kernel refuses to
    /// load the certificate at all.
    #[error("blacklisted by the image's tbs:{0} entry")]
    TbsHash(String),
    /// The SHA-256 of its DER is a `bin:` entry. The kernel checks `bin:`
    /// hashes against binaries, not certificates; refusing it is stricter.
    #[error("blacklisted by the image's bin:{0} entry")]
    BinHash(String),
    /// The revocation list holds it, or a certificate with its issuer and
    /// serial number or its subject key identifier: the key ids the kernel
    /// matches a signer against.
    #[error("revoked by the image's revocation certificate list")]
    Revoked,
    /// It parses, but its parts do not re-encode as DER, so it cannot be
    /// compared with the blacklist.
    #[error("its DER does not re-encode; it cannot be checked against the blacklist")]
    Malformed,
}

/// One certificate found in a kernel image's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCertificate {
    /// The certificate's DER.
    pub der: Vec<u8>,
    /// The list it is in.
    pub list: CertificateList,
    /// Why a system list certificate is not trusted, if it is not.
    pub distrust: Option<Distrust>,
}

impl ImageCertificate {
    /// Whether the kernel trusts this certificate's key for module
    /// signatures.
    pub fn is_trusted(&self) -> bool {
        self.list == CertificateList::System && self.distrust.is_none()
    }
}

/// How the lists were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Located {
    /// Through the vmlinux's symbol table.
    Symbols,
    /// By the layout of `certs/system_certificates.S`.
    Layout,
}

/// The certificates of a kernel image and how its payload was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCertificates {
    /// How the vmlinux was compressed.
    pub compression: Compression,
    /// How the lists were found.
    pub located: Located,
    /// The system list's certificates in image order, then the revocation
    /// list's.
    pub certificates: Vec<ImageCertificate>,
}

impl KernelCertificates {
    /// The trusted certificates as PEM `CERTIFICATE` blocks, the form
    /// `modhash verify --keys` and `openssl` read.
    pub fn to_pem(&self) -> String {
        self.certificates
            .iter()
            .filter(|c| c.is_trusted())
            .filter_map(|c| {
                der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &c.der).ok()
            })
            .collect()
    }
}

/// Finds the certificates `image`, a bzImage or vmlinux, trusts and
/// distrusts for module signatures.
pub fn certificates(image: &[u8]) -> Result<KernelCertificates, KernelImageError> {
    let (compression, vmlinux) = vmlinux(image)?;
    let (located, lists) = match lists_by_symbols(&vmlinux)? {
        Some(lists) => (Located::Symbols, lists),
        None => (Located::Layout, lists_by_layout(&vmlinux, compression)?),
    };
    if lists.system.is_empty() {
        return Err(KernelImageError::NoCertificates(compression));
    }
    let hashes = blacklisted_hashes(&vmlinux);
    let revoked: Vec<Identity> = lists
        .revocation
        .iter()
        .filter_map(|der| Identity::parse(der))
        .collect();
    let mut certificates: Vec<ImageCertificate> = Vec::new();
    for der in lists.system {
        let distrust = distrust(der, &hashes, &revoked);
        certificates.push(ImageCertificate {
            der: der.to_vec(),
            list: CertificateList::System,
            distrust,
        });
    }
    for der in lists.revocation {
        certificates.push(ImageCertificate {
            der: der.to_vec(),
            list: CertificateList::Revocation,
            distrust: None,
        });
    }
    Ok(KernelCertificates {
        compression,
        located,
        certificates,
    })
}

/// The vmlinux ELF file of `image`: itself if it is one, else a bzImage's
/// decompressed payload.
pub fn vmlinux(
    image: &[u8],
) -> Result<(Compression, std::borrow::Cow<'_, [u8]>), KernelImageError> {
    if image.starts_with(b"\x7fELF") {
        return Ok((Compression::None, std::borrow::Cow::Borrowed(image)));
    }
    let (compression, payload) = bzimage_payload(image)?;
    Ok((
        compression,
        std::borrow::Cow::Owned(decompress(compression, payload)?),
    ))
}

/// The certificates of each list, as slices of the vmlinux.
struct Lists<'a> {
    system: Vec<&'a [u8]>,
    revocation: Vec<&'a [u8]>,
}

/// Splits a certificate list the way the kernel's `load_certificate_list`
/// walks it: each entry `30 82 hi lo` and that many bytes. `None` when the
/// bytes are not exactly such a list of certificates that parse.
fn split_list(mut list: &[u8]) -> Option<Vec<&[u8]>> {
    let mut certs = Vec::new();
    while !list.is_empty() {
        let len = certificate_len(list)?;
        let (cert, rest) = list.split_at_checked(len)?;
        Certificate::from_der(cert).ok()?;
        certs.push(cert);
        list = rest;
    }
    Some(certs)
}

/// The length a `30 82 hi lo` DER header announces, header included.
fn certificate_len(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [0x30, 0x82, hi, lo, ..] => Some(4 + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

const SYSTEM_LIST: &str = "system_certificate_list";
const SYSTEM_LIST_SIZE: &str = "system_certificate_list_size";
const REVOCATION_LIST: &str = "revocation_certificate_list";
const REVOCATION_LIST_SIZE: &str = "revocation_certificate_list_size";

/// The lists through the symbol table; `None` when the file is no ELF
/// file or has no `system_certificate_list` symbol.
fn lists_by_symbols(vmlinux: &[u8]) -> Result<Option<Lists<'_>>, KernelImageError> {
    use object::{Object, ObjectSymbol};
    let Ok(file) = object::File::parse(vmlinux) else {
        return Ok(None);
    };
    let address = |name: &str| {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
    };
    let Some(system) = address(SYSTEM_LIST) else {
        return Ok(None);
    };
    let list = |symbol: &'static str, start: u64, size_symbol: &'static str| {
        let bad = |reason: String| KernelImageError::BadSymbol { symbol, reason };
        let size_at =
            address(size_symbol).ok_or_else(|| bad(format!("has no {size_symbol} beside it")))?;
        let word = if file.is_64() { 8 } else { 4 };
        let size = bytes_at(&file, size_at, word)
            .and_then(|b| {
                let mut le = [0u8; 8];
                let mut be = [0u8; 8];
                le.get_mut(..b.len())?.copy_from_slice(b);
                be.get_mut(8 - b.len()..)?.copy_from_slice(b);
                Some(if file.is_little_endian() {
                    u64::from_le_bytes(le)
                } else {
                    u64::from_be_bytes(be)
                })
            })
            .ok_or_else(|| {
                bad(format!(
                    "has its size word ({size_symbol}) outside the file"
                ))
            })?;
        let bytes = bytes_at(&file, start, size)
            .ok_or_else(|| bad(format!("names {size} bytes outside the file")))?;
        split_list(bytes).ok_or_else(|| bad("does not hold a list of certificates".to_owned()))
    };
    let system = list(SYSTEM_LIST, system, SYSTEM_LIST_SIZE)?;
    let revocation = match address(REVOCATION_LIST) {
        Some(start) => list(REVOCATION_LIST, start, REVOCATION_LIST_SIZE)?,
        None => Vec::new(),
    };
    Ok(Some(Lists { system, revocation }))
}

/// `len` bytes at virtual address `address`, from the section holding them.
fn bytes_at<'a>(file: &object::File<'a>, address: u64, len: u64) -> Option<&'a [u8]> {
    use object::{Object, ObjectSection};
    file.sections()
        .find_map(|section| section.data_range(address, len).ok().flatten())
}

/// Most zero bytes `.align` puts before a list's size word.
const MAX_PADDING: usize = 256;

/// The lists by the layout `certs/system_certificates.S` and
/// `certs/revocation_certificates.S` give them (see the module comment).
fn lists_by_layout(
    vmlinux: &[u8],
    compression: Compression,
) -> Result<Lists<'_>, KernelImageError> {
    let found = scan_certificates(vmlinux);
    let starts: std::collections::HashSet<usize> = found.iter().map(|(start, _)| *start).collect();
    let quad = |at: usize| -> Option<u64> {
        let bytes: [u8; 8] = vmlinux.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    let mut system = Vec::new();
    let mut revocation = Vec::new();
    // The next non-zero 8-byte word at or after `at` (8-aligned), past zero
    // padding: `.align 8` pads to 8 bytes on x86 but to 256 on arm64 before
    // the kernel switched to `.balign`.
    let next_word = |at: usize| -> Option<(usize, u64)> {
        (at..at + MAX_PADDING)
            .step_by(8)
            .find_map(|p| quad(p).filter(|&w| w != 0).map(|w| (p, w)))
    };
    for &(_, end) in &found {
        let aligned = end.next_multiple_of(8);
        if vmlinux
            .get(end..aligned)
            .is_none_or(|pad| pad.iter().any(|&b| b != 0))
        {
            continue;
        }
        let Some((size_at, len)) = next_word(aligned) else {
            continue;
        };
        let Some(start) = usize::try_from(len)
            .ok()
            .and_then(|len| end.checked_sub(len))
            .filter(|start| start % 8 == 0 && starts.contains(start))
        else {
            continue;
        };
        let Some(certs) = vmlinux.get(start..end).and_then(split_list) else {
            continue;
        };
        let first_len = certs.first().map(|c| c.len() as u64);
        if next_word(size_at + 8).map(|(_, w)| w) == first_len {
            system.push(certs);
        } else {
            revocation.extend(certs);
        }
    }
    match system.len() {
        0 => Err(KernelImageError::NoSystemList(compression)),
        1 => Ok(Lists {
            system: system.pop().unwrap_or_default(),
            revocation,
        }),
        n => Err(KernelImageError::SeveralSystemLists(n)),
    }
}

/// Every `tbs:<hex>` and `bin:<hex>` string in the image, NUL-terminated
/// as `blacklist_hashes` holds them: (prefix, decoded hash).
fn blacklisted_hashes(vmlinux: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut found = Vec::new();
    for prefix in ["tbs:", "bin:"] {
        let mut at = 0;
        while let Some(pos) = vmlinux
            .get(at..)
            .and_then(|rest| rest.windows(4).position(|w| w == prefix.as_bytes()))
        {
            let start = at + pos + 4;
            at = start;
            let hex_len = vmlinux
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            if vmlinux.get(start + hex_len) != Some(&0) {
                continue;
            }
            if let Some(hash) = vmlinux
                .get(start..start + hex_len)
                .and_then(|h| hex::decode(h).ok())
                .filter(|h| matches!(h.len(), 32 | 48 | 64))
            {
                found.push((prefix, hash));
            }
        }
    }
    found
}

/// What the kernel matches a certificate by: its DER, its key ids
/// (issuer and serial; subject key identifier) and its TBS.
struct Identity {
    der: Vec<u8>,
    issuer_and_serial: Option<(Vec<u8>, Vec<u8>)>,
    subject_key_id: Option<Vec<u8>>,
    tbs: Vec<u8>,
}

impl Identity {
    fn parse(der: &[u8]) -> Option<Self> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        Some(Self {
            der: der.to_vec(),
            issuer_and_serial: tbs
                .issuer
                .to_der()
                .ok()
                .map(|issuer| (issuer, tbs.serial_number.as_bytes().to_vec())),
            subject_key_id: subject_key_id(tbs),
            tbs: tbs.to_der().ok()?,
        })
    }

    fn same_key_id(&self, other: &Identity) -> bool {
        self.der == other.der
            || (self.issuer_and_serial.is_some()
                && self.issuer_and_serial == other.issuer_and_serial)
            || (self.subject_key_id.is_some() && self.subject_key_id == other.subject_key_id)
    }
}

fn distrust(der: &[u8], hashes: &[(&str, Vec<u8>)], revoked: &[Identity]) -> Option<Distrust> {
    let Some(identity) = Identity::parse(der) else {
        return Some(Distrust::Malformed);
    };
    let tbs_hash = |len: usize| match len {
        32 => sha2::Sha256::digest(&identity.tbs).to_vec(),
        48 => sha2::Sha384::digest(&identity.tbs).to_vec(),
        _ => sha2::Sha512::digest(&identity.tbs).to_vec(),
    };
    let der_hash = sha2::Sha256::digest(der).to_vec();
    for (prefix, hash) in hashes {
        if *prefix == "tbs:" && tbs_hash(hash.len()) == *hash {
            return Some(Distrust::TbsHash(hex::encode(hash)));
        }
        if *prefix == "bin:" && der_hash == *hash {
            return Some(Distrust::BinHash(hex::encode(hash)));
        }
    }
    revoked
        .iter()
        .any(|r| r.same_key_id(&identity))
        .then_some(Distrust::Revoked)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(field))
}

/// The compressed vmlinux of a bzImage.
fn bzimage_payload(image: &[u8]) -> Result<(Compression, &[u8]), KernelImageError> {
    if image.get(HEADER_MAGIC..HEADER_MAGIC + 4) != Some(b"HdrS".as_slice()) {
        return Err(KernelImageError::NotKernel);
    }
    let (minor, major) = match image.get(BOOT_PROTOCOL..BOOT_PROTOCOL + 2) {
        Some(&[minor, major]) => (minor, major),
        _ => return Err(KernelImageError::NotKernel),
    };
    if (major, minor) < (2, 8) {
        return Err(KernelImageError::OldProtocol { major, minor });
    }
    // 0 setup sectors means 4, for compatibility with ancient loaders.
    let setup_sects = match image.get(SETUP_SECTS).copied() {
        Some(0) => 4,
        Some(n) => u64::from(n),
        None => return Err(KernelImageError::NotKernel),
    };
    let (Some(offset), Some(length)) = (
        read_u32(image, PAYLOAD_OFFSET),
        read_u32(image, PAYLOAD_LENGTH),
    ) else {
        return Err(KernelImageError::NotKernel);
    };
    // payload_offset counts from the protected-mode code, which follows the
    // boot sector and the setup sectors.
    let start = (setup_sects + 1) * 512 + u64::from(offset);
    let end = start + u64::from(length);
    let payload = usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(s, e)| image.get(s..e))
        .ok_or(KernelImageError::PayloadOutside {
            start,
            end,
            len: image.len() as u64,
        })?;
    let compression = if payload.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if payload.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if payload.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if payload.starts_with(&LZ4_LEGACY_MAGIC) {
        Compression::Lz4
    } else {
        return Err(KernelImageError::UnknownCompression(hex::encode(
            payload.get(..8).unwrap_or(payload),
        )));
    };
    Ok((compression, payload))
}

const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
/// The legacy LZ4 frame's fixed block size.
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// Decompresses the first stream of `payload`. The kernel's build appends
/// the decompressed size after the stream; decoding one stream ignores it.
fn decompress(compression: Compression, payload: &[u8]) -> Result<Vec<u8>, KernelImageError> {
    let failed = |reason: String| KernelImageError::Decompress {
        compression,
        reason,
    };
    let reader: Box<dyn Read + '_> = match compression {
        Compression::None => return Ok(payload.to_vec()),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(payload)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new(payload)),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|e| failed(e.to_string()))?;
            // The kernel compresses with `zstd -22 --ultra`, whose window
            // exceeds the decoder's default limit.
            decoder
                .window_log_max(31)
                .map_err(|e| failed(e.to_string()))?;
            Box::new(decoder.single_frame())
        }
        Compression::Lz4 => return decompress_lz4_legacy(payload).map_err(failed),
    };
    let mut out = Vec::new();
    reader
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| failed(e.to_string()))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(KernelImageError::TooLarge);
    }
    Ok(out)
}

/// LZ4 legacy frames: the magic, then blocks, each a little-endian
/// compressed length and that many bytes decompressing to at most 8 MiB.
/// The stream ends at the end of input, at a length that cannot be a block
/// (the size the kernel build appends), or at another magic.
fn decompress_lz4_legacy(payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = payload.get(LZ4_LEGACY_MAGIC.len()..).unwrap_or_default();
    let mut out = Vec::new();
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    while let Some(len) = read_u32(rest, 0) {
        let Ok(len) = usize::try_from(len) else { break };
        let Some(compressed) = rest.get(4..4 + len) else {
            break;
        };
        if len == 0 || rest.get(..4) == Some(LZ4_LEGACY_MAGIC.as_slice()) {
            break;
        }
        let n =
            lz4_flex::block::decompress_into(compressed, &mut block).map_err(|e| e.to_string())?;
        out.extend_from_slice(block.get(..n).unwrap_or_default());
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(format!("more than {MAX_DECOMPRESSED} bytes"));
        }
        rest = rest.get(4 + len..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err("no LZ4 block".to_owned());
    }
    Ok(out)
}

/// Where DER certificates start and end in `bytes`, found by their first
/// bytes (`30 82 xx xx 30 82 xx xx a0 03 02 01 02`: a long SEQUENCE whose
/// TBSCertificate opens with version v3) and kept when they parse.
fn scan_certificates(bytes: &[u8]) -> Vec<(usize, usize)> {
    const SHAPE: [Option<u8>; 13] = [
        Some(0x30),
        Some(0x82),
        None,
        None,
        Some(0x30),
        Some(0x82),
        None,
        None,
        Some(0xa0),
        Some(0x03),
        Some(0x02),
        Some(0x01),
        Some(0x02),
    ];
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(pos) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == 0x30))
    {
        let start = at + pos;
        at = start + 1;
        let Some(window) = bytes.get(start..start + SHAPE.len()) else {
            break;
        };
        if !SHAPE
            .iter()
            .zip(window)
            .all(|(want, got)| want.is_none_or(|w| w == *got))
        {
            continue;
        }
        let Some(len) = certificate_len(window) else {
            continue;
        };
        let Some(der) = bytes.get(start..start + len) else {
            continue;
        };
        if Certificate::from_der(der).is_ok() {
            found.push((start, start + len));
            at = start + len;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const CERT: &[u8] = include_bytes!("testdata/rsa2048.crt.der");

    fn pem_der(pem: &[u8]) -> Vec<u8> {
        der::pem::decode_vec(pem).unwrap().1
    }

    fn p256() -> Vec<u8> {
        pem_der(include_bytes!("testdata/p256.crt.pem"))
    }

    /// Appends `certs` at an 8-byte boundary as `system_certificates.S`
    /// lays them out: the list, zero padding, its size, and
    /// `module_cert_size` when `module_cert` (else a non-matching word, as
    /// after `revocation_certificate_list_size`).
    fn push_list(v: &mut Vec<u8>, certs: &[&[u8]], module_cert: bool) {
        v.resize(v.len().next_multiple_of(8), 0);
        let start = v.len();
        for cert in certs {
            v.extend_from_slice(cert);
        }
        let len = (v.len() - start) as u64;
        v.resize(v.len().next_multiple_of(8), 0);
        v.extend_from_slice(&len.to_le_bytes());
        let next = if module_cert {
            certs[0].len() as u64
        } else {
            u64::MAX
        };
        v.extend_from_slice(&next.to_le_bytes());
    }

    /// A fake stripped vmlinux: padding that starts like DER, the system
    /// list holding [`CERT`], padding.
    fn vmlinux() -> Vec<u8> {
        let mut v = b"\x7fELF".to_vec();
        v.extend(std::iter::repeat_n(0x30u8, 1000));
        push_list(&mut v, &[CERT], true);
        v.extend(std::iter::repeat_n(0u8, 5000));
        v
    }

    /// A minimal bzImage around `payload`, with the size the kernel build
    /// appends.
    fn bzimage(payload: &[u8], uncompressed_len: usize) -> Vec<u8> {
        let setup_sects = 3u8;
        let mut image = vec![0u8; (usize::from(setup_sects) + 1) * 512 + 100];
        image[SETUP_SECTS] = setup_sects;
        image[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        image[BOOT_PROTOCOL..BOOT_PROTOCOL + 2].copy_from_slice(&[0x0f, 0x02]);
        let mut with_size = payload.to_vec();
        with_size.extend_from_slice(&(uncompressed_len as u32).to_le_bytes());
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&100u32.to_le_bytes());
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(with_size.len() as u32).to_le_bytes());
        image.extend_from_slice(&with_size);
        image.extend_from_slice(b"trailing setup data");
        image
    }

    fn lz4_legacy(data: &[u8]) -> Vec<u8> {
        let mut out = LZ4_LEGACY_MAGIC.to_vec();
        for chunk in data.chunks(LZ4_LEGACY_BLOCK) {
            let block = lz4_flex::block::compress(chunk);
            out.extend_from_slice(&(block.len() as u32).to_le_bytes());
            out.extend_from_slice(&block);
        }
        out
    }

    fn check(image: &[u8], compression: Compression) {
        let found = certificates(image).expect("certificates found");
        assert_eq!(found.compression, compression);
        assert_eq!(found.located, Located::Layout);
        assert_eq!(
            found.certificates,
            vec![ImageCertificate {
                der: CERT.to_vec(),
                list: CertificateList::System,
                distrust: None
            }]
        );
    }

    fn trusted(image: &[u8]) -> Vec<Vec<u8>> {
        certificates(image)
            .unwrap()
            .certificates
            .into_iter()
            .filter(ImageCertificate::is_trusted)
            .map(|c| c.der)
            .collect()
    }

    #[test]
    fn a_certificate_outside_the_system_list_is_not_taken() {
        let mut v = b"\x7fELF".to_vec();
        v.extend_from_slice(&p256());
        push_list(&mut v, &[CERT], true);
        v.extend_from_slice(&p256());
        assert_eq!(trusted(&v), vec![CERT.to_vec()]);
    }

    #[test]
    fn revoked_and_blacklisted_certificates_are_not_trusted() {
        let p256 = p256();
        // The revocation list names p256; the system list holds both.
        let mut v = b"\x7fELF".to_vec();
        push_list(&mut v, &[&p256], false);
        push_list(&mut v, &[CERT, &p256], true);
        let found = certificates(&v).unwrap();
        let lists: Vec<_> = found
            .certificates
            .iter()
            .map(|c| (c.list, c.distrust.clone()))
            .collect();
        assert_eq!(
            lists,
            vec![
                (CertificateList::System, None),
                (CertificateList::System, Some(Distrust::Revoked)),
                (CertificateList::Revocation, None),
            ]
        );
        assert_eq!(trusted(&v), vec![CERT.to_vec()]);

        // A tbs: entry of CERT's TBSCertificate hash.
        let tbs = Certificate::from_der(CERT)
            .unwrap()
            .tbs_certificate
            .to_der()
            .unwrap();
        let mut w = b"\x7fELF".to_vec();
        push_list(&mut w, &[CERT, &p256], true);
        w.extend_from_slice(b"tbs:");
        w.extend_from_slice(hex::encode(sha2::Sha256::digest(&tbs)).as_bytes());
        w.push(0);
        assert_eq!(trusted(&w), vec![p256.clone()]);
        assert!(matches!(
            certificates(&w).unwrap().certificates[0].distrust,
            Some(Distrust::TbsHash(_))
        ));
        // A bin: entry of p256's whole DER.
        w.extend_from_slice(b"bin:");
        w.extend_from_slice(hex::encode(sha2::Sha256::digest(&p256)).as_bytes());
        w.push(0);
        assert_eq!(trusted(&w), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn arm64_alignment_padding_is_read() {
        // `.align 8` is 256 bytes on arm64: zero padding before each word.
        let mut v = b"\x7fELF".to_vec();
        v.resize(256, 0);
        v.extend_from_slice(CERT);
        v.resize(v.len().next_multiple_of(256), 0);
        v.extend_from_slice(&(CERT.len() as u64).to_le_bytes());
        v.resize(v.len().next_multiple_of(256), 0);
        v.extend_from_slice(&(CERT.len() as u64).to_le_bytes());
        assert_eq!(trusted(&v), vec![CERT.to_vec()]);
    }

    #[test]
    fn two_lists_shaped_like_the_system_list_are_refused() {
        let mut v = b"\x7fELF".to_vec();
        push_list(&mut v, &[CERT], true);
        push_list(&mut v, &[&p256()], true);
        assert!(matches!(
            certificates(&v),
            Err(KernelImageError::SeveralSystemLists(2))
        ));
    }

    #[test]
    fn vmlinux_certificates_are_found() {
        check(&vmlinux(), Compression::None);
    }

    #[test]
    fn every_compression_is_read() {
        let v = vmlinux();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&v).unwrap();
        check(&bzimage(&gz.finish().unwrap(), v.len()), Compression::Gzip);

        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&v).unwrap();
        check(&bzimage(&xz.finish().unwrap(), v.len()), Compression::Xz);

        let zst = zstd::bulk::compress(&v, 3).unwrap();
        check(&bzimage(&zst, v.len()), Compression::Zstd);

        check(&bzimage(&lz4_legacy(&v), v.len()), Compression::Lz4);
    }

    #[test]
    fn non_kernels_and_truncated_images_are_refused() {
        assert!(matches!(
            certificates(b"hello"),
            Err(KernelImageError::NotKernel)
        ));
        let v = vmlinux();
        let zst = zstd::bulk::compress(&v, 3).unwrap();
        let mut image = bzimage(&zst, v.len());
        image.truncate(600);
        assert!(matches!(
            certificates(&image),
            Err(KernelImageError::PayloadOutside { .. })
        ));
        assert!(matches!(
            certificates(b"\x7fELF no certificates here"),
            Err(KernelImageError::NoSystemList(Compression::None))
        ));
        // A certificate, but not in a list: nothing the kernel trusts.
        let mut loose = b"\x7fELF".to_vec();
        loose.extend_from_slice(CERT);
        loose.extend_from_slice(&[0; 64]);
        assert!(matches!(
            certificates(&loose),
            Err(KernelImageError::NoSystemList(Compression::None))
        ));
    }
}
