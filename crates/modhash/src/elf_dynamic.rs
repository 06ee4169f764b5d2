//! What a shared object asks of the dynamic loader: the libraries it needs
//! (`DT_NEEDED`), where it says to look for them (`DT_RUNPATH`, `DT_RPATH`),
//! the name it answers to (`DT_SONAME`), and the entries that make the
//! loader pull in code beyond its needed list (`DT_AUDIT`, `DT_DEPAUDIT`,
//! `DT_FILTER`, `DT_AUXILIARY`).
//!
//! Read from the program headers only, the way the dynamic loader reads
//! them: the string table is found by its address in a `PT_LOAD` segment,
//! never through the section table, so this works on a canonical
//! `elf-image` (whose section table fields are cleared) and sees exactly
//! what the dynamic loader will see in the mapped image.

use object::elf::{self, FileHeader64};
use object::read::elf::{Dyn as _, FileHeader as _, ProgramHeader as _};
use object::read::StringTable;
use object::LittleEndian;

/// Size of an ELF64 header. The canonical image rewrites fields inside it,
/// so nothing the dynamic loader reads by address may lie there.
const ELF_HEADER_SIZE: u64 = 64;

/// Why a dynamic section could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DynamicError {
    /// The ELF header or program headers do not parse.
    #[error("malformed ELF program headers: {0}")]
    Headers(&'static str),
    /// Two `PT_DYNAMIC` program headers: the dynamic loader takes the last,
    /// other tools the first, so no single reading is safe.
    #[error("more than one PT_DYNAMIC program header; the file is corrupt or hostile")]
    SeveralDynamic,
    /// `PT_DYNAMIC` lies outside the file, or its address is not in the
    /// file bytes of a loadable segment at its file offset.
    #[error("PT_DYNAMIC lies outside the file, is misaligned, or its address and file offset disagree; the file is truncated, corrupt or hostile")]
    DynamicOutsideFile,
    /// Names are present but there is no string table to read them from.
    #[error("the dynamic section names libraries but has no DT_STRTAB/DT_STRSZ")]
    NoStringTable,
    /// The string table's address is in no loadable segment's file bytes.
    #[error("DT_STRTAB [{address:#x}, +{size:#x}) is not in the file bytes of a loadable segment")]
    StringTableOutsideImage {
        /// DT_STRTAB.
        address: u64,
        /// DT_STRSZ.
        size: u64,
    },
    /// The dynamic section or its string table overlaps the ELF header,
    /// whose section-table fields the canonical image clears: the file and
    /// the image it maps would name different libraries.
    #[error("the dynamic section or its string table overlaps the ELF header; the file is corrupt or hostile")]
    OverlapsElfHeader,
    /// A string offset leaves the table or the string is not terminated.
    #[error("a dynamic entry's string offset {0:#x} is outside the string table")]
    BadString(u64),
    /// A library name or search path that is not UTF-8.
    #[error("a dynamic entry's string is not UTF-8: {0:?}")]
    NotUtf8(String),
}

/// The dynamic entries that decide which other code the dynamic loader maps
/// with this object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_RUNPATH` (colon-separated, tokens unexpanded).
    pub runpath: Option<String>,
    /// `DT_RPATH` (glibc ignores it when `DT_RUNPATH` is present).
    pub rpath: Option<String>,
    /// `DT_AUDIT`, `DT_DEPAUDIT`, `DT_FILTER` and `DT_AUXILIARY` entries, as
    /// (tag name, value): each makes the loader map or run code that is not
    /// in the needed list.
    pub loader_extensions: Vec<(&'static str, String)>,
}

impl Dynamic {
    /// The name of a tag that pulls in code outside `DT_NEEDED`.
    fn extension_name(tag: u32) -> Option<&'static str> {
        match tag {
            elf::DT_AUDIT => Some("DT_AUDIT"),
            elf::DT_DEPAUDIT => Some("DT_DEPAUDIT"),
            elf::DT_FILTER => Some("DT_FILTER"),
            elf::DT_AUXILIARY => Some("DT_AUXILIARY"),
            _ => None,
        }
    }
}

impl TryFrom<&[u8]> for Dynamic {
    type Error = DynamicError;

    /// Reads the dynamic entries of an ELF64 little-endian image (the file
    /// or its canonical `elf-image`). An object without `PT_DYNAMIC` needs
    /// nothing.
    fn try_from(data: &[u8]) -> Result<Self, DynamicError> {
        let endian = LittleEndian;
        let header = FileHeader64::<LittleEndian>::parse(data)
            .map_err(|_| DynamicError::Headers("not an ELF64 little-endian header"))?;
        let phdrs = header
            .program_headers(endian, data)
            .map_err(|_| DynamicError::Headers("program header table outside the file"))?;
        let mut dynamic = None;
        for phdr in phdrs {
            let entries = phdr
                .dynamic(endian, data)
                .map_err(|_| DynamicError::DynamicOutsideFile)?;
            if let Some(entries) = entries {
                if phdr.p_offset(endian) < ELF_HEADER_SIZE {
                    return Err(DynamicError::OverlapsElfHeader);
                }
                // The dynamic loader reads the section at its address, not
                // its file offset: both must name the same loaded bytes.
                let (address, size) = (phdr.p_vaddr(endian), phdr.p_filesz(endian));
                let at_address = phdrs
                    .iter()
                    .filter(|load| load.p_type(endian) == elf::PT_LOAD)
                    .find(|load| {
                        load.data_range(endian, data, address, size)
                            .ok()
                            .flatten()
                            .is_some()
                    })
                    .map(|load| {
                        load.p_offset(endian)
                            .saturating_add(address.saturating_sub(load.p_vaddr(endian)))
                    });
                if at_address != Some(phdr.p_offset(endian)) {
                    return Err(DynamicError::DynamicOutsideFile);
                }
                if dynamic.replace(entries).is_some() {
                    return Err(DynamicError::SeveralDynamic);
                }
            }
        }
        let Some(entries) = dynamic else {
            return Ok(Self::default());
        };

        // The loader stops at DT_NULL; entries after it do not exist.
        let entries = entries
            .iter()
            .take_while(|entry| entry.d_tag(endian) != u64::from(elf::DT_NULL));
        let (mut strtab, mut strsz) = (None, None);
        let mut named = Vec::new();
        for entry in entries {
            // Tags above u32 are none the loader acts on.
            let Some(tag) = entry.tag32(endian) else {
                continue;
            };
            match tag {
                elf::DT_STRTAB => strtab = Some(entry.d_val(endian)),
                elf::DT_STRSZ => strsz = Some(entry.d_val(endian)),
                elf::DT_NEEDED | elf::DT_SONAME | elf::DT_RUNPATH | elf::DT_RPATH => {
                    named.push((tag, entry.d_val(endian)));
                }
                other => {
                    if Self::extension_name(other).is_some() {
                        named.push((other, entry.d_val(endian)));
                    }
                }
            }
        }
        if named.is_empty() {
            return Ok(Self::default());
        }
        let (Some(address), Some(size)) = (strtab, strsz) else {
            return Err(DynamicError::NoStringTable);
        };
        let (segment, table) = phdrs
            .iter()
            .filter(|phdr| phdr.p_type(endian) == elf::PT_LOAD)
            .find_map(|phdr| {
                let table = phdr
                    .data_range(endian, data, address, size)
                    .ok()
                    .flatten()?;
                Some((phdr, table))
            })
            .ok_or(DynamicError::StringTableOutsideImage { address, size })?;
        // `data_range` succeeded, so `address` lies in the segment.
        let table_offset = segment
            .p_offset(endian)
            .saturating_add(address.saturating_sub(segment.p_vaddr(endian)));
        if table_offset < ELF_HEADER_SIZE {
            return Err(DynamicError::OverlapsElfHeader);
        }
        let strings = StringTable::new(table, 0, size);

        let mut out = Self::default();
        for (tag, offset) in named {
            let bytes = u32::try_from(offset)
                .ok()
                .and_then(|at| strings.get(at).ok())
                .ok_or(DynamicError::BadString(offset))?;
            let text = std::str::from_utf8(bytes)
                .map_err(|_| DynamicError::NotUtf8(String::from_utf8_lossy(bytes).into_owned()))?
                .to_owned();
            match tag {
                elf::DT_NEEDED => out.needed.push(text),
                // The loader keeps the last of each.
                elf::DT_SONAME => out.soname = Some(text),
                elf::DT_RUNPATH => out.runpath = Some(text),
                elf::DT_RPATH => out.rpath = Some(text),
                other => {
                    if let Some(name) = Self::extension_name(other) {
                        out.loader_extensions.push((name, text));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_and_truncated_headers_are_errors_not_panics() {
        assert!(Dynamic::try_from(b"not an ELF file".as_slice()).is_err());
        assert!(Dynamic::try_from([0x7f, b'E', b'L', b'F'].as_slice()).is_err());
    }

    /// Offsets of each program header of an ELF64 LE file.
    fn phdr_offsets(bytes: &[u8]) -> Vec<usize> {
        let field = |at: usize, len: usize| {
            bytes.get(at..at + len).map_or(0, |b| {
                b.iter().rev().fold(0usize, |n, &x| n << 8 | usize::from(x))
            })
        };
        let (phoff, phnum) = (field(32, 8), field(56, 2));
        (0..phnum).map(|i| phoff + i * 56).collect()
    }

    #[test]
    fn a_second_pt_dynamic_is_refused() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/signature/testdata/tiny.so"
        );
        let mut bytes = std::fs::read(path).expect("read tiny.so");
        let offsets = phdr_offsets(&bytes);
        let is = |bytes: &[u8], at: usize, ty: u32| {
            bytes.get(at..at + 4) == Some(ty.to_le_bytes().as_slice())
        };
        let dynamic = *offsets
            .iter()
            .find(|&&at| is(&bytes, at, elf::PT_DYNAMIC))
            .expect("PT_DYNAMIC");
        let other = *offsets
            .iter()
            .find(|&&at| is(&bytes, at, elf::PT_GNU_STACK))
            .expect("PT_GNU_STACK");
        let copy = bytes.get(dynamic..dynamic + 56).expect("phdr").to_vec();
        bytes
            .get_mut(other..other + 56)
            .expect("phdr")
            .copy_from_slice(&copy);
        assert_eq!(
            Dynamic::try_from(bytes.as_slice()),
            Err(DynamicError::SeveralDynamic)
        );
    }

    /// glibc reads the dynamic section at `p_vaddr`; a `p_offset` pointing
    /// at other bytes (a decoy section naming nothing) must not be what is
    /// judged.
    #[test]
    fn a_dynamic_offset_that_disagrees_with_its_address_is_refused() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/signature/testdata/tiny.so"
        );
        let mut bytes = std::fs::read(path).expect("read tiny.so");
        let dynamic = *phdr_offsets(&bytes)
            .iter()
            .find(|&&at| bytes.get(at..at + 4) == Some(elf::PT_DYNAMIC.to_le_bytes().as_slice()))
            .expect("PT_DYNAMIC");
        let field = bytes.get_mut(dynamic + 8..dynamic + 16).expect("p_offset");
        let offset = u64::from_le_bytes(field.try_into().expect("8 bytes"));
        field.copy_from_slice(&(offset - 16).to_le_bytes());
        assert_eq!(
            Dynamic::try_from(bytes.as_slice()),
            Err(DynamicError::DynamicOutsideFile)
        );
    }

    /// Found by the `elf_dynamic` fuzz target: DT_STRTAB points into the
    /// ELF header, at `e_shoff`, which the canonical image clears, so the
    /// file named a library `@1` and its image an empty name.
    #[test]
    fn a_string_table_inside_the_elf_header_is_refused() {
        let bytes = include_bytes!("../tests/vectors/dynamic-strtab-in-elf-header.so");
        assert_eq!(
            Dynamic::try_from(bytes.as_slice()),
            Err(DynamicError::OverlapsElfHeader)
        );
        let image = crate::elf_image::canonical_image(bytes).expect("image");
        assert_eq!(
            Dynamic::try_from(image.as_slice()),
            Err(DynamicError::OverlapsElfHeader)
        );
    }

    #[test]
    fn an_image_reads_as_its_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/signature/testdata/tiny.so"
        );
        let bytes = std::fs::read(path).expect("read tiny.so");
        let dynamic = Dynamic::try_from(bytes.as_slice()).expect("dynamic");
        let image = crate::elf_image::canonical_image(&bytes).expect("image");
        assert_eq!(
            Dynamic::try_from(image.as_slice()).expect("image dynamic"),
            dynamic,
            "the canonical image must say what the file says"
        );
    }
}
