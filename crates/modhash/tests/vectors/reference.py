#!/usr/bin/env python3
"""A second, independent implementation of the three digest profiles,
written from the profile table in the design, that produced expected.txt.
It shares no code with the crate; `tests/vectors.rs` checks the two agree.

Usage: python3 reference.py > expected.txt   (run in this directory)
"""
import hashlib
import os
import struct

MARKER = b"~Module signature appended~\n"


def payload(b):
    if b.endswith(MARKER):
        record = b[-40:-28]
        signer_len, key_id_len = record[3], record[4]
        sig_len = struct.unpack(">I", record[8:12])[0]
        n = len(b) - 40 - sig_len - signer_len - key_id_len
        return b[:n] if n >= 0 else None
    return b


def elf_image(b):
    if len(b) < 64 or b[:4] != b"\x7fELF" or b[4] != 2 or b[5] != 1:
        return None
    if struct.unpack_from("<H", b, 16)[0] not in (2, 3):
        return None
    phoff = struct.unpack_from("<Q", b, 32)[0]
    phnum = struct.unpack_from("<H", b, 56)[0]
    if phoff + 56 * phnum > len(b):
        return None
    ranges = [(0, 64), (phoff, phoff + 56 * phnum)]
    for i in range(phnum):
        at = phoff + 56 * i
        offset = struct.unpack_from("<Q", b, at + 8)[0]
        filesz = struct.unpack_from("<Q", b, at + 32)[0]
        if offset + filesz > len(b):
            return None
        ranges.append((offset, offset + filesz))
    image = bytearray(max(end for _, end in ranges))
    for start, end in ranges:
        image[start:end] = b[start:end]
    image[40:48] = bytes(8)  # e_shoff
    image[60:64] = bytes(4)  # e_shnum, e_shstrndx
    return bytes(image)


print("# <profile> <sha256 or error>  <file>; computed by reference.py")
for name in sorted(os.listdir(".")):
    if name.endswith((".txt", ".md", ".py")) and name != "not-elf.txt":
        continue
    data = open(name, "rb").read()
    for profile, fn in (("file", lambda x: x), ("payload", payload), ("elf-image", elf_image)):
        result = fn(data)
        digest = hashlib.sha256(result).hexdigest() if result is not None else "error"
        print(profile, digest, "", name)
