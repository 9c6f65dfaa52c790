#!/usr/bin/env bash
# Builds the base image locally where no registry can be reached: a minimal Debian bookworm
# root filesystem with Python 3.11 (debootstrap from the Debian mirror), imported into
# Docker. base-image.sh calls it when the official python image cannot be pulled.
# EXTRA_PACKAGES (comma-separated) go into this image too: the build-stage image adds
# binutils, to strip debug info from TensorFlow's libraries.
set -euo pipefail
image="${1:?usage: build-base-image.sh IMAGE [EXTRA_PACKAGES]}"
extra="${2:-}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base-image: $image exists"
  exit 0
fi
rootfs="$(mktemp -d /tmp/kubetfx-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "base-image: debootstrap bookworm into $rootfs (from $mirror)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates${extra:+,$extra} \
  bookworm "$rootfs" "$mirror" >/tmp/kubetfx-debootstrap.log 2>&1 \
  || { tail -20 /tmp/kubetfx-debootstrap.log >&2; exit 1; }
# Smaller image: no apt lists, docs, man pages or locales beyond C.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/{doc,man,info}/* \
       "$rootfs"/var/log/*
echo "base-image: importing as $image"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
docker image ls "$image" --format 'base-image: {{.Repository}}:{{.Tag}} {{.Size}}'
