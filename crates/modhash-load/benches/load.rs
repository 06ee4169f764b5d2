//! Verify-and-load against a plain `dlopen` of the same ~400 KB module, with
//! the loader's steps timed one by one and the cost of the memfd copy that no
//! loader of sealed images can avoid.
//!
//! `cargo bench -p modhash-load --bench load` (release profile).
//! `MODHASH_BENCH_ROUNDS` sets the rounds (default 2000). Every round times
//! each case once, in turn, so all cases see the same machine state; the
//! report gives medians and the ratio the loader is held to:
//! verify-and-load / (one SHA-256 pass + plain load), target ≤ 1.5.
//!
//! Like is compared with like: both loads run the module's constructors,
//! look up the ABI table and create an instance, and both unload fully (the
//! benchmark checks that the plain `dlclose` really unmaps the library, so
//! every plain load maps it afresh). Loading and unloading are timed
//! separately; the target is about loading.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{median, time};

use std::hint::black_box;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use modhash::elf_dynamic::Dynamic;
use modhash::elf_image::LoadableRanges;
use modhash::{Digest, Profile};
use modhash_load::deps::{default_system_dirs, Dependencies};
use modhash_load::memfd::{read_module_into, ModuleBytes, SealedImage, DEFAULT_SIZE_CAP};
use modhash_load::{Action, DigestSet, Loader};
use modhash_plugin::host::{Instance, Table};
use modhash_plugin::{EntryFn, SYMBOL};
use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};

/// The cases, in the order each round runs them.
#[derive(Clone, Copy)]
enum Case {
    Sha,
    PlainLoad,
    PlainUnload,
    Load,
    Unload,
    Read,
    ReadMisaligned,
    Image,
    Seal,
    Hash,
    Dependencies,
    DlopenMemfd,
    Probe,
    Alloc,
    Copy,
}

const CASES: [(Case, &str); 15] = [
    (Case::Sha, "sha256 of the image (one pass)"),
    (Case::PlainLoad, "plain load: dlopen file + ABI create"),
    (Case::PlainUnload, "plain unload: destroy + dlclose"),
    (Case::Load, "verify-and-load (Loader::load)"),
    (Case::Unload, "unload (destroy, dlclose, close)"),
    (Case::Read, "  read (open, fstat, read)"),
    (Case::ReadMisaligned, "    same read, 16 bytes past a page"),
    (Case::Image, "  image into memfd (parse, pwrite runs)"),
    (Case::Seal, "  seal"),
    (Case::Hash, "  image into memfd + seal + read back + sha256"),
    (
        Case::Dependencies,
        "  dependencies (dynamic section, lookups)",
    ),
    (Case::DlopenMemfd, "  dlopen memfd + ABI create (plain)"),
    (Case::Probe, "    of which: RTLD_NOLOAD probe"),
    (Case::Alloc, "  floor: shmem pages (fallocate)"),
    (Case::Copy, "  floor: copy into allocated pages"),
];

/// The comparison read lands this far past a page boundary: where glibc's
/// malloc puts the blocks it serves with mmap (128 KiB and up), so where a
/// plain `Vec<u8>` snapshot of a module would be.
const MISALIGNMENT: usize = 16;
const PAGE: usize = 4096;

const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE)
    .union(SealFlags::SEAL);

fn memfd() -> OwnedFd {
    rustix::fs::memfd_create("bench", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .expect("memfd_create")
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) {
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|rest| !rest.is_empty()) {
        done += rustix::io::write(fd, rest).expect("write memfd");
    }
}

/// The plain load the loader is compared with: what a host without
/// verification does with the same module.
fn plain_load(path: &Path) -> (Instance, Library) {
    // SAFETY: the benchmark's own test module.
    let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.expect("dlopen");
    // SAFETY: the symbol has the ABI's entry point type.
    let entry = unsafe { library.get::<EntryFn>(SYMBOL.as_bytes()) }.expect("entry point");
    // SAFETY: the entry point takes nothing and returns the static table,
    // which lives as long as `library`, which outlives the instance.
    let table = unsafe { Table::from_raw(entry()) }.expect("table");
    black_box(table.name().expect("name"));
    let instance = table.create(b"").expect("create");
    (instance, library)
}

fn plain_unload((instance, library): (Instance, Library)) {
    drop(instance);
    library.close().expect("dlclose");
}

fn is_resident(path: &Path) -> bool {
    // SAFETY: RTLD_NOLOAD loads nothing and runs no code.
    unsafe { Library::open(Some(path), RTLD_NOW | libc::RTLD_NOLOAD) }.is_ok()
}

fn main() {
    let rounds = common::bench_rounds();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("libmodule.so");
    std::fs::copy(common::variant_a(), &path).expect("copy module");
    let file = std::fs::read(&path).expect("read");
    let image = Profile::ElfImage
        .hashed_bytes(&file)
        .expect("image")
        .into_owned();
    let image_len = image.len() as u64;
    let trusted = Digest::sha256(&image);
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, [trusted], Action::Reject));

    plain_unload(plain_load(&path));
    assert!(
        !is_resident(&path),
        "dlclose left the module mapped: the plain baseline would not reload it"
    );

    // The loader reuses its buffers from load to load; so do its steps here.
    let mut file_buffer = ModuleBytes::new();
    let mut image_buffer = ModuleBytes::new();
    let mut misaligned = vec![0u8; file.len() + 2 * PAGE];
    let misaligned_at = misaligned.as_ptr().align_offset(PAGE) + MISALIGNMENT;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); CASES.len()];
    for _ in 0..rounds {
        for ((case, _), out) in CASES.iter().zip(samples.iter_mut()) {
            let sample = match case {
                Case::Sha => time(|| {
                    black_box(Digest::sha256(&image));
                }),
                Case::PlainLoad => {
                    let mut loaded = None;
                    let t = time(|| loaded = Some(plain_load(&path)));
                    plain_unload(loaded.expect("loaded"));
                    t
                }
                Case::PlainUnload => {
                    let loaded = plain_load(&path);
                    time(|| plain_unload(loaded))
                }
                Case::Load => {
                    let mut module = None;
                    let t = time(|| module = Some(loader.load(&path).expect("load")));
                    drop(module);
                    t
                }
                Case::Unload => {
                    let module = loader.load(&path).expect("load");
                    time(|| drop(module))
                }
                Case::Read => time(|| {
                    read_module_into(&path, DEFAULT_SIZE_CAP, &mut file_buffer).expect("read");
                }),
                Case::ReadMisaligned => time(|| {
                    let dst = misaligned
                        .get_mut(misaligned_at..misaligned_at + file.len())
                        .expect("buffer");
                    let fd = std::fs::File::open(&path).expect("open");
                    rustix::io::pread(&fd, dst, 0).expect("read");
                }),
                Case::Image => {
                    let mut fd = None;
                    let t = time(|| {
                        let ranges = LoadableRanges::parse(&file).expect("image");
                        let memfd = memfd();
                        rustix::fs::ftruncate(&memfd, image_len).expect("ftruncate");
                        for run in ranges.runs(&file) {
                            let at = run.offset as u64;
                            rustix::io::pwrite(&memfd, &run.bytes, at).expect("pwrite");
                        }
                        fd = Some(memfd);
                    });
                    drop(fd);
                    t
                }
                Case::Seal => {
                    let fd = memfd();
                    write_all(&fd, &image);
                    time(|| rustix::fs::fcntl_add_seals(&fd, SEALS).expect("seal"))
                }
                Case::Hash => {
                    // The sealed image's hash is private to the loader:
                    // time the whole step, the hash is what exceeds
                    // "memfd create + write" and "seal".
                    let ranges = LoadableRanges::parse(&file).expect("image");
                    let mut sealed = None;
                    let t = time(|| {
                        sealed = Some(
                            SealedImage::canonical(&file, &ranges, &mut image_buffer)
                                .expect("seal"),
                        )
                    });
                    assert_eq!(sealed.map(|s| s.digest()), Some(trusted));
                    t
                }
                Case::Dependencies => time(|| {
                    let dynamic = Dynamic::try_from(image.as_slice());
                    black_box(Dependencies::resolve(
                        &path,
                        &dynamic,
                        default_system_dirs(),
                        &loader,
                    ));
                }),
                Case::DlopenMemfd => {
                    let sealed = SealedImage::new(&image).expect("seal");
                    let path = format!("/proc/self/fd/{}", sealed.fd().as_raw_fd());
                    let mut module = None;
                    let t = time(|| module = Some(plain_load(Path::new(&path))));
                    plain_unload(module.expect("loaded"));
                    t
                }
                Case::Probe => {
                    let sealed = SealedImage::new(&image).expect("seal");
                    let path = format!("/proc/self/fd/{}", sealed.fd().as_raw_fd());
                    time(|| assert!(!is_resident(Path::new(&path))))
                }
                Case::Alloc => {
                    let fd = memfd();
                    let t = time(|| {
                        rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, image_len)
                            .expect("fallocate")
                    });
                    drop(fd);
                    t
                }
                Case::Copy => {
                    let fd = memfd();
                    rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, image_len)
                        .expect("fallocate");
                    let t = time(|| write_all(&fd, &image));
                    black_box(&fd);
                    t
                }
            };
            out.push(sample);
        }
    }
    let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
    println!(
        "module: {} bytes, image {} bytes, {rounds} rounds, medians:",
        file.len(),
        image.len()
    );
    for ((_, name), m) in CASES.iter().zip(&medians) {
        println!("{name:<40} {:>9.1} µs", m.as_secs_f64() * 1e6);
    }
    let at = |case: Case| {
        medians
            .get(case as usize)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
    };
    let baseline = at(Case::Sha) + at(Case::PlainLoad);
    println!(
        "verify-and-load / (sha256 + plain load)           = {:.2} (target <= 1.5)",
        at(Case::Load) / baseline
    );
    println!(
        "floor: (sha256 + plain load + shmem pages + copy) = {:.2}",
        (baseline + at(Case::Alloc) + at(Case::Copy)) / baseline
    );
    println!(
        "load+unload / (sha256 + plain load+unload)        = {:.2}",
        (at(Case::Load) + at(Case::Unload)) / (baseline + at(Case::PlainUnload))
    );
}
