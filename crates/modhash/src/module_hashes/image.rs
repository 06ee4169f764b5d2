//! The root record inside a kernel image: reading it from a vmlinux or an
//! x86 bzImage, and filling it into a vmlinux after linking.
//!
//! The kernel build links vmlinux with a 36-byte zero placeholder in the
//! section `.module_hashes` and fills it once the modules are built. The
//! record is found through the section table, which a vmlinux keeps (and
//! the bzImage's compressed payload too), and its byte order is the ELF
//! header's. Sealing changes those 36 bytes and nothing else.

use std::borrow::Cow;

use super::{ByteOrder, Root, RootRecordError, ROOT_RECORD_LEN, SECTION_NAME};
use crate::seal::section_range;
use crate::signature::kernel_image::{self, Compression, KernelImageError};

/// Why a kernel image has no readable root record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Neither vmlinux nor a bzImage that decompresses.
    #[error(transparent)]
    Image(#[from] KernelImageError),
    /// The ELF file does not parse.
    #[error("malformed ELF file: {0}")]
    MalformedElf(String),
    /// No `.module_hashes` section.
    #[error("no {SECTION_NAME} section: the kernel was built without CONFIG_MODULE_HASHES (or its section table was stripped)")]
    NoSection,
    /// The section is not one record.
    #[error("section {SECTION_NAME} is {0} bytes, not the {ROOT_RECORD_LEN}-byte struct module_hashes_root")]
    SectionSize(u64),
    /// The section's range leaves the file.
    #[error("section {SECTION_NAME} lies outside the file; it is truncated")]
    Outside,
    /// The record does not parse.
    #[error(transparent)]
    Record(#[from] RootRecordError),
    /// The section overlaps the headers that locate it.
    #[error("section {SECTION_NAME} overlaps the ELF headers that locate it; the file is corrupt or hostile")]
    OverlapsHeaders,
    /// Only a vmlinux can be sealed.
    #[error("a bzImage cannot be sealed: seal the vmlinux before it is compressed into one")]
    Compressed,
}

/// Where the record sits in a vmlinux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// File offset of the 36 bytes.
    pub offset: usize,
    /// The ELF file's byte order.
    pub order: ByteOrder,
}

/// The root record a kernel image carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRoot {
    /// The root.
    pub root: Root,
    /// Where it is in the vmlinux.
    pub slot: Slot,
    /// How the vmlinux was stored in the image.
    pub compression: Compression,
}

/// Finds the record in a vmlinux ELF file.
pub fn locate(vmlinux: &[u8]) -> Result<Slot, ImageError> {
    let order = match vmlinux.get(..6) {
        Some([0x7f, b'E', b'L', b'F', _, 1]) => ByteOrder::LittleEndian,
        Some([0x7f, b'E', b'L', b'F', _, 2]) => ByteOrder::BigEndian,
        _ => return Err(KernelImageError::NotKernel.into()),
    };
    let (offset, size) = section_range(vmlinux, SECTION_NAME)
        .map_err(ImageError::MalformedElf)?
        .ok_or(ImageError::NoSection)?;
    if size != ROOT_RECORD_LEN as u64 {
        return Err(ImageError::SectionSize(size));
    }
    let offset = usize::try_from(offset)
        .ok()
        .filter(|o| {
            o.checked_add(ROOT_RECORD_LEN)
                .is_some_and(|end| end <= vmlinux.len())
        })
        .ok_or(ImageError::Outside)?;
    Ok(Slot { offset, order })
}

/// Reads the root record of `image`, a vmlinux or a bzImage.
pub fn read(image: &[u8]) -> Result<ImageRoot, ImageError> {
    let (compression, vmlinux) = kernel_image::vmlinux(image)?;
    let slot = locate(&vmlinux)?;
    let record = vmlinux
        .get(slot.offset..slot.offset + ROOT_RECORD_LEN)
        .ok_or(ImageError::Outside)?;
    Ok(ImageRoot {
        root: Root::from_record(record, slot.order)?,
        slot,
        compression,
    })
}

/// `vmlinux` with `root` written into its record, in the file's byte order;
/// every other byte unchanged.
pub fn seal<'a>(vmlinux: &'a [u8], root: &Root) -> Result<Cow<'a, [u8]>, ImageError> {
    if !vmlinux.starts_with(b"\x7fELF") {
        return Err(match kernel_image::vmlinux(vmlinux) {
            Ok(_) => ImageError::Compressed,
            Err(e) => e.into(),
        });
    }
    let slot = locate(vmlinux)?;
    let record = root.to_record(slot.order);
    if vmlinux.get(slot.offset..slot.offset + ROOT_RECORD_LEN) == Some(record.as_slice()) {
        return Ok(Cow::Borrowed(vmlinux));
    }
    let mut sealed = vmlinux.to_vec();
    sealed
        .get_mut(slot.offset..slot.offset + ROOT_RECORD_LEN)
        .ok_or(ImageError::Outside)?
        .copy_from_slice(&record);
    // A record that overlaps the headers locating it (the ELF header, the
    // section table or its names) would move or hide itself once written.
    if locate(&sealed).ok() != Some(slot) {
        return Err(ImageError::OverlapsHeaders);
    }
    Ok(Cow::Owned(sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `module_hashes` fuzz target: a `.module_hashes` section
    /// lying over the ELF header. Writing a root there rewrote the header,
    /// and the sealed file no longer had the record it was sealed with.
    #[test]
    fn a_record_over_its_own_headers_is_not_sealed() {
        let bytes = include_bytes!("../../tests/vectors/module-hashes-record-in-elf-header.elf");
        let found = read(bytes).expect("the record reads");
        let root = Root {
            levels: found.root.levels + 1,
            hash: found.root.hash,
        };
        assert!(matches!(
            seal(bytes, &root),
            Err(ImageError::OverlapsHeaders)
        ));
    }
}
