//! Compressed kernel modules: `.ko.xz`, `.ko.zst` and `.ko.gz`.
//!
//! Distributions install modules compressed (Debian 6.12 kernels as `.ko.xz`,
//! others as `.ko.zst`); kmod, or the kernel itself with
//! `CONFIG_MODULE_DECOMPRESS`, decompresses them and the kernel checks the
//! appended signature or proof on the decompressed bytes. Every verb that
//! judges a kernel module must therefore judge those bytes, not the
//! compressed file: the signature is inside.
//!
//! The format is recognised by its magic, not by the file name, so a renamed
//! file is judged by what it holds. Decompression stops at a bound: a small
//! file that inflates to gigabytes is an error, never an exhausted memory.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use crate::input::{self, ReadError};

/// Largest decompressed module: 256 MiB, far above any real module and far
/// below what would strain the machine.
pub const MAX_DECOMPRESSED: u64 = 256 << 20;

/// How a module file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// xz (`.ko.xz`).
    Xz,
    /// Zstandard (`.ko.zst`).
    Zstd,
    /// gzip (`.ko.gz`).
    Gzip,
}

impl Compression {
    /// Every compression, in a fixed order.
    pub const ALL: [Compression; 3] = [Compression::Xz, Compression::Zstd, Compression::Gzip];

    /// Recognises a compressed stream by its first bytes.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    /// The file name extension kmod gives modules compressed this way.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Xz => "xz",
            Compression::Zstd => "zst",
            Compression::Gzip => "gz",
        }
    }

    /// The tool's name, as users know it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    /// Compresses `bytes` as the kernel build does: xz with a CRC32 check
    /// (`xz --check=crc32`), one zstd frame, gzip.
    pub fn compress(self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Xz => {
                let stream =
                    liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                        .map_err(std::io::Error::other)?;
                let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                encoder.write_all(bytes)?;
                encoder.finish()
            }
            Compression::Zstd => zstd::bulk::compress(bytes, 19),
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(bytes)?;
                encoder.finish()
            }
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a compressed module could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The file itself could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The stream is corrupt or truncated.
    #[error("{compression}-compressed module does not decompress ({reason}); the file is truncated or corrupt")]
    Corrupt {
        /// The compression.
        compression: Compression,
        /// What the decoder said.
        reason: String,
    },
    /// The stream inflates past the bound.
    #[error("{compression}-compressed module decompresses to more than {max} bytes; no module is that large (a decompression bomb?)")]
    TooLarge {
        /// The compression.
        compression: Compression,
        /// The bound.
        max: u64,
    },
}

/// A module's bytes as the kernel sees them, and how the file stored them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module<'a> {
    /// The decompressed module (or the file, if not compressed).
    pub bytes: Cow<'a, [u8]>,
    /// How the file was compressed, if it was.
    pub compression: Option<Compression>,
}

/// The module `file` holds: decompressed, at most `max` bytes, when it is
/// compressed; borrowed unchanged when it is not.
pub fn decompress(file: &[u8], max: u64) -> Result<Module<'_>, DecompressError> {
    let Some(compression) = Compression::detect(file) else {
        return Ok(Module {
            bytes: Cow::Borrowed(file),
            compression: None,
        });
    };
    let corrupt = |e: std::io::Error| DecompressError::Corrupt {
        compression,
        reason: e.to_string(),
    };
    let reader: Box<dyn Read + '_> = match compression {
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(file)
                .map_err(corrupt)?
                .single_frame(),
        ),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
    };
    let mut out = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    if out.len() as u64 > max {
        return Err(DecompressError::TooLarge { compression, max });
    }
    Ok(Module {
        bytes: Cow::Owned(out),
        compression: Some(compression),
    })
}

/// Reads the module at `path` ([`input::read_regular`], at most
/// [`input::DEFAULT_MAX_LEN`] bytes on disk) and decompresses it, at most
/// [`MAX_DECOMPRESSED`] bytes, when it is compressed.
pub fn read(path: &Path) -> Result<Module<'static>, DecompressError> {
    let file = input::read_regular(path, input::DEFAULT_MAX_LEN)?;
    let Module { bytes, compression } = decompress(&file, MAX_DECOMPRESSED)?;
    let bytes = match (bytes, compression) {
        (_, None) => file,
        (bytes, Some(_)) => bytes.into_owned(),
    };
    Ok(Module {
        bytes: Cow::Owned(bytes),
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compression_round_trips_and_is_recognised() {
        let module = b"\x7fELF a kernel module".repeat(100);
        for compression in Compression::ALL {
            let packed = compression.compress(&module).unwrap();
            assert_eq!(Compression::detect(&packed), Some(compression));
            if compression == Compression::Xz {
                // Stream flags: check type 1 is CRC32.
                assert_eq!(packed.get(6..8), Some([0u8, 1].as_slice()));
            }
            let read = decompress(&packed, MAX_DECOMPRESSED).unwrap();
            assert_eq!(read.compression, Some(compression));
            assert_eq!(read.bytes, module.as_slice());
        }
    }

    #[test]
    fn plain_files_are_borrowed_unchanged() {
        let read = decompress(b"\x7fELF", MAX_DECOMPRESSED).unwrap();
        assert_eq!(read.compression, None);
        assert!(matches!(read.bytes, Cow::Borrowed(b"\x7fELF")));
    }

    #[test]
    fn a_bomb_is_an_error_for_every_compression() {
        let zeros = vec![0u8; 1 << 20];
        for compression in Compression::ALL {
            let packed = compression.compress(&zeros).unwrap();
            assert!(packed.len() < 4096, "{compression}: {}", packed.len());
            assert!(matches!(
                decompress(&packed, (1 << 20) - 1),
                Err(DecompressError::TooLarge { .. })
            ));
            assert!(decompress(&packed, 1 << 20).is_ok());
        }
    }

    #[test]
    fn truncated_streams_are_corrupt() {
        let module = b"\x7fELF a kernel module".repeat(100);
        for compression in Compression::ALL {
            let packed = compression.compress(&module).unwrap();
            let cut = packed.get(..packed.len() / 2).unwrap();
            assert!(
                matches!(
                    decompress(cut, MAX_DECOMPRESSED),
                    Err(DecompressError::Corrupt { .. })
                ),
                "{compression}"
            );
        }
    }
}
