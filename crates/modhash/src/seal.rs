//! Sealing: writing a manifest's root into a host binary's anchor record.
//!
//! Only the 64 record bytes change; every other byte of the host stays as
//! the linker wrote it, so sealing is deterministic (same host + same
//! manifest → same bytes) and idempotent, and resealing with another
//! manifest just overwrites the record.
//!
//! The record is found by its magic, which must occur exactly once in the
//! file, and must lie inside a `PT_LOAD` segment: the running host reads its
//! anchor from what the loader maps, never through the section table, so a
//! record outside every loaded segment is one the host never sees. When the
//! host still has a section table, `.modhash_anchor` must be that very
//! record; `strip --strip-sections` removes the table, and the magic alone
//! then finds it.

use object::read::elf::{ElfFile, FileHeader, ProgramHeader};
use object::{Object, ObjectSection};

use crate::anchor::{magic, Anchor, AnchorError, RECORD_LEN, SECTION_NAME};
use crate::manifest::Manifest;

/// Why a host cannot be sealed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Not an ELF file.
    #[error("not an ELF file; seal the host executable or library that declares the anchor")]
    NotElf,
    /// The ELF file is malformed.
    #[error("malformed ELF file: {0}")]
    MalformedElf(String),
    /// No record at all.
    #[error("no anchor slot found; declare one with modhash::anchor!() (Rust) or MODHASH_ANCHOR (C) and rebuild")]
    NoSlot,
    /// The section holds more than one record, or the magic occurs several
    /// times.
    #[error("{0} anchor slots found; a host must declare exactly one (use modhash::anchor!() at a single place)")]
    SeveralSlots(usize),
    /// The section is not one record long.
    #[error("section {SECTION_NAME} is {0} bytes, not a {RECORD_LEN}-byte anchor record")]
    BadSectionSize(u64),
    /// The section table names another place than the one record the
    /// magic marks.
    #[error("section {SECTION_NAME} at offset {section:#x} does not hold the anchor record (at {record:#x}); the section table was edited, rebuild the host")]
    SectionElsewhere {
        /// File offset the section names.
        section: usize,
        /// File offset of the record.
        record: usize,
    },
    /// The record lies outside every loaded segment: the running host
    /// would not see what sealing writes there.
    #[error("the anchor record at offset {0:#x} lies outside every PT_LOAD segment, so the running host never reads it; declare the anchor with modhash::anchor!() or MODHASH_ANCHOR and rebuild")]
    NotLoaded(usize),
    /// The record in the slot does not parse.
    #[error("anchor slot at offset {offset:#x}: {source}")]
    BadRecord {
        /// File offset of the record.
        offset: usize,
        /// What is wrong with it.
        source: AnchorError,
    },
}

/// Where the anchor record sits in a host file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// File offset of the record.
    pub offset: usize,
    /// Whether it was found through the section table (else by magic).
    pub by_section: bool,
}

/// Finds the anchor slot in `host`.
pub fn locate(host: &[u8]) -> Result<Slot, SealError> {
    if host.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(SealError::NotElf);
    }
    let layout = read_layout(host)?;
    let magic = magic();
    let hits: Vec<usize> = host
        .windows(magic.len())
        .enumerate()
        .filter(|(_, w)| *w == magic)
        .map(|(at, _)| at)
        .collect();
    // Only the loaded bytes are what the running host reads: a copy of the
    // record outside them (a C host built with -g repeats its initialiser in
    // .debug_info) is no second slot. With no magic in the loaded bytes,
    // every one counts, so that a lone record outside them is reported as
    // not loaded.
    let loaded: Vec<usize> = hits
        .iter()
        .copied()
        .filter(|at| layout.contains(*at as u64..*at as u64 + RECORD_LEN as u64))
        .collect();
    let candidates = if loaded.is_empty() { &hits } else { &loaded };
    let offset = match candidates.as_slice() {
        [] => return Err(SealError::NoSlot),
        [offset] => *offset,
        more => return Err(SealError::SeveralSlots(more.len())),
    };
    if let Some((section, size)) = layout.section {
        if size != RECORD_LEN as u64 {
            return Err(
                if size > RECORD_LEN as u64 && size % RECORD_LEN as u64 == 0 {
                    SealError::SeveralSlots(
                        usize::try_from(size / RECORD_LEN as u64).unwrap_or(usize::MAX),
                    )
                } else {
                    SealError::BadSectionSize(size)
                },
            );
        }
        if section != offset as u64 {
            return Err(SealError::SectionElsewhere {
                section: usize::try_from(section).unwrap_or(usize::MAX),
                record: offset,
            });
        }
    }
    if !layout.contains(offset as u64..offset as u64 + RECORD_LEN as u64) {
        return Err(SealError::NotLoaded(offset));
    }
    Ok(Slot {
        offset,
        by_section: layout.section.is_some(),
    })
}

/// What of a host's ELF structure decides where its anchor may be.
struct Layout {
    /// File offset and size of `.modhash_anchor`, when there is a section
    /// table naming it.
    section: Option<(u64, u64)>,
    /// File ranges of the `PT_LOAD` segments.
    loaded: Vec<(u64, u64)>,
}

impl Layout {
    /// Whether the file range lies inside one `PT_LOAD` segment.
    fn contains(&self, range: std::ops::Range<u64>) -> bool {
        self.loaded
            .iter()
            .any(|(start, end)| *start <= range.start && range.end <= *end)
    }
}

fn read_layout(host: &[u8]) -> Result<Layout, SealError> {
    let kind = object::FileKind::parse(host).map_err(|e| SealError::MalformedElf(e.to_string()))?;
    match kind {
        object::FileKind::Elf64 => layout::<object::elf::FileHeader64<object::Endianness>>(host),
        object::FileKind::Elf32 => layout::<object::elf::FileHeader32<object::Endianness>>(host),
        _ => Err(SealError::NotElf),
    }
}

fn layout<H: FileHeader<Endian = object::Endianness>>(host: &[u8]) -> Result<Layout, SealError> {
    let file = ElfFile::<H>::parse(host).map_err(|e| SealError::MalformedElf(e.to_string()))?;
    let endian = file.endian();
    let loaded = file
        .elf_program_headers()
        .iter()
        .filter(|ph| ph.p_type(endian) == object::elf::PT_LOAD)
        .map(|ph| {
            let start: u64 = ph.p_offset(endian).into();
            (start, start.saturating_add(ph.p_filesz(endian).into()))
        })
        .collect();
    Ok(Layout {
        section: find_section(&file, SECTION_NAME).map_err(SealError::MalformedElf)?,
        loaded,
    })
}

/// The file range `(offset, size)` of the section `name` of an ELF file,
/// `None` when it has no such section; `Err` says why the file is not a
/// readable ELF file.
pub(crate) fn section_range(elf: &[u8], name: &str) -> Result<Option<(u64, u64)>, String> {
    match object::FileKind::parse(elf).map_err(|e| e.to_string())? {
        object::FileKind::Elf64 => find_section(
            &ElfFile::<object::elf::FileHeader64<object::Endianness>>::parse(elf)
                .map_err(|e| e.to_string())?,
            name,
        ),
        object::FileKind::Elf32 => find_section(
            &ElfFile::<object::elf::FileHeader32<object::Endianness>>::parse(elf)
                .map_err(|e| e.to_string())?,
            name,
        ),
        _ => Err("not an ELF file".to_owned()),
    }
}

fn find_section<H: FileHeader<Endian = object::Endianness>>(
    file: &ElfFile<'_, H>,
    name: &str,
) -> Result<Option<(u64, u64)>, String> {
    let Some(section) = file.section_by_name(name) else {
        return Ok(None);
    };
    let (offset, size) = section
        .file_range()
        .ok_or_else(|| format!("section {name} has no file data"))?;
    Ok(Some((offset, size)))
}

/// Reads the anchor a host carries.
pub fn read(host: &[u8]) -> Result<(Slot, Anchor), SealError> {
    let slot = locate(host)?;
    let record = host
        .get(slot.offset..slot.offset + RECORD_LEN)
        .ok_or(SealError::BadRecord {
            offset: slot.offset,
            source: AnchorError::Truncated,
        })?;
    let anchor = Anchor::parse(record).map_err(|source| SealError::BadRecord {
        offset: slot.offset,
        source,
    })?;
    Ok((slot, anchor))
}

/// `host` with its anchor sealed to `manifest`'s root.
pub fn seal(host: &[u8], manifest: &Manifest) -> Result<Vec<u8>, SealError> {
    let (slot, _previous) = read(host)?;
    let mut sealed = host.to_vec();
    if let Some(record) = sealed.get_mut(slot.offset..slot.offset + RECORD_LEN) {
        record.copy_from_slice(&Anchor::sealed_record(manifest));
    }
    Ok(sealed)
}
