//! The canonical loadable image of an ELF64 little-endian shared object or
//! executable: the bytes the `elf-image` profile hashes and the loader maps.
//!
//! The dynamic loader reads only the ELF header, the program header table
//! and the file ranges the program headers name. `strip` and
//! `objcopy --add-gnu-debuglink` rewrite only what lies outside those (the
//! section header table, symbol tables, debug sections), so zeroing
//! everything else and dropping the section-table fields gives an image that
//! survives stripping and is still a valid ELF file to `dlopen`.
//!
//! Everything else is refused with a reason: ELF32, big-endian, relocatable
//! objects (kernel `.ko` files, which use the `payload` profile), files whose
//! ranges leave the file or whose loadable segments overlap.

use std::borrow::Cow;
use std::ops::Range;

const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const PT_LOAD: u32 = 1;
const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
/// `PN_XNUM`: the real count lives in section 0, which an image must not
/// depend on.
const PN_XNUM: u16 = 0xffff;

/// Offsets of the ELF header fields the image clears.
const E_SHOFF: Range<usize> = 40..48;
const E_SHNUM: Range<usize> = 60..62;
const E_SHSTRNDX: Range<usize> = 62..64;

/// Why a file has no canonical image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfImageError {
    /// No ELF magic.
    #[error("not an ELF file; use profile `file` or `payload` for other files")]
    NotElf,
    /// Shorter than an ELF64 header.
    #[error("truncated ELF header ({0} bytes); the file is incomplete")]
    TruncatedHeader(usize),
    /// ELF32.
    #[error("32-bit ELF is not supported by profile `elf-image`; use profile `file`")]
    Elf32,
    /// ELF class byte neither 1 nor 2.
    #[error("invalid ELF class {0}")]
    BadClass(u8),
    /// Big-endian.
    #[error("big-endian ELF is not supported by profile `elf-image`; use profile `file`")]
    BigEndian,
    /// ELF data byte neither 1 nor 2.
    #[error("invalid ELF data encoding {0}")]
    BadEncoding(u8),
    /// A relocatable object such as a kernel module.
    #[error("relocatable ELF object (such as a kernel .ko) has no loadable image; use profile `payload`")]
    Relocatable,
    /// Neither ET_EXEC nor ET_DYN.
    #[error("ELF type {0} is neither an executable nor a shared object")]
    UnsupportedType(u16),
    /// Header or program header sizes are not the ELF64 ones.
    #[error(
        "ELF header declares {field} = {value}, ELF64 requires {expected}; the file is corrupt"
    )]
    BadHeaderSize {
        /// Which field.
        field: &'static str,
        /// What the file says.
        value: u16,
        /// What ELF64 requires.
        expected: u16,
    },
    /// No program headers, or the extended-count escape.
    #[error("ELF declares {0} program headers; a loadable image needs between 1 and 65534")]
    BadProgramHeaderCount(u16),
    /// The program header table does not fit in the file.
    #[error("program header table [{start}, {end}) lies outside the {len}-byte file; the file is truncated or corrupt")]
    ProgramHeadersOutsideFile {
        /// Table start.
        start: u64,
        /// Table end (may have overflowed, shown saturated).
        end: u64,
        /// File length.
        len: usize,
    },
    /// The program header table overlaps the ELF header, whose section
    /// table fields the image clears: the image's program headers would
    /// differ from the file's.
    #[error("program header table at offset {0} overlaps the 64-byte ELF header; the file is corrupt or hostile")]
    ProgramHeadersInHeader(u64),
    /// A segment's file range does not fit in the file.
    #[error("program header {index} covers [{start}, {end}) outside the {len}-byte file; the file is truncated or corrupt")]
    SegmentOutsideFile {
        /// Index of the program header.
        index: usize,
        /// p_offset.
        start: u64,
        /// p_offset + p_filesz (saturated).
        end: u64,
        /// File length.
        len: usize,
    },
    /// Two loadable segments claim the same file bytes.
    #[error("loadable segments {first} and {second} overlap in the file; the file is corrupt or hostile")]
    OverlappingLoadSegments {
        /// Earlier segment's index.
        first: usize,
        /// Later segment's index.
        second: usize,
    },
    /// A segment maps more file bytes than memory.
    #[error("program header {0} has p_filesz > p_memsz; the file is corrupt")]
    FileSizeExceedsMemSize(usize),
    /// No PT_LOAD at all.
    #[error("ELF has no loadable segment")]
    NoLoadSegment,
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(src) = bytes.get(at..at + 2) {
        b.copy_from_slice(src);
    }
    u16::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

/// The file ranges an ELF64 LE executable or shared object exposes to the
/// loader, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadableRanges {
    /// Covered ranges, sorted by start, disjoint: those that overlap or
    /// touch (a PT_DYNAMIC inside its PT_LOAD) merged once, here, rather
    /// than by each chunk masked or each image written.
    ranges: Vec<Range<usize>>,
    /// One past the last covered byte: the image's length.
    end: usize,
}

impl LoadableRanges {
    /// Validates the headers of `bytes` and collects the covered ranges.
    pub fn parse(bytes: &[u8]) -> Result<Self, ElfImageError> {
        // The head is the whole file, so it holds every header there is.
        Self::parse_head(bytes, bytes.len())?.ok_or(ElfImageError::TruncatedHeader(bytes.len()))
    }

    /// [`LoadableRanges::parse`] of a file of `len` bytes from `bytes`, its
    /// first bytes, alone, for hashing the image as the file is read:
    /// `Ok(None)` when the ELF header or the program header table lies
    /// (partly) beyond them.
    pub(crate) fn parse_head(bytes: &[u8], len: usize) -> Result<Option<Self>, ElfImageError> {
        if bytes.len() < len.min(EHDR_LEN) {
            return Ok(None);
        }
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err(
                if len < 4 && b"\x7fELF".starts_with(bytes) && !bytes.is_empty() {
                    ElfImageError::TruncatedHeader(len)
                } else {
                    ElfImageError::NotElf
                },
            );
        }
        if len < EHDR_LEN {
            return Err(ElfImageError::TruncatedHeader(len));
        }
        match bytes.get(4).copied().unwrap_or(0) {
            2 => {}
            1 => return Err(ElfImageError::Elf32),
            other => return Err(ElfImageError::BadClass(other)),
        }
        match bytes.get(5).copied().unwrap_or(0) {
            1 => {}
            2 => return Err(ElfImageError::BigEndian),
            other => return Err(ElfImageError::BadEncoding(other)),
        }
        match u16_at(bytes, 16) {
            ET_EXEC | ET_DYN => {}
            ET_REL => return Err(ElfImageError::Relocatable),
            other => return Err(ElfImageError::UnsupportedType(other)),
        }
        let ehsize = u16_at(bytes, 52);
        if usize::from(ehsize) != EHDR_LEN {
            return Err(ElfImageError::BadHeaderSize {
                field: "e_ehsize",
                value: ehsize,
                expected: EHDR_LEN as u16,
            });
        }
        let phentsize = u16_at(bytes, 54);
        if usize::from(phentsize) != PHDR_LEN {
            return Err(ElfImageError::BadHeaderSize {
                field: "e_phentsize",
                value: phentsize,
                expected: PHDR_LEN as u16,
            });
        }
        let phnum = u16_at(bytes, 56);
        if phnum == 0 || phnum == PN_XNUM {
            return Err(ElfImageError::BadProgramHeaderCount(phnum));
        }
        let phoff = u64_at(bytes, 32);
        if phoff < EHDR_LEN as u64 {
            return Err(ElfImageError::ProgramHeadersInHeader(phoff));
        }
        let table_len = u64::from(phnum) * PHDR_LEN as u64;
        let table = range_in_file(phoff, table_len, len).ok_or(
            ElfImageError::ProgramHeadersOutsideFile {
                start: phoff,
                end: phoff.saturating_add(table_len),
                len,
            },
        )?;
        if table.end > bytes.len() {
            return Ok(None);
        }

        let mut ranges = Vec::with_capacity(usize::from(phnum) + 2);
        ranges.push(0..EHDR_LEN);
        ranges.push(table.clone());
        let mut loads: Vec<(usize, Range<usize>)> = Vec::new();
        for index in 0..usize::from(phnum) {
            let at = table.start + index * PHDR_LEN;
            let p_type = u32_at(bytes, at);
            let p_offset = u64_at(bytes, at + 8);
            let p_filesz = u64_at(bytes, at + 32);
            let p_memsz = u64_at(bytes, at + 40);
            // An empty file range covers no byte, so where it points does
            // not matter; requiring it inside the file would make the
            // canonical image, which drops everything after the last
            // covered byte, refuse its own program headers.
            let range = if p_filesz == 0 {
                0..0
            } else {
                range_in_file(p_offset, p_filesz, len).ok_or(ElfImageError::SegmentOutsideFile {
                    index,
                    start: p_offset,
                    end: p_offset.saturating_add(p_filesz),
                    len,
                })?
            };
            if p_type == PT_LOAD {
                if p_filesz > p_memsz {
                    return Err(ElfImageError::FileSizeExceedsMemSize(index));
                }
                if !range.is_empty() {
                    loads.push((index, range.clone()));
                }
            }
            if !range.is_empty() {
                ranges.push(range);
            }
        }
        if loads.is_empty() {
            return Err(ElfImageError::NoLoadSegment);
        }
        loads.sort_by_key(|(_, r)| r.start);
        for pair in loads.windows(2) {
            if let [(first, a), (second, b)] = pair {
                if b.start < a.end {
                    return Err(ElfImageError::OverlappingLoadSegments {
                        first: *first.min(second),
                        second: *first.max(second),
                    });
                }
            }
        }
        ranges.sort_by_key(|r| r.start);
        let ranges = merge(&ranges);
        let end = ranges.iter().map(|r| r.end).max().unwrap_or(EHDR_LEN);
        Ok(Some(Self { ranges, end }))
    }

    /// Length of the canonical image.
    pub fn image_len(&self) -> usize {
        self.end
    }

    /// Writes the canonical image of `bytes` (which these ranges were parsed
    /// from) into `out`, which is cleared first.
    pub fn write_image(&self, bytes: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(bytes.get(..self.end).unwrap_or(bytes));
        out.resize(self.end, 0);
        self.mask(0, out);
    }

    /// Turns `chunk`, the file's bytes from `offset` on, into the image's
    /// bytes there: every byte no range covers zeroed, and the section
    /// table fields of the ELF header. Bytes past the image's end are left
    /// as they are; they are not part of it.
    pub(crate) fn mask(&self, offset: usize, chunk: &mut [u8]) {
        let stop = offset.saturating_add(chunk.len());
        let mut zero = |from: usize, to: usize| {
            if let Some(bytes) = chunk.get_mut(from.saturating_sub(offset)..to - offset) {
                bytes.fill(0);
            }
        };
        // The first byte not yet known to be covered.
        let mut covered_to = offset;
        for range in &self.ranges {
            if range.start >= stop {
                break;
            }
            if range.start > covered_to {
                zero(covered_to, range.start);
            }
            covered_to = covered_to.max(range.end);
        }
        if covered_to < stop {
            zero(covered_to, stop);
        }
        for field in [E_SHOFF, E_SHNUM, E_SHSTRNDX] {
            if field.start < stop && field.end > offset {
                zero(field.start.max(offset), field.end.min(stop));
            }
        }
    }

    /// The canonical image of `bytes` (which these ranges were parsed from)
    /// as disjoint runs in offset order; every byte of the image outside
    /// them is zero. A writer that starts from zeroed storage (a fresh
    /// memfd) writes each byte of the image once, straight from `bytes`.
    pub fn runs<'a>(&'a self, bytes: &'a [u8]) -> impl Iterator<Item = ImageRun<'a>> + 'a {
        let header = self.header(bytes);
        let rest = self.ranges.iter().filter_map(|range| {
            let range = range.start.max(EHDR_LEN)..range.end;
            let run = bytes.get(range.clone()).filter(|run| !run.is_empty())?;
            Some(ImageRun {
                offset: range.start,
                bytes: Cow::Borrowed(run),
            })
        });
        std::iter::once(header).chain(rest)
    }

    /// The ELF header as the image holds it: the section-table fields
    /// cleared.
    fn header<'a>(&self, bytes: &[u8]) -> ImageRun<'a> {
        let mut header = bytes.get(..EHDR_LEN).unwrap_or_default().to_vec();
        for field in [E_SHOFF, E_SHNUM, E_SHSTRNDX] {
            if let Some(dst) = header.get_mut(field) {
                dst.fill(0);
            }
        }
        ImageRun {
            offset: 0,
            bytes: Cow::Owned(header),
        }
    }
}

/// Bytes of a canonical image to place at `offset` (see
/// [`LoadableRanges::runs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRun<'a> {
    /// Where the bytes go in the image (and where they lie in the file).
    pub offset: usize,
    /// The bytes.
    pub bytes: Cow<'a, [u8]>,
}

/// Sorted ranges merged where they overlap or touch.
fn merge(sorted: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range.clone()),
        }
    }
    merged
}

/// `[start, start+len)` if it lies within a file of `file_len` bytes.
fn range_in_file(start: u64, len: u64, file_len: usize) -> Option<Range<usize>> {
    let end = start.checked_add(len)?;
    if end > file_len as u64 {
        return None;
    }
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

/// The canonical image of `bytes`.
pub fn canonical_image(bytes: &[u8]) -> Result<Vec<u8>, ElfImageError> {
    let ranges = LoadableRanges::parse(bytes)?;
    let mut out = Vec::new();
    ranges.write_image(bytes, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE shared object: header, one PT_LOAD covering the
    /// first `load_len` bytes, then `tail` bytes of "section data".
    pub(crate) fn tiny_elf(load_len: u64, tail: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        f[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        f[ph + 32..ph + 40].copy_from_slice(&load_len.to_le_bytes());
        f[ph + 40..ph + 48].copy_from_slice(&load_len.to_le_bytes());
        f.resize(load_len as usize, 0xAA);
        f.extend_from_slice(tail);
        f
    }

    #[test]
    fn bytes_after_the_last_segment_are_dropped() {
        let elf = tiny_elf(200, b"debug info");
        let image = canonical_image(&elf).unwrap();
        assert_eq!(image.len(), 200);
        assert_eq!(image[..], elf[..200]);
    }

    #[test]
    fn section_table_fields_are_cleared() {
        let mut elf = tiny_elf(200, b"");
        elf[40..48].copy_from_slice(&150u64.to_le_bytes());
        elf[60..64].copy_from_slice(&[3, 0, 2, 0]);
        let image = canonical_image(&elf).unwrap();
        assert_eq!(image[40..48], [0; 8]);
        assert_eq!(image[60..64], [0; 4]);
    }

    #[test]
    fn kernel_style_relocatable_is_refused() {
        let mut elf = tiny_elf(200, b"");
        elf[16..18].copy_from_slice(&ET_REL.to_le_bytes());
        assert_eq!(canonical_image(&elf), Err(ElfImageError::Relocatable));
    }

    #[test]
    fn segment_past_end_of_file_is_refused() {
        let elf = tiny_elf(200, b"");
        let truncated = &elf[..150];
        assert!(matches!(
            canonical_image(truncated),
            Err(ElfImageError::SegmentOutsideFile { .. })
        ));
    }

    #[test]
    fn overflowing_offset_is_refused_without_panic() {
        let mut elf = tiny_elf(200, b"");
        elf[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            canonical_image(&elf),
            Err(ElfImageError::SegmentOutsideFile { .. })
        ));
    }

    /// Found by the `elf_image` fuzz target: an empty segment whose offset
    /// lies after the last covered byte made the canonical image refuse
    /// its own headers, so it was not its own canonical image.
    #[test]
    fn empty_segment_past_the_image_keeps_the_image_canonical() {
        let mut elf = tiny_elf(300, &[0x55; 1000]);
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph = 64 + 56;
        elf[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&1200u64.to_le_bytes());
        elf[ph + 32..ph + 48].fill(0);
        let image = canonical_image(&elf).unwrap();
        assert_eq!(image.len(), 300);
        assert_eq!(canonical_image(&image).unwrap(), image);
    }

    /// Found by the `elf_image` fuzz target: a program header table
    /// starting inside the ELF header had its first entry changed by the
    /// cleared section-table fields, so the image described other
    /// segments than the file.
    #[test]
    fn program_headers_inside_the_elf_header_are_refused() {
        let mut elf = tiny_elf(200, b"");
        elf[32..40].copy_from_slice(&63u64.to_le_bytes());
        assert_eq!(
            canonical_image(&elf),
            Err(ElfImageError::ProgramHeadersInHeader(63))
        );
    }

    /// The image as first defined: zeroes, the covered ranges copied in,
    /// the section table fields cleared.
    fn image_by_copying(ranges: &LoadableRanges, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![0; ranges.end];
        for range in &ranges.ranges {
            out[range.clone()].copy_from_slice(&bytes[range.clone()]);
        }
        for field in [E_SHOFF, E_SHNUM, E_SHSTRNDX] {
            out[field].fill(0);
        }
        out
    }

    #[test]
    fn an_image_masked_chunk_by_chunk_is_the_image() {
        let mut elf = tiny_elf(300, &[0x55; 1000]);
        elf[40..48].copy_from_slice(&150u64.to_le_bytes());
        elf[60..64].copy_from_slice(&[3, 0, 2, 0]);
        // A second program header: a load segment after a gap, and an
        // empty one.
        elf[56..58].copy_from_slice(&3u16.to_le_bytes());
        elf.splice(120..120, [0; 112]);
        elf.truncate(1300);
        let ph = 64 + 56;
        elf[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        elf[ph + 8..ph + 16].copy_from_slice(&700u64.to_le_bytes());
        elf[ph + 32..ph + 40].copy_from_slice(&250u64.to_le_bytes());
        elf[ph + 40..ph + 48].copy_from_slice(&250u64.to_le_bytes());
        elf[ph + 56..ph + 60].copy_from_slice(&PT_LOAD.to_le_bytes());
        elf[ph + 64..ph + 72].copy_from_slice(&1200u64.to_le_bytes());
        let ranges = LoadableRanges::parse(&elf).unwrap();
        let expected = image_by_copying(&ranges, &elf);
        assert_eq!(expected.len(), 950);
        assert!(expected[300..700].iter().all(|&b| b == 0));
        assert_eq!(canonical_image(&elf).unwrap(), expected);
        for chunk in [1, 7, 40, 64, 100, 333, 4096] {
            let mut image = Vec::new();
            for (index, part) in elf.chunks(chunk).enumerate() {
                let mut part = part.to_vec();
                ranges.mask(index * chunk, &mut part);
                image.extend_from_slice(&part);
            }
            image.truncate(ranges.image_len());
            assert_eq!(image, expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn runs_are_disjoint_ordered_and_the_rest_of_the_image_is_zero() {
        let mut elf = tiny_elf(400, &[0x77; 300]);
        // A second program header (PT_DYNAMIC-like, not loadable) inside
        // the PT_LOAD, and one past it over the tail.
        elf[56..58].copy_from_slice(&3u16.to_le_bytes());
        for (index, (p_type, offset, size)) in [(2u32, 100u64, 50u64), (4, 500, 60)]
            .into_iter()
            .enumerate()
        {
            let ph = 64 + 56 * (index + 1);
            elf[ph..ph + 4].copy_from_slice(&p_type.to_le_bytes());
            elf[ph + 8..ph + 16].copy_from_slice(&offset.to_le_bytes());
            elf[ph + 32..ph + 40].copy_from_slice(&size.to_le_bytes());
        }
        elf[40..48].copy_from_slice(&150u64.to_le_bytes());
        let ranges = LoadableRanges::parse(&elf).unwrap();
        let mut from_runs = vec![0u8; ranges.image_len()];
        let mut end = 0;
        for run in ranges.runs(&elf) {
            assert!(run.offset >= end, "runs overlap or are out of order");
            end = run.offset + run.bytes.len();
            from_runs[run.offset..end].copy_from_slice(&run.bytes);
        }
        assert_eq!(from_runs.len(), 560);
        assert_eq!(from_runs, canonical_image(&elf).unwrap());
        assert_eq!(from_runs[400..500], [0; 100]);
        assert_eq!(from_runs[40..48], [0; 8]);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_shorter_image_never_a_panic() {
        let elf = tiny_elf(300, b"tail");
        for cut in 0..elf.len() {
            let _ = canonical_image(&elf[..cut]);
        }
    }
}
