#!/usr/bin/env bash
# Sets talaria up on a fresh Debian 12 machine (packages, build into build/) and runs
# the main job on the bundled example: index it, look records up, summarise, verify.
set -euo pipefail
cd "$(dirname "$0")/.."

packages="build-essential autoconf automake libtool pkg-config libzstd-dev liblz4-dev
libnuma-dev libsqlite3-dev zlib1g-dev libxxhash-dev libcmocka-dev libparasail-dev zstd lz4 gzip bzip2"
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi

[ -x configure ] || ./autogen.sh
mkdir -p build
cd build
[ -f Makefile ] || ../configure --quiet
make -j"$(nproc)" --quiet
cd ..

out=build/example
rm -rf "$out"
mkdir -p "$out"
set -x
build/talaria index -i examples/sample.fasta -o "$out/sample.tal"
build/talaria stats -i "$out/sample.tal"
build/talaria get "$out/sample.tal" A0DKU8YL21 'A0DKU8YL21:1-30'
build/talaria verify "$out/sample.tal"
