//! Which sections and segments of two ELF files differ.
//!
//! Sections are paired by name (a repeated name by its occurrence), segments
//! by type and occurrence, so a section that grew does not make every later
//! one look different just because it moved: offsets are reported, never
//! compared. What is compared is each region's attributes (type, flags,
//! address, size, …) and its bytes.

use std::collections::HashMap;

use object::elf::{FileHeader32, FileHeader64, SHF_ALLOC, SHT_NULL};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

/// The parts of two ELF files that differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ElfDifferences {
    /// ELF header fields that differ: `class`, `data` (byte order),
    /// `osabi`, `type`, `machine`, `version`, `entry`, `flags`. When the
    /// class or byte order differ nothing else is compared.
    pub header: Vec<&'static str>,
    /// Segments (program headers) that differ, named by type and occurrence,
    /// e.g. `LOAD[1]`.
    pub segments: Vec<RegionDifference>,
    /// Sections that differ, by name (`name[n]` for the n-th repeat).
    pub sections: Vec<RegionDifference>,
}

impl ElfDifferences {
    /// Whether nothing was found to differ: the bytes that differ lie
    /// outside every section and segment (padding, the header's table
    /// offsets, appended data).
    pub fn is_empty(&self) -> bool {
        self.header.is_empty() && self.segments.is_empty() && self.sections.is_empty()
    }
}

/// One section or segment that differs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegionDifference {
    /// The section name, or the segment type with its occurrence.
    pub name: String,
    /// Where it lies in the first file; `None` when only the second has it.
    pub a: Option<Span>,
    /// Where it lies in the second file; `None` when only the first has it.
    pub b: Option<Span>,
    /// What differs: attribute names (`type`, `flags`, `address`, `size`, …)
    /// and `contents`; empty when the region exists on one side only.
    pub differs: Vec<&'static str>,
}

/// A region's place in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    /// File offset.
    pub offset: u64,
    /// Size in bytes (in memory, for a `NOBITS` section such as `.bss`).
    pub size: u64,
}

/// Locates the differences between two ELF files; `None` when either is
/// not a well-formed ELF file. With `alloc_only`, sections that are not
/// loaded into memory (debug information, symbol tables) are left out.
pub(super) fn locate(a: &[u8], b: &[u8], alloc_only: bool) -> Option<ElfDifferences> {
    match (FileKind::parse(a).ok()?, FileKind::parse(b).ok()?) {
        (FileKind::Elf32, FileKind::Elf32) => {
            locate_as::<FileHeader32<Endianness>>(a, b, alloc_only)
        }
        (FileKind::Elf64, FileKind::Elf64) => {
            locate_as::<FileHeader64<Endianness>>(a, b, alloc_only)
        }
        (FileKind::Elf32 | FileKind::Elf64, FileKind::Elf32 | FileKind::Elf64) => {
            Some(ElfDifferences {
                header: vec!["class"],
                ..ElfDifferences::default()
            })
        }
        _ => None,
    }
}

/// A section or segment, as the pairing sees it.
struct Region<'d> {
    name: String,
    span: Span,
    attributes: Vec<(&'static str, u64)>,
    /// `None` when the range it names lies outside the file.
    contents: Option<&'d [u8]>,
}

fn locate_as<H: FileHeader<Endian = Endianness>>(
    a: &[u8],
    b: &[u8],
    alloc_only: bool,
) -> Option<ElfDifferences> {
    let (ha, hb) = (H::parse(a).ok()?, H::parse(b).ok()?);
    let (ea, eb) = (ha.endian().ok()?, hb.endian().ok()?);
    if ea != eb {
        return Some(ElfDifferences {
            header: vec!["data"],
            ..ElfDifferences::default()
        });
    }
    let header = header_differences(ha, hb, ea);
    Some(ElfDifferences {
        header,
        segments: pair(segments(ha, ea, a)?, segments(hb, eb, b)?),
        sections: pair(
            sections(ha, ea, a, alloc_only)?,
            sections(hb, eb, b, alloc_only)?,
        ),
    })
}

fn header_differences<H: FileHeader>(a: &H, b: &H, endian: H::Endian) -> Vec<&'static str> {
    let (ia, ib) = (a.e_ident(), b.e_ident());
    let fields: [(&'static str, u64, u64); 6] = [
        ("osabi", ia.os_abi.into(), ib.os_abi.into()),
        ("type", a.e_type(endian).into(), b.e_type(endian).into()),
        (
            "machine",
            a.e_machine(endian).into(),
            b.e_machine(endian).into(),
        ),
        (
            "version",
            a.e_version(endian).into(),
            b.e_version(endian).into(),
        ),
        ("entry", a.e_entry(endian).into(), b.e_entry(endian).into()),
        ("flags", a.e_flags(endian).into(), b.e_flags(endian).into()),
    ];
    fields
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(name, _, _)| name)
        .collect()
}

fn segments<'d, H: FileHeader>(
    header: &H,
    endian: H::Endian,
    data: &'d [u8],
) -> Option<Vec<Region<'d>>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let regions = header
        .program_headers(endian, data)
        .ok()?
        .iter()
        .map(|ph| {
            let kind = segment_type_name(ph.p_type(endian));
            let n = seen.entry(kind.clone()).or_default();
            let name = format!("{kind}[{n}]");
            *n += 1;
            Region {
                name,
                span: Span {
                    offset: ph.p_offset(endian).into(),
                    size: ph.p_filesz(endian).into(),
                },
                attributes: vec![
                    ("type", ph.p_type(endian).into()),
                    ("flags", ph.p_flags(endian).into()),
                    ("address", ph.p_vaddr(endian).into()),
                    ("physical address", ph.p_paddr(endian).into()),
                    ("file size", ph.p_filesz(endian).into()),
                    ("memory size", ph.p_memsz(endian).into()),
                    ("align", ph.p_align(endian).into()),
                ],
                contents: ph.data(endian, data).ok(),
            }
        })
        .collect();
    Some(regions)
}

fn sections<'d, H: FileHeader>(
    header: &H,
    endian: H::Endian,
    data: &'d [u8],
    alloc_only: bool,
) -> Option<Vec<Region<'d>>> {
    let table = header.sections(endian, data).ok()?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let regions = table
        .iter()
        .filter(|sh| sh.sh_type(endian) != SHT_NULL)
        .filter(|sh| !alloc_only || sh.sh_flags(endian).into() & u64::from(SHF_ALLOC) != 0)
        .map(|sh| {
            let base = table.section_name(endian, sh).map_or_else(
                |_| "(unnamed)".to_owned(),
                |n| String::from_utf8_lossy(n).into_owned(),
            );
            let n = seen.entry(base.clone()).or_default();
            let name = if *n == 0 {
                base
            } else {
                format!("{base}[{n}]")
            };
            *n += 1;
            Region {
                name,
                span: Span {
                    offset: sh.sh_offset(endian).into(),
                    size: sh.sh_size(endian).into(),
                },
                attributes: vec![
                    ("type", sh.sh_type(endian).into()),
                    ("flags", sh.sh_flags(endian).into()),
                    ("address", sh.sh_addr(endian).into()),
                    ("size", sh.sh_size(endian).into()),
                    ("link", sh.sh_link(endian).into()),
                    ("info", sh.sh_info(endian).into()),
                    ("align", sh.sh_addralign(endian).into()),
                    ("entry size", sh.sh_entsize(endian).into()),
                ],
                contents: sh.data(endian, data).ok(),
            }
        })
        .collect();
    Some(regions)
}

/// Pairs regions by name and lists those that differ: the first file's
/// order, then what only the second file has.
fn pair(a: Vec<Region<'_>>, b: Vec<Region<'_>>) -> Vec<RegionDifference> {
    let mut b_by_name: HashMap<&str, &Region<'_>> =
        b.iter().map(|r| (r.name.as_str(), r)).collect();
    let mut out = Vec::new();
    for ra in &a {
        match b_by_name.remove(ra.name.as_str()) {
            Some(rb) => {
                let mut differs: Vec<&'static str> = ra
                    .attributes
                    .iter()
                    .zip(&rb.attributes)
                    .filter(|(x, y)| x != y)
                    .map(|((name, _), _)| *name)
                    .collect();
                if ra.contents != rb.contents {
                    differs.push("contents");
                }
                if !differs.is_empty() {
                    out.push(RegionDifference {
                        name: ra.name.clone(),
                        a: Some(ra.span),
                        b: Some(rb.span),
                        differs,
                    });
                }
            }
            None => out.push(RegionDifference {
                name: ra.name.clone(),
                a: Some(ra.span),
                b: None,
                differs: Vec::new(),
            }),
        }
    }
    out.extend(
        b.iter()
            .filter(|rb| b_by_name.contains_key(rb.name.as_str()))
            .map(|rb| RegionDifference {
                name: rb.name.clone(),
                a: None,
                b: Some(rb.span),
                differs: Vec::new(),
            }),
    );
    out
}

fn segment_type_name(p_type: u32) -> String {
    use object::elf::*;
    let known = match p_type {
        PT_NULL => "NULL",
        PT_LOAD => "LOAD",
        PT_DYNAMIC => "DYNAMIC",
        PT_INTERP => "INTERP",
        PT_NOTE => "NOTE",
        PT_SHLIB => "SHLIB",
        PT_PHDR => "PHDR",
        PT_TLS => "TLS",
        PT_GNU_EH_FRAME => "GNU_EH_FRAME",
        PT_GNU_STACK => "GNU_STACK",
        PT_GNU_RELRO => "GNU_RELRO",
        PT_GNU_PROPERTY => "GNU_PROPERTY",
        other => return format!("{other:#x}"),
    };
    known.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE relocatable object with a null section, the named
    /// sections (type PROGBITS, alloc) holding the given bytes, and
    /// `.shstrtab`.
    fn object(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut shstrtab = vec![0u8];
        let mut names = Vec::new();
        for (name, _) in sections
            .iter()
            .map(|(n, d)| (*n, *d))
            .chain([(".shstrtab", &[][..])])
        {
            names.push(u32::try_from(shstrtab.len()).unwrap_or(0));
            shstrtab.extend_from_slice(name.as_bytes());
            shstrtab.push(0);
        }
        let mut out = vec![0u8; 64];
        let mut headers = vec![[0u64; 8]];
        for ((_, data), &name) in sections.iter().zip(&names) {
            headers.push([
                u64::from(name),
                1,
                2,
                0,
                out.len() as u64,
                data.len() as u64,
                0,
                1,
            ]);
            out.extend_from_slice(data);
        }
        let name = names.last().copied().unwrap_or(0);
        headers.push([
            u64::from(name),
            3,
            0,
            0,
            out.len() as u64,
            shstrtab.len() as u64,
            0,
            1,
        ]);
        out.extend_from_slice(&shstrtab);
        let shoff = out.len() as u64;
        for [name, typ, flags, addr, offset, size, link_info, align] in headers {
            out.extend_from_slice(&u32::try_from(name).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&u32::try_from(typ).unwrap_or(0).to_le_bytes());
            for v in [flags, addr, offset, size, link_info, align, 0] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let shnum = u16::try_from(sections.len() + 2).unwrap_or(0);
        let header: Vec<u8> = [
            &b"\x7fELF\x02\x01\x01\x00"[..],
            &[0; 8],
            &1u16.to_le_bytes(),  // ET_REL
            &62u16.to_le_bytes(), // x86-64
            &1u32.to_le_bytes(),
            &0u64.to_le_bytes(), // entry
            &0u64.to_le_bytes(), // phoff
            &shoff.to_le_bytes(),
            &0u32.to_le_bytes(),
            &64u16.to_le_bytes(),
            &56u16.to_le_bytes(),
            &0u16.to_le_bytes(),
            &64u16.to_le_bytes(),
            &shnum.to_le_bytes(),
            &(shnum - 1).to_le_bytes(),
        ]
        .concat();
        out.splice(0..64, header);
        out
    }

    #[test]
    fn names_the_section_whose_contents_changed_and_ignores_moved_ones() {
        let a = object(&[(".text", b"\x90\x90\xc3"), (".data", b"abcd")]);
        let b = object(&[(".text", b"\x90\x90\x90\xc3"), (".data", b"abcd")]);
        let d = locate(&a, &b, false).unwrap_or_default();
        assert_eq!(d.header, Vec::<&str>::new());
        assert_eq!(d.segments, []);
        assert_eq!(
            d.sections,
            [RegionDifference {
                name: ".text".into(),
                a: Some(Span {
                    offset: 64,
                    size: 3
                }),
                b: Some(Span {
                    offset: 64,
                    size: 4
                }),
                differs: vec!["size", "contents"],
            }]
        );
    }

    #[test]
    fn reports_sections_present_on_one_side_and_repeated_names() {
        let a = object(&[(".text", b"x"), (".text", b"y"), (".old", b"o")]);
        let b = object(&[(".text", b"x"), (".text", b"z"), (".new", b"n")]);
        let d = locate(&a, &b, false).unwrap_or_default();
        let summary: Vec<(&str, bool, bool)> = d
            .sections
            .iter()
            .map(|r| (r.name.as_str(), r.a.is_some(), r.b.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                (".text[1]", true, true),
                (".old", true, false),
                // The section names themselves differ.
                (".shstrtab", true, true),
                (".new", false, true)
            ]
        );
    }

    #[test]
    fn non_elf_input_has_no_elf_differences() {
        assert_eq!(locate(b"plain", &object(&[]), false), None);
        assert_eq!(locate(b"\x7fELF", b"\x7fELF", false), None);
    }

    #[test]
    fn different_classes_stop_at_the_header() {
        let a = object(&[]);
        let mut b = a.clone();
        if let Some(class) = b.get_mut(4) {
            *class = 1;
        }
        assert_eq!(locate(&a, &b, false).map(|d| d.header), Some(vec!["class"]));
    }
}
