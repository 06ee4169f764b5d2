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

mod elf;

use std::ffi::OsStr;
use std::fmt;

pub use elf::{ElfDifferences, RegionDifference, Span};

use crate::profile::Profile;

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
