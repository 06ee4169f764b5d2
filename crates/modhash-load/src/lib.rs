//! modhash-load: the Linux runtime that loads exactly the module bytes it
//! verified.
//!
//! A module is opened once, copied into a sealed memfd as the canonical image
//! of the anchor's digest profile, hashed from the sealed bytes, judged by the
//! host's policy, and then loaded from that same memfd (or handed to an
//! isolated worker). The path is never opened again, so replacing the file
//! after the check cannot change what runs.
//!
//! ```no_run
//! use modhash::Profile;
//! use modhash_load::{Action, DigestSet, Loader};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let trusted = [modhash::Digest::sha256(b"")];
//! let loader = Loader::new(DigestSet::new(Profile::ElfImage, trusted, Action::Reject));
//! let module = loader.load("plugins/libgreet.so")?;
//! println!("{} is {}", module.name(), module.trust());
//! let output = module.call(0, b"world")?;
//! # let _ = output;
//! for tainted in loader.tainted() {
//!     eprintln!("tainted: {}", tainted.path.display());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`Module::call`] has the same signature whether the module runs
//! in-process or in an isolated worker.
//!
//! This module list is the crate's table of contents: each file owns one
//! concern.

pub mod inprocess;
pub mod isolated;
pub mod judge;
pub mod loader;
pub mod memfd;
pub mod module;
pub mod protocol;
pub mod sandbox;

pub use inprocess::RawLibrary;
pub use judge::{Action, Candidate, DigestSet, HostPolicy, Judge, Verdict};
pub use loader::{Judged, LoadError, Loader, Tainted};
pub use module::{CallError, Module};
