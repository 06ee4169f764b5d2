//! Digest profiles: which bytes of a module are hashed.
//!
//! A profile's definition never changes once released; the vectors under
//! `tests/vectors/` pin each one.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::elf_image::{ElfImageError, LoadableRanges};
use crate::linux_trailer::{self, TrailerError};

/// A digest profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Profile {
    /// Every byte of the file, as `sha256sum`.
    File,
    /// The bytes before an appended Linux module signature or modhash
    /// trailer.
    Payload,
    /// The canonical loadable image of an ELF64 LE shared object or
    /// executable; stable under `strip`.
    ElfImage,
}

impl Profile {
    /// Every profile, in a fixed order.
    pub const ALL: [Profile; 3] = [Profile::File, Profile::Payload, Profile::ElfImage];

    /// The name used in manifests, anchors and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::File => "file",
            Profile::Payload => "payload",
            Profile::ElfImage => "elf-image",
        }
    }

    /// The bytes this profile hashes: borrowed where they are a prefix of
    /// the file, owned for `elf-image`.
    pub fn hashed_bytes(self, bytes: &[u8]) -> Result<Cow<'_, [u8]>, ProfileError> {
        match self {
            Profile::File => Ok(Cow::Borrowed(bytes)),
            Profile::Payload => Ok(Cow::Borrowed(linux_trailer::split(bytes)?.payload)),
            Profile::ElfImage => {
                let ranges = LoadableRanges::parse(bytes)?;
                let mut image = Vec::with_capacity(ranges.image_len());
                ranges.write_image(bytes, &mut image);
                Ok(Cow::Owned(image))
            }
        }
    }

    /// The digest of `bytes` under this profile.
    pub fn digest(self, bytes: &[u8]) -> Result<Digest, ProfileError> {
        Ok(Digest::sha256(&self.hashed_bytes(bytes)?))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}`; the profiles are file, payload and elf-image")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

impl serde::Serialize for Profile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Why a file has no digest under a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The appended trailer is malformed (`payload`).
    #[error(transparent)]
    Trailer(#[from] TrailerError),
    /// The file has no canonical ELF image (`elf-image`).
    #[error(transparent)]
    ElfImage(#[from] ElfImageError),
}
