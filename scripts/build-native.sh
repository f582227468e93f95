#!/bin/sh
# Builds Genesis's native addons against the headers of the node that runs this (npm runs it as
# the install script, so `npm ci` builds them):
#   native/sendfile.c  -> build/native/sendfile.node   large downloads sent by the kernel
#   native/tftp-pump.c -> build/native/tftp-pump.node  TFTP blocks of files in memory
# (both include native/addon-thread.h, the thread and report plumbing they share)
# Without Linux or a working C compiler it says so and exits 0: each has a fallback in TypeScript
# (docs/design.md), and `genesis doctor` says which Genesis uses.
set -eu
cd "$(dirname "$0")/.."
fallbacks="large downloads go through the sender process and TFTP blocks are sent from JavaScript"
if [ "$(uname -s)" != Linux ]; then
  echo "genesis: native addons not built (not Linux); $fallbacks" >&2
  exit 0
fi
cc="${CC:-cc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "genesis: native addons not built (no C compiler: install gcc and libc6-dev, then run sh scripts/build-native.sh); $fallbacks" >&2
  exit 0
fi
# node's own headers: beside its binary (the official tarballs, Docker's node images), or where
# npm_config_nodedir points.
include="$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")"
if [ ! -f "$include/node_api.h" ] && [ -n "${npm_config_nodedir:-}" ]; then include="$npm_config_nodedir/include/node"; fi
if [ ! -f "$include/node_api.h" ]; then
  echo "genesis: native addons not built (node_api.h not found beside $(command -v node)); $fallbacks" >&2
  exit 0
fi
mkdir -p build/native
# Each is built to a temporary name first, so a failed build leaves no half-written addon behind.
# A failed build (a compiler without the C library's headers: Debian's gcc without libc6-dev) does
# not fail the install either: Genesis runs without that addon.
build() {
  name="$1" without="$2"
  out="build/native/$name.node"
  if "$cc" -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -pthread -fvisibility=hidden \
    -I"$include" "native/$name.c" -o "$out.tmp" -lm; then
    mv "$out.tmp" "$out"
    echo "genesis: built $out" >&2
  else
    rm -f "$out.tmp"
    echo "genesis: $name addon not built ($cc failed, above; Debian needs gcc and libc6-dev); $without" >&2
  fi
}
build sendfile "large downloads go through the sender process"
build tftp-pump "TFTP blocks are sent from JavaScript"
