#!/usr/bin/env python3
"""A second, independent implementation of the Linux CONFIG_MODULE_HASHES
tree, written from the format in docs/linux.md, that produced expected.txt.
It shares no code with the crate and builds the tree differently (each node
computed recursively from its level and index, not level by level);
`tests/module_hashes.rs` checks the two agree.

The modules are synthetic: module i is the text "module <i>" repeated
(i % 13) + 1 times, so the vectors need no files.

Usage: python3 reference.py > expected.txt   (run in this directory)
       python3 reference.py DIR ORDER [--proofs | --append]
           the tree over real modules: prints levels=N root=<hex>; each
           line dir/name.o of ORDER names DIR/dir/name.ko, hashed without
           its appended signature or proof; --proofs writes name.merkle
           beside each module, --append appends the proof in its place.
"""
import functools
import hashlib
import os
import struct
import sys

MARKER = b"~Module signature appended~\n"
COUNTS = (0, 1, 2, 3, 5, 7, 100, 257)


def module(i):
    return (b"module %d\n" % i) * (i % 13 + 1)


def levels(n):
    if n == 0:
        return 0
    return max(1, (n - 1).bit_length())


def tree(n, module=module):
    @functools.lru_cache(maxsize=None)
    def node(level, index):
        if level == 0:
            return hashlib.sha256(b"\x01" + struct.pack(">I", index) + module(index)).digest()
        width_below = -(-n // (1 << (level - 1)))  # nodes on the level below
        left = node(level - 1, 2 * index)
        right = node(level - 1, 2 * index + 1) if 2 * index + 1 < width_below else left
        return hashlib.sha256(b"\x02" + left + right).digest()

    def proof(pos):
        out = struct.pack(">I", pos)
        for level in range(levels(n)):
            index = pos >> level
            width = -(-n // (1 << level))
            sibling = index ^ 1
            out += node(level, sibling if sibling < width else index)
        sig_len = len(out)
        return out + bytes([0, 0, 3, 0, 0, 0, 0, 0]) + struct.pack(">I", sig_len) + MARKER

    root = node(levels(n), 0) if n else bytes(32)
    return root, [proof(i) for i in range(n)]


def payload(b):
    """The bytes before an appended module signature or proof."""
    if not b.endswith(MARKER):
        return b
    sig_len = struct.unpack(">I", b[-32:-28])[0]
    end = len(b) - 40 - sig_len - b[-37] - b[-36]
    if end < 0:
        sys.exit("malformed trailer")
    return b[:end]


if len(sys.argv) > 1:
    top, order = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else None
    names = [line[: -len(".o")] + ".ko" for line in open(order).read().splitlines()]
    paths = [os.path.join(top, name) for name in names]
    payloads = [payload(open(p, "rb").read()) for p in paths]
    root, proofs = tree(len(paths), lambda i: payloads[i])
    for path, body, proof in zip(paths, payloads, proofs):
        if mode == "--proofs":
            open(path[: -len(".ko")] + ".merkle", "wb").write(proof)
        elif mode == "--append":
            open(path, "wb").write(body + proof)
    print("levels=%d root=%s" % (levels(len(paths)), root.hex()))
    sys.exit(0)

print("# <modules> <levels> <root> <sha256 of every .merkle file, concatenated in order>; by reference.py")
for n in COUNTS:
    root, proofs = tree(n)
    print(n, levels(n), root.hex(), hashlib.sha256(b"".join(proofs)).hexdigest())
print("# <modules> <pos> <.merkle file in hex>, for the small trees")
for n in COUNTS:
    if n > 7:
        continue
    _, proofs = tree(n)
    for pos, p in enumerate(proofs):
        print(n, pos, p.hex())
