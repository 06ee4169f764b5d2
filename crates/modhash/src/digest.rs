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

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
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

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(ParseDigestError::Length(s.chars().count()));
        }
        // Only the canonical spelling is accepted: manifests are compared
        // byte for byte, so `ABC…` and `abc…` must not both be valid.
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ParseDigestError::NotLowercaseHex);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseDigestError::NotLowercaseHex)?;
        Ok(Self(out))
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
}
