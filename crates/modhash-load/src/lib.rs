//! modhash-load: the Linux runtime that loads exactly the module bytes it
//! verified.
//!
//! A module is opened once, copied into a sealed memfd as the canonical image
//! of the anchor's digest profile, hashed from the sealed bytes, judged by the
//! host's policy, and then loaded from that same memfd (or handed to an
//! isolated worker). The path is never opened again, so replacing the file
//! after the check cannot change what runs.
//!
//! A host builds one [`Host`]: its anchor, the build's manifest, the keys
//! it compiles in and what happens to untrusted modules. `build` checks all
//! of it at start-up and names the file at fault.
//!
//! ```no_run
//! use modhash_load::{Host, Untrusted};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder(modhash::anchor!())
//!     .manifest_file("/usr/lib/myapp/modules.manifest")
//!     .untrusted(Untrusted::Isolate)
//!     .build()?;
//! let module = host.load("/usr/lib/myapp/modules/libgreet.so")?;
//! println!("{} is {}", module.name(), module.trust());
//! let output = module.call(0, b"world")?;
//! # let _ = output;
//! for tainted in host.tainted() {
//!     eprintln!("tainted: {}", tainted.path.display());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A host with a module interface of its own (libcamera's IPA modules)
//! judges first and then opens exactly the judged image as a raw library:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let host = modhash_load::Host::builder(modhash::anchor!()).build()?;
//! let judged = host.judge("/usr/lib/myapp/ipa/ipa_vimc.so")?;
//! println!("{}", judged.verdict());
//! let library = host.open_library(judged)?;
//! let info = library.symbol("ipaModuleInfo")?;
//! # let _ = info;
//! # Ok(())
//! # }
//! ```
//!
//! Beneath the facade, [`Loader`] applies any [`Judge`] (a [`HostPolicy`]
//! over [`modhash::policy::Policy`], or a [`DigestSet`] for tests and
//! benchmarks) and is there for hosts that need to choose each part.
//!
//! [`Module::call`] has the same signature whether the module runs
//! in-process or in an isolated worker.
//!
//! This module list is the crate's table of contents: each file owns one
//! concern, and no two modules import each other. The public modules are
//! the building blocks a host may use below [`Loader`]; the worker's side
//! (its protocol, lockdown and in-process loading) is private, reached by
//! the `modhash-worker` binary through one hidden entry point.

mod call_error;
mod escape;
pub mod host;
mod inprocess;
pub mod isolated;
pub mod judge;
pub mod loader;
pub mod memfd;
pub mod module;
mod protocol;
pub mod sandbox;
mod stderr;
mod worker;

pub use call_error::{CallError, Limit};
pub use host::{BuildError, DirModule, Host, HostBuilder, LoadDirError, Untrusted};
pub use inprocess::{DynamicLoaderError, OpenError, RawLibrary, SymbolError};
pub use isolated::{Isolated, SpawnError, StderrLimits, WorkerConfig};
pub use judge::{Action, Candidate, DigestSet, HostPolicy, Judge, UnknownAction, Verdict};
pub use loader::{Judged, LoadError, Loader, Tainted};
pub use module::Module;
pub use protocol::{FatalStage, ProtocolError};
pub use sandbox::{Landlock, SandboxPolicy, SandboxReport};

/// The `modhash-worker` program: the binary's whole `main`. Not for hosts;
/// it assumes the process was started by [`Isolated::spawn`].
#[doc(hidden)]
pub fn worker_main() -> std::process::ExitCode {
    worker::main()
}

/// The code in docs/isolation.md, compiled as doctests so the document
/// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/isolation.md")]
pub struct IsolationDocument;

/// The code in docs/signatures.md, compiled likewise.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/signatures.md")]
pub struct SignaturesDocument;

/// The code in docs/anchor.md, compiled likewise.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/anchor.md")]
pub struct AnchorDocument;
