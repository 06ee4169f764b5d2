//! `modhash kernel`: the Linux kernel's own module hash tree
//! (`CONFIG_MODULE_HASHES`), built and sealed outside Kbuild.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use modhash::compressed::{self, Compression};
use modhash::input::ReadBuffer;
use modhash::linux_trailer;
use modhash::module_hashes::image;
use modhash::module_hashes::{leaf_hash, ByteOrder, Root, Tree, ROOT_RECORD_LEN};
use modhash::Digest;

use crate::commands::seal::write_sealed;
use crate::files::{write_atomically, MAX_SMALL_FILE};
use crate::output::{print_json, progress, CommandResult, Failure, Outcome};

/// Build and seal the Linux kernel's module hash tree (CONFIG_MODULE_HASHES).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KernelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KernelCommand {
    Tree(TreeArgs),
    Seal(SealArgs),
}

/// Build the module hash tree over the modules DIR/modules.order lists, in
/// its order, as the kernel build does.
///
/// Each line `dir/name.o` names DIR/dir/name.ko (or name.ko.xz, .ko.zst,
/// .ko.gz, judged decompressed); what is hashed is the module without its
/// appended signature or proof. Prints `levels=N root=<hex>`.
#[derive(Debug, clap::Args)]
struct TreeArgs {
    /// The module tree (the build directory, or /lib/modules/VERSION).
    dir: PathBuf,
    /// The module order, instead of DIR/modules.order.
    #[arg(long, value_name = "FILE")]
    order: Option<PathBuf>,
    /// Write the 36-byte root record (struct module_hashes_root) here.
    #[arg(long, short, value_name = "ROOT")]
    output: Option<PathBuf>,
    /// Write the record's level count big-endian (for big-endian kernels).
    #[arg(long, requires = "output")]
    big_endian: bool,
    /// Write name.merkle beside each module, as the kernel build does.
    #[arg(long, conflicts_with = "append")]
    proofs: bool,
    /// Append each module's proof to it in place, replacing an appended
    /// signature or proof, as `make modules_install` does.
    #[arg(long)]
    append: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Write a module hash root record into a vmlinux's `.module_hashes`
/// section, in the ELF file's byte order.
///
/// ROOT is the record `modhash kernel tree -o` wrote. Only those 36 bytes
/// change. With --check, change nothing and exit 0 if VMLINUX carries that
/// root, 1 if not.
#[derive(Debug, clap::Args)]
struct SealArgs {
    /// The linked vmlinux with the zero placeholder.
    vmlinux: PathBuf,
    /// The root record.
    root: PathBuf,
    /// Write the sealed vmlinux here instead of replacing VMLINUX.
    #[arg(long, short, value_name = "OUT", conflicts_with = "check")]
    output: Option<PathBuf>,
    /// Only check whether VMLINUX is sealed with ROOT.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> CommandResult {
    match args.command {
        KernelCommand::Tree(args) => tree(args),
        KernelCommand::Seal(args) => seal(args),
    }
}

/// One module named by modules.order.
#[derive(Debug)]
struct Listed {
    /// Its 0-based line.
    pos: u32,
    /// The file found for it.
    path: PathBuf,
}

#[derive(serde::Serialize)]
struct TreeReport {
    #[serde(flatten)]
    root: Root,
    modules: u32,
}

fn tree(args: TreeArgs) -> CommandResult {
    let order = args
        .order
        .clone()
        .unwrap_or_else(|| args.dir.join("modules.order"));
    let listed = read_order(&args.dir, &order)?;
    let bar = progress(listed.len(), "hashing");
    let leaves = listed
        .par_iter()
        .map_init(ReadBuffer::new, |buffer, module| {
            bar.inc(1);
            let bytes = buffer
                .read_regular(&module.path, modhash::input::DEFAULT_MAX_LEN)
                .map_err(|e| Failure::at(&module.path, e))?;
            leaf(module, bytes)
        })
        .collect::<Result<Vec<Digest>, Failure>>()?;
    bar.finish_and_clear();
    let tree = Tree::new(leaves).map_err(|e| Failure::at(&order, e))?;
    if args.proofs || args.append {
        let bar = progress(listed.len(), "writing proofs");
        listed.par_iter().try_for_each(|module| {
            bar.inc(1);
            write_proof(&tree, module, args.append)
        })?;
        bar.finish_and_clear();
    }
    let root = tree.root();
    if let Some(out) = &args.output {
        let order = if args.big_endian {
            ByteOrder::BigEndian
        } else {
            ByteOrder::LittleEndian
        };
        write_atomically(out, &root.to_record(order))?;
    }
    if args.json {
        print_json(&TreeReport {
            root,
            modules: tree.len(),
        })?;
    } else {
        println!("levels={} root={}", root.levels, root.hash);
    }
    Ok(Outcome::Yes)
}

/// The leaf of `module`, whose file holds `bytes`.
fn leaf(module: &Listed, bytes: &[u8]) -> Result<Digest, Failure> {
    let decompressed = compressed::decompress(bytes, compressed::MAX_DECOMPRESSED)
        .map_err(|e| Failure::at(&module.path, e))?;
    let split =
        linux_trailer::split(&decompressed.bytes).map_err(|e| Failure::at(&module.path, e))?;
    Ok(leaf_hash(module.pos, split.payload))
}

/// Writes `name.merkle` beside the module, or appends the proof to it.
fn write_proof(tree: &Tree, module: &Listed, append: bool) -> Result<(), Failure> {
    let proof = tree
        .proof(module.pos)
        .ok_or_else(|| Failure::at(&module.path, "no proof for this position"))?;
    if !append {
        return write_atomically(&merkle_path(&module.path), &proof.to_trailer());
    }
    let file = crate::files::read_module(&module.path)?;
    let decompressed = compressed::decompress(&file, compressed::MAX_DECOMPRESSED)
        .map_err(|e| Failure::at(&module.path, e))?;
    let split =
        linux_trailer::split(&decompressed.bytes).map_err(|e| Failure::at(&module.path, e))?;
    // The file must still be what the tree was built from.
    if Some(leaf_hash(module.pos, split.payload)) != tree.leaf(module.pos) {
        return Err(Failure::at(
            &module.path,
            "changed while the tree was being built; run the command again",
        ));
    }
    let mut installed = Vec::with_capacity(split.payload.len() + 4 + 32 * 32 + 40);
    installed.extend_from_slice(split.payload);
    installed.extend_from_slice(&proof.to_trailer());
    let installed = match decompressed.compression {
        None => Cow::Owned(installed),
        Some(compression) => Cow::Owned(
            compression
                .compress(&installed)
                .map_err(|e| Failure::at(&module.path, format!("cannot recompress: {e}")))?,
        ),
    };
    write_atomically(&module.path, &installed)
}

/// `dir/name.merkle` for `dir/name.ko` (or `.ko.xz`, …).
fn merkle_path(module: &Path) -> PathBuf {
    let name = module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = Compression::ALL
        .iter()
        .find_map(|c| name.strip_suffix(&format!(".ko.{}", c.extension())))
        .or_else(|| name.strip_suffix(".ko"))
        .unwrap_or(&name);
    module.with_file_name(format!("{stem}.merkle"))
}

/// The modules `order` lists, each found below `dir`.
fn read_order(dir: &Path, order: &Path) -> Result<Vec<Listed>, Failure> {
    if !dir.is_dir() {
        return Err(Failure::at(dir, "not a directory; give the module tree"));
    }
    let text = crate::files::read(order, MAX_SMALL_FILE)?;
    let text = String::from_utf8(text)
        .map_err(|_| Failure::at(order, "not UTF-8 text; give a modules.order file"))?;
    if text.is_empty() {
        return Err(Failure::at(
            order,
            "lists no module; a kernel with CONFIG_MODULE_HASHES needs at least one",
        ));
    }
    text.lines()
        .enumerate()
        .map(|(line, name)| {
            let at = |reason: String| Failure::at(order, format!("line {}: {reason}", line + 1));
            let pos = u32::try_from(line).map_err(|_| at("too many modules".to_owned()))?;
            let relative = module_name(name).map_err(at)?;
            let path = find_module(dir, &relative).ok_or_else(|| {
                at(format!(
                    "`{name}`: no {} below {} (nor .xz, .zst or .gz)",
                    relative.display(),
                    dir.display()
                ))
            })?;
            Ok(Listed { pos, path })
        })
        .collect()
}

/// The module file a modules.order line names: `dir/name.o` is
/// `dir/name.ko`, as the kernel's build tool reads it.
fn module_name(line: &str) -> Result<PathBuf, String> {
    let relative = line
        .strip_suffix(".o")
        .map(|stem| format!("{stem}.ko"))
        .or_else(|| line.ends_with(".ko").then(|| line.to_owned()))
        .ok_or_else(|| format!("`{line}` names no module (expected dir/name.o or dir/name.ko)"))?;
    let path = PathBuf::from(relative);
    if !path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "`{line}` leaves the module tree; modules.order lists relative paths inside it"
        ));
    }
    Ok(path)
}

fn find_module(dir: &Path, relative: &Path) -> Option<PathBuf> {
    let plain = dir.join(relative);
    std::iter::once(plain.clone())
        .chain(Compression::ALL.iter().map(|c| {
            let mut name = plain.clone().into_os_string();
            name.push(".");
            name.push(c.extension());
            PathBuf::from(name)
        }))
        .find(|p| p.symlink_metadata().is_ok())
}

fn seal(args: SealArgs) -> CommandResult {
    let record = crate::files::read(&args.root, MAX_SMALL_FILE)?;
    let root = parse_root_record(&record).map_err(|e| Failure::at(&args.root, e))?;
    let vmlinux = crate::files::read_module(&args.vmlinux)?;
    if args.check {
        let carried = image::read(&vmlinux).map_err(|e| Failure::at(&args.vmlinux, e))?;
        return Ok(if carried.root == root {
            println!(
                "{}: sealed with levels={} root={}",
                args.vmlinux.display(),
                root.levels,
                root.hash
            );
            Outcome::Yes
        } else {
            println!(
                "{}: not sealed with levels={} root={} (carries levels={} root={})",
                args.vmlinux.display(),
                root.levels,
                root.hash,
                carried.root.levels,
                carried.root.hash
            );
            Outcome::No
        });
    }
    let sealed = image::seal(&vmlinux, &root).map_err(|e| Failure::at(&args.vmlinux, e))?;
    let out = write_sealed(&args.vmlinux, args.output.as_deref(), &sealed)?;
    println!(
        "{}: levels={} root={}",
        out.display(),
        root.levels,
        root.hash
    );
    Ok(Outcome::Yes)
}

/// Reads a root record in either byte order: a level count is at most 32,
/// so only one order gives a valid one (both, for the empty tree's zeros).
fn parse_root_record(record: &[u8]) -> Result<Root, String> {
    if record.len() != ROOT_RECORD_LEN {
        return Err(format!(
            "{} bytes, not a {ROOT_RECORD_LEN}-byte root record (`modhash kernel tree -o`)",
            record.len()
        ));
    }
    Root::from_record(record, ByteOrder::LittleEndian)
        .or_else(|_| Root::from_record(record, ByteOrder::BigEndian))
        .map_err(|e| e.to_string())
}
