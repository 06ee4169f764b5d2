//! Appended trailers: the Linux module signature and the modhash trailer.
//!
//! Both are appended after the bytes a module's author produced, so the
//! `payload` profile hashes what lies before them. A trailer that announces
//! itself by its marker but whose lengths do not add up is an error, never
//! "no trailer": silently hashing the whole file would give a digest nobody
//! expects.

/// The marker that ends every signed Linux kernel module.
pub const MODULE_SIG_MARKER: &[u8; 28] = b"~Module signature appended~\n";

/// The marker that ends a modhash trailer.
pub const MODHASH_TRAILER_MARKER: &[u8; 20] = b"~modhash trailer 1~\n";

/// `sizeof(struct module_signature)` in the kernel's `module_signature.h`.
pub const MODULE_SIGNATURE_STRUCT_LEN: usize = 12;

/// `id_type` of a PKCS#7 / CMS SignedData signature, the only one the kernel
/// has produced since 4.3.
pub const PKEY_ID_PKCS7: u8 = 2;

/// The fields of `struct module_signature`, as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ModuleSignatureInfo {
    /// Public-key algorithm (0 for PKCS#7, where the CMS names it).
    pub algo: u8,
    /// Hash algorithm (0 for PKCS#7).
    pub hash: u8,
    /// Key identifier type: 2 is PKCS#7.
    pub id_type: u8,
    /// Length of the signer's name (0 for PKCS#7).
    pub signer_len: u8,
    /// Length of the key identifier (0 for PKCS#7).
    pub key_id_len: u8,
    /// Length of the signature, big-endian in the file.
    pub sig_len: u32,
}

/// A file split at its appended trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trailer<'a> {
    /// No recognised trailer: the whole file is payload.
    None,
    /// A Linux module signature.
    ModuleSignature {
        /// The fixed-size record before the marker.
        info: ModuleSignatureInfo,
        /// The signature: for PKCS#7, a DER CMS `ContentInfo`.
        signature: &'a [u8],
    },
    /// A modhash trailer; its body is a proof in the text format of
    /// [`crate::proof`](crate).
    Modhash {
        /// The trailer's body.
        body: &'a [u8],
    },
}

/// A file and the trailer found at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split<'a> {
    /// The bytes before the trailer.
    pub payload: &'a [u8],
    /// The trailer.
    pub trailer: Trailer<'a>,
}

/// Why a trailer could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrailerError {
    /// The module signature marker is present, but the file is too short to
    /// hold the record before it.
    #[error("module signature marker present but the file is too short for struct module_signature; the file is truncated")]
    ModuleSignatureTruncated,
    /// The signature length in `struct module_signature` leaves no module
    /// before it (the kernel's `mod_check_sig` requires
    /// `sig_len < file length - 12`).
    #[error("struct module_signature claims {claimed} bytes of signature but only {available} precede it, leaving no module; the file is truncated or corrupt")]
    ModuleSignatureLengths {
        /// sig_len.
        claimed: u64,
        /// Bytes available before the record.
        available: u64,
    },
    /// A field the kernel requires to be zero is not: bytes that no
    /// signature and no payload digest would cover.
    #[error("struct module_signature has non-zero {0}, which the kernel refuses (mod_check_sig); re-sign the module with sign-file")]
    ModuleSignatureFields(&'static str),
    /// The modhash trailer marker is present but its length is inconsistent.
    #[error("modhash trailer claims {claimed} bytes but only {available} precede it; the file is truncated or corrupt")]
    ModhashTrailerLength {
        /// The body length recorded in the trailer.
        claimed: u64,
        /// Bytes available before the length field.
        available: u64,
    },
}

/// Splits `bytes` at a recognised appended trailer.
pub fn split(bytes: &[u8]) -> Result<Split<'_>, TrailerError> {
    // The last bytes given are the whole file, so `locate` always decides.
    let found = locate(bytes.len(), bytes)?.unwrap_or(Found {
        payload_len: bytes.len(),
        trailer: FoundTrailer::None,
    });
    let payload = bytes.get(..found.payload_len).unwrap_or(bytes);
    let after = |end: usize| bytes.get(found.payload_len..end).unwrap_or_default();
    let trailer = match found.trailer {
        FoundTrailer::None => Trailer::None,
        FoundTrailer::ModuleSignature { info, end } => Trailer::ModuleSignature {
            info,
            signature: after(end),
        },
        FoundTrailer::Modhash { end } => Trailer::Modhash { body: after(end) },
    };
    Ok(Split { payload, trailer })
}

/// Where a file's payload ends, found from the file's length and its last
/// bytes alone, so a file can be hashed as it is read and split once its
/// end is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// The payload is the file's first `payload_len` bytes.
    pub payload_len: usize,
    /// What follows it.
    pub trailer: FoundTrailer,
}

/// The trailer a [`Found`] payload is followed by; its signature or body
/// is the file's bytes from the payload's end to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FoundTrailer {
    /// No recognised trailer: the whole file is payload.
    None,
    /// A Linux module signature.
    ModuleSignature {
        /// The fixed-size record before the marker.
        info: ModuleSignatureInfo,
        /// Where the signature ends: where the record starts.
        end: usize,
    },
    /// A modhash trailer.
    Modhash {
        /// Where the body ends: where its length field starts.
        end: usize,
    },
}

/// The last bytes of a file: `tail` is the file's final `tail.len()` of
/// `len` bytes (all of them, for a file read whole).
#[derive(Clone, Copy)]
struct FileEnd<'a> {
    len: usize,
    tail: &'a [u8],
}

/// The file's last `n` bytes, as [`FileEnd::last`] finds them.
enum Last<'a> {
    /// They are these.
    Bytes(&'a [u8]),
    /// The file is shorter than `n` bytes.
    FileTooShort,
    /// The tail given is too short to hold them.
    Unseen,
}

impl<'a> FileEnd<'a> {
    fn last(self, n: usize) -> Last<'a> {
        if n > self.len {
            Last::FileTooShort
        } else {
            match self.tail.len().checked_sub(n) {
                Some(at) => Last::Bytes(self.tail.get(at..).unwrap_or_default()),
                None => Last::Unseen,
            }
        }
    }

    /// Whether the file ends in `marker`; `None` if the tail cannot tell.
    fn ends_with(self, marker: &[u8]) -> Option<bool> {
        match self.last(marker.len()) {
            Last::Bytes(bytes) => Some(bytes == marker),
            Last::FileTooShort => Some(false),
            Last::Unseen => None,
        }
    }
}

/// Finds the trailer of a file of `len` bytes whose last bytes are `tail`
/// (the whole file, or only its end): the one parser behind [`split`].
/// `Ok(None)` when `tail` is too short to tell; never when it is the whole
/// file.
pub(crate) fn locate(len: usize, tail: &[u8]) -> Result<Option<Found>, TrailerError> {
    let end = FileEnd { len, tail };
    match end.ends_with(MODULE_SIG_MARKER) {
        None => return Ok(None),
        Some(true) => return locate_module_signature(end),
        Some(false) => {}
    }
    match end.ends_with(MODHASH_TRAILER_MARKER) {
        None => Ok(None),
        Some(true) => locate_modhash_trailer(end),
        Some(false) => Ok(Some(Found {
            payload_len: len,
            trailer: FoundTrailer::None,
        })),
    }
}

fn locate_module_signature(end: FileEnd<'_>) -> Result<Option<Found>, TrailerError> {
    let record_len = MODULE_SIG_MARKER.len() + MODULE_SIGNATURE_STRUCT_LEN;
    let record = match end.last(record_len) {
        Last::Bytes(bytes) => bytes,
        Last::FileTooShort => return Err(TrailerError::ModuleSignatureTruncated),
        Last::Unseen => return Ok(None),
    };
    // Bytes before the record: what the signature and the module share.
    let record_start = end.len - record_len;
    let &[algo, hash, id_type, signer_len, key_id_len, p0, p1, p2, l0, l1, l2, l3, ..] = record
    else {
        return Err(TrailerError::ModuleSignatureTruncated);
    };
    // The kernel (`mod_check_sig`) refuses any of these non-zero: the name
    // and key id they once described are inside the CMS now, and bytes
    // skipped by their lengths would be covered by neither the signature
    // nor the payload digest.
    for (value, field) in [
        (algo, "algo"),
        (hash, "hash"),
        (signer_len, "signer_len"),
        (key_id_len, "key_id_len"),
        (p0 | p1 | p2, "padding"),
    ] {
        if value != 0 {
            return Err(TrailerError::ModuleSignatureFields(field));
        }
    }
    let info = ModuleSignatureInfo {
        algo,
        hash,
        id_type,
        signer_len,
        key_id_len,
        sig_len: u32::from_be_bytes([l0, l1, l2, l3]),
    };
    let payload_len = usize::try_from(info.sig_len)
        .ok()
        .and_then(|sig_len| record_start.checked_sub(sig_len))
        .filter(|&len| len > 0)
        .ok_or(TrailerError::ModuleSignatureLengths {
            claimed: u64::from(info.sig_len),
            available: record_start as u64,
        })?;
    Ok(Some(Found {
        payload_len,
        trailer: FoundTrailer::ModuleSignature {
            info,
            end: record_start,
        },
    }))
}

fn locate_modhash_trailer(end: FileEnd<'_>) -> Result<Option<Found>, TrailerError> {
    let before_marker = end.len - MODHASH_TRAILER_MARKER.len();
    let length = match end.last(MODHASH_TRAILER_MARKER.len() + 4) {
        Last::Bytes(bytes) => bytes,
        Last::FileTooShort => {
            return Err(TrailerError::ModhashTrailerLength {
                claimed: 4,
                available: before_marker as u64,
            })
        }
        Last::Unseen => return Ok(None),
    };
    let &[l0, l1, l2, l3, ..] = length else {
        return Err(TrailerError::ModhashTrailerLength {
            claimed: 4,
            available: 0,
        });
    };
    let length_start = before_marker - 4;
    let claimed = u32::from_be_bytes([l0, l1, l2, l3]);
    let body_len = usize::try_from(claimed)
        .ok()
        .filter(|&len| len <= length_start)
        .ok_or(TrailerError::ModhashTrailerLength {
            claimed: u64::from(claimed),
            available: length_start as u64,
        })?;
    Ok(Some(Found {
        payload_len: length_start - body_len,
        trailer: FoundTrailer::Modhash { end: length_start },
    }))
}

/// Appends a modhash trailer holding `body` to `payload`.
pub fn append_modhash_trailer(payload: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(body.len()).ok()?;
    let mut out = Vec::with_capacity(payload.len() + body.len() + 4 + MODHASH_TRAILER_MARKER.len());
    out.extend_from_slice(payload);
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(MODHASH_TRAILER_MARKER);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(payload: &[u8], sig: &[u8]) -> Vec<u8> {
        let mut v = payload.to_vec();
        v.extend_from_slice(sig);
        v.extend_from_slice(&[0, 0, PKEY_ID_PKCS7, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&(sig.len() as u32).to_be_bytes());
        v.extend_from_slice(MODULE_SIG_MARKER);
        v
    }

    #[test]
    fn module_signature_splits_off_exactly_the_signature() {
        let file = signed(b"module bytes", b"SIG");
        let split = split(&file).unwrap();
        assert_eq!(split.payload, b"module bytes");
        let Trailer::ModuleSignature {
            info, signature, ..
        } = split.trailer
        else {
            panic!("expected a module signature");
        };
        assert_eq!(signature, b"SIG");
        assert_eq!(info.id_type, PKEY_ID_PKCS7);
        assert_eq!(info.sig_len, 3);
    }

    #[test]
    fn oversized_sig_len_is_an_error_not_a_whole_file_digest() {
        let mut file = signed(b"x", b"SIG");
        let len_at = file.len() - MODULE_SIG_MARKER.len() - 4;
        file[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            split(&file),
            Err(TrailerError::ModuleSignatureLengths { .. })
        ));
    }

    #[test]
    fn fields_the_kernel_requires_zero_are_refused() {
        // algo, hash, id_type, signer_len, key_id_len, 3 padding bytes.
        for (at, field) in [
            (0, "algo"),
            (1, "hash"),
            (3, "signer_len"),
            (4, "key_id_len"),
            (5, "padding"),
            (7, "padding"),
        ] {
            let mut file = signed(b"module bytes", b"SIG");
            let record = file.len() - MODULE_SIG_MARKER.len() - MODULE_SIGNATURE_STRUCT_LEN;
            file[record + at] = 1;
            assert_eq!(
                split(&file),
                Err(TrailerError::ModuleSignatureFields(field)),
                "byte {at}"
            );
        }
    }

    #[test]
    fn a_signature_must_leave_a_module_before_it() {
        // sig_len == file length - 12: the kernel's `>=` refuses it.
        assert!(matches!(
            split(&signed(b"", b"SIG")),
            Err(TrailerError::ModuleSignatureLengths {
                claimed: 3,
                available: 3
            })
        ));
        assert!(split(&signed(b"m", b"SIG")).is_ok());
    }

    #[test]
    fn marker_alone_is_truncated() {
        assert_eq!(
            split(MODULE_SIG_MARKER),
            Err(TrailerError::ModuleSignatureTruncated)
        );
    }

    #[test]
    fn modhash_trailer_round_trips() {
        let file = append_modhash_trailer(b"elf", b"proof text").unwrap();
        let split = split(&file).unwrap();
        assert_eq!(split.payload, b"elf");
        assert_eq!(
            split.trailer,
            Trailer::Modhash {
                body: b"proof text"
            }
        );
    }

    #[test]
    fn no_marker_means_whole_file() {
        assert_eq!(split(b"plain").unwrap().payload, b"plain");
    }
}
