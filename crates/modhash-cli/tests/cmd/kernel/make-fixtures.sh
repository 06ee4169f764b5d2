#!/usr/bin/env bash
# Rebuilds the fixtures of the module hash tree CLI cases
# (tests/cmd/kernel-*.toml, verify-kernel-*.toml). Needs gcc, objcopy, xz,
# zstd, gzip, python3 and a built `modhash` (MODHASH, default
# target/debug/modhash) for sealing. The trees and proofs come from the
# independent reference implementation, not from modhash.
set -euo pipefail
cd "$(dirname "$0")"
root=$(git rev-parse --show-toplevel)
modhash=${MODHASH:-$root/target/debug/modhash}
reference=$root/crates/modhash/tests/module_hashes_vectors/reference.py
rm -rf tree installed compressed attacks ./*.order vmlinux* root.bin signed-a.ko.xz
mkdir -p tree/net attacks compressed

# Five modules: one signed by the test key, four small relocatable objects.
cp ../signatures/rsa-sha256.ko tree/a.ko
for m in net/b c d e; do
  echo "int ${m##*/}_init(void) { return ${#m}; }" |
    gcc -x c -c -O2 -o "tree/$m.ko" -
done
printf 'a.o\nnet/b.o\nc.o\nd.o\ne.o\n' > tree/modules.order

# Installed: every proof appended (the signature of a.ko replaced).
cp -r tree installed
python3 "$reference" installed installed/modules.order --append > /dev/null
# The same installed tree, compressed as distributions ship it (one module
# left plain), and a signed module compressed.
mkdir -p compressed/net
cp installed/modules.order installed/e.ko compressed/
xz --check=crc32 -c installed/a.ko > compressed/a.ko.xz
zstd -q -c installed/net/b.ko > compressed/net/b.ko.zst
gzip -n -c installed/c.ko > compressed/c.ko.gz
xz --check=crc32 -c installed/d.ko > compressed/d.ko.xz
xz --check=crc32 -c tree/a.ko > signed-a.ko.xz

# The root record (little-endian levels, then the hash), and vmlinux-shaped
# ELF files: the 36-byte zero placeholder, a section of the wrong size, and
# a big-endian copy.
python3 - "$reference" tree <<'PY'
import subprocess, sys, struct
out = subprocess.run(["python3", sys.argv[1], sys.argv[2], sys.argv[2] + "/modules.order"],
                     capture_output=True, text=True, check=True).stdout
levels, root = (f.split("=")[1] for f in out.split())
open("root.bin", "wb").write(struct.pack("<I", int(levels)) + bytes.fromhex(root))
PY
cat > vmlinux.c <<'C'
struct module_hashes_root { unsigned int levels; unsigned char hash[32]; };
__attribute__((section(".module_hashes"), used))
const struct module_hashes_root module_hashes_root;
int main(void) { return 0; }
C
gcc -O2 -s -o vmlinux vmlinux.c
echo '__attribute__((section(".module_hashes"), used)) const unsigned char r[32];' |
  gcc -x c -c -o vmlinux-wrong-size -
# objcopy cannot change byte order: the big-endian one (an s390-shaped
# ELF64 with only the two sections it needs) is written by hand.
python3 - <<'PY'
import struct
strtab = b"\0.module_hashes\0.shstrtab\0"
data_at, str_at = 64, 64 + 36
sh_at = (str_at + len(strtab) + 7) & ~7
header = b"\x7fELF\x02\x02\x01" + bytes(9) + struct.pack(
    ">HHIQQQIHHHHHH", 2, 22, 1, 0, 0, sh_at, 0, 64, 56, 0, 64, 3, 2)
def sh(name, kind, flags, offset, size):
    return struct.pack(">IIQQQQIIQQ", name, kind, flags, 0, offset, size, 0, 0, 1, 0)
out = header + bytes(36) + strtab
out += bytes(sh_at - len(out))
out += sh(0, 0, 0, 0, 0) + sh(1, 1, 2, data_at, 36) + sh(16, 3, 0, str_at, len(strtab))
open("vmlinux-be", "wb").write(out)
PY
rm vmlinux.c
"$modhash" kernel seal vmlinux root.bin -o vmlinux-sealed > /dev/null

# Attacks on installed/net/b.ko (position 1).
cp installed/net/b.ko attacks/changed.ko
printf '\x01' | dd of=attacks/changed.ko bs=1 seek=100 conv=notrunc status=none
# Moved: b's bytes listed on line 3, proven there, checked against the
# root of the real order.
mkdir -p attacks/moved/net && cp tree/*.ko attacks/moved/ && cp tree/net/b.ko attacks/moved/net/
printf 'a.o\nc.o\nnet/b.o\nd.o\ne.o\n' > attacks/moved/modules.order
python3 "$reference" attacks/moved attacks/moved/modules.order --append > /dev/null
mv attacks/moved/net/b.ko attacks/moved.ko && rm -r attacks/moved
# Another tree: one more module, the same levels.
mkdir -p attacks/other/net && cp tree/*.ko attacks/other/ && cp tree/net/b.ko attacks/other/net/
cp tree/c.ko attacks/other/f.ko
printf 'a.o\nnet/b.o\nc.o\nd.o\ne.o\nf.o\n' > attacks/other/modules.order
python3 "$reference" attacks/other attacks/other/modules.order --append > /dev/null
mv attacks/other/net/b.ko attacks/other-tree.ko && rm -r attacks/other
# Truncated and over-long proofs: one hash fewer or more, sig_len to match.
python3 - <<'PY'
import struct
b = open("installed/net/b.ko", "rb").read()
marker, record = b[-28:], b[-40:-28]
sig_len = struct.unpack(">I", record[8:])[0]
payload, proof = b[:-40 - sig_len], b[-40 - sig_len:-40]
for name, p in (("truncated-proof", proof[:-32]), ("long-proof", proof + proof[-32:])):
    open("attacks/%s.ko" % name, "wb").write(payload + p + record[:8] + struct.pack(">I", len(p)) + marker)
PY
# A decompression bomb: 300 MiB of zeros in a few kilobytes.
head -c 300M /dev/zero | zstd -q -19 > attacks/bomb.ko.zst

# Bad orders.
: > empty.order
printf 'a.o\nnowhere.o\n' > missing.order
printf 'a.o\n../../etc/passwd.o\n' > escape.order
printf 'a.o\nb.c\n' > not-a-module.order
printf 'bomb.o\n' > bomb.order
