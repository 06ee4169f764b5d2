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

/// How a verb picks each file's profile: the one given, or `auto`, the
/// default of every verb, so that `modhash hash X` and the default
/// manifest's line for X always agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProfileRule {
    /// [`Profile::auto`]: the profile that fits what the file is.
    #[default]
    Auto,
    /// This profile, whatever the file is.
    Fixed(Profile),
}

impl ProfileRule {
    /// The profile `bytes` are hashed under.
    pub fn resolve(self, bytes: &[u8]) -> Profile {
        match self {
            ProfileRule::Auto => Profile::auto(bytes),
            ProfileRule::Fixed(profile) => profile,
        }
    }
}

impl fmt::Display for ProfileRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileRule::Auto => f.write_str("auto"),
            ProfileRule::Fixed(profile) => profile.fmt(f),
        }
    }
}

impl serde::Serialize for ProfileRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for ProfileRule {
    type Err = UnknownProfileRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ProfileRule::Auto),
            _ => s
                .parse()
                .map(ProfileRule::Fixed)
                .map_err(|_| UnknownProfileRule(s.to_owned())),
        }
    }
}

/// An unknown profile name where `auto` may be given too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}`; give auto, file, payload or elf-image")]
pub struct UnknownProfileRule(pub String);

/// ELF `e_type` values [`Profile::auto`] tells apart.
const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

impl Profile {
    /// The profile that fits what `bytes` are, the rule of `auto`:
    /// `elf-image` for an ELF executable or shared object (what a loader
    /// maps; stable under strip), `payload` for a kernel module (ELF
    /// relocatable) or any other file ending in an appended module
    /// signature or modhash trailer (what the signature covers), `file`
    /// for anything else. Only the ELF header's type and the file's last
    /// bytes are read, so a malformed file is still given the profile
    /// whose error explains it.
    pub fn auto(bytes: &[u8]) -> Profile {
        // The end of the whole file always decides; `payload` is what a
        // marker the end could not decide on would get.
        Profile::auto_by_head(bytes)
            .or_else(|| Profile::auto_by_end(bytes.len(), bytes))
            .unwrap_or(Profile::Payload)
    }

    /// The profile `auto` gives a file whose first bytes are `head` (at
    /// least its first 18, or all of it), if they decide it: an ELF file's
    /// type does.
    pub(crate) fn auto_by_head(head: &[u8]) -> Option<Profile> {
        match elf_type(head) {
            Some(ET_EXEC | ET_DYN) => Some(Profile::ElfImage),
            Some(ET_REL) => Some(Profile::Payload),
            _ => None,
        }
    }

    /// The profile `auto` gives a file of `len` bytes that
    /// [`Profile::auto_by_head`] leaves undecided, from its last bytes
    /// `tail`; `None` if they are too few to tell.
    pub(crate) fn auto_by_end(len: usize, tail: &[u8]) -> Option<Profile> {
        match linux_trailer::locate(len, tail) {
            Ok(None) => None,
            Ok(Some(found)) if found.trailer == linux_trailer::FoundTrailer::None => {
                Some(Profile::File)
            }
            // A trailer, or a trailer's marker with a malformed record:
            // `payload` reports what is wrong with it.
            _ => Some(Profile::Payload),
        }
    }
}

/// `e_type` of an ELF file, in the byte order its header declares.
fn elf_type(bytes: &[u8]) -> Option<u16> {
    let header = bytes.get(..18)?;
    let (magic, rest) = header.split_at(4);
    if magic != b"\x7fELF" {
        return None;
    }
    let e_type = [*rest.get(12)?, *rest.get(13)?];
    match rest.get(1)? {
        1 => Some(u16::from_le_bytes(e_type)),
        2 => Some(u16::from_be_bytes(e_type)),
        _ => None,
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
    /// A compressed module does not decompress (`payload`).
    #[error("{0}")]
    Decompress(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 18 bytes of an ELF header of `e_type`, in byte order
    /// `data` (1 little-endian, 2 big-endian).
    fn elf_header(data: u8, e_type: u16) -> Vec<u8> {
        let mut header = b"\x7fELF\x02".to_vec();
        header.push(data);
        header.resize(16, 0);
        header.extend_from_slice(&match data {
            2 => e_type.to_be_bytes(),
            _ => e_type.to_le_bytes(),
        });
        header
    }

    #[test]
    fn auto_fits_the_profile_to_the_file() {
        for data in [1, 2] {
            assert_eq!(Profile::auto(&elf_header(data, ET_DYN)), Profile::ElfImage);
            assert_eq!(Profile::auto(&elf_header(data, ET_EXEC)), Profile::ElfImage);
            assert_eq!(Profile::auto(&elf_header(data, ET_REL)), Profile::Payload);
        }
        let with_proof = linux_trailer::append_modhash_trailer(b"data", b"proof");
        assert_eq!(
            Profile::auto(&with_proof.unwrap_or_default()),
            Profile::Payload
        );
        // A module signature marker with no room for its record: `payload`,
        // whose error says the file is truncated.
        assert_eq!(
            Profile::auto(b"~Module signature appended~\n"),
            Profile::Payload
        );
        assert_eq!(Profile::auto(b"plain text\n"), Profile::File);
        assert_eq!(Profile::auto(b""), Profile::File);
        // An ELF magic with a truncated header, or an unknown byte order.
        assert_eq!(Profile::auto(b"\x7fELF\x02\x01"), Profile::File);
        assert_eq!(Profile::auto(&elf_header(3, ET_DYN)), Profile::File);
    }

    #[test]
    fn auto_keeps_elf_image_for_a_shared_object_with_a_trailer() {
        // A proof appended to a shared object changes neither digest that
        // matters: auto must not switch it to `payload`.
        let so = linux_trailer::append_modhash_trailer(&elf_header(1, ET_DYN), b"proof");
        assert_eq!(Profile::auto(&so.unwrap_or_default()), Profile::ElfImage);
    }

    #[test]
    fn rule_names_round_trip() {
        for name in ["auto", "file", "payload", "elf-image"] {
            assert_eq!(
                name.parse::<ProfileRule>()
                    .map(|r| r.to_string())
                    .as_deref(),
                Ok(name)
            );
        }
        assert!("elf".parse::<ProfileRule>().is_err());
        assert!(
            "auto".parse::<Profile>().is_err(),
            "auto is a rule, not a profile"
        );
    }
}
