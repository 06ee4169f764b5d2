//! modhash core: trust loadable modules by the hashes recorded when they were
//! built, so the build needs no signing key and stays bit-for-bit
//! reproducible.
//!
//! This crate is the verify-side core a host embeds: digest profiles, the
//! manifest, the RFC 6962 Merkle root and proofs, the trust anchor
//! record, and the Linux kernel's own module hash tree. It holds no `unsafe` and parses untrusted bytes only through
//! fallible constructors; every error type names the input and says what to
//! do next.
#![forbid(unsafe_code)]
#![warn(clippy::indexing_slicing, clippy::panic)]

pub mod anchor;
#[cfg(feature = "compressed")]
pub mod compressed;
#[cfg(feature = "diff")]
pub mod diff;
pub mod digest;
#[cfg(feature = "dynamic")]
pub mod elf_dynamic;
pub mod elf_image;
pub mod input;
pub mod linux_trailer;
pub mod manifest;
pub mod merkle;
pub mod module_hashes;
pub mod policy;
pub mod profile;
pub mod proof;
#[cfg(feature = "seal")]
pub mod seal;
pub mod signature;
pub mod stream;
#[cfg(feature = "tree")]
pub mod tree;

pub use anchor::Anchor;
pub use digest::Digest;
pub use manifest::Manifest;
pub use profile::{Profile, ProfileRule};
