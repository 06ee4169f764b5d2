//! A module tree hashed into a manifest, as `modhash manifest` does, for
//! build scripts that make the manifest themselves.
//!
//! The walk is deterministic and never follows symlinks: paths are
//! relative to the root with `/` separators and sorted by bytes, so the
//! manifest does not depend on the order the filesystem returns entries in
//! or on where the tree sits. Files are hashed on all cores as soon as the
//! walk finds them.
//!
//! A manifest has one profile, in its header. Under [`ProfileRule::Auto`]
//! every file must resolve to the same profile, or the tree is refused
//! naming two files that disagree: a manifest whose lines were hashed under
//! different profiles could not say which bytes each digest covers.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::compressed;
use crate::input::{ReadBuffer, ReadError, DEFAULT_MAX_LEN};
use crate::manifest::{Manifest, ManifestError};
use crate::profile::{Profile, ProfileError, ProfileRule};
use crate::stream::{self, Streamed};
use crate::Digest;

/// The profile of a manifest of no files under [`ProfileRule::Auto`]: the
/// one that fits the shared objects a host loads.
pub const EMPTY_TREE_PROFILE: Profile = Profile::ElfImage;

/// What a directory entry is, without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// A FIFO, socket or device.
    Special,
}

/// One entry below the root.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the root, `/`-separated.
    pub relative: String,
    /// Path to open.
    pub path: PathBuf,
    /// Its kind.
    pub kind: EntryKind,
}

/// Which files of a tree to take, by glob on the relative path.
#[derive(Debug, Clone, Default)]
pub struct Include(Option<GlobSet>);

/// A glob that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("glob {glob}: {reason}")]
pub struct IncludeError {
    /// The glob as given.
    pub glob: String,
    /// Why it does not compile.
    pub reason: String,
}

impl Include {
    /// Every file.
    pub fn all() -> Self {
        Self(None)
    }

    /// The files matching any of `globs` (`*.so`, `**/*.ko`); every file
    /// when there are none.
    pub fn globs<S: AsRef<str>>(globs: &[S]) -> Result<Self, IncludeError> {
        if globs.is_empty() {
            return Ok(Self::all());
        }
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            let glob = glob.as_ref();
            let compiled = Glob::new(glob).map_err(|e| IncludeError {
                glob: glob.to_owned(),
                reason: e.kind().to_string(),
            })?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|e| IncludeError {
            glob: globs
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(" "),
            reason: e.to_string(),
        })?;
        Ok(Self(Some(set)))
    }

    /// Whether the file at `relative` is taken.
    pub fn matches(&self, relative: &str) -> bool {
        self.0.as_ref().is_none_or(|set| set.is_match(relative))
    }
}

/// Why a tree or a file could not be hashed. Each message names the path
/// it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The root or an entry could not be read.
    #[error("{}: {}", .path.display(), describe_io(.source))]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root is not a directory.
    #[error("{}: not a directory", .path.display())]
    NotADirectory {
        /// The root.
        path: PathBuf,
    },
    /// A path a manifest cannot hold.
    #[error("{}: path is not valid UTF-8; rename it or leave it out with --include", .path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// A listed path that is not below the directory given.
    #[error("{}: not below {}; list paths relative to it, without `..`", .path.display(), .root.display())]
    Outside {
        /// The listed path.
        path: PathBuf,
        /// The directory the list is relative to.
        root: PathBuf,
    },
    /// A file could not be read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// A file has no digest under its profile.
    #[error("{}: profile {profile}: {source}", .path.display())]
    Profile {
        /// The file.
        path: PathBuf,
        /// The profile it was hashed under.
        profile: Profile,
        /// Why.
        #[source]
        source: ProfileError,
    },
    /// `auto` gave two files different profiles.
    #[error("{}: auto gives {first} profile {first_profile} but {second} profile {second_profile}; a manifest has one profile: give one (--profile), or make one manifest per kind of file (--include)", .root.display())]
    MixedProfiles {
        /// The tree.
        root: PathBuf,
        /// The first file in path order.
        first: String,
        /// Its profile.
        first_profile: Profile,
        /// The first file with another profile.
        second: String,
        /// Its profile.
        second_profile: Profile,
    },
    /// The files make no valid manifest (a path it cannot hold).
    #[error("{}: {source}", .root.display())]
    Manifest {
        /// The tree.
        root: PathBuf,
        /// Why.
        #[source]
        source: ManifestError,
    },
}

/// An I/O error as the short sentence users expect.
pub fn describe_io(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => error.to_string(),
    }
}

/// Every entry below `root` (directories included), sorted by relative
/// path; files `include` leaves out are left out (directories always stay,
/// so a diff can report them).
pub fn walk(root: &Path, include: &Include) -> Result<Vec<Entry>, TreeError> {
    let mut entries = entries(root, include)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by(|a, b| a.relative.as_bytes().cmp(b.relative.as_bytes()));
    Ok(entries)
}

/// The entries of [`walk`] in the order the filesystem returns them, as
/// they are found, so work on the first ones can start before the walk
/// ends.
pub fn entries<'a>(
    root: &'a Path,
    include: &'a Include,
) -> Result<impl Iterator<Item = Result<Entry, TreeError>> + Send + 'a, TreeError> {
    let meta = std::fs::metadata(root).map_err(|source| TreeError::Io {
        path: root.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(TreeError::NotADirectory {
            path: root.to_owned(),
        });
    }
    let walker = walkdir::WalkDir::new(root).follow_links(false).min_depth(1);
    Ok(walker.into_iter().filter_map(move |item| {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_owned();
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
                return Some(Err(TreeError::Io { path, source }));
            }
        };
        let relative = match relative_path(root, item.path()) {
            Ok(relative) => relative,
            Err(error) => return Some(Err(error)),
        };
        let file_type = item.file_type();
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Special
        };
        if kind != EntryKind::Directory && !include.matches(&relative) {
            return None;
        }
        Some(Ok(Entry {
            relative,
            path: item.into_path(),
            kind,
        }))
    }))
}

fn relative_path(root: &Path, path: &Path) -> Result<String, TreeError> {
    let not_utf8 = || TreeError::NotUtf8 {
        path: path.to_owned(),
    };
    let relative = path.strip_prefix(root).map_err(|_| not_utf8())?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts.map(|p| p.join("/")).ok_or_else(not_utf8)
}

/// Reads the file at `path` once, through `buffer`, and digests it under
/// the profile `rule` gives it: as it is read, in cache-sized chunks
/// ([`stream::digest_regular`]), or, where the chunks cannot decide, whole.
pub fn digest_file(
    path: &Path,
    rule: ProfileRule,
    buffer: &mut ReadBuffer,
) -> Result<(Profile, Digest), TreeError> {
    // A compressed module must be decompressed before it is hashed.
    let compressed_payload = |head: &[u8]| {
        matches!(
            rule,
            ProfileRule::Auto | ProfileRule::Fixed(Profile::Payload)
        ) && compressed::Compression::detect(head).is_some()
    };
    let streamed = stream::digest_regular(path, DEFAULT_MAX_LEN, rule, buffer, compressed_payload)
        .map_err(|source| TreeError::Read {
            path: path.to_owned(),
            source,
        })?;
    match streamed {
        Streamed::Digest(profile, digest) => Ok((profile, digest)),
        Streamed::Whole(bytes) => digest_bytes(path, rule, bytes),
    }
}

/// The profile and digest of the file at `path`, whose bytes are `bytes`,
/// under the profile `rule` gives it.
fn digest_bytes(
    path: &Path,
    rule: ProfileRule,
    bytes: &[u8],
) -> Result<(Profile, Digest), TreeError> {
    // A compressed kernel module is hashed as the kernel checks it,
    // decompressed, under `payload` (which `auto` gives it); `file` stays
    // every byte of the file, as sha256sum.
    let profile = match rule {
        ProfileRule::Auto if compressed::Compression::detect(bytes).is_some() => Profile::Payload,
        rule => rule.resolve(bytes),
    };
    let fail = |source| TreeError::Profile {
        path: path.to_owned(),
        profile,
        source,
    };
    let bytes = match profile {
        Profile::Payload => {
            compressed::decompress(bytes, compressed::MAX_DECOMPRESSED)
                .map_err(|e| fail(ProfileError::Decompress(e.to_string())))?
                .bytes
        }
        _ => std::borrow::Cow::Borrowed(bytes),
    };
    let digest = profile.digest(&bytes).map_err(fail)?;
    Ok((profile, digest))
}

/// The manifest of every regular file below `root` that `include` takes,
/// hashed on all cores from the moment the walk finds the first files;
/// `on_file` is called once per file hashed (a progress bar).
pub fn manifest_of_tree(
    root: &Path,
    rule: ProfileRule,
    include: &Include,
    on_file: impl Fn() + Sync,
) -> Result<Manifest, TreeError> {
    let hashed = entries(root, include)?
        .par_bridge()
        .filter_map(|entry| match entry {
            Ok(entry) if entry.kind == EntryKind::File => Some(Ok((entry.relative, entry.path))),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        })
        .map_init(ReadBuffer::new, |buffer, entry| {
            on_file();
            match entry {
                Ok((relative, path)) => {
                    let digest = digest_file(&path, rule, buffer);
                    (relative, digest)
                }
                // A walk error sorts first: it is reported before any file.
                Err(error) => (String::new(), Err(error)),
            }
        })
        .collect();
    manifest_of(root, rule, hashed)
}

/// The manifest of the files named by `relatives` (paths relative to
/// `base`, as a build system lists them), hashed on all cores; `on_file`
/// is called once per file hashed.
pub fn manifest_of_files(
    base: &Path,
    relatives: Vec<String>,
    rule: ProfileRule,
    on_file: impl Fn() + Sync,
) -> Result<Manifest, TreeError> {
    let outside = relatives.iter().find(|relative| {
        Path::new(relative)
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    });
    if let Some(relative) = outside {
        return Err(TreeError::Outside {
            path: relative.into(),
            root: base.to_owned(),
        });
    }
    let hashed = relatives
        .into_par_iter()
        .map_init(ReadBuffer::new, |buffer, relative| {
            on_file();
            let relative = relative.trim_start_matches("./").to_owned();
            let digest = digest_file(&base.join(&relative), rule, buffer);
            (relative, digest)
        })
        .collect();
    manifest_of(base, rule, hashed)
}

/// One file's profile and digest, or why it has none.
type Hashed = Result<(Profile, Digest), TreeError>;

/// The manifest of hashed files, or the first failure in path order,
/// whichever thread met it, so the same tree always gives the same error.
fn manifest_of(
    root: &Path,
    rule: ProfileRule,
    mut hashed: Vec<(String, Hashed)>,
) -> Result<Manifest, TreeError> {
    hashed.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut profile: Option<(String, Profile)> = None;
    let mut digests = Vec::with_capacity(hashed.len());
    for (relative, result) in hashed {
        let (this, digest) = result?;
        match &profile {
            None => profile = Some((relative.clone(), this)),
            Some((first, first_profile)) if *first_profile != this => {
                return Err(TreeError::MixedProfiles {
                    root: root.to_owned(),
                    first: first.clone(),
                    first_profile: *first_profile,
                    second: relative,
                    second_profile: this,
                });
            }
            Some(_) => {}
        }
        digests.push((relative, digest));
    }
    let profile = match (rule, profile) {
        (ProfileRule::Fixed(profile), _) => profile,
        (ProfileRule::Auto, Some((_, profile))) => profile,
        (ProfileRule::Auto, None) => EMPTY_TREE_PROFILE,
    };
    Manifest::new(profile, digests).map_err(|source| TreeError::Manifest {
        root: root.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux_trailer::{MODULE_SIG_MARKER, PKEY_ID_PKCS7};

    /// `len` bytes that do not compress.
    fn noise(len: usize) -> Vec<u8> {
        crate::stream::tests::noise(len, 0x2545_f491_4f6c_dd1d)
    }

    /// A kernel module of `len` bytes, signed with `sig_len` bytes.
    fn module(len: usize, sig_len: u32) -> Vec<u8> {
        let mut file = noise(len);
        file[..20].copy_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x01\0\x3e\0");
        file.extend_from_slice(&noise(sig_len as usize));
        file.extend_from_slice(&[0, 0, PKEY_ID_PKCS7, 0, 0, 0, 0, 0]);
        file.extend_from_slice(&sig_len.to_be_bytes());
        file.extend_from_slice(MODULE_SIG_MARKER);
        file
    }

    #[test]
    fn large_files_digest_as_when_read_whole() {
        let signed = module(1 << 20, 700);
        let mut bad_sig_len = signed.clone();
        let at = bad_sig_len.len() - MODULE_SIG_MARKER.len() - 4;
        bad_sig_len[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let compressed = compressed::Compression::Xz.compress(&signed).unwrap();
        assert!(compressed.len() > stream::CHUNK_LEN);
        let corrupt = compressed[..compressed.len() - 100].to_vec();
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = ReadBuffer::new();
        for (name, bytes) in [
            ("signed.ko", signed),
            ("bad-sig-len.ko", bad_sig_len),
            ("compressed.ko.xz", compressed),
            ("corrupt.ko.xz", corrupt),
            ("noise", noise(3 << 20)),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            for rule in [
                ProfileRule::Auto,
                ProfileRule::Fixed(Profile::File),
                ProfileRule::Fixed(Profile::Payload),
                ProfileRule::Fixed(Profile::ElfImage),
            ] {
                let got = digest_file(&path, rule, &mut buffer);
                let whole = digest_bytes(&path, rule, &bytes);
                assert_eq!(format!("{got:?}"), format!("{whole:?}"), "{name} {rule}");
            }
        }
    }
}
