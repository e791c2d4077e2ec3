#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a user program against it three ways:
# pkg-config, find_package(loom) with the shared library, and with the static library.
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/include/loom/loom.h"
test -f "$tmp/prefix/include/loom/loom.hpp"
ls "$tmp"/prefix/lib*/libloom.so.0 > /dev/null
ls "$tmp"/prefix/lib*/libloom.a > /dev/null

# pkg-config
export PKG_CONFIG_PATH=$(echo "$tmp"/prefix/lib*/pkgconfig)
gcc -std=c11 -Wall -Werror "$src/tests/install/consumer/example.c" -o "$tmp/example_pc" \
  $(pkg-config --cflags --libs loom) -lpthread -Wl,-rpath,"$(pkg-config --variable=libdir loom)"
"$tmp/example_pc"

# find_package(loom)
cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  > "$tmp/consumer.log"
cmake --build "$tmp/consumer" -j 2 > "$tmp/consumer-build.log"
"$tmp/consumer/example_shared"
"$tmp/consumer/example_static"

# The shared library exports only the C ABI.
bad=$(nm -D --defined-only "$tmp"/prefix/lib*/libloom.so.0 | awk '{print $3}' | grep -v '^loom' || true)
if [ -n "$bad" ]; then
  echo "libloom.so exports non-loom symbols:"; echo "$bad" | head; exit 1
fi
# libnccl.so.2 (compat/nccl) in its own directory, so it shadows no NVIDIA NCCL; a C program
# builds against the installed nccl.h and runs on the installed library.
ncclinc="$tmp/prefix/include/loom/nccl"
nccllib=$(echo "$tmp"/prefix/lib*/loom/nccl)
test -f "$ncclinc/nccl.h"
test -L "$nccllib/libnccl.so.2"
test -L "$nccllib/libnccl.so"
readelf -d "$nccllib/libnccl.so.2" | grep -q 'SONAME.*libnccl.so.2'
if ls "$tmp"/prefix/lib*/libnccl* > /dev/null 2>&1; then
  echo "libnccl is installed into the library directory itself"; exit 1
fi
gcc -std=c11 -Wall -Werror "$src/tests/compat/nccl_test.c" -o "$tmp/nccl_test" -I"$ncclinc" \
  -L"$nccllib" -lnccl -lpthread -ldl -Wl,-rpath,"$nccllib"
"$tmp/nccl_test" basic > "$tmp/nccl_test.log" || { cat "$tmp/nccl_test.log"; exit 1; }

echo "install test ok"
