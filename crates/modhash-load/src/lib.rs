//! modhash-load: the Linux runtime that loads exactly the module bytes it
//! verified.
//!
//! A module is opened once, copied into a sealed memfd as the canonical image
//! of the anchor's digest profile, hashed from the sealed bytes, judged by the
//! host's policy, and then loaded from that same memfd (or handed to an
//! isolated worker). The path is never opened again, so replacing the file
//! after the check cannot change what runs.
//!
//! This module list is the crate's table of contents: each file owns one
//! concern.

pub mod memfd;
pub mod protocol;
pub mod sandbox;
