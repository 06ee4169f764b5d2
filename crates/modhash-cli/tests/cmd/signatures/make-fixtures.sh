#!/usr/bin/env bash
# Rebuilds the fixtures of the signature CLI cases (tests/cmd/sig-*.toml,
# key-*.toml, keygen-*.toml, sign-*.toml, strip-*.toml). Needs a built
# `modhash` (MODHASH, default target/debug/modhash), gcc, binutils, openssl,
# gzip and python3.
# The kernel-style and libcamera-style signatures come from the core's test
# vectors (crates/modhash/src/signature/testdata/regenerate.sh, OpenSSL).
set -euo pipefail
cd "$(dirname "$0")"
root=$(git rev-parse --show-toplevel)
modhash=${MODHASH:-$root/target/debug/modhash}
vectors=$root/crates/modhash/src/signature/testdata
rm -rf signtab && mkdir signtab

cp "$vectors"/{rsa-sha256.ko,p256-sha256.ko,p256.crt.pem,rsa2048.crt.pem,other-rsa2048.crt.pem,rsa2048.pub.der,other-rsa2048.pub.der} .
printf 'an unsigned module\n' > unsigned.bin

# libcamera: an IPA module with its .sign, and a one-byte-changed copy.
cp "$vectors/tiny.so" ipa_test.so
cp "$vectors/tiny.so.sign" ipa_test.so.sign
cp ipa_test.so ipa_tampered.so
printf '\x01' | dd of=ipa_tampered.so bs=1 seek=4000 conv=notrunc status=none
cp ipa_test.so.sign ipa_tampered.so.sign

# A stand-in libcamera.so: the public key at the dynamic symbol libcamera uses.
key_bytes=$(od -An -v -tx1 rsa2048.pub.der | tr -s ' \n' ' ' | sed 's/ *$//; s/^ //; s/ /, 0x/g; s/^/0x/')
src=$(mktemp --suffix=.c)
echo "const unsigned char key[] __asm__(\"_ZN9libcamera10IPAManager14publicKeyData_E\") = { $key_bytes };" > "$src"
gcc -shared -fPIC -O2 -s -o libcamera-fake.so "$src"
rm -f "$src"

# Kernel images whose certificate lists are laid out as the kernel lays
# them out (kernel-certs.S, compiled and linked by gcc):
#   system list      rsa2048 (the module signing key), p256, p384
#   revocation list  p384
#   blacklist_hashes "tbs:" + SHA-256 of p256's TBSCertificate
#   .data            other-rsa2048, a decoy the kernel never loads
# so rsa2048 is the only trusted key. vmlinux-fake keeps its symbol table;
# bzImage-fake holds the stripped copy, gzip-compressed. vmlinux-revoked-fake
# revokes rsa2048 too: it trusts no key.
kdir=$(mktemp -d)
der() { openssl x509 -in "$1" -outform DER -out "$2"; }
der rsa2048.crt.pem "$kdir/signing_key.x509"
der p256.crt.pem "$kdir/p256.der"
der "$vectors/p384.crt.pem" "$kdir/p384.der"
der other-rsa2048.crt.pem "$kdir/decoy.x509"
cat "$kdir/p256.der" "$kdir/p384.der" > "$kdir/x509_certificate_list"
cp "$kdir/p384.der" "$kdir/x509_revocation_list"
openssl asn1parse -inform DER -in "$kdir/p256.der" -strparse 4 -noout -out "$kdir/p256.tbs"
tbs=$(sha256sum "$kdir/p256.tbs" | cut -c1-64)
printf 'const char *const blacklist_hashes[] = { "tbs:%s", 0 };\n' "$tbs" > "$kdir/blacklist.c"
cp kernel-certs.S "$kdir/"
link_vmlinux() { # objects named here, so that no temporary name is linked in
  (cd "$kdir" && gcc -c kernel-certs.S && gcc -c blacklist.c &&
    gcc -nostdlib -static -no-pie -Wl,--build-id=none -o vmlinux kernel-certs.o blacklist.o)
}
link_vmlinux
cp "$kdir/vmlinux" vmlinux-fake
strip -o "$kdir/vmlinux.stripped" "$kdir/vmlinux"
python3 - "$kdir/vmlinux.stripped" <<'PY'
import gzip, struct, sys
vmlinux = open(sys.argv[1], "rb").read()
payload = gzip.compress(vmlinux, mtime=0)
setup = bytearray(4 * 512)
setup[0x1F1] = 3
setup[0x202:0x206] = b"HdrS"
setup[0x206:0x208] = bytes([0x0F, 0x02])
struct.pack_into("<II", setup, 0x248, 0, len(payload))
open("bzImage-fake", "wb").write(bytes(setup) + payload)
PY
# The same with the signing key and p384 in the revocation list: the image
# trusts no builtin key.
cat "$kdir/signing_key.x509" "$kdir/p384.der" > "$kdir/x509_revocation_list"
link_vmlinux
cp "$kdir/vmlinux" vmlinux-revoked-fake
rm -rf "$kdir"

# Native: a key pair, a sidecar signature, the same over the stripped copy,
# and a signtab entry for a copy without a sidecar.
rm -f test.key test.key.pub
"$modhash" keygen -o test.key --comment "modhash test key" > /dev/null
cp "$vectors/tiny.so" tiny.so
cp "$vectors/tiny-strip-all.so" tiny-strip-all.so
cp tiny.so moved.so
"$modhash" sign --key test.key tiny.so > /dev/null
cp tiny.so.modsig tiny-strip-all.so.modsig
"$modhash" sign --key test.key --signtab signtab tiny.so > /dev/null

# Kernel module signatures the kernel refuses: signed attributes, and a
# non-zero signer_len (200 bytes the old reading skipped, covered by nothing).
cp "$vectors/rsa-sha512-attrs.ko" .
python3 - <<'PY'
module = bytearray(open("rsa-sha256.ko", "rb").read())
module[len(module) - 28 - 12 + 3] = 200
open("rsa-sha256-signer-len.ko", "wb").write(module)
PY
