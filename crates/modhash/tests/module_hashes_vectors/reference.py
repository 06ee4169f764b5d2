#!/usr/bin/env python3
"""A second, independent implementation of the Linux CONFIG_MODULE_HASHES
tree, written from the format in docs/linux.md, that produced expected.txt.
It shares no code with the crate and builds the tree differently (each node
computed recursively from its level and index, not level by level);
`tests/module_hashes.rs` checks the two agree.

The modules are synthetic: module i is the text "module <i>" repeated
(i % 13) + 1 times, so the vectors need no files.

Usage: python3 reference.py > expected.txt   (run in this directory)
"""
import functools
import hashlib
import struct

MARKER = b"~Module signature appended~\n"
COUNTS = (0, 1, 2, 3, 5, 7, 100, 257)


def module(i):
    return (b"module %d\n" % i) * (i % 13 + 1)


def levels(n):
    if n == 0:
        return 0
    return max(1, (n - 1).bit_length())


def tree(n):
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
