//! The manifest: which module digests a build produced, and their root.
//!
//! ```text
//! # modhash manifest v1 profile=elf-image alg=sha256 root=<64 hex>
//! <64 hex digest>  <path relative to the directory given>
//! ```
//!
//! The manifest is canonical text: one spelling per content, lines sorted by
//! path bytes, no timestamps or absolute paths, so the same modules give the
//! same bytes on every machine. It need not be protected: trust comes from
//! the root sealed into the host, and the parser recomputes the root from
//! the body, so an edited manifest either fails to parse or has another
//! root. With profile `file` the body lines are `sha256sum -c` input.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::digest::{Digest, ParseDigestError};
use crate::input::{self, ReadError};
use crate::merkle;
use crate::profile::{Profile, UnknownProfile};

const HEADER_PREFIX: &str = "# modhash manifest v1 ";

/// A parsed, self-consistent manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    profile: Profile,
    /// Path → digest, sorted by path bytes.
    entries: BTreeMap<String, Digest>,
    /// The sorted, de-duplicated digests: the Merkle tree's leaves.
    leaves: Vec<Digest>,
    root: Digest,
}

/// Why a manifest cannot be built or parsed.
///
/// `Debug` prints the message too, so a host's `main` that returns the error
/// with `?` shows a sentence rather than a struct.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The first line is not a v1 header.
    #[error("line 1: not a modhash manifest header (expected `{HEADER_PREFIX}profile=… alg=sha256 root=…`)")]
    MissingHeader,
    /// A header field is missing, unknown or repeated.
    #[error("line 1: malformed header: {0}")]
    BadHeader(String),
    /// The header names a profile this version does not know.
    #[error("line 1: {0}")]
    UnknownProfile(#[from] UnknownProfile),
    /// A body line is not `<hex>  <path>`.
    #[error("line {line}: expected `<64 hex digest>  <relative path>`")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// A digest is not 64 lowercase hex digits.
    #[error("line {line}: {source}")]
    BadDigest {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        source: ParseDigestError,
    },
    /// A path is unusable in a manifest.
    #[error("line {line}: path {path:?} {why}")]
    BadPath {
        /// 1-based line number (0 when building).
        line: usize,
        /// The path.
        path: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The same path twice.
    #[error("line {line}: duplicate path {path:?}")]
    DuplicatePath {
        /// 1-based line number (0 when building).
        line: usize,
        /// The path.
        path: String,
    },
    /// Lines out of order.
    #[error("line {line}: path {path:?} is out of order; manifests are sorted by path bytes (regenerate it with `modhash manifest`)")]
    Unsorted {
        /// 1-based line number.
        line: usize,
        /// The path.
        path: String,
    },
    /// The header's root is not the body's.
    #[error("header root {header} does not match the root of the listed digests {computed}; the manifest was edited or truncated")]
    RootMismatch {
        /// Root in the header.
        header: Digest,
        /// Root computed from the body.
        computed: Digest,
    },
    /// Text after the last newline, or a missing final newline.
    #[error("manifest does not end with a newline; it is truncated")]
    MissingFinalNewline,
}

impl fmt::Debug for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why [`Manifest::from_file`] failed; the message names the file.
///
/// `Debug` prints the message, as for [`ManifestError`].
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ManifestFileError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// Why.
        source: ReadError,
    },
    /// The file is not UTF-8 text.
    #[error("{}: manifest is not UTF-8 text", path.display())]
    NotText {
        /// The manifest's path.
        path: PathBuf,
    },
    /// The text is not a valid manifest.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong with it.
        source: ManifestError,
    },
}

impl fmt::Debug for ManifestFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn check_path(line: usize, path: &str) -> Result<(), ManifestError> {
    let bad = |why| {
        Err(ManifestError::BadPath {
            line,
            path: path.to_owned(),
            why,
        })
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.starts_with('/') {
        return bad("is absolute; manifest paths are relative to the directory given");
    }
    if path.contains(['\n', '\r', '\\']) {
        return bad("contains a newline or backslash, which the manifest cannot represent");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("has an empty, `.` or `..` component");
    }
    Ok(())
}

impl Manifest {
    /// Reads and parses the manifest at `path` (a regular file, read once).
    ///
    /// The file needs no protection: it is checked against the host's
    /// anchor before it trusts anything.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ManifestFileError> {
        let path = path.as_ref();
        let bytes = input::read_regular(path, input::DEFAULT_MAX_LEN).map_err(|source| {
            ManifestFileError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ManifestFileError::NotText {
            path: path.to_owned(),
        })?;
        text.parse().map_err(|source| ManifestFileError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Builds a manifest from `(relative path, digest)` pairs in any order.
    pub fn new(
        profile: Profile,
        entries: impl IntoIterator<Item = (String, Digest)>,
    ) -> Result<Self, ManifestError> {
        let mut map = BTreeMap::new();
        for (path, digest) in entries {
            check_path(0, &path)?;
            if map.insert(path.clone(), digest).is_some() {
                return Err(ManifestError::DuplicatePath { line: 0, path });
            }
        }
        Ok(Self::from_sorted(profile, map))
    }

    fn from_sorted(profile: Profile, entries: BTreeMap<String, Digest>) -> Self {
        let mut leaves: Vec<Digest> = entries.values().copied().collect();
        leaves.sort_unstable();
        leaves.dedup();
        let root = merkle::root(&leaves.iter().map(|d| d.0).collect::<Vec<_>>());
        Self {
            profile,
            entries,
            leaves,
            root,
        }
    }

    /// The profile the digests were computed under.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The Merkle root over the distinct digests.
    pub fn root(&self) -> Digest {
        self.root
    }

    /// The number of distinct digests (the tree's leaf count).
    pub fn leaf_count(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The sorted, distinct digests.
    pub fn leaves(&self) -> &[Digest] {
        &self.leaves
    }

    /// Path → digest, sorted by path bytes.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Digest)> {
        self.entries.iter().map(|(p, d)| (p.as_str(), d))
    }

    /// The leaf index of `digest`, if the manifest lists it.
    pub fn leaf_index(&self, digest: &Digest) -> Option<usize> {
        self.leaves.binary_search(digest).ok()
    }

    /// Whether the manifest lists `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.leaf_index(digest).is_some()
    }
}

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{HEADER_PREFIX}profile={} alg=sha256 root={}",
            self.profile, self.root
        )?;
        for (path, digest) in &self.entries {
            writeln!(f, "{digest}  {path}")?;
        }
        Ok(())
    }
}

fn parse_header(line: &str) -> Result<(Profile, Digest), ManifestError> {
    let fields = line
        .strip_prefix(HEADER_PREFIX)
        .ok_or(ManifestError::MissingHeader)?;
    let (mut profile, mut alg, mut root) = (None, None, None);
    for field in fields.split(' ') {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| ManifestError::BadHeader(format!("field {field:?} is not key=value")))?;
        let slot = match key {
            "profile" => &mut profile,
            "alg" => &mut alg,
            "root" => &mut root,
            _ => return Err(ManifestError::BadHeader(format!("unknown field {key:?}"))),
        };
        if slot.replace(value).is_some() {
            return Err(ManifestError::BadHeader(format!("field {key:?} repeated")));
        }
    }
    let missing = |k: &str| ManifestError::BadHeader(format!("field {k:?} missing"));
    let profile: Profile = profile.ok_or_else(|| missing("profile"))?.parse()?;
    let alg = alg.ok_or_else(|| missing("alg"))?;
    if alg != "sha256" {
        return Err(ManifestError::BadHeader(format!(
            "hash algorithm {alg:?} is not supported (only sha256)"
        )));
    }
    let root = root
        .ok_or_else(|| missing("root"))?
        .parse()
        .map_err(|e| ManifestError::BadHeader(format!("root: {e}")))?;
    Ok((profile, root))
}

impl FromStr for Manifest {
    type Err = ManifestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text
            .strip_suffix('\n')
            .ok_or(ManifestError::MissingFinalNewline)?;
        let mut lines = body.split('\n');
        let (profile, header_root) = parse_header(lines.next().unwrap_or_default())?;
        let mut entries = BTreeMap::new();
        let mut previous: Option<&str> = None;
        for (index, line) in lines.enumerate() {
            let number = index + 2;
            let (hex, path) = line
                .split_once("  ")
                .ok_or(ManifestError::BadLine { line: number })?;
            let digest = hex.parse().map_err(|source| ManifestError::BadDigest {
                line: number,
                source,
            })?;
            check_path(number, path)?;
            if let Some(prev) = previous {
                if prev == path {
                    return Err(ManifestError::DuplicatePath {
                        line: number,
                        path: path.to_owned(),
                    });
                }
                if prev.as_bytes() > path.as_bytes() {
                    return Err(ManifestError::Unsorted {
                        line: number,
                        path: path.to_owned(),
                    });
                }
            }
            previous = Some(path);
            entries.insert(path.to_owned(), digest);
        }
        let manifest = Self::from_sorted(profile, entries);
        if manifest.root != header_root {
            return Err(ManifestError::RootMismatch {
                header: header_root,
                computed: manifest.root,
            });
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest::new(
            Profile::File,
            [
                ("b.so".to_owned(), Digest::sha256(b"b")),
                ("a.so".to_owned(), Digest::sha256(b"a")),
                ("dir/a-copy.so".to_owned(), Digest::sha256(b"a")),
            ],
        )
        .unwrap()
    }

    #[test]
    fn text_round_trips_and_is_sorted() {
        let m = sample();
        let text = m.to_string();
        let paths: Vec<&str> = text.lines().skip(1).map(|l| &l[66..]).collect();
        assert_eq!(paths, ["a.so", "b.so", "dir/a-copy.so"]);
        assert_eq!(text.parse::<Manifest>().unwrap(), m);
    }

    #[test]
    fn equal_digests_are_one_leaf() {
        assert_eq!(sample().leaf_count(), 2);
    }

    #[test]
    fn edited_digest_breaks_the_root() {
        let text = sample().to_string();
        let edited = text.replacen(
            &Digest::sha256(b"b").to_hex(),
            &Digest::sha256(b"evil").to_hex(),
            1,
        );
        assert!(matches!(
            edited.parse::<Manifest>(),
            Err(ManifestError::RootMismatch { .. })
        ));
    }

    #[test]
    fn malformed_inputs_are_rejected_with_their_line() {
        let text = sample().to_string();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.swap(1, 2);
        let unsorted = lines.join("\n") + "\n";
        assert!(matches!(
            unsorted.parse::<Manifest>(),
            Err(ManifestError::Unsorted { line: 3, .. })
        ));
        assert_eq!(
            text.trim_end().parse::<Manifest>(),
            Err(ManifestError::MissingFinalNewline)
        );
        assert_eq!(
            "".parse::<Manifest>(),
            Err(ManifestError::MissingFinalNewline)
        );
        assert_eq!(
            "hello\n".parse::<Manifest>(),
            Err(ManifestError::MissingHeader)
        );
        let single_space = text.replacen("  a.so", " a.so", 1);
        assert!(matches!(
            single_space.parse::<Manifest>(),
            Err(ManifestError::BadLine { line: 2 } | ManifestError::BadDigest { line: 2, .. })
        ));
    }

    #[test]
    fn duplicate_paths_are_rejected() {
        let text = sample().to_string();
        let first_body_line = text.lines().nth(1).unwrap();
        let dup = text.replacen(
            first_body_line,
            &format!("{first_body_line}\n{first_body_line}"),
            1,
        );
        assert!(matches!(
            dup.parse::<Manifest>(),
            Err(ManifestError::DuplicatePath { line: 3, .. })
        ));
    }

    #[test]
    fn hostile_paths_are_refused() {
        for path in ["/etc/passwd", "../x", "a//b", "a\nb", ""] {
            assert!(
                Manifest::new(Profile::File, [(path.to_owned(), Digest::sha256(b""))]).is_err()
            );
        }
    }

    #[test]
    fn from_file_errors_name_the_file_and_read_as_sentences() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.manifest");
        let error = Manifest::from_file(&missing).expect_err("missing");
        assert_eq!(
            format!("{error:?}"),
            format!("{}: no such file", missing.display())
        );

        let bad = dir.path().join("bad.manifest");
        std::fs::write(&bad, "not a manifest\n").expect("write");
        let error = Manifest::from_file(&bad).expect_err("bad");
        assert!(matches!(error, ManifestFileError::Parse { .. }));
        assert_eq!(format!("{error:?}"), error.to_string());
        assert!(error
            .to_string()
            .starts_with(&format!("{}: line 1:", bad.display())));

        let good = dir.path().join("good.manifest");
        std::fs::write(&good, sample().to_string()).expect("write");
        assert_eq!(Manifest::from_file(&good).expect("good"), sample());
    }
}
