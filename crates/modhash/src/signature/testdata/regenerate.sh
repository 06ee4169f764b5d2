#!/usr/bin/env bash
# Regenerates the signature test vectors in this directory with OpenSSL, the
# tool the kernel's sign-file and libcamera's gen-ipa-priv-key.sh use. The
# private keys are thrown away: the vectors only need verifying.
#
#   module.bin                  a stand-in module payload
#   rsa2048.crt.der/.pem        self-signed RSA-2048 certificate (issuer+serial)
#   rsa2048.pub.der             its SubjectPublicKeyInfo (libcamera key format)
#   other-rsa2048.crt.pem/.pub.der  an unrelated key and certificate, same subject
#   p256.crt.pem, p384.crt.pem  ECDSA certificates
#   module.bin.sign             libcamera-style RSA PKCS#1 v1.5 SHA-256 signature
#   tiny.so.sign                the same over tiny.so (tiny-strip-all.so is it
#                               after `strip --strip-all`; both are copies of
#                               crates/modhash/tests/vectors/)
#   *.ko                        module.bin with an appended kernel-style signature:
#     rsa-sha256.ko             no signed attributes, rsaEncryption (as sign-file)
#     rsa-sha512-attrs.ko       with signed attributes (refused, as the kernel refuses them)
#     rsa-keyid.ko              signer named by subject key identifier (sign-file -k)
#     p256-sha256.ko, p384-sha384.ko, p384-sha512.ko   ECDSA
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

head -c 4096 /dev/urandom > module.bin

cert() { # name, keyalg options...
  local name=$1; shift
  openssl req -x509 -new -nodes -days 36500 -subj "/CN=modhash test $name" \
    -addext subjectKeyIdentifier=hash "$@" -keyout "$tmp/$name.key" -out "$name.crt.pem" 2>/dev/null
}
cert rsa2048 -newkey rsa:2048
openssl x509 -in rsa2048.crt.pem -outform DER -out rsa2048.crt.der
openssl x509 -in rsa2048.crt.pem -noout -pubkey | openssl pkey -pubin -outform DER -out rsa2048.pub.der
cp "$tmp/rsa2048.key" "$tmp/keep.key"
cert rsa2048 -newkey rsa:2048
mv rsa2048.crt.pem other-rsa2048.crt.pem
mv "$tmp/keep.key" "$tmp/rsa2048.key"
openssl x509 -in other-rsa2048.crt.pem -noout -pubkey | openssl pkey -pubin -outform DER -out other-rsa2048.pub.der
openssl x509 -inform DER -in rsa2048.crt.der -out rsa2048.crt.pem
cert p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
cert p384 -newkey ec -pkeyopt ec_paramgen_curve:P-384

openssl dgst -sha256 -sign "$tmp/rsa2048.key" -out module.bin.sign module.bin
openssl dgst -sha256 -sign "$tmp/rsa2048.key" -out tiny.so.sign tiny.so

append() { # out, cms der
  local out=$1 sig=$2 len
  len=$(stat -c %s "$sig")
  {
    cat module.bin "$sig"
    printf '\0\0\2\0\0\0\0\0'
    printf "\\x$(printf %02x $((len >> 24 & 255)))\\x$(printf %02x $((len >> 16 & 255)))\\x$(printf %02x $((len >> 8 & 255)))\\x$(printf %02x $((len & 255)))"
    printf '~Module signature appended~\n'
  } > "$out"
}
sign() { # out, key name, md, extra cms options...
  local out=$1 key=$2 md=$3; shift 3
  openssl cms -sign -binary -nocerts -outform DER -md "$md" -in module.bin \
    -signer "$key.crt.pem" -inkey "$tmp/$key.key" -out "$tmp/sig.der" "$@"
  append "$out" "$tmp/sig.der"
}
sign rsa-sha256.ko rsa2048 sha256 -noattr
sign rsa-sha512-attrs.ko rsa2048 sha512
sign rsa-keyid.ko rsa2048 sha256 -noattr -keyid
sign p256-sha256.ko p256 sha256 -noattr
sign p384-sha384.ko p384 sha384 -noattr
sign p384-sha512.ko p384 sha512 -noattr
