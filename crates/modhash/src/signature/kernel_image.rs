//! The X.509 certificates built into a Linux kernel image.
//!
//! `CONFIG_SYSTEM_TRUSTED_KEYS` and the module signing key end up as DER
//! certificates, back to back, in the kernel's `system_certificate_list`.
//! A distribution ships the kernel as a bzImage: a setup header whose
//! `payload_offset`/`payload_length` fields (boot protocol 2.08+) locate the
//! compressed vmlinux, compressed with gzip, xz, zstd or LZ4 (legacy frame
//! format, as the kernel's `lz4 -l` writes it). The vmlinux is stripped of
//! symbols, so the certificates are found by their shape: a DER SEQUENCE
//! holding a TBSCertificate that starts with version 3, which then must
//! parse as a whole certificate.

use std::io::Read;

use der::Decode;
use x509_cert::Certificate;

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
    /// No certificate found.
    #[error("no X.509 certificate found in the {0:?} kernel image; it was built without module signing or trusted keys")]
    NoCertificates(Compression),
}

/// The certificates of a kernel image and how its payload was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCertificates {
    /// How the vmlinux was compressed.
    pub compression: Compression,
    /// Each certificate's DER, in image order, without duplicates.
    pub certificates: Vec<Vec<u8>>,
}

impl KernelCertificates {
    /// The certificates as PEM `CERTIFICATE` blocks, the form
    /// `modhash verify --keys` and `openssl` read.
    pub fn to_pem(&self) -> String {
        self.certificates
            .iter()
            .filter_map(|der| {
                der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).ok()
            })
            .collect()
    }
}

/// Finds the X.509 certificates built into `image`, a bzImage or vmlinux.
pub fn certificates(image: &[u8]) -> Result<KernelCertificates, KernelImageError> {
    let (compression, vmlinux) = vmlinux(image)?;
    let certificates = scan_certificates(&vmlinux);
    if certificates.is_empty() {
        return Err(KernelImageError::NoCertificates(compression));
    }
    Ok(KernelCertificates {
        compression,
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

/// DER certificates in `bytes`, found by their first bytes
/// (`30 82 xx xx 30 82 xx xx a0 03 02 01 02`: a long SEQUENCE whose
/// TBSCertificate opens with version v3) and kept when they parse.
fn scan_certificates(bytes: &[u8]) -> Vec<Vec<u8>> {
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
    let mut found: Vec<Vec<u8>> = Vec::new();
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
        let len = match window {
            [_, _, hi, lo, ..] => 4 + usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => continue,
        };
        let Some(der) = bytes.get(start..start + len) else {
            continue;
        };
        if Certificate::from_der(der).is_ok() {
            if !found.iter().any(|f| f == der) {
                found.push(der.to_vec());
            }
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

    /// A fake vmlinux: padding, the certificate, padding.
    fn vmlinux() -> Vec<u8> {
        let mut v = b"\x7fELF".to_vec();
        v.extend(std::iter::repeat_n(0x30u8, 1000));
        v.extend_from_slice(CERT);
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
        assert_eq!(found.certificates, vec![CERT.to_vec()]);
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
            Err(KernelImageError::NoCertificates(Compression::None))
        ));
    }
}
