//! The SHA-256 digest every profile produces.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
///
/// Digests are compared, sorted and printed as lowercase hex; parsing accepts
/// exactly 64 hex digits so that a manifest line cannot smuggle a short or
/// padded value past the parser.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `bytes`, through `sha2`'s runtime-detected SHA-NI path.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// SHA-256 over several slices, as if they were concatenated.
    pub fn sha256_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// `SHA-256(prefix ‖ a)`, or `SHA-256(prefix ‖ a ‖ b)` with `b`: the
    /// Merkle tree's leaf and node hashes.
    ///
    /// These are one and two compression-function calls on blocks laid out
    /// here, padding included (FIPS 180-4 §5.1.1: a 1 bit, zeros, the bit
    /// length), without `sha2`'s streaming buffer: a 100,000-module
    /// manifest's root is 300,000 such blocks, and the buffer's bookkeeping
    /// cost as much as the compression itself.
    pub(crate) fn sha256_prefixed(prefix: u8, a: &Digest, b: Option<&Digest>) -> Self {
        let mut state = SHA256_INITIAL;
        let mut first = [0u8; 64];
        first[0] = prefix;
        first[1..33].copy_from_slice(&a.0);
        match b {
            None => {
                first[33] = 0x80;
                first[56..].copy_from_slice(&(33u64 * 8).to_be_bytes());
                sha2::compress256(&mut state, &[first.into()]);
            }
            Some(b) => {
                let (head, last) = b.0.split_at(31);
                first[33..].copy_from_slice(head);
                let mut second = [0u8; 64];
                second[0] = last.first().copied().unwrap_or_default();
                second[1] = 0x80;
                second[56..].copy_from_slice(&(65u64 * 8).to_be_bytes());
                sha2::compress256(&mut state, &[first.into(), second.into()]);
            }
        }
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Self(out)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseDigestError {
    /// Not 64 characters long.
    #[error("a SHA-256 digest is 64 hex digits, this is {0} characters")]
    Length(usize),
    /// A character outside `0-9a-f`.
    #[error("a SHA-256 digest is lowercase hex (0-9, a-f)")]
    NotLowercaseHex,
}

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The value of each lowercase hex digit; `INVALID` for every other byte.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of bounds fails the build"
)]
const HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// No hex digit has this bit; `HEX_VALUE` sets it for every non-digit, so
/// one OR over a whole digest finds any of them.
const INVALID: u8 = 0x80;

fn hex_value(character: u8) -> u8 {
    HEX_VALUE
        .get(usize::from(character))
        .copied()
        .unwrap_or(INVALID)
}

impl Digest {
    /// Parses exactly 64 lowercase hex digits.
    ///
    /// Only the canonical spelling is accepted: manifests are compared byte
    /// for byte, so `ABC…` and `abc…` must not both be valid. This is the
    /// manifest parser's inner loop (100,000 lines at a host's start-up),
    /// so it decodes through a table and checks every digit with one test
    /// at the end instead of one branch per character.
    pub fn from_hex(hex: &[u8]) -> Result<Self, ParseDigestError> {
        let Ok(pairs) = <&[u8; 64]>::try_from(hex) else {
            let characters = std::str::from_utf8(hex).map_or(hex.len(), |s| s.chars().count());
            return Err(ParseDigestError::Length(characters));
        };
        let mut out = [0u8; 32];
        let mut invalid = 0;
        for (byte, pair) in out.iter_mut().zip(pairs.chunks_exact(2)) {
            let (high, low) = match pair {
                [high, low] => (hex_value(*high), hex_value(*low)),
                _ => (INVALID, INVALID),
            };
            invalid |= high | low;
            *byte = (high << 4) | low;
        }
        if invalid & INVALID != 0 {
            return Err(ParseDigestError::NotLowercaseHex);
        }
        Ok(Self(out))
    }
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s.as_bytes())
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_matches_the_published_sha256() {
        assert_eq!(
            Digest::sha256(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn prefixed_hashes_match_the_streaming_hasher() {
        for seed in 0u8..64 {
            let a = Digest::sha256(&[seed]);
            let b = Digest::sha256(&[seed, seed]);
            assert_eq!(
                Digest::sha256_prefixed(seed, &a, None),
                Digest::sha256_parts(&[&[seed], &a.0])
            );
            assert_eq!(
                Digest::sha256_prefixed(seed, &a, Some(&b)),
                Digest::sha256_parts(&[&[seed], &a.0, &b.0])
            );
        }
    }

    #[test]
    fn parts_hash_like_their_concatenation() {
        assert_eq!(Digest::sha256_parts(&[b"ab", b"c"]), Digest::sha256(b"abc"));
    }

    #[test]
    fn parse_round_trips_and_rejects_other_spellings() {
        let d = Digest::sha256(b"abc");
        assert_eq!(d.to_hex().parse::<Digest>(), Ok(d));
        assert_eq!(
            d.to_hex().to_uppercase().parse::<Digest>(),
            Err(ParseDigestError::NotLowercaseHex)
        );
        assert_eq!("abc".parse::<Digest>(), Err(ParseDigestError::Length(3)));
    }

    #[test]
    fn every_position_rejects_every_non_digit() {
        let hex = Digest::sha256(b"abc").to_hex();
        for at in 0..64 {
            for bad in (0..=u8::MAX).filter(|b| !b"0123456789abcdef".contains(b)) {
                let mut bytes = hex.clone().into_bytes();
                bytes[at] = bad;
                assert_eq!(
                    Digest::from_hex(&bytes),
                    Err(ParseDigestError::NotLowercaseHex),
                    "byte {bad:#x} at {at}"
                );
            }
        }
        assert_eq!(
            Digest::from_hex("é".repeat(32).as_bytes()),
            Err(ParseDigestError::NotLowercaseHex)
        );
        assert_eq!(
            Digest::from_hex("é".repeat(33).as_bytes()),
            Err(ParseDigestError::Length(33))
        );
    }
}
