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

use std::cmp::Ordering;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
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
    /// Every path, concatenated in order: one allocation for the whole
    /// manifest rather than one per line.
    paths: String,
    /// Sorted by path bytes, distinct paths.
    entries: Vec<Entry>,
    /// The sorted, de-duplicated digests: the Merkle tree's leaves.
    leaves: Vec<Digest>,
    root: Digest,
}

/// One line: where its path ends in `Manifest::paths` (it starts where the
/// previous one ends), and its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    end: usize,
    digest: Digest,
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

/// Whether `path` passes every test of [`check_path`], in one pass over
/// its bytes; `check_path` then only runs to name what is wrong.
fn is_clean_path(path: &[u8]) -> bool {
    // The current component's length, and how many of its bytes are dots.
    let (mut length, mut dots) = (0usize, 0usize);
    let bad_component = |length: usize, dots: usize| length == 0 || (length <= 2 && dots == length);
    for &byte in path {
        match byte {
            b'/' => {
                if bad_component(length, dots) {
                    return false;
                }
                (length, dots) = (0, 0);
            }
            b'\n' | b'\r' | b'\\' => return false,
            b'.' => (length, dots) = (length + 1, dots + 1),
            _ => length += 1,
        }
    }
    !bad_component(length, dots)
}

/// Why [`Manifest::from_reader`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadManifestError {
    /// Reading failed.
    #[error("cannot read the manifest: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not UTF-8.
    #[error("line {line}: manifest is not UTF-8 text")]
    NotText {
        /// 1-based line number.
        line: usize,
    },
    /// The text is not a valid manifest.
    #[error(transparent)]
    Parse(#[from] ManifestError),
}

impl ReadManifestError {
    /// This error as reported for a text `lines` lines longer at its start.
    fn after_lines(self, lines: usize) -> Self {
        match self {
            ReadManifestError::NotText { line } => {
                ReadManifestError::NotText { line: line + lines }
            }
            ReadManifestError::Parse(error) => ReadManifestError::Parse(error.after_lines(lines)),
            other => other,
        }
    }
}

impl ManifestError {
    /// See [`ReadManifestError::after_lines`].
    fn after_lines(mut self, lines: usize) -> Self {
        match &mut self {
            ManifestError::BadLine { line }
            | ManifestError::BadDigest { line, .. }
            | ManifestError::BadPath { line, .. }
            | ManifestError::DuplicatePath { line, .. }
            | ManifestError::Unsorted { line, .. } => *line += lines,
            _ => {}
        }
        self
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
    if path.bytes().any(|b| matches!(b, b'\n' | b'\r' | b'\\')) {
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

/// Paths and their digests, appended in order, refused as soon as one is
/// not strictly after the one before: the manifest's order is its path
/// bytes', and a repeated path would give one file two digests.
#[derive(Default)]
struct SortedEntries {
    paths: String,
    entries: Vec<Entry>,
}

impl SortedEntries {
    fn with_capacity(lines: usize, path_bytes: usize) -> Self {
        Self {
            paths: String::with_capacity(path_bytes),
            entries: Vec::with_capacity(lines),
        }
    }

    fn last_path(&self) -> Option<&str> {
        let start = match self.entries.len().checked_sub(2) {
            Some(before) => self.entries.get(before)?.end,
            None => 0,
        };
        self.entries.last()?;
        self.paths.get(start..)
    }

    fn first_path(&self) -> Option<&str> {
        self.paths.get(..self.entries.first()?.end)
    }

    fn push(&mut self, line: usize, path: &str, digest: Digest) -> Result<(), ManifestError> {
        if !is_clean_path(path.as_bytes()) {
            check_path(line, path)?;
        }
        self.check_next(line, path)?;
        self.paths.push_str(path);
        self.entries.push(Entry {
            end: self.paths.len(),
            digest,
        });
        Ok(())
    }

    /// Refuses `path` unless it sorts strictly after the last one.
    fn check_next(&self, line: usize, path: &str) -> Result<(), ManifestError> {
        match self
            .last_path()
            .map(|last| last.as_bytes().cmp(path.as_bytes()))
        {
            Some(Ordering::Equal) => Err(ManifestError::DuplicatePath {
                line,
                path: path.to_owned(),
            }),
            Some(Ordering::Greater) => Err(ManifestError::Unsorted {
                line,
                path: path.to_owned(),
            }),
            Some(Ordering::Less) | None => Ok(()),
        }
    }

    /// Appends `later`, whose paths sort after these (checked by the
    /// caller).
    fn extend(&mut self, later: SortedEntries) {
        let base = self.paths.len();
        self.paths.push_str(&later.paths);
        self.entries.extend(later.entries.iter().map(|entry| Entry {
            end: base + entry.end,
            digest: entry.digest,
        }));
    }
}

/// The sorted, distinct digests.
///
/// Digests are uniformly distributed, so their first two bytes spread
/// them evenly over 65,536 buckets: one counting pass and one scatter put
/// each in its bucket, and the buckets (1.5 digests each at 100,000) are
/// sorted alone: for 100,000 digests 6.6 M instructions where the
/// comparison sort took 79 M (callgrind). Digests chosen to share a
/// bucket cost no more than that comparison sort. Small sets are sorted
/// directly.
fn sorted_distinct<'a, I>(digests: I) -> Vec<Digest>
where
    I: DoubleEndedIterator<Item = &'a Digest> + ExactSizeIterator + Clone,
{
    const BUCKETS: usize = 1 << 16;
    let bucket = |digest: &Digest| match digest.0 {
        [high, low, ..] => usize::from(u16::from_be_bytes([high, low])),
    };
    let mut sorted = if digests.len() < BUCKETS {
        let mut sorted: Vec<Digest> = digests.copied().collect();
        sorted.sort_unstable();
        sorted
    } else {
        // ends[b]: one past where bucket b's digests go, once filled.
        let mut ends = vec![0usize; BUCKETS];
        for digest in digests.clone() {
            if let Some(count) = ends.get_mut(bucket(digest)) {
                *count += 1;
            }
        }
        let mut total = 0;
        for end in &mut ends {
            total += *end;
            *end = total;
        }
        let mut sorted = vec![Digest([0; 32]); digests.len()];
        // Filled from each bucket's end down, so `ends` ends up holding
        // every bucket's start.
        for digest in digests.rev() {
            if let Some(end) = ends.get_mut(bucket(digest)) {
                *end -= 1;
                if let Some(slot) = sorted.get_mut(*end) {
                    *slot = *digest;
                }
            }
        }
        let starts = ends.iter().copied();
        let stops = ends.iter().copied().skip(1).chain([sorted.len()]);
        for (start, stop) in starts.zip(stops) {
            if let Some(bucket) = sorted.get_mut(start..stop) {
                bucket.sort_unstable();
            }
        }
        sorted
    };
    sorted.dedup();
    sorted
}

impl Manifest {
    /// Reads and parses the manifest at `path` (a regular file, read once).
    ///
    /// The file needs no protection: it is checked against the host's
    /// anchor before it trusts anything. It is streamed through a 64 KiB
    /// buffer ([`Manifest::from_reader`]), never past the length it had when
    /// opened; from 1 MiB on, its two halves are parsed on two threads at
    /// once, which accepts and refuses exactly what one thread does.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ManifestFileError> {
        let path = path.as_ref();
        let read_error = |source| ManifestFileError::Read {
            path: path.to_owned(),
            source,
        };
        let (file, len) = input::open_regular(path, input::DEFAULT_MAX_LEN).map_err(read_error)?;
        Self::from_opened(&file, len, PARALLEL_TEXT).map_err(|error| match error {
            ReadManifestError::Io(e) => read_error(ReadError::from(e)),
            ReadManifestError::NotText { .. } => ManifestFileError::NotText {
                path: path.to_owned(),
            },
            ReadManifestError::Parse(source) => ManifestFileError::Parse {
                path: path.to_owned(),
                source,
            },
        })
    }

    /// Builds a manifest from `(relative path, digest)` pairs in any order.
    pub fn new(
        profile: Profile,
        entries: impl IntoIterator<Item = (String, Digest)>,
    ) -> Result<Self, ManifestError> {
        let mut pairs: Vec<(String, Digest)> = entries.into_iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let path_bytes = pairs.iter().map(|(path, _)| path.len()).sum();
        let mut sorted = SortedEntries::with_capacity(pairs.len(), path_bytes);
        for (path, digest) in pairs {
            sorted.push(0, &path, digest)?;
        }
        Ok(Self::from_sorted(profile, sorted))
    }

    fn from_sorted(profile: Profile, sorted: SortedEntries) -> Self {
        let SortedEntries { paths, entries } = sorted;
        let leaves = sorted_distinct(entries.iter().map(|entry| &entry.digest));
        let root = merkle::root(&leaves);
        Self {
            profile,
            paths,
            entries,
            leaves,
            root,
        }
    }

    /// Reads and parses a manifest from `reader`, one line at a time: a
    /// host checking a 100,000-line manifest at start-up then needs no
    /// buffer for the whole text (the kernel took a third of the parse's
    /// time, copying the file in and faulting in fresh memory). Accepts
    /// exactly what [`str::parse`] accepts; of two faults in one manifest
    /// it may name another first.
    ///
    /// `len_hint`, the text's length if known, sizes the tables up front.
    pub fn from_reader(
        reader: impl std::io::BufRead,
        len_hint: usize,
    ) -> Result<Self, ReadManifestError> {
        let mut parser = Parser::with_capacity(len_hint);
        parser.read_lines(reader)?;
        if parser.lines == 0 {
            return Err(ManifestError::MissingFinalNewline.into());
        }
        Ok(parser.finish()?)
    }

    /// [`Manifest::from_file`] once the file is open and `len` bytes long:
    /// a text of at least `parallel_from` bytes is cut at the first line
    /// that starts after its middle, and the two halves are parsed at the
    /// same time, the second on a thread of its own.
    ///
    /// Why: at start-up a host parsing a 100,000-line manifest spends most
    /// of the parse decoding digests, checking paths and faulting in the
    /// tables that hold them; the halves do that on two cores, and only
    /// the join (the second half's tables appended to the first's, the
    /// order checked across the cut) is added. Errors are the ones one
    /// thread would report first: the first half's, then the line after
    /// the cut, then the second half's, its line numbers counted from the
    /// file's start.
    fn from_opened(file: &File, len: u64, parallel_from: u64) -> Result<Self, ReadManifestError> {
        let total = usize::try_from(len).unwrap_or(0);
        let whole = || Self::from_reader(span(file, 0, len), total);
        let Some(cut) = cut_after_middle(file, len, parallel_from)? else {
            return whole();
        };
        let second_len = usize::try_from(len - cut).unwrap_or(0);
        let parse_second = || {
            let mut second = Parser::body_with_capacity(second_len);
            let result = second.read_lines(span(file, cut, len));
            (second, result)
        };
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .spawn_scoped(scope, parse_second)
                .ok();
            let mut first = Parser::with_capacity(total);
            let first_result = first.read_lines(span(file, 0, cut));
            let (second, second_result) = match thread.map(|thread| thread.join()) {
                Some(Ok(parsed)) => parsed,
                // No thread could be started (or it died): parse the second
                // half here.
                _ => parse_second(),
            };
            first_result?;
            first.append(second, second_result)?;
            Ok(first.finish()?)
        })
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
        let starts = std::iter::once(0).chain(self.entries.iter().map(|entry| entry.end));
        starts.zip(&self.entries).map(|(start, entry)| {
            let path = self.paths.get(start..entry.end).unwrap_or_default();
            (path, &entry.digest)
        })
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
        for (path, digest) in self.entries() {
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

/// Where [`Manifest::from_file`] starts parsing on two threads: below 1 MiB
/// (about 10,000 lines) a second thread's start costs more than it saves.
const PARALLEL_TEXT: u64 = 1 << 20;

/// How far past the middle of a manifest a line start is looked for; a
/// text whose lines are longer than this is parsed on one thread.
const CUT_WINDOW: usize = 64 << 10;

/// Bytes `[start, end)` of `file`, buffered, read with `pread` so that two
/// threads can read one descriptor without sharing its offset.
fn span(file: &File, start: u64, end: u64) -> std::io::BufReader<Span<'_>> {
    std::io::BufReader::with_capacity(64 << 10, Span { file, start, end })
}

/// See [`span`].
struct Span<'a> {
    file: &'a File,
    start: u64,
    end: u64,
}

impl Read for Span<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.start)).unwrap_or(usize::MAX);
        let Some(buf) = buf.get_mut(..left.min(buf.len())) else {
            return Ok(0);
        };
        let read = self.file.read_at(buf, self.start)?;
        self.start += read as u64;
        Ok(read)
    }
}

/// The offset of the first line starting after the middle of a `len`-byte
/// `file`, if the file is at least `parallel_from` bytes long and such a
/// line starts within [`CUT_WINDOW`] of the middle.
fn cut_after_middle(file: &File, len: u64, parallel_from: u64) -> std::io::Result<Option<u64>> {
    if len < parallel_from.max(2) {
        return Ok(None);
    }
    let middle = len / 2;
    let mut window = vec![0; CUT_WINDOW];
    let mut reader = Span {
        file,
        start: middle,
        end: len,
    };
    let read = loop {
        match reader.read(&mut window) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => break other?,
        }
    };
    let newline = window.get(..read).and_then(|w| memchr::memchr(b'\n', w));
    Ok(newline
        .map(|at| middle + at as u64 + 1)
        .filter(|&cut| cut < len))
}

/// A manifest read line by line, whether from a string or a stream.
#[derive(Default)]
struct Parser {
    /// Lines seen so far.
    lines: usize,
    header: Option<(Profile, Digest)>,
    /// Whether the header is behind: always for the second half of a
    /// text parsed in two.
    in_body: bool,
    entries: SortedEntries,
}

impl Parser {
    fn with_capacity(text_len: usize) -> Self {
        // A line is at least a digest, two spaces, one path byte and a
        // newline; the paths are at most what is left of the text.
        Self {
            entries: SortedEntries::with_capacity(text_len / 68, text_len / 2),
            ..Self::default()
        }
    }

    /// A parser for the lines after a header someone else parses.
    fn body_with_capacity(text_len: usize) -> Self {
        Self {
            in_body: true,
            ..Self::with_capacity(text_len)
        }
    }

    /// Takes the next line, without its newline.
    fn line(&mut self, line: &str) -> Result<(), ManifestError> {
        self.lines += 1;
        if !self.in_body {
            self.header = Some(parse_header(line)?);
            self.in_body = true;
            return Ok(());
        }
        let (digest, path) = parse_line(self.lines, line)?;
        self.entries.push(self.lines, path, digest)
    }

    /// Takes every line `reader` gives, each ended by a newline.
    fn read_lines(&mut self, mut reader: impl std::io::BufRead) -> Result<(), ReadManifestError> {
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let Some(text) = line.strip_suffix(b"\n") else {
                return Err(ManifestError::MissingFinalNewline.into());
            };
            let text = std::str::from_utf8(text).map_err(|_| ReadManifestError::NotText {
                line: self.lines + 1,
            })?;
            self.line(text)?;
        }
    }

    /// Appends the lines `second` parsed, which followed this parser's in
    /// the text, and reports what one parser reading both would have
    /// reported first: `second`'s fault on its first line, else the order
    /// across the cut, else `second`'s fault.
    fn append(
        &mut self,
        second: Parser,
        second_result: Result<(), ReadManifestError>,
    ) -> Result<(), ReadManifestError> {
        let offset = self.lines;
        let second_result = second_result.map_err(|error| error.after_lines(offset));
        if let Some(first_path) = second.entries.first_path() {
            self.entries.check_next(offset + 1, first_path)?;
        }
        second_result?;
        self.entries.extend(second.entries);
        self.lines += second.lines;
        Ok(())
    }

    fn finish(self) -> Result<Manifest, ManifestError> {
        let (profile, header_root) = self.header.ok_or(ManifestError::MissingHeader)?;
        let manifest = Manifest::from_sorted(profile, self.entries);
        if manifest.root != header_root {
            return Err(ManifestError::RootMismatch {
                header: header_root,
                computed: manifest.root,
            });
        }
        Ok(manifest)
    }
}

/// `text.split('\n')`, finding the newlines with `memchr`'s vector search
/// rather than `str::split`'s byte-at-a-time one (7% of parsing).
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text.as_bytes())
        .chain(std::iter::once(text.len()))
        .map(move |end| {
            let line = text.get(start..end).unwrap_or_default();
            start = end + 1;
            line
        })
}

/// `<64 hex>  <path>`. The common case, a valid digest followed by two
/// spaces, is read in place; anything else goes the general way, which
/// finds the first two spaces and names what is wrong.
fn parse_line(number: usize, line: &str) -> Result<(Digest, &str), ManifestError> {
    if let (Some(hex), Some(b"  "), Some(path)) = (
        line.as_bytes().get(..64),
        line.as_bytes().get(64..66),
        line.get(66..),
    ) {
        if let Ok(digest) = Digest::from_hex(hex) {
            return Ok((digest, path));
        }
    }
    let (hex, path) = line
        .split_once("  ")
        .ok_or(ManifestError::BadLine { line: number })?;
    let digest = hex.parse().map_err(|source| ManifestError::BadDigest {
        line: number,
        source,
    })?;
    Ok((digest, path))
}

impl FromStr for Manifest {
    type Err = ManifestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let body = text
            .strip_suffix('\n')
            .ok_or(ManifestError::MissingFinalNewline)?;
        let mut parser = Parser::with_capacity(body.len());
        for line in split_lines(body) {
            parser.line(line)?;
        }
        parser.finish()
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
    fn the_one_pass_path_test_accepts_exactly_what_check_path_accepts() {
        let alphabet = ["a", ".", "/", "\\", "\r", "\n", "é"];
        let mut paths = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            paths.extend(longer);
        }
        for path in paths {
            assert_eq!(
                is_clean_path(path.as_bytes()),
                check_path(2, &path).is_ok(),
                "{path:?}"
            );
        }
    }

    #[test]
    fn bucketed_digests_sort_as_their_bytes() {
        for count in [0, 1, 1000, 65_535, 65_536, 150_000] {
            let digests: Vec<Digest> = (0u32..count)
                .map(|i| Digest::sha256(&(i % 70_000).to_le_bytes()))
                .collect();
            let mut expected = digests.clone();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(sorted_distinct(digests.iter()), expected, "{count} digests");
        }
    }

    #[test]
    fn a_stream_parses_as_the_text_does() {
        let text = sample().to_string();
        let from_stream = |bytes: &[u8]| Manifest::from_reader(bytes, bytes.len());
        assert_eq!(from_stream(text.as_bytes()).unwrap(), sample());
        let cases = [
            String::new(),
            "\n".to_owned(),
            text.trim_end().to_owned(),
            text.replacen("  a.so", " a.so", 1),
            text.replacen("a.so", "../a.so", 1),
            text.replacen("b.so", "a.so", 1),
            text.lines().take(2).map(|l| format!("{l}\n")).collect(),
            format!("{text}\n"),
        ];
        for case in cases {
            let expected = case.parse::<Manifest>().expect_err("a broken manifest");
            match from_stream(case.as_bytes()) {
                Err(ReadManifestError::Parse(error)) => assert_eq!(error, expected, "{case:?}"),
                other => panic!("{case:?}: {other:?}"),
            }
        }
        let mut latin1 = text.into_bytes();
        latin1.extend_from_slice(b"not\xe9utf8\n");
        assert!(matches!(
            from_stream(&latin1),
            Err(ReadManifestError::NotText { line: 5 })
        ));
    }

    /// Every fault a line can have, at every line, with the text cut at
    /// its middle: two threads report what one reports.
    #[test]
    fn a_text_parsed_in_two_halves_parses_as_in_one() {
        let entries = (0..120).map(|i| {
            (
                format!("dir/module-{i:03}.so"),
                Digest::sha256(&[i as u8 % 50]),
            )
        });
        let text = Manifest::new(Profile::File, entries).unwrap().to_string();
        let lines: Vec<&str> = text.lines().collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m");
        let parse = |bytes: &[u8], parallel_from: u64| {
            std::fs::write(&path, bytes).expect("write");
            let file = File::open(&path).expect("open");
            Manifest::from_opened(&file, bytes.len() as u64, parallel_from)
                .map_err(|error| error.to_string())
        };
        let check = |bytes: Vec<u8>| {
            let one = parse(&bytes, u64::MAX);
            assert_eq!(parse(&bytes, 2), one, "{}", String::from_utf8_lossy(&bytes));
            one
        };
        assert_eq!(check(text.clone().into_bytes()), Ok(text.parse().unwrap()));
        let mut refused = 0;
        for at in 1..lines.len() {
            let previous = lines[at - 1].get(66..).unwrap_or("x").to_owned();
            let faults: [&dyn Fn(&str) -> String; 7] = [
                &|line| line.replacen("  ", " ", 1),
                &|line| line.replacen(|c: char| c.is_ascii_hexdigit(), "g", 1),
                &|line| line.replacen("dir/", "../", 1),
                &|line| format!("{}{}", &line[..66], previous),
                &|line| format!("{}a", &line[..66]),
                &|line| format!("{line}\n{line}"),
                &|_| String::new(),
            ];
            for fault in faults {
                let mut edited = lines.clone();
                let line = fault(lines[at]);
                edited[at] = &line;
                let bytes = format!("{}\n", edited.join("\n")).into_bytes();
                refused += usize::from(check(bytes).is_err());
            }
            let mut latin1 = text.clone().into_bytes();
            let start: usize = lines[..at].iter().map(|l| l.len() + 1).sum();
            latin1[start + 70] = 0xe9;
            assert!(check(latin1).is_err());
        }
        assert!(refused > 6 * (lines.len() - 1), "{refused} refused");
        assert!(check(text.trim_end().as_bytes().to_vec()).is_err());
        let root_at = text.find("root=").unwrap() + 5;
        let mut edited_root = text.clone().into_bytes();
        edited_root[root_at] = if edited_root[root_at] == b'0' {
            b'1'
        } else {
            b'0'
        };
        assert!(check(edited_root)
            .unwrap_err()
            .contains("does not match the root"));
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
