#!/usr/bin/env bash
# Prints a directory on a filesystem that can reflink, for the reflink test of
# tests/warm.rs (BATON_TEST_REFLINK_DIR): a small XFS image made with reflink on,
# loop-mounted. Needs root (the CI machine runs as root, Debian) and installs xfsprogs
# when mkfs.xfs is missing. Idempotent: a second run finds the mount and prints it.
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"
dir=${BATON_TEST_REFLINK_DIR:-/var/tmp/baton-reflink}
img=${BATON_TEST_REFLINK_IMAGE:-/var/tmp/baton-reflink.img}

if ! mountpoint -q "$dir"; then
    if ! command -v mkfs.xfs >/dev/null 2>&1; then
        echo "reflink-dir.sh: installing xfsprogs (mkfs.xfs)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq xfsprogs >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null && apt-get install -y -qq xfsprogs >/dev/null; }
    fi
    if [ ! -f "$img" ]; then
        # Made under another name and renamed: a killed mkfs leaves no bad image.
        rm -f "$img.tmp"
        truncate -s 512M "$img.tmp"
        mkfs.xfs -q -m reflink=1 "$img.tmp"
        mv "$img.tmp" "$img"
    fi
    mkdir -p "$dir"
    mount -o loop "$img" "$dir"
fi
chmod 1777 "$dir"
echo "$dir"
