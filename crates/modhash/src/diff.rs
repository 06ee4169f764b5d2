//! Comparing two builds of the same modules while ignoring what a rebuild
//! cannot reproduce: the appended signatures and modhash trailers.
//!
//! A reproducible-builds check rebuilds a package and compares the result
//! with the distributed one. The distributed modules carry signatures made
//! with a key the rebuilder does not have, so a byte comparison always
//! fails; comparing the bytes a digest profile hashes does not. When two
//! modules do differ, [`ElfDifferences`] says which ELF sections and
//! segments differ, so a packager knows where to look before reaching for a
//! full structural diff.
//!
//! Pairs are compared on the profile's hashed bytes themselves rather than
//! on their SHA-256 digests: equal bytes have equal digests, and comparing
//! bytes needs no hashing and finds the first differing offset for free.
//! Under `payload`, a compressed kernel module (`.ko.xz`, `.ko.zst`,
//! `.ko.gz`) is compared decompressed, as the kernel loads it: two
//! compressors can pack the same module differently.

mod elf;

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use elf::{ElfDifferences, RegionDifference, Span};

use crate::compressed;
use crate::input::{self, ReadError};
use crate::linux_trailer;
use crate::profile::Profile;

/// Bytes compared per read when streaming two files: small enough that both
/// buffers stay in the CPU cache. Reading whole files into fresh buffers
/// instead makes the kernel's copy out of the page cache miss the cache on
/// every line, which made a tree comparison cost twice the CPU of `diff`.
const CHUNK: usize = 64 * 1024;

/// Bytes read from the end of a file to find an appended trailer without
/// reading the file: a kernel module signature is well under 1 KiB. A
/// trailer that does not fit is still found, by reading the whole file.
const TAIL: usize = 4096;

/// How one pair of paths compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Class {
    /// Byte for byte the same (or symlinks with the same target).
    Identical,
    /// The files differ, but the bytes the profile hashes are equal: they
    /// differ only in an appended signature or trailer (or, for
    /// `elf-image`, only outside the loadable image).
    IdenticalExceptSignature,
    /// The hashed bytes differ (or the symlink targets do).
    Differs,
    /// The path exists only in the first tree.
    OnlyInA,
    /// The path exists only in the second tree.
    OnlyInB,
    /// One side is a file and the other a symlink, directory or special
    /// file (or any other mismatch of kinds).
    TypeDiffers,
}

impl Class {
    /// Every class, in the order a summary lists them.
    pub const ALL: [Class; 6] = [
        Class::Identical,
        Class::IdenticalExceptSignature,
        Class::Differs,
        Class::OnlyInA,
        Class::OnlyInB,
        Class::TypeDiffers,
    ];

    /// The name used in output and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Class::Identical => "identical",
            Class::IdenticalExceptSignature => "identical-except-signature",
            Class::Differs => "differs",
            Class::OnlyInA => "only-in-a",
            Class::OnlyInB => "only-in-b",
            Class::TypeDiffers => "type-differs",
        }
    }

    /// Whether a pair of this class lets two builds count as the same.
    pub fn is_same_build(self) -> bool {
        matches!(self, Class::Identical | Class::IdenticalExceptSignature)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of comparing the contents of two files or two symlinks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Comparison {
    /// How they compare: `Identical`, `IdenticalExceptSignature` or
    /// `Differs`.
    pub class: Class,
    /// Where they differ, for `Differs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

/// Where two files or symlinks differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Detail {
    /// Two files whose compared bytes differ.
    Contents(ContentDifference),
    /// Two symlinks pointing at different targets.
    SymlinkTarget {
        /// The first link's target, lossily as UTF-8.
        a: String,
        /// The second link's target, lossily as UTF-8.
        b: String,
    },
}

/// Where the compared bytes of two files differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContentDifference {
    /// Length of the compared bytes of the first file.
    pub len_a: u64,
    /// Length of the compared bytes of the second file.
    pub len_b: u64,
    /// Offset of the first differing byte (the shorter length when one is a
    /// prefix of the other).
    pub first_difference: u64,
    /// Set when the profile does not apply to a file (a malformed trailer,
    /// not an ELF image): the whole files were compared instead, and this
    /// says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole_files_because: Option<String>,
    /// The ELF sections and segments that differ, when both files are ELF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elf: Option<ElfDifferences>,
}

/// Which of the two files a read error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first file.
    A,
    /// The second file.
    B,
}

/// Why two files could not be compared: one of them could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CompareError {
    /// The file that could not be read.
    pub side: Side,
    /// Why.
    #[source]
    pub error: ReadError,
}

/// Compares the files at `a` and `b` under `profile`, with the same result
/// as [`compare_files`] on their contents.
///
/// Each file is opened once through [`input::open_regular`] (non-blocking,
/// checked on the descriptor, at most [`input::DEFAULT_MAX_LEN`] bytes).
/// The common answers, `Identical` and (for `payload`)
/// `IdenticalExceptSignature`, are found by streaming both files through
/// two small buffers, stopping at the first difference; only pairs that
/// differ, or whose trailer lies beyond the last few KiB, are read whole to
/// say where they differ.
pub fn compare_paths(profile: Profile, a: &Path, b: &Path) -> Result<Comparison, CompareError> {
    let on = |side| move |error| CompareError { side, error };
    let (file_a, len_a) = input::open_regular(a, input::DEFAULT_MAX_LEN).map_err(on(Side::A))?;
    let (file_b, len_b) = input::open_regular(b, input::DEFAULT_MAX_LEN).map_err(on(Side::B))?;
    let files = [(&file_a, len_a), (&file_b, len_b)];
    let mut buffers = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    if len_a == len_b && same_prefix(files, len_a, &mut buffers)? {
        return Ok(Comparison {
            class: Class::Identical,
            detail: None,
        });
    }
    if profile == Profile::Payload
        && (is_compressed(&file_a, len_a) || is_compressed(&file_b, len_b))
    {
        // A compressed kernel module is compared as the kernel loads it.
        let whole = |file: &File, len: u64, side: Side| {
            let bytes = input::read_opened(file, len).map_err(on(side))?;
            match compressed::decompress(&bytes, compressed::MAX_DECOMPRESSED) {
                Ok(module) => Ok(module.bytes.into_owned()),
                Err(e) => Err(CompareError {
                    side,
                    error: ReadError::Io(std::io::Error::other(e.to_string())),
                }),
            }
        };
        let whole_a = whole(&file_a, len_a, Side::A)?;
        let whole_b = whole(&file_b, len_b, Side::B)?;
        return Ok(compare_files(profile, &whole_a, &whole_b));
    }
    if profile == Profile::Payload {
        let payload_a = payload_len(&file_a, len_a, &mut buffers.0).map_err(on(Side::A))?;
        let payload_b = payload_len(&file_b, len_b, &mut buffers.1).map_err(on(Side::B))?;
        if let (Some(pa), Some(pb)) = (payload_a, payload_b) {
            if pa == pb && same_prefix(files, pa, &mut buffers)? {
                return Ok(Comparison {
                    class: Class::IdenticalExceptSignature,
                    detail: None,
                });
            }
        }
    }
    // Positional reads leave both files at their start.
    let whole_a = input::read_opened(&file_a, len_a).map_err(on(Side::A))?;
    let whole_b = input::read_opened(&file_b, len_b).map_err(on(Side::B))?;
    Ok(compare_files(profile, &whole_a, &whole_b))
}

/// Whether a `len`-byte file starts like a compressed kernel module.
fn is_compressed(file: &File, len: u64) -> bool {
    let mut head = [0u8; 6];
    len >= head.len() as u64
        && file.read_exact_at(&mut head, 0).is_ok()
        && compressed::Compression::detect(&head).is_some()
}

/// Whether the first `len` bytes of both files are equal; both files must
/// hold at least `len` bytes, else they changed since they were opened.
fn same_prefix(
    [(file_a, _), (file_b, _)]: [(&File, u64); 2],
    len: u64,
    (buf_a, buf_b): &mut (Vec<u8>, Vec<u8>),
) -> Result<bool, CompareError> {
    let mut offset = 0u64;
    while offset < len {
        let n = usize::try_from(len - offset).map_or(CHUNK, |rest| rest.min(CHUNK));
        let (Some(chunk_a), Some(chunk_b)) = (buf_a.get_mut(..n), buf_b.get_mut(..n)) else {
            return Ok(false);
        };
        read_exact_at(file_a, chunk_a, offset).map_err(|error| CompareError {
            side: Side::A,
            error,
        })?;
        read_exact_at(file_b, chunk_b, offset).map_err(|error| CompareError {
            side: Side::B,
            error,
        })?;
        if chunk_a != chunk_b {
            return Ok(false);
        }
        offset += n as u64;
    }
    Ok(true)
}

/// The length of the `payload` profile's bytes of a `len`-byte file, from
/// its last few KiB; `None` when the trailer does not parse there (it may
/// be longer than that, or malformed: the whole file then decides).
fn payload_len(file: &File, len: u64, buf: &mut [u8]) -> Result<Option<u64>, ReadError> {
    let tail_len = usize::try_from(len).map_or(TAIL, |len| len.min(TAIL));
    let Some(tail) = buf.get_mut(..tail_len) else {
        return Ok(None);
    };
    let tail_start = len - tail_len as u64;
    read_exact_at(file, tail, tail_start)?;
    Ok(linux_trailer::split(tail)
        .ok()
        .map(|split| tail_start + split.payload.len() as u64))
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<(), ReadError> {
    file.read_exact_at(buf, offset).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ReadError::Changed,
        _ => ReadError::from(e),
    })
}

/// Compares two files' contents under `profile`.
///
/// Equal files are `Identical`; files whose profile bytes are equal are
/// `IdenticalExceptSignature`. A file the profile does not apply to (a
/// malformed trailer; not an ELF image) is compared whole, and the
/// difference says why; this is a per-pair finding, not an error, so one odd
/// file does not stop the comparison of a whole tree.
pub fn compare_files(profile: Profile, a: &[u8], b: &[u8]) -> Comparison {
    if a == b {
        return Comparison {
            class: Class::Identical,
            detail: None,
        };
    }
    let (hashed_a, hashed_b) = match (profile.hashed_bytes(a), profile.hashed_bytes(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) => return whole_files_differ(a, b, format!("profile {profile}, file A: {e}")),
        (_, Err(e)) => return whole_files_differ(a, b, format!("profile {profile}, file B: {e}")),
    };
    if hashed_a == hashed_b {
        return Comparison {
            class: Class::IdenticalExceptSignature,
            detail: None,
        };
    }
    // The canonical `elf-image` has no section table, so its differences are
    // located in the original files, keeping only what is loaded.
    let elf = match profile {
        Profile::ElfImage => elf::locate(a, b, true),
        Profile::File | Profile::Payload => elf::locate(&hashed_a, &hashed_b, false),
    };
    Comparison {
        class: Class::Differs,
        detail: Some(Detail::Contents(ContentDifference {
            elf,
            ..content_difference(&hashed_a, &hashed_b)
        })),
    }
}

fn whole_files_differ(a: &[u8], b: &[u8], reason: String) -> Comparison {
    Comparison {
        class: Class::Differs,
        detail: Some(Detail::Contents(ContentDifference {
            whole_files_because: Some(reason),
            elf: elf::locate(a, b, false),
            ..content_difference(a, b)
        })),
    }
}

fn content_difference(a: &[u8], b: &[u8]) -> ContentDifference {
    let first = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    ContentDifference {
        len_a: a.len() as u64,
        len_b: b.len() as u64,
        first_difference: first as u64,
        whole_files_because: None,
        elf: None,
    }
}

/// Compares two symlinks by their targets (never what they point to: a
/// link into the build tree must not be followed out of it).
pub fn compare_symlink_targets(a: &OsStr, b: &OsStr) -> Comparison {
    if a == b {
        return Comparison {
            class: Class::Identical,
            detail: None,
        };
    }
    Comparison {
        class: Class::Differs,
        detail: Some(Detail::SymlinkTarget {
            a: a.to_string_lossy().into_owned(),
            b: b.to_string_lossy().into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux_trailer::MODULE_SIG_MARKER;

    /// `payload` followed by a PKCS#7 module signature of `sig` bytes.
    fn signed(payload: &[u8], sig: &[u8]) -> Vec<u8> {
        let mut out = payload.to_vec();
        out.extend_from_slice(sig);
        out.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&u32::try_from(sig.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(MODULE_SIG_MARKER);
        out
    }

    #[test]
    fn equal_files_are_identical() {
        let c = compare_files(Profile::Payload, b"abc", b"abc");
        assert_eq!(c.class, Class::Identical);
        assert_eq!(c.detail, None);
    }

    #[test]
    fn signed_and_stripped_are_identical_except_signature() {
        let c = compare_files(Profile::Payload, &signed(b"module", b"sig1"), b"module");
        assert_eq!(c.class, Class::IdenticalExceptSignature);
        let c = compare_files(
            Profile::Payload,
            &signed(b"module", b"sig1"),
            &signed(b"module", b"other signature"),
        );
        assert_eq!(c.class, Class::IdenticalExceptSignature);
    }

    #[test]
    fn different_payloads_differ_at_the_first_differing_byte() {
        let c = compare_files(Profile::Payload, &signed(b"module", b"s"), b"modXle!");
        assert_eq!(c.class, Class::Differs);
        let Some(Detail::Contents(d)) = c.detail else {
            panic!("expected a content difference, got {:?}", c.detail);
        };
        assert_eq!((d.len_a, d.len_b, d.first_difference), (6, 7, 3));
        assert_eq!(d.whole_files_because, None);
        assert_eq!(d.elf, None);
    }

    #[test]
    fn a_prefix_differs_at_its_end() {
        let c = compare_files(Profile::File, b"abc", b"abcd");
        let Some(Detail::Contents(d)) = c.detail else {
            panic!("expected a content difference, got {:?}", c.detail);
        };
        assert_eq!(d.first_difference, 3);
    }

    #[test]
    fn a_profile_that_does_not_apply_compares_whole_files_and_says_why() {
        let c = compare_files(Profile::ElfImage, b"not elf", b"not elf either");
        assert_eq!(c.class, Class::Differs);
        let Some(Detail::Contents(d)) = c.detail else {
            panic!("expected a content difference, got {:?}", c.detail);
        };
        let reason = d.whole_files_because.unwrap_or_default();
        assert!(
            reason.starts_with("profile elf-image, file A: not an ELF file"),
            "{reason}"
        );
    }

    /// Writes `a` and `b` to two files and compares them by path.
    fn compare_written(profile: Profile, a: &[u8], b: &[u8]) -> Comparison {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (path_a, path_b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&path_a, a).expect("write a");
        std::fs::write(&path_b, b).expect("write b");
        compare_paths(profile, &path_a, &path_b).expect("compare")
    }

    /// Bytes that differ from one chunk to the next, longer than several
    /// chunks, so streaming crosses chunk boundaries.
    fn big_payload() -> Vec<u8> {
        (0..CHUNK * 3 + 17).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn comparing_paths_gives_the_same_answer_as_comparing_bytes() {
        let payload = big_payload();
        let mut changed = payload.clone();
        if let Some(byte) = changed.get_mut(CHUNK * 2 + 5) {
            *byte ^= 1;
        }
        let short_sig = signed(&payload, b"short signature");
        // A trailer longer than the tail read to find it: found by reading
        // the whole file.
        let long_sig = signed(&payload, &vec![7u8; TAIL * 2]);
        let cases: [(&[u8], &[u8]); 7] = [
            (&payload, &payload),
            (&short_sig, &payload),
            (&payload, &long_sig),
            (&short_sig, &long_sig),
            (&short_sig, &changed),
            (&payload, &payload[..CHUNK]),
            (b"", b""),
        ];
        for profile in Profile::ALL {
            for (a, b) in cases {
                assert_eq!(
                    compare_written(profile, a, b),
                    compare_files(profile, a, b),
                    "profile {profile}, lengths {} and {}",
                    a.len(),
                    b.len()
                );
            }
        }
        assert_eq!(
            compare_written(Profile::Payload, &long_sig, &short_sig).class,
            Class::IdenticalExceptSignature
        );
    }

    #[test]
    fn an_unreadable_side_is_named() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let present = dir.path().join("present");
        std::fs::write(&present, b"x").expect("write");
        let err = compare_paths(Profile::Payload, &present, &dir.path().join("missing"))
            .expect_err("B is missing");
        assert_eq!(err.side, Side::B);
        assert!(matches!(err.error, ReadError::NotFound));
        let err =
            compare_paths(Profile::Payload, dir.path(), &present).expect_err("A is a directory");
        assert_eq!(err.side, Side::A);
    }

    #[test]
    fn symlinks_compare_by_target() {
        let same = compare_symlink_targets(OsStr::new("x.so.1"), OsStr::new("x.so.1"));
        assert_eq!(same.class, Class::Identical);
        let other = compare_symlink_targets(OsStr::new("x.so.1"), OsStr::new("x.so.2"));
        assert_eq!(other.class, Class::Differs);
        assert_eq!(
            other.detail,
            Some(Detail::SymlinkTarget {
                a: "x.so.1".into(),
                b: "x.so.2".into()
            })
        );
    }

    #[test]
    fn only_identical_classes_count_as_the_same_build() {
        let same: Vec<Class> = Class::ALL
            .into_iter()
            .filter(|c| c.is_same_build())
            .collect();
        assert_eq!(same, [Class::Identical, Class::IdenticalExceptSignature]);
    }
}
