//! The libraries a module needs are part of the module: before a module is
//! mapped, every `DT_NEEDED` of its sealed image is pinned to code that is
//! either already running in this process or was judged here.
//!
//! A needed name is satisfied, in this order, by
//! 1. a library already loaded in this process under that name (glibc's own
//!    lookup, `dlopen(name, RTLD_NOLOAD)`, which maps nothing and runs
//!    nothing); the handle is kept for as long as the module is loaded, so
//!    the name stays bound to that library;
//! 2. a file found in the module's `DT_RUNPATH` (else `DT_RPATH`), with
//!    `$ORIGIN` the directory the module was read from: read once into a
//!    sealed memfd, judged by the same policy, and loaded first, so that
//!    glibc satisfies the name by the `DT_SONAME` of the library it already
//!    has and never searches the disk (the library must therefore have
//!    `DT_SONAME` equal to the needed name);
//! 3. a file in the policy's system library directories, owned by root and
//!    writable by nobody else (the file and every directory above it),
//!    loaded first by its absolute path, its own needs first by the same
//!    rule, so that `LD_LIBRARY_PATH` never decides which file it is.
//!
//! `LD_LIBRARY_PATH` and the process's search paths are never consulted.
//! Names with a slash or a `$` token, relative search paths, `$LIB` and
//! `$PLATFORM`, `DT_AUDIT`/`DT_DEPAUDIT`/`DT_FILTER`/`DT_AUXILIARY`,
//! dependency cycles and chains deeper than [`MAX_DEPTH`] are refused,
//! naming the dependency.

use std::collections::BTreeSet;
use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libloading::os::unix::{Library, RTLD_LAZY};
use modhash::elf_dynamic::{Dynamic, DynamicError};
use modhash::policy::{UntrustedReason, Verdict};
use modhash::Digest;

use crate::memfd::{read_module, SealedImage, DEFAULT_SIZE_CAP};

/// Longest chain of libraries needing libraries that is followed. Real
/// modules need a handful; a deeper chain is a module built to make the
/// loader work.
pub const MAX_DEPTH: usize = 16;

/// Most libraries pinned for one module.
pub const MAX_LIBRARIES: usize = 256;

/// The system library directories on this architecture when the policy
/// names none: Debian's multiarch directories, then the plain ones.
pub fn default_system_dirs() -> &'static [PathBuf] {
    static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    DIRS.get_or_init(|| {
        let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
        vec![
            Path::new("/lib").join(&triplet),
            Path::new("/usr/lib").join(&triplet),
            PathBuf::from("/lib"),
            PathBuf::from("/usr/lib"),
        ]
    })
}

/// Why a needed library cannot be part of a trusted module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DependencyError {
    /// A slash, a `$` token, or an empty or dot name: the dynamic loader
    /// would open a path no policy checks.
    #[error(
        "the needed name is a path or holds a `$` token; link against libraries by their DT_SONAME"
    )]
    NotAName,
    /// An entry that makes the dynamic loader load other code.
    #[error("{tag} `{value}` makes the dynamic loader load code that is not a dependency; rebuild without it")]
    LoaderExtension {
        /// The tag.
        tag: &'static str,
        /// Its value.
        value: String,
    },
    /// A search path entry this loader will not follow.
    #[error("search path entry `{0}` is relative or uses $LIB or $PLATFORM; use absolute paths or $ORIGIN")]
    SearchPath(String),
    /// No file of that name in any directory searched.
    #[error("not found in {0}")]
    NotFound(String),
    /// The file found does not answer to the needed name.
    #[error("{path} has DT_SONAME {found}; glibc would look it up on disk again; give it DT_SONAME `{needed}` (-Wl,-soname,{needed})")]
    Soname {
        /// The file found.
        path: PathBuf,
        /// Its DT_SONAME, or "none".
        found: String,
        /// The needed name.
        needed: String,
    },
    /// A library needs, through others, itself.
    #[error("dependency cycle {0}; a cycle cannot be loaded one judged library at a time")]
    Cycle(String),
    /// A chain longer than [`MAX_DEPTH`].
    #[error("more than {MAX_DEPTH} levels of libraries needing libraries")]
    TooDeep,
    /// More than [`MAX_LIBRARIES`] libraries.
    #[error("more than {MAX_LIBRARIES} libraries")]
    TooMany,
    /// A system library someone other than root could have written.
    #[error("{path} {why}; a system library and every directory above it must be owned by root and writable by nobody else")]
    UnsafeSystemPath {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The dynamic section cannot be read, so what the object needs is
    /// unknown.
    #[error("cannot read the dynamic section: {0}")]
    Dynamic(DynamicError),
    /// The file found could not be read, sealed or parsed.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The file found.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What satisfies one needed name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provider {
    /// A library this process has already loaded.
    Loaded,
    /// A module file, read once and judged.
    Module {
        /// Where it was found.
        path: PathBuf,
        /// Its digest under the policy's profile.
        digest: Digest,
        /// The policy's verdict on it.
        verdict: Verdict,
    },
    /// A root-owned system library.
    System {
        /// Its canonical path, which is what is loaded.
        path: PathBuf,
    },
}

/// One needed name and what satisfies it, or why nothing can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The `DT_NEEDED` name.
    pub name: String,
    /// What satisfies it.
    pub provider: Result<Provider, DependencyError>,
}

impl Dependency {
    /// Why this dependency makes its module untrusted, if it does.
    pub fn distrust(&self) -> Option<String> {
        match &self.provider {
            Ok(Provider::Module { verdict, .. }) if !verdict.is_trusted() => Some(
                verdict
                    .to_string()
                    .trim_start_matches("untrusted: ")
                    .to_owned(),
            ),
            Ok(_) => None,
            Err(error) => Some(error.to_string()),
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Ok(Provider::Loaded) => write!(f, "{}: already loaded", self.name),
            Ok(Provider::Module { path, verdict, .. }) => {
                write!(f, "{}: {}: {verdict}", self.name, path.display())
            }
            Ok(Provider::System { path }) => {
                write!(f, "{}: system library {}", self.name, path.display())
            }
            Err(error) => write!(f, "{}: refused: {error}", self.name),
        }
    }
}

/// A library read, sealed and judged: what [`Seal`] gives back.
#[derive(Debug)]
pub struct JudgedLibrary {
    /// The sealed canonical image.
    pub sealed: SealedImage,
    /// Its digest under the policy's profile.
    pub digest: Digest,
    /// The policy's verdict.
    pub verdict: Verdict,
    /// The image's dynamic entries, if they can be read.
    pub dynamic: Result<Dynamic, DynamicError>,
    /// Why the file has no `elf-image` to map (judged under `file` or
    /// `payload` only), when it has none.
    pub unloadable: Option<modhash::elf_image::ElfImageError>,
}

/// How a dependency found in a module directory is read and judged: the
/// loader's own path for modules, so a library is held to the same rule.
pub trait Seal {
    /// Reads `path` once, seals its image and judges it.
    fn seal(&self, path: &Path) -> Result<JudgedLibrary, String>;
}

/// One library to load before the module, in load order.
#[derive(Debug)]
pub(crate) enum Step {
    /// Already loaded: the handle keeps it loaded.
    Loaded(String, Library),
    /// A judged module library in its sealed memfd.
    Module(SealedImage),
    /// A system library, by canonical path.
    System(PathBuf),
}

/// Every needed library of a module, resolved.
#[derive(Debug, Default)]
pub struct Dependencies {
    /// Each name and what satisfies it, in the order they were met.
    pub found: Vec<Dependency>,
    pub(crate) steps: Vec<Step>,
}

impl Dependencies {
    /// Resolves what a module with `dynamic`, read from `path`, needs.
    pub fn resolve(
        path: &Path,
        dynamic: &Result<Dynamic, DynamicError>,
        system_dirs: &[PathBuf],
        seal: &dyn Seal,
    ) -> Self {
        let mut resolver = Resolver {
            seal,
            system_dirs,
            seen: BTreeSet::new(),
            stack: Vec::new(),
            out: Self::default(),
        };
        // An error here is the module's own (its search path or a loader
        // extension): reported under the module's file name.
        let own = dynamic
            .as_ref()
            .map_err(|e| DependencyError::Dynamic(e.clone()))
            .and_then(|dynamic| resolver.needs(dynamic, &origin(path), Kind::Module));
        if let Err(error) = own {
            resolver.out.found.push(Dependency {
                name: path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                provider: Err(error),
            });
        }
        resolver.out
    }

    /// Whether every dependency is pinned to loaded, judged or system
    /// code (trusted or not): only then may the module load in-process.
    pub fn pinned(&self) -> bool {
        self.found.iter().all(|d| d.provider.is_ok())
    }

    /// `verdict` on the module itself, made untrusted by every dependency
    /// that is untrusted or cannot be pinned to judged bytes, each named.
    pub fn judge(&self, verdict: Verdict) -> Verdict {
        let mut distrust = self
            .found
            .iter()
            .filter_map(|d| {
                Some(UntrustedReason::Dependency {
                    name: d.name.clone(),
                    reason: d.distrust()?,
                })
            })
            .peekable();
        if distrust.peek().is_none() {
            return verdict;
        }
        let mut reasons = match verdict {
            Verdict::Untrusted { reasons } => reasons,
            _ => Vec::new(),
        };
        reasons.extend(distrust);
        Verdict::Untrusted { reasons }
    }
}

/// Whose search rules apply to a library's needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A module or module library: its RUNPATH/RPATH, then system dirs.
    Module,
    /// A system library: system directories only.
    System,
}

struct Resolver<'a> {
    seal: &'a dyn Seal,
    system_dirs: &'a [PathBuf],
    /// Names already resolved: glibc binds a name once per process.
    seen: BTreeSet<String>,
    /// The names being resolved, outermost first.
    stack: Vec<String>,
    out: Dependencies,
}

impl Resolver<'_> {
    /// Resolves every name `dynamic` needs. An error here concerns the
    /// object itself (its search path or loader extensions).
    fn needs(
        &mut self,
        dynamic: &Dynamic,
        origin: &Path,
        kind: Kind,
    ) -> Result<(), DependencyError> {
        if let Some((tag, value)) = dynamic.loader_extensions.first() {
            return Err(DependencyError::LoaderExtension {
                tag,
                value: value.clone(),
            });
        }
        let mut dirs = match kind {
            Kind::Module => search_path(dynamic, origin)?,
            Kind::System => Vec::new(),
        };
        dirs.extend(self.system_dirs.iter().cloned());
        for name in &dynamic.needed {
            if self.seen.contains(name) {
                continue;
            }
            let provider = self.one(name, &dirs);
            self.seen.insert(name.clone());
            self.out.found.push(Dependency {
                name: name.clone(),
                provider,
            });
        }
        Ok(())
    }

    fn one(&mut self, name: &str, dirs: &[PathBuf]) -> Result<Provider, DependencyError> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '$']) {
            return Err(DependencyError::NotAName);
        }
        if self.stack.iter().any(|n| n == name) {
            let chain: Vec<&str> = self
                .stack
                .iter()
                .map(String::as_str)
                .chain([name])
                .collect();
            return Err(DependencyError::Cycle(chain.join(" -> ")));
        }
        if let Some(library) = loaded(name) {
            self.out.steps.push(Step::Loaded(name.to_owned(), library));
            return Ok(Provider::Loaded);
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(DependencyError::TooDeep);
        }
        if self.out.found.len() >= MAX_LIBRARIES {
            return Err(DependencyError::TooMany);
        }
        let Some(path) = dirs.iter().map(|d| d.join(name)).find(|p| p.exists()) else {
            let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(DependencyError::NotFound(searched.join(":")));
        };
        self.stack.push(name.to_owned());
        let result = if self
            .system_dirs
            .iter()
            .any(|d| path.parent() == Some(d.as_path()))
        {
            self.system(name, &path)
        } else {
            self.module(name, &path)
        };
        self.stack.pop();
        result
    }

    fn module(&mut self, name: &str, path: &Path) -> Result<Provider, DependencyError> {
        let judged = self
            .seal
            .seal(path)
            .map_err(|reason| DependencyError::Unreadable {
                path: path.to_owned(),
                reason,
            })?;
        let dynamic = judged.dynamic.map_err(DependencyError::Dynamic)?;
        check_soname(name, path, &dynamic)?;
        self.needs(&dynamic, &origin(path), Kind::Module)?;
        self.out.steps.push(Step::Module(judged.sealed));
        Ok(Provider::Module {
            path: path.to_owned(),
            digest: judged.digest,
            verdict: judged.verdict,
        })
    }

    fn system(&mut self, name: &str, path: &Path) -> Result<Provider, DependencyError> {
        let unreadable = |reason: String| DependencyError::Unreadable {
            path: path.to_owned(),
            reason,
        };
        let real = std::fs::canonicalize(path).map_err(|e| unreadable(e.to_string()))?;
        root_only(&real)?;
        let bytes = read_module(&real, DEFAULT_SIZE_CAP).map_err(|e| unreadable(e.to_string()))?;
        let dynamic = Dynamic::try_from(&*bytes).map_err(DependencyError::Dynamic)?;
        check_soname(name, path, &dynamic)?;
        let origin = real.parent().unwrap_or(Path::new("/")).to_owned();
        self.needs(&dynamic, &origin, Kind::System)?;
        self.out.steps.push(Step::System(real.clone()));
        Ok(Provider::System { path: real })
    }
}

/// The library glibc already has loaded under `name` (by file name or
/// DT_SONAME, the same match it makes for a DT_NEEDED), if any.
pub(crate) fn loaded(name: &str) -> Option<Library> {
    // SAFETY: RTLD_NOLOAD never maps a library or runs any of its code; it
    // only looks up one that is already loaded and takes a reference,
    // which dropping the handle releases.
    unsafe { Library::open(Some(name), RTLD_LAZY | libc::RTLD_NOLOAD) }.ok()
}

/// The directory the dynamic loader would take as `$ORIGIN` for an object
/// opened by `path`: its directory as given, made absolute.
fn origin(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    absolute.parent().unwrap_or(Path::new("/")).to_owned()
}

/// The object's own search path: DT_RUNPATH, or DT_RPATH when there is no
/// DT_RUNPATH (glibc ignores DT_RPATH then), `$ORIGIN` expanded.
fn search_path(dynamic: &Dynamic, origin: &Path) -> Result<Vec<PathBuf>, DependencyError> {
    let Some(list) = dynamic.runpath.as_ref().or(dynamic.rpath.as_ref()) else {
        return Ok(Vec::new());
    };
    let origin = origin.to_string_lossy();
    list.split(':')
        .map(|entry| {
            let expanded = entry
                .replace("${ORIGIN}", &origin)
                .replace("$ORIGIN", &origin);
            if expanded.contains('$') || !expanded.starts_with('/') {
                return Err(DependencyError::SearchPath(entry.to_owned()));
            }
            Ok(PathBuf::from(expanded))
        })
        .collect()
}

fn check_soname(needed: &str, path: &Path, dynamic: &Dynamic) -> Result<(), DependencyError> {
    if dynamic.soname.as_deref() == Some(needed) {
        return Ok(());
    }
    Err(DependencyError::Soname {
        path: path.to_owned(),
        found: dynamic
            .soname
            .as_ref()
            .map_or_else(|| "none".to_owned(), |s| format!("`{s}`")),
        needed: needed.to_owned(),
    })
}

/// Checks that `real` (a canonical path) and every directory above it are
/// owned by root and writable by no group or other user.
fn root_only(real: &Path) -> Result<(), DependencyError> {
    for path in real.ancestors() {
        let unsafe_path = |why| DependencyError::UnsafeSystemPath {
            path: path.to_owned(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|_| unsafe_path("cannot be inspected"))?;
        if meta.uid() != 0 {
            return Err(unsafe_path("is not owned by root"));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_path("is writable by group or others"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(runpath: Option<&str>, rpath: Option<&str>) -> Dynamic {
        Dynamic {
            runpath: runpath.map(str::to_owned),
            rpath: rpath.map(str::to_owned),
            ..Dynamic::default()
        }
    }

    #[test]
    fn runpath_wins_over_rpath_and_origin_is_the_module_directory() {
        let origin = Path::new("/opt/host/modules");
        let dirs = search_path(
            &dynamic(Some("$ORIGIN/lib:${ORIGIN}"), Some("/evil")),
            origin,
        )
        .expect("search path");
        assert_eq!(
            dirs,
            [
                PathBuf::from("/opt/host/modules/lib"),
                PathBuf::from("/opt/host/modules")
            ]
        );
        let dirs = search_path(&dynamic(None, Some("/opt/lib")), origin).expect("rpath");
        assert_eq!(dirs, [PathBuf::from("/opt/lib")]);
    }

    #[test]
    fn relative_entries_and_other_tokens_are_refused() {
        let origin = Path::new("/m");
        for entry in ["lib", "", "$LIB", "/x/$PLATFORM", "${LIB}/x", "/a::/b"] {
            assert!(
                matches!(
                    search_path(&dynamic(Some(entry), None), origin),
                    Err(DependencyError::SearchPath(_))
                ),
                "{entry:?} accepted"
            );
        }
    }

    /// Never asked: every name below is refused before any file is read.
    struct NoSeal;

    impl Seal for NoSeal {
        fn seal(&self, path: &Path) -> Result<JudgedLibrary, String> {
            Err(format!("{} was read", path.display()))
        }
    }

    #[test]
    fn names_that_are_paths_or_tokens_are_refused_without_reading_anything() {
        let names = [
            "$ORIGIN/x.so",
            "${LIB}x.so",
            "../x.so",
            "/x.so",
            "..",
            ".",
            "",
        ];
        let dynamic = Dynamic {
            needed: names.iter().map(|n| (*n).to_owned()).collect(),
            ..Dynamic::default()
        };
        let dirs = [PathBuf::from("/nonexistent")];
        let found = Dependencies::resolve(Path::new("/m/x.so"), &Ok(dynamic), &dirs, &NoSeal).found;
        assert_eq!(found.len(), names.len());
        for dependency in found {
            assert_eq!(
                dependency.provider,
                Err(DependencyError::NotAName),
                "{dependency}"
            );
        }
    }

    #[test]
    fn more_than_the_bound_of_libraries_is_refused() {
        let dynamic = Dynamic {
            needed: (0..MAX_LIBRARIES + 3)
                .map(|i| format!("libnone{i}.so"))
                .collect(),
            ..Dynamic::default()
        };
        let found = Dependencies::resolve(Path::new("/m/x.so"), &Ok(dynamic), &[], &NoSeal).found;
        let too_many = found
            .iter()
            .filter(|d| d.provider == Err(DependencyError::TooMany))
            .count();
        assert_eq!(too_many, 3);
    }

    #[test]
    fn a_world_writable_directory_is_not_a_system_directory() {
        let err = root_only(Path::new("/tmp")).expect_err("/tmp is world-writable");
        assert!(
            err.to_string().contains("writable by group or others"),
            "{err}"
        );
        root_only(Path::new("/usr/lib")).expect("/usr/lib is root's");
    }
}
