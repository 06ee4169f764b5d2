#!/bin/sh
# meson install script: what a distribution's packaging does after
# `meson install`, in this order, because each step changes what the next
# one must see:
#   1. hash the installed in-tree modules (meson rewrote their RUNPATH while
#      installing, so hashes taken in the build tree would be stale);
#   2. seal the manifest's root into the installed libhost.so;
#   3. strip the tree (the elf-image digests and the sealed anchor survive);
#   4. sign the out-of-tree module as its vendor ships it: last, because a
#      .sign covers every byte of the file.
set -eu
modhash=$1 openssl=$2 ipa_dir=$3 extra_dir=$4 manifest=$5 libhost=$6 vendor_key=$7
root=${MESON_INSTALL_DESTDIR_PREFIX:?run by meson install}

mkdir -p "$(dirname "$root/$manifest")"
"$modhash" manifest "$root/$ipa_dir" -o "$root/$manifest" 2>/dev/null
"$modhash" seal "$root/$libhost" --manifest "$root/$manifest" >/dev/null
for file in "$root/$libhost" "$root/$ipa_dir"/*.so "$root/$extra_dir"/*.so "$root"/bin/*; do
	strip --strip-unneeded "$file"
done
"$modhash" seal --check "$root/$libhost" --manifest "$root/$manifest" >/dev/null
"$openssl" dgst -sha256 -sign "$vendor_key" -out "$root/$extra_dir/ipa_vendor.so.sign" \
	"$root/$extra_dir/ipa_vendor.so"
