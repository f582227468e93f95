#!/bin/sh
# Copy the iPXE binaries Genesis serves over TFTP from Debian's ipxe package (or any directory
# laid out like /usr/lib/ipxe) into the assets directory. Used by the Dockerfile and .ci/run.
set -eu
src="${1:-/usr/lib/ipxe}"
dest="${2:-assets/ipxe}"
mkdir -p "$dest"
for f in undionly.kpxe ipxe.efi snponly.efi; do
  if [ -e "$src/$f" ]; then
    cp -L "$src/$f" "$dest/$f"
  else
    echo "copy-ipxe: $src/$f not found (install Debian's ipxe package)" >&2
    exit 1
  fi
done
echo "copy-ipxe: $(ls "$dest" | tr '\n' ' ')"
