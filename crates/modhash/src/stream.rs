//! Digesting a module file as it is read, in chunks that stay in the CPU's
//! cache, whatever the file's size.
//!
//! The bytes hashed are exactly those [`Profile::digest`] hashes on the
//! whole file: for `file` every byte; for `payload` the bytes before the
//! trailer, whose length only the file's last bytes tell, so the last
//! [`HOLD_BACK`] bytes wait un-hashed until the end is seen; for
//! `elf-image` each chunk is turned into the image's bytes (the ranges the
//! program headers cover, from the first chunk, kept; the rest zeroed)
//! and reading stops at the image's end.
//!
//! Whatever the chunks cannot decide — a file of one chunk, a compressed
//! module, program headers past the first chunk, a trailer longer than the
//! bytes held back, any malformed header or trailer — is read whole and
//! left to the in-memory path ([`Streamed::Whole`]), so such files get the
//! digests and errors they always had.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::elf_image::LoadableRanges;
use crate::input::{fill, open_regular, ReadBuffer, ReadError};
use crate::linux_trailer;
use crate::profile::{Profile, ProfileRule};

/// Bytes read, and hashed, at a time: 256 KiB.
///
/// Reading a module whole into a buffer and hashing it after makes a
/// buffer of the module's size: for a large module (Debian's `i915.ko` is
/// 6.8 MB) it spills out of the L2 cache, and every byte crosses memory
/// three times (the kernel's copy writes it, SHA-256 reads it back). A
/// chunk of 256 KiB, hashed as soon as it arrives, stays in L2. Mapping
/// the files instead is slower still: `scripts/bench mapping` hashes
/// Debian's 4,023 kernel modules (397 MB, page cache) on two cores both
/// ways, 219.6 ms in chunks against 368.0 ms from read-only mappings on
/// the project's VM (docs/performance.md): SHA-256 reading the page cache
/// straight from memory waits on every cache miss, where `read` streams
/// it into the cache first.
pub const CHUNK_LEN: usize = 256 << 10;

/// Bytes at the end of a file kept un-hashed under `payload` until the
/// end is read and tells where the payload stops: 64 KiB, far more than a
/// module signature (under 1 KiB) or a modhash trailer's proof (a few
/// KiB). A file whose trailer is longer is read again, whole.
pub const HOLD_BACK: usize = 64 << 10;

/// The smallest chunk: an ELF header, which the first chunk must hold for
/// `auto` to tell an ELF file's type.
const MIN_CHUNK: usize = 64;

/// How a file is read: chunks of `chunk` bytes, the last `hold` bytes held
/// back under a prefix profile. Tests read with tiny ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunking {
    /// Bytes read at a time (at least [`MIN_CHUNK`]).
    pub chunk: usize,
    /// Bytes held back.
    pub hold: usize,
}

impl Chunking {
    /// [`CHUNK_LEN`] and [`HOLD_BACK`].
    pub const DEFAULT: Chunking = Chunking {
        chunk: CHUNK_LEN,
        hold: HOLD_BACK,
    };
}

/// What [`digest_regular`] made of a file.
#[derive(Debug)]
pub enum Streamed<'b> {
    /// The file's profile and digest, hashed as it was read.
    Digest(Profile, Digest),
    /// The whole file, for the in-memory path: [`ProfileRule::resolve`]
    /// and [`Profile::digest`], after decompressing a compressed module.
    Whole(&'b [u8]),
}

/// Reads the regular file at `path` (at most `max_len` bytes, opened as
/// [`crate::input::read_regular`] opens it) once, in chunks, into
/// `buffer`, and digests it under the profile `rule` gives it as the
/// chunks arrive; or reads it whole, when the chunks cannot decide, or
/// when `whole_if` says so of its first chunk (a compressed module, which
/// must be decompressed first).
pub fn digest_regular<'b>(
    path: &Path,
    max_len: u64,
    rule: ProfileRule,
    buffer: &'b mut ReadBuffer,
    whole_if: impl FnOnce(&[u8]) -> bool,
) -> Result<Streamed<'b>, ReadError> {
    let (file, len) = open_regular(path, max_len)?;
    let len = usize::try_from(len).map_err(|_| ReadError::TooLarge { len, max: max_len })?;
    digest_opened(&file, len, rule, buffer, Chunking::DEFAULT, whole_if)
}

/// What a streamed profile came to.
enum Step {
    /// The digest.
    Done(Profile, Digest),
    /// The chunks could not decide: read the file again, whole.
    Rewind,
}

/// [`digest_regular`] of a file [`open_regular`] found to be `len` bytes
/// long, read from its start in chunks of `chunking`.
pub(crate) fn digest_opened<'b>(
    file: &File,
    len: usize,
    rule: ProfileRule,
    buffer: &'b mut ReadBuffer,
    chunking: Chunking,
    whole_if: impl FnOnce(&[u8]) -> bool,
) -> Result<Streamed<'b>, ReadError> {
    let chunk = chunking.chunk.max(MIN_CHUNK);
    if len <= chunk {
        return buffer.read_opened(file, len).map(Streamed::Whole);
    }
    let step = {
        // Room for a chunk and the bytes held back after it, and the spare
        // byte that notices a file that grew.
        let buf = buffer.window(chunk + chunking.hold + 1);
        let head = buf.get_mut(..chunk).ok_or(ReadError::Changed)?;
        if fill(file, head)? != chunk {
            return Err(ReadError::Changed);
        }
        let profile = match rule {
            ProfileRule::Fixed(profile) => Some(profile),
            // `None`: `file` or `payload`, as the file's end will tell.
            ProfileRule::Auto => Profile::auto_by_head(head),
        };
        if whole_if(head) {
            Step::Rewind
        } else {
            match profile {
                Some(Profile::ElfImage) => stream_image(file, len, buf, chunk)?,
                Some(Profile::File) => stream_prefix(file, len, buf, chunk, 0, Profile::File)?,
                Some(Profile::Payload) => {
                    stream_prefix(file, len, buf, chunk, chunking.hold, Profile::Payload)?
                }
                None => stream_auto(file, len, buf, chunk, chunking.hold)?,
            }
        }
    };
    match step {
        Step::Done(profile, digest) => Ok(Streamed::Digest(profile, digest)),
        Step::Rewind => {
            let mut file = file;
            file.seek(SeekFrom::Start(0))?;
            buffer.read_opened(file, len).map(Streamed::Whole)
        }
    }
}

/// The image of an ELF file whose first `chunk` bytes are in `buf`,
/// hashed chunk by chunk up to the image's end.
fn stream_image(file: &File, len: usize, buf: &mut [u8], chunk: usize) -> Result<Step, ReadError> {
    let head = buf.get(..chunk).unwrap_or_default();
    let Ok(Some(ranges)) = LoadableRanges::parse_head(head, len) else {
        return Ok(Step::Rewind);
    };
    let end = ranges.image_len();
    let mut hasher = Sha256::new();
    let (mut at, mut read) = (0, chunk);
    loop {
        let part = buf.get_mut(..read).ok_or(ReadError::Changed)?;
        ranges.mask(at, part);
        hasher.update(part.get(..read.min(end - at)).unwrap_or_default());
        at += read;
        if at >= end {
            break;
        }
        read = chunk.min(end - at);
        let part = buf.get_mut(..read).ok_or(ReadError::Changed)?;
        if fill(file, part)? != read {
            return Err(ReadError::Changed);
        }
    }
    // The bytes after the image are not read: a file that grew or shrank
    // since it was opened shows in its size.
    if file.metadata()?.len() != len as u64 {
        return Err(ReadError::Changed);
    }
    Ok(Step::Done(
        Profile::ElfImage,
        Digest(hasher.finalize().into()),
    ))
}

/// `auto` of a file its first chunk did not decide: `file` or `payload`,
/// as its end tells.
fn stream_auto(
    file: &File,
    len: usize,
    buf: &mut [u8],
    chunk: usize,
    hold: usize,
) -> Result<Step, ReadError> {
    let (hasher, tail) = hash_before_tail(file, len, buf, chunk, hold)?;
    match Profile::auto_by_end(len, tail) {
        Some(profile) => Ok(finish_prefix(hasher, len, tail, profile)),
        None => Ok(Step::Rewind),
    }
}

/// A prefix profile (`file`, `payload`) of a file whose first `chunk`
/// bytes are in `buf`, the last `hold` bytes held back.
fn stream_prefix(
    file: &File,
    len: usize,
    buf: &mut [u8],
    chunk: usize,
    hold: usize,
    profile: Profile,
) -> Result<Step, ReadError> {
    let (hasher, tail) = hash_before_tail(file, len, buf, chunk, hold)?;
    Ok(finish_prefix(hasher, len, tail, profile))
}

/// Hashes the file up to its last `hold` bytes and reads those, the tail,
/// into `buf`: the hasher and the tail. `buf` holds the first `chunk`
/// bytes, and room for `chunk + hold + 1`.
fn hash_before_tail<'a>(
    file: &File,
    len: usize,
    buf: &'a mut [u8],
    chunk: usize,
    hold: usize,
) -> Result<(Sha256, &'a [u8]), ReadError> {
    let tail_start = len - hold.min(len);
    let tail_len = len - tail_start;
    let mut hasher = Sha256::new();
    hasher.update(buf.get(..chunk.min(tail_start)).unwrap_or_default());
    let tail_at = if chunk > tail_start {
        // The tail starts in the first chunk; its rest follows it, with
        // one spare byte to notice a file that grew.
        let rest = buf.get_mut(chunk..len + 1).ok_or(ReadError::Changed)?;
        if fill(file, rest)? != len - chunk {
            return Err(ReadError::Changed);
        }
        tail_start
    } else {
        let mut at = chunk;
        while at < tail_start {
            let read = chunk.min(tail_start - at);
            let part = buf.get_mut(..read).ok_or(ReadError::Changed)?;
            if fill(file, part)? != read {
                return Err(ReadError::Changed);
            }
            hasher.update(&*part);
            at += read;
        }
        let tail = buf.get_mut(..tail_len + 1).ok_or(ReadError::Changed)?;
        if fill(file, tail)? != tail_len {
            return Err(ReadError::Changed);
        }
        0
    };
    let tail = buf
        .get(tail_at..tail_at + tail_len)
        .ok_or(ReadError::Changed)?;
    Ok((hasher, tail))
}

/// The digest under a prefix profile of a file of `len` bytes, hashed up
/// to its `tail`; a rewind when the prefix ends before the tail or the
/// tail cannot tell where it ends (the in-memory path then says why).
fn finish_prefix(mut hasher: Sha256, len: usize, tail: &[u8], profile: Profile) -> Step {
    let tail_start = len - tail.len();
    let prefix_len = match profile {
        Profile::File => len,
        Profile::Payload => match linux_trailer::locate(len, tail) {
            Ok(Some(found)) => found.payload_len,
            Ok(None) | Err(_) => return Step::Rewind,
        },
        Profile::ElfImage => return Step::Rewind,
    };
    let Some(rest) = prefix_len
        .checked_sub(tail_start)
        .and_then(|rest| tail.get(..rest))
    else {
        return Step::Rewind;
    };
    hasher.update(rest);
    Step::Done(profile, Digest(hasher.finalize().into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;
    use crate::input::DEFAULT_MAX_LEN;
    use crate::linux_trailer::{append_modhash_trailer, MODULE_SIG_MARKER, PKEY_ID_PKCS7};
    use crate::profile::ProfileError;

    const RULES: [ProfileRule; 4] = [
        ProfileRule::Auto,
        ProfileRule::Fixed(Profile::File),
        ProfileRule::Fixed(Profile::Payload),
        ProfileRule::Fixed(Profile::ElfImage),
    ];

    /// Tiny chunks, hold-backs shorter than a signature record and longer
    /// than the file, and the real sizes.
    const CHUNKINGS: [Chunking; 10] = [
        Chunking { chunk: 64, hold: 0 },
        Chunking {
            chunk: 64,
            hold: 16,
        },
        Chunking {
            chunk: 64,
            hold: 100,
        },
        Chunking {
            chunk: 100,
            hold: 39,
        },
        Chunking {
            chunk: 100,
            hold: 40,
        },
        Chunking {
            chunk: 100,
            hold: 1000,
        },
        Chunking {
            chunk: 1024,
            hold: 100,
        },
        Chunking {
            chunk: 4096,
            hold: 64,
        },
        Chunking {
            chunk: 4096,
            hold: 4096,
        },
        Chunking::DEFAULT,
    ];

    /// A profile and what digesting under it gave.
    type Outcome = (Profile, Result<Digest, ProfileError>);

    /// What the in-memory path gives `bytes` under `rule`.
    fn in_memory(bytes: &[u8], rule: ProfileRule) -> Outcome {
        let profile = rule.resolve(bytes);
        (profile, profile.digest(bytes))
    }

    fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file.flush().unwrap();
        file
    }

    /// What the streaming path gives `bytes` under `rule`, completed by
    /// the in-memory path where it read the file whole, and whether it
    /// streamed.
    fn streamed(bytes: &[u8], rule: ProfileRule, chunking: Chunking) -> (Outcome, bool) {
        let temp = temp_file(bytes);
        let (file, len) = open_regular(temp.path(), DEFAULT_MAX_LEN).unwrap();
        let mut buffer = ReadBuffer::new();
        let len = usize::try_from(len).unwrap();
        match digest_opened(&file, len, rule, &mut buffer, chunking, |_| false).unwrap() {
            Streamed::Digest(profile, digest) => ((profile, Ok(digest)), true),
            Streamed::Whole(whole) => {
                assert_eq!(whole, bytes, "{rule} {chunking:?}: the whole file");
                (in_memory(whole, rule), false)
            }
        }
    }

    /// Checks every rule and chunking against the in-memory path; how many
    /// of them streamed.
    fn check(name: &str, bytes: &[u8]) -> usize {
        let mut streams = 0;
        for rule in RULES {
            let expected = in_memory(bytes, rule);
            for chunking in CHUNKINGS {
                let (got, streamed) = streamed(bytes, rule, chunking);
                assert_eq!(got, expected, "{name}: {rule} {chunking:?}");
                streams += usize::from(streamed);
            }
        }
        streams
    }

    /// Checks `bytes` as [`check`] does, and that `rule` streams them in
    /// chunks of `chunking`.
    fn check_streams(name: &str, bytes: &[u8], rule: ProfileRule, chunking: Chunking) {
        check(name, bytes);
        let (got, streamed) = streamed(bytes, rule, chunking);
        assert!(streamed, "{name}: {rule} {chunking:?} should stream");
        assert_eq!(got, in_memory(bytes, rule), "{name}");
    }

    /// Checks `bytes` as [`check`] does, and that `rule` reads them whole
    /// in chunks of `chunking`.
    fn check_whole(name: &str, bytes: &[u8], rule: ProfileRule, chunking: Chunking) {
        check(name, bytes);
        let (_, streamed) = streamed(bytes, rule, chunking);
        assert!(!streamed, "{name}: {rule} {chunking:?} should read whole");
    }

    /// `len` bytes that look like nothing in particular (and do not
    /// compress).
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    /// `payload` with a module signature of `sig_len` bytes appended, as
    /// sign-file appends it.
    fn signed(payload: &[u8], sig_len: usize) -> Vec<u8> {
        let mut file = payload.to_vec();
        file.extend_from_slice(&noise(sig_len, 7));
        file.extend_from_slice(&[0, 0, PKEY_ID_PKCS7, 0, 0, 0, 0, 0]);
        file.extend_from_slice(&u32::try_from(sig_len).unwrap().to_be_bytes());
        file.extend_from_slice(MODULE_SIG_MARKER);
        file
    }

    /// An ELF64 header of type `e_type` followed by noise, `len` bytes.
    fn elf_of_type(e_type: u16, len: usize) -> Vec<u8> {
        let mut file = noise(len, 3);
        file[..64].fill(0);
        file[..6].copy_from_slice(b"\x7fELF\x02\x01");
        file[16..18].copy_from_slice(&e_type.to_le_bytes());
        file
    }

    /// An ELF64 LE shared object of `len` bytes: program headers at
    /// `phoff`, one per `(p_type, p_offset, p_filesz)` of `segments`,
    /// section table fields set, noise everywhere else.
    fn elf(phoff: usize, segments: &[(u32, u64, u64)], len: usize) -> Vec<u8> {
        let mut file = elf_of_type(3, len);
        file[6] = 1;
        file[32..40].copy_from_slice(&(phoff as u64).to_le_bytes());
        file[40..48].copy_from_slice(&(len as u64 - 640).to_le_bytes());
        file[52..54].copy_from_slice(&64u16.to_le_bytes());
        file[54..56].copy_from_slice(&56u16.to_le_bytes());
        file[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        file[60..64].copy_from_slice(&[10, 0, 9, 0]);
        for (index, &(p_type, offset, filesz)) in segments.iter().enumerate() {
            let at = phoff + index * 56;
            file[at..at + 56].fill(0);
            file[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
            file[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            file[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
            file[at + 40..at + 48].copy_from_slice(&(filesz + 64).to_le_bytes());
        }
        file
    }

    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const AUTO: ProfileRule = ProfileRule::Auto;
    const TINY: Chunking = Chunking { chunk: 64, hold: 0 };
    const SHORT_HOLD: Chunking = Chunking {
        chunk: 64,
        hold: 100,
    };
    const SMALL: Chunking = Chunking {
        chunk: 100,
        hold: 1000,
    };
    const PAGE: Chunking = Chunking {
        chunk: 4096,
        hold: 4096,
    };

    #[test]
    fn every_vector_digests_as_in_memory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let mut files = 0;
        let mut streams = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            streams += check(&path.display().to_string(), &std::fs::read(&path).unwrap());
            files += 1;
        }
        assert!(files >= 17, "{files} vectors");
        // Most of the vectors are larger than the small chunks.
        assert!(streams > files * 4, "{streams} of {files} files streamed");
    }

    #[test]
    fn files_at_and_around_chunk_boundaries() {
        let mut sizes = vec![0, 1, 39, 40, 41];
        for chunk in [64, 100, 4096] {
            for hold in [0, 16, 39, 40, 100, 1000, 4096] {
                for base in [chunk, 2 * chunk, chunk + hold, 3 * chunk + hold] {
                    sizes.extend([base - 1, base, base + 1]);
                }
            }
        }
        sizes.sort_unstable();
        sizes.dedup();
        for len in sizes {
            check(&format!("{len} bytes of noise"), &noise(len, len as u64));
        }
        let file = ProfileRule::Fixed(Profile::File);
        check_streams("plain", &noise(4097, 1), AUTO, PAGE);
        check_streams("plain", &noise(4097, 1), AUTO, SHORT_HOLD);
        check_streams("plain", &noise(4097, 1), file, TINY);
        // Without bytes held back `auto` cannot see a trailer in time.
        check_whole("plain", &noise(4097, 1), AUTO, TINY);
    }

    #[test]
    fn module_signatures_short_and_longer_than_the_hold_back() {
        for sig_len in [
            1, 15, 16, 17, 39, 40, 41, 99, 100, 101, 999, 1000, 1001, 5000,
        ] {
            for payload_len in [1, 63, 64, 65, 3000, 4096, 10_000] {
                let module = signed(&elf_of_type(1, payload_len.max(64)), sig_len);
                check(&format!("module {payload_len} + {sig_len}"), &module);
                let other = signed(&noise(payload_len, 5), sig_len);
                check(&format!("file {payload_len} + {sig_len}"), &other);
            }
        }
        let payload = ProfileRule::Fixed(Profile::Payload);
        let module = signed(&elf_of_type(1, 10_000), 700);
        check_streams("a kernel module", &module, AUTO, SMALL);
        check_streams("a kernel module", &module, payload, PAGE);
        // The signature is longer than the bytes held back: read again.
        check_whole("a long signature", &module, AUTO, SHORT_HOLD);
        check_whole(
            "a long signature",
            &signed(&noise(9000, 1), 1001),
            payload,
            SMALL,
        );
        let big = signed(&elf_of_type(1, 3 << 20), 700);
        check_streams("a large kernel module", &big, AUTO, Chunking::DEFAULT);
        let very_long = signed(&elf_of_type(1, 1 << 20), HOLD_BACK);
        check_whole("a 64 KiB signature", &very_long, AUTO, Chunking::DEFAULT);
    }

    #[test]
    fn modhash_trailers() {
        for body_len in [0, 10, 500, 3000, 5000] {
            for payload_len in [0, 1, 100, 4096, 9000] {
                let file = append_modhash_trailer(&noise(payload_len, 9), &noise(body_len, 2));
                check(&format!("{payload_len} + {body_len}"), &file.unwrap());
            }
        }
        let file = append_modhash_trailer(&noise(9000, 9), &noise(500, 2)).unwrap();
        check_streams("a proof", &file, AUTO, SMALL);
        check_whole("a long proof", &file, AUTO, SHORT_HOLD);
    }

    #[test]
    fn malformed_trailers_give_the_errors_they_always_gave() {
        let mut bad_fields = signed(&noise(9000, 1), 300);
        let record = bad_fields.len() - MODULE_SIG_MARKER.len() - 12;
        bad_fields[record] = 1;
        let mut too_long = signed(&noise(9000, 1), 300);
        too_long[record + 8..record + 12].copy_from_slice(&100_000u32.to_be_bytes());
        let mut marker_only = noise(9000, 1);
        marker_only.extend_from_slice(MODULE_SIG_MARKER);
        let mut proof_too_long = append_modhash_trailer(&noise(9000, 1), b"proof").unwrap();
        let at = proof_too_long.len() - 24;
        proof_too_long[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        for (name, file) in [
            ("bad fields", bad_fields),
            ("sig_len past the start", too_long),
            ("a marker alone", marker_only),
            ("proof length past the start", proof_too_long),
            ("no module before the signature", signed(b"", 9000)),
        ] {
            check(name, &file);
            let (_, digest) = in_memory(&file, ProfileRule::Fixed(Profile::Payload));
            assert!(
                matches!(digest, Err(ProfileError::Trailer(_))),
                "{name}: {digest:?}"
            );
        }
    }

    #[test]
    fn elf_images_of_many_chunks() {
        let len = 50_000;
        let segments = [
            (PT_LOAD, 0, 9000),
            (PT_DYNAMIC, 8000, 500),
            (PT_LOAD, 12_345, 20_000),
            (PT_LOAD, 40_000, 1),
            // Empty, anywhere.
            (PT_LOAD, 49_999, 0),
        ];
        let so = elf(64, &segments, len);
        // The first chunk must hold the program headers, [64, 344).
        let chunk = |chunk| Chunking { chunk, hold: 0 };
        check_streams("a shared object", &so, AUTO, chunk(344));
        check_streams("a shared object", &so, AUTO, chunk(345));
        check_streams("a shared object", &so, AUTO, PAGE);
        let elf_image = ProfileRule::Fixed(Profile::ElfImage);
        check_streams("a shared object", &so, elf_image, chunk(1000));
        check_whole("headers straddling", &so, AUTO, chunk(343));
        check_whole("headers straddling", &so, AUTO, SMALL);
        // The image ends where the file ends.
        let whole = elf(64, &[(PT_LOAD, 0, 200), (PT_LOAD, 300, 49_700)], len);
        check_streams("an image to the end", &whole, AUTO, chunk(500));
        // Program headers past the first chunk: read whole.
        let far = elf(5000, &segments, len);
        check_streams("headers at 5000", &far, AUTO, chunk(8192));
        check_whole("headers at 5000", &far, AUTO, PAGE);
        // Malformed: the in-memory path's errors.
        let overlap = elf(64, &[(PT_LOAD, 0, 9000), (PT_LOAD, 8000, 100)], len);
        check_whole("overlapping loads", &overlap, AUTO, PAGE);
        let outside = elf(64, &[(PT_LOAD, 0, 9000), (PT_LOAD, 8000, 100_000)], len);
        check_whole("a segment outside", &outside, AUTO, PAGE);
        // A shared object with a trailer is still hashed as an image.
        let proof = append_modhash_trailer(&so, b"proof").unwrap();
        check_streams("a shared object with a proof", &proof, AUTO, PAGE);
        // Other ELF types and classes.
        check("an executable", &elf_of_type(2, 9000));
        check("an unknown type", &elf_of_type(7, 9000));
        let mut elf32 = elf(64, &segments, len);
        elf32[4] = 1;
        check("elf32", &elf32);
    }

    #[test]
    fn a_file_that_changes_while_read_is_refused() {
        let so = elf(64, &[(PT_LOAD, 0, 9000)], 20_000);
        let module = signed(&elf_of_type(1, 9000), 500);
        let cases = [
            (noise(9000, 1), ProfileRule::Fixed(Profile::File)),
            (noise(9000, 1), AUTO),
            (module.clone(), AUTO),
            (module, ProfileRule::Fixed(Profile::Payload)),
            (so.clone(), AUTO),
            (so, ProfileRule::Fixed(Profile::ElfImage)),
        ];
        for (bytes, rule) in cases {
            for chunking in [TINY, SMALL, PAGE, Chunking::DEFAULT] {
                for change in [-1000, -1, 1, 1000] {
                    let temp = temp_file(&bytes);
                    let (file, len) = open_regular(temp.path(), DEFAULT_MAX_LEN).unwrap();
                    let writer = std::fs::OpenOptions::new()
                        .append(true)
                        .open(temp.path())
                        .unwrap();
                    writer
                        .set_len(len.checked_add_signed(change).unwrap())
                        .unwrap();
                    let mut buffer = ReadBuffer::new();
                    let len = usize::try_from(len).unwrap();
                    let got = digest_opened(&file, len, rule, &mut buffer, chunking, |_| false);
                    assert!(
                        matches!(got, Err(ReadError::Changed)),
                        "{rule} {chunking:?} {change}: {got:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_head_the_caller_wants_whole_is_read_whole() {
        let mut buffer = ReadBuffer::new();
        let big = noise(CHUNK_LEN + 1, 4);
        let temp = temp_file(&big);
        let got = digest_regular(temp.path(), DEFAULT_MAX_LEN, AUTO, &mut buffer, |head| {
            assert_eq!(head, &big[..CHUNK_LEN]);
            false
        });
        assert!(
            matches!(got, Ok(Streamed::Digest(Profile::File, _))),
            "{got:?}"
        );
        let got = digest_regular(temp.path(), DEFAULT_MAX_LEN, AUTO, &mut buffer, |_| true);
        assert!(matches!(got, Ok(Streamed::Whole(whole)) if whole == big));
        // A file one chunk holds is read whole, whatever its head.
        let small = noise(CHUNK_LEN, 4);
        let temp = temp_file(&small);
        let got = digest_regular(temp.path(), DEFAULT_MAX_LEN, AUTO, &mut buffer, |_| false);
        assert!(matches!(got, Ok(Streamed::Whole(whole)) if whole == small));
    }

    #[test]
    fn memory_stays_cache_sized_whatever_the_file_size() {
        let mut buffer = ReadBuffer::new();
        for bytes in [
            noise(5 << 20, 1),
            signed(&elf_of_type(1, 5 << 20), 700),
            elf(64, &[(PT_LOAD, 0, 4 << 20)], 5 << 20),
        ] {
            let temp = temp_file(&bytes);
            let got = digest_regular(temp.path(), DEFAULT_MAX_LEN, AUTO, &mut buffer, |_| false);
            let Ok(Streamed::Digest(profile, digest)) = got else {
                panic!("{got:?}");
            };
            assert_eq!((profile, Ok(digest)), in_memory(&bytes, AUTO));
            assert!(
                buffer.len() <= CHUNK_LEN + HOLD_BACK + 1 + 64,
                "{}",
                buffer.len()
            );
        }
    }
}
