#!/bin/sh
# Builds Genesis's one native addon, native/sendfile.c, into build/native/sendfile.node, against
# the headers of the node that runs this (npm runs it as the install script, so `npm ci` builds
# it). Without Linux or a working C compiler it says so and exits 0: Genesis then sends large downloads
# from its sender process instead (docs/design.md), and `genesis doctor` says which it uses.
set -eu
cd "$(dirname "$0")/.."
out=build/native/sendfile.node
if [ "$(uname -s)" != Linux ]; then
  echo "genesis: sendfile addon not built (not Linux); large downloads go through the sender process" >&2
  exit 0
fi
cc="${CC:-cc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "genesis: sendfile addon not built (no C compiler: install gcc and libc6-dev, then run sh scripts/build-native.sh);" \
    "large downloads go through the sender process" >&2
  exit 0
fi
# node's own headers: beside its binary (the official tarballs, Docker's node images), or where
# npm_config_nodedir points.
include="$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")"
if [ ! -f "$include/node_api.h" ] && [ -n "${npm_config_nodedir:-}" ]; then include="$npm_config_nodedir/include/node"; fi
if [ ! -f "$include/node_api.h" ]; then
  echo "genesis: sendfile addon not built (node_api.h not found beside $(command -v node));" \
    "large downloads go through the sender process" >&2
  exit 0
fi
mkdir -p build/native
# Built to a temporary name first, so a failed build leaves no half-written addon behind. A failed
# build (a compiler without the C library's headers: Debian's gcc without libc6-dev) does not fail
# the install either: Genesis runs without the addon.
if "$cc" -std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -pthread -fvisibility=hidden \
  -I"$include" native/sendfile.c -o "$out.tmp"; then
  mv "$out.tmp" "$out"
  echo "genesis: built $out" >&2
else
  rm -f "$out.tmp"
  echo "genesis: sendfile addon not built ($cc failed, above; Debian needs gcc and libc6-dev);" \
    "large downloads go through the sender process" >&2
fi
