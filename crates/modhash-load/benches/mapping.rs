//! Hashing a tree of module files the way `modhash manifest` does (reads
//! in 256 KiB chunks into a reused buffer, `modhash::tree::digest_file`)
//! against hashing each file from a read-only mapping, on two threads.
//!
//! Why it exists: mapping saves the copy out of the page cache, so it
//! looks like the way to bring `modhash manifest` to the SHA-256 floor;
//! this measures whether it does on the machine at hand, and is why the
//! manifest reads in chunks (docs/performance.md, "Manifest"). Mapping a
//! file someone can truncate while it is hashed also risks SIGBUS, which
//! reads do not.
//!
//! `MODHASH_BENCH_TREE=DIR cargo bench -p modhash-load --bench mapping`;
//! `scripts/bench mapping` fetches Debian's kernel modules and runs it on
//! them. `MODHASH_BENCH_ROUNDS` (default 5) rounds alternate the two ways;
//! the medians and their ratio are printed, and both ways must give every
//! file the same digest.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use modhash::input::ReadBuffer;
use modhash::{Digest, Profile, ProfileRule};
use rustix::mm::{MapFlags, ProtFlags};

fn main() {
    let Some(tree) = std::env::var_os("MODHASH_BENCH_TREE").map(PathBuf::from) else {
        println!("mapping: set MODHASH_BENCH_TREE to a directory of modules (scripts/bench mapping does)");
        return;
    };
    let rounds: usize = std::env::var("MODHASH_BENCH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(5);
    let mut files = Vec::new();
    collect(&tree, &mut files);
    // Largest first, so that neither thread is left with a big file at the end.
    files.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    let bytes: u64 = files.iter().map(|(_, len)| len).sum();
    let paths: Vec<PathBuf> = files.into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        hash_all(&paths, chunked).1,
        hash_all(&paths, |path, _| mapped(path)).1,
        "digests differ"
    );
    let (mut by_read, mut by_map) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        by_read.push(hash_all(&paths, chunked).0);
        by_map.push(hash_all(&paths, |path, _| mapped(path)).0);
    }
    let (read, map) = (median(&mut by_read), median(&mut by_map));
    println!(
        "mapping: {} files, {bytes} bytes, 2 threads, {rounds} rounds, medians:",
        paths.len()
    );
    println!("  read in chunks (modhash manifest)  {read:>10.1?}");
    println!("  read-only mapping                  {map:>10.1?}");
    println!(
        "  mapping / chunks = {:.2}",
        map.as_secs_f64() / read.as_secs_f64()
    );
    // The other way around the copy: the kernel hashing page-cache pages
    // spliced into an AF_ALG socket. Only whether this kernel offers it.
    let alg = rustix::net::socket(
        rustix::net::AddressFamily::from_raw(libc::AF_ALG as _),
        rustix::net::SocketType::SEQPACKET,
        None,
    );
    match alg {
        Ok(_) => println!("  AF_ALG: available (kernel hashing from the page cache; not measured)"),
        Err(errno) => println!("  AF_ALG: unavailable ({errno})"),
    }
}

/// Every regular file below `dir`, with its length.
fn collect(dir: &Path, files: &mut Vec<(PathBuf, u64)>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect(&entry.path(), files);
        } else if kind.is_file() {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            files.push((entry.path(), len));
        }
    }
}

/// Hashes every file on two threads with `digest`; the time taken and the
/// digests in file order.
fn hash_all(
    paths: &[PathBuf],
    digest: impl Fn(&Path, &mut ReadBuffer) -> Digest + Sync,
) -> (Duration, Vec<Digest>) {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let mut digests: Vec<(usize, Digest)> = std::thread::scope(|scope| {
        let worker = || {
            let mut buffer = ReadBuffer::new();
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(index) else {
                    return done;
                };
                done.push((index, digest(path, &mut buffer)));
            }
        };
        let other = scope.spawn(worker);
        let mut mine = worker();
        mine.extend(other.join().expect("thread"));
        mine
    });
    let elapsed = start.elapsed();
    digests.sort_by_key(|(index, _)| *index);
    (
        elapsed,
        digests.into_iter().map(|(_, digest)| digest).collect(),
    )
}

/// The digest `auto` gives the file, read in chunks as `modhash manifest`
/// reads it.
fn chunked(path: &Path, buffer: &mut ReadBuffer) -> Digest {
    modhash::tree::digest_file(path, ProfileRule::Auto, buffer)
        .expect("digest")
        .1
}

/// The digest `auto` gives the file, hashed from a read-only mapping.
fn mapped(path: &Path) -> Digest {
    let file = std::fs::File::open(path).expect("open");
    let len = usize::try_from(file.metadata().expect("fstat").len()).expect("length");
    if len == 0 {
        return Profile::auto(b"").digest(b"").expect("digest");
    }
    // SAFETY: a fresh read-only shared mapping of `len` bytes of an open
    // file, unmapped below before the function returns; nothing else in
    // this benchmark writes or truncates the files it hashes.
    let map = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::SHARED,
            file.as_fd(),
            0,
        )
    }
    .expect("mmap");
    // SAFETY: the mapping is `len` readable bytes and lives until the
    // munmap below, after the last use of `bytes`.
    let bytes = unsafe { std::slice::from_raw_parts(map.cast::<u8>(), len) };
    let digest = Profile::auto(bytes).digest(bytes).expect("digest");
    // SAFETY: `map` is the mapping made above, no longer borrowed.
    unsafe { rustix::mm::munmap(map, len) }.expect("munmap");
    digest
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
