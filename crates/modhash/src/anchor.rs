//! The trust anchor: a fixed-size record in the host binary's read-only
//! data, in its own ELF section, that holds the Merkle root of the modules
//! built with the host.
//!
//! The record is filled in after the modules are linked (`modhash seal`), so
//! there is no build cycle and no signing key. Unsealed, it trusts nothing.
//! Its byte layout is documented in `docs/anchor.md` so that a C host can
//! declare the same record by hand.
//!
//! ```text
//! offset size field
//!      0   16 magic  "\x89MODHASH-ANCHOR\n"
//!     16    2 format version, little-endian (1)
//!     18    1 profile: 0 none (unsealed), 1 file, 2 payload, 3 elf-image
//!     19    1 hash algorithm: 1 sha256
//!     20    1 sealed: 0 or 1
//!     21    3 reserved, zero
//!     24    8 leaf count, little-endian
//!     32   32 Merkle root (zero when unsealed)
//! ```

use std::fmt;

use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::profile::Profile;

/// Size of the record in bytes.
pub const RECORD_LEN: usize = 64;

/// Name of the ELF section the record lives in.
pub const SECTION_NAME: &str = ".modhash_anchor";

/// Format version written by this crate.
pub const FORMAT_VERSION: u16 = 1;

const ALG_SHA256: u8 = 1;

/// The magic, XOR-masked. Code that needs the magic unmasks it at run time
/// through `black_box`, so the 16 magic bytes appear in a host binary only
/// inside its record, never as a constant in code that checks records; a
/// magic that occurred twice would make `modhash seal` refuse the host.
const MAGIC_MASKED: [u8; 16] = mask(*b"\x89MODHASH-ANCHOR\n");
const MAGIC_MASK: u8 = 0xA5;

const fn mask(bytes: [u8; 16]) -> [u8; 16] {
    (u128::from_ne_bytes(bytes) ^ u128::from_ne_bytes([MAGIC_MASK; 16])).to_ne_bytes()
}

/// The record's magic, computed at run time, so that it occurs in a host
/// binary only inside its record.
pub fn magic() -> [u8; 16] {
    let mut out = std::hint::black_box(MAGIC_MASKED);
    for byte in &mut out {
        *byte ^= std::hint::black_box(MAGIC_MASK);
    }
    out
}

/// The unsealed record, as the [`anchor!`](crate::anchor!) macro places it.
/// Only the macro should use this constant (see [`MAGIC_MASKED`]).
#[doc(hidden)]
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range is a build error, not a panic"
)]
pub const UNSEALED_RECORD: [u8; RECORD_LEN] = {
    let magic = mask(MAGIC_MASKED);
    let mut record = [0u8; RECORD_LEN];
    let mut i = 0;
    while i < 16 {
        record[i] = magic[i];
        i += 1;
    }
    record[16] = FORMAT_VERSION as u8;
    record[17] = (FORMAT_VERSION >> 8) as u8;
    record[19] = ALG_SHA256;
    record
};

/// Declares the host's anchor slot and evaluates to the [`Anchor`] it holds.
///
/// Use it at exactly one place in a program, typically
/// `fn anchor() -> modhash::Anchor { modhash::anchor!() }`: each call site
/// declares a slot of its own, and `modhash seal` refuses a host with two.
/// The record is read through `black_box`, so an optimised build sees the
/// sealed bytes written into the binary after linking, not the placeholder
/// the compiler put there: the compiler cannot know what the opaque
/// reference points to, so it cannot fold the read, which is what a
/// volatile read would guarantee, without `unsafe` in this crate.
#[macro_export]
macro_rules! anchor {
    () => {{
        #[used]
        #[link_section = ".modhash_anchor"]
        static MODHASH_ANCHOR_SLOT: [u8; $crate::anchor::RECORD_LEN] =
            $crate::anchor::UNSEALED_RECORD;
        $crate::anchor::Anchor::from_slot(&MODHASH_ANCHOR_SLOT)
    }};
}

/// What a host's anchor says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anchor {
    /// The placeholder: trusts nothing by hash.
    Unsealed,
    /// Sealed with a manifest's root.
    Sealed {
        /// Profile the digests were computed under.
        profile: Profile,
        /// Number of leaves in the tree.
        count: u64,
        /// The Merkle root.
        root: Digest,
    },
    /// A record that does not parse: trusts nothing by hash.
    Invalid(AnchorError),
}

/// Why a record is not a valid anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// Wrong magic.
    #[error("not an anchor record (wrong magic)")]
    BadMagic,
    /// A format version this crate does not know.
    #[error("anchor format version {0} is not supported; upgrade modhash")]
    UnsupportedVersion(u16),
    /// Reserved bytes are not zero, or the sealed flag is not 0/1.
    #[error("anchor record is corrupt ({0})")]
    Corrupt(&'static str),
    /// An unknown profile number.
    #[error("anchor names unknown profile number {0}; upgrade modhash")]
    UnknownProfile(u8),
    /// An unknown hash algorithm number.
    #[error("anchor names unknown hash algorithm number {0}; upgrade modhash")]
    UnknownAlgorithm(u8),
    /// Fewer than [`RECORD_LEN`] bytes.
    #[error("anchor record truncated")]
    Truncated,
}

fn profile_number(profile: Profile) -> u8 {
    match profile {
        Profile::File => 1,
        Profile::Payload => 2,
        Profile::ElfImage => 3,
    }
}

impl Anchor {
    /// Reads the slot declared by [`anchor!`](crate::anchor!).
    #[doc(hidden)]
    pub fn from_slot(slot: &'static [u8; RECORD_LEN]) -> Self {
        let record: [u8; RECORD_LEN] = *std::hint::black_box(slot);
        Self::from_record(&record)
    }

    /// Parses a record; a record that does not parse trusts nothing.
    pub fn from_record(record: &[u8]) -> Self {
        Self::parse(record).unwrap_or_else(Anchor::Invalid)
    }

    /// Parses a record strictly.
    pub fn parse(record: &[u8]) -> Result<Self, AnchorError> {
        let record: &[u8; RECORD_LEN] = record
            .get(..RECORD_LEN)
            .and_then(|r| r.try_into().ok())
            .ok_or(AnchorError::Truncated)?;
        let (magic_bytes, rest) = record.split_at(16);
        if magic_bytes != magic() {
            return Err(AnchorError::BadMagic);
        }
        let &[v0, v1, profile, alg, sealed, r0, r1, r2, c0, c1, c2, c3, c4, c5, c6, c7, ..] = rest
        else {
            return Err(AnchorError::Truncated);
        };
        let version = u16::from_le_bytes([v0, v1]);
        if version != FORMAT_VERSION {
            return Err(AnchorError::UnsupportedVersion(version));
        }
        if [r0, r1, r2] != [0; 3] {
            return Err(AnchorError::Corrupt("reserved bytes are not zero"));
        }
        if alg != ALG_SHA256 {
            return Err(AnchorError::UnknownAlgorithm(alg));
        }
        let count = u64::from_le_bytes([c0, c1, c2, c3, c4, c5, c6, c7]);
        let mut root = [0u8; 32];
        root.copy_from_slice(record.get(32..64).ok_or(AnchorError::Truncated)?);
        match sealed {
            0 if profile == 0 && count == 0 && root == [0; 32] => Ok(Anchor::Unsealed),
            0 => Err(AnchorError::Corrupt("unsealed record carries a root")),
            1 => {
                let profile = Profile::ALL
                    .into_iter()
                    .find(|p| profile_number(*p) == profile)
                    .ok_or(AnchorError::UnknownProfile(profile))?;
                Ok(Anchor::Sealed {
                    profile,
                    count,
                    root: Digest(root),
                })
            }
            _ => Err(AnchorError::Corrupt("sealed flag is neither 0 nor 1")),
        }
    }

    /// The record sealing `manifest`'s root.
    pub fn sealed_record(manifest: &Manifest) -> [u8; RECORD_LEN] {
        let mut record = [0u8; RECORD_LEN];
        record[..16].copy_from_slice(&magic());
        record[16..18].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        record[18] = profile_number(manifest.profile());
        record[19] = ALG_SHA256;
        record[20] = 1;
        record[24..32].copy_from_slice(&manifest.leaf_count().to_le_bytes());
        record[32..64].copy_from_slice(manifest.root().as_bytes());
        record
    }

    /// Whether the anchor is sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Anchor::Sealed { .. })
    }

    /// The sealed profile.
    pub fn profile(&self) -> Option<Profile> {
        match self {
            Anchor::Sealed { profile, .. } => Some(*profile),
            _ => None,
        }
    }

    /// Whether this anchor is sealed with exactly `manifest`'s root.
    pub fn anchors(&self, manifest: &Manifest) -> bool {
        matches!(self, Anchor::Sealed { profile, count, root }
            if *profile == manifest.profile()
                && *count == manifest.leaf_count()
                && *root == manifest.root())
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Unsealed => f.write_str("unsealed"),
            Anchor::Sealed {
                profile,
                count,
                root,
            } => write!(f, "sealed profile={profile} count={count} root={root}"),
            Anchor::Invalid(error) => write!(f, "invalid ({error})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_parses_as_unsealed() {
        assert_eq!(Anchor::parse(&UNSEALED_RECORD), Ok(Anchor::Unsealed));
        assert_eq!(UNSEALED_RECORD[..16], *b"\x89MODHASH-ANCHOR\n");
    }

    #[test]
    fn sealed_record_round_trips() {
        let manifest =
            Manifest::new(Profile::ElfImage, [("a.so".into(), Digest::sha256(b"a"))]).unwrap();
        let anchor = Anchor::parse(&Anchor::sealed_record(&manifest)).unwrap();
        assert!(anchor.anchors(&manifest));
        assert_eq!(
            anchor.to_string(),
            format!("sealed profile=elf-image count=1 root={}", manifest.root())
        );
    }

    #[test]
    fn corrupt_records_trust_nothing() {
        let mut record = UNSEALED_RECORD;
        record[32] = 1;
        assert!(matches!(Anchor::from_record(&record), Anchor::Invalid(_)));
        let mut record = UNSEALED_RECORD;
        record[0] ^= 1;
        assert_eq!(Anchor::parse(&record), Err(AnchorError::BadMagic));
        assert_eq!(Anchor::parse(&record[..10]), Err(AnchorError::Truncated));
    }
}
