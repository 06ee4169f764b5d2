//! Sealing: writing a manifest's root into a host binary's anchor record.
//!
//! Only the 64 record bytes change; every other byte of the host stays as
//! the linker wrote it, so sealing is deterministic (same host + same
//! manifest → same bytes) and idempotent, and resealing with another
//! manifest just overwrites the record.
//!
//! The record is found through the `.modhash_anchor` section when the host
//! still has a section table; `strip --strip-sections` removes it, so the
//! fallback is the magic, which must then occur exactly once in the file.

use object::read::elf::{ElfFile, FileHeader};
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
    if let Some(slot) = locate_by_section(host)? {
        return Ok(slot);
    }
    let magic = magic();
    let mut hits = host
        .windows(magic.len())
        .enumerate()
        .filter(|(_, w)| *w == magic)
        .map(|(at, _)| at);
    match (hits.next(), hits.count()) {
        (None, _) => Err(SealError::NoSlot),
        (Some(offset), 0) => Ok(Slot {
            offset,
            by_section: false,
        }),
        (Some(_), more) => Err(SealError::SeveralSlots(more + 1)),
    }
}

fn locate_by_section(host: &[u8]) -> Result<Option<Slot>, SealError> {
    let kind = object::FileKind::parse(host).map_err(|e| SealError::MalformedElf(e.to_string()))?;
    let section = match kind {
        object::FileKind::Elf64 | object::FileKind::Elf32 => {
            section_range(host, SECTION_NAME).map_err(SealError::MalformedElf)?
        }
        _ => return Err(SealError::NotElf),
    };
    let Some((offset, size)) = section else {
        return Ok(None);
    };
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
    let offset = usize::try_from(offset)
        .ok()
        .filter(|o| {
            o.checked_add(RECORD_LEN)
                .is_some_and(|end| end <= host.len())
        })
        .ok_or_else(|| {
            SealError::MalformedElf(format!("section {SECTION_NAME} lies outside the file"))
        })?;
    Ok(Some(Slot {
        offset,
        by_section: true,
    }))
}

/// The file range `(offset, size)` of the section `name` of an ELF file,
/// `None` when it has no such section; `Err` says why the file is not a
/// readable ELF file.
pub(crate) fn section_range(elf: &[u8], name: &str) -> Result<Option<(u64, u64)>, String> {
    match object::FileKind::parse(elf).map_err(|e| e.to_string())? {
        object::FileKind::Elf64 => {
            find_section::<object::elf::FileHeader64<object::Endianness>>(elf, name)
        }
        object::FileKind::Elf32 => {
            find_section::<object::elf::FileHeader32<object::Endianness>>(elf, name)
        }
        _ => Err("not an ELF file".to_owned()),
    }
}

fn find_section<H: FileHeader<Endian = object::Endianness>>(
    elf: &[u8],
    name: &str,
) -> Result<Option<(u64, u64)>, String> {
    let file = ElfFile::<H>::parse(elf).map_err(|e| e.to_string())?;
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
