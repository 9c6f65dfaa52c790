#!/usr/bin/env bash
# Makes the two images the Dockerfile builds FROM exist locally:
#   BASE_IMAGE   runtime: Debian bookworm + Python 3.11
#   BUILD_IMAGE  build stage: the same Python plus binutils (strip TensorFlow's libraries)
# The official images when a registry answers within PULL_TIMEOUT seconds
# (python:3.11-slim-bookworm and python:3.11-bookworm, tagged as BASE/BUILD_IMAGE);
# otherwise built here from the Debian mirror with debootstrap (build-base-image.sh),
# which is installed first when missing. Idempotent: existing images are kept.
set -euo pipefail
usage="usage: base-image.sh BASE_IMAGE BUILD_IMAGE"
base="${1:?$usage}"
build="${2:?$usage}"
pull_timeout="${PULL_TIMEOUT:-30}"
official_base="${OFFICIAL_BASE_IMAGE:-python:3.11-slim-bookworm}"
official_build="${OFFICIAL_BUILD_IMAGE:-python:3.11-bookworm}"
here="$(cd "$(dirname "$0")" && pwd)"

exists() { docker image inspect "$1" >/dev/null 2>&1; }
# A registry that does not answer must not stall the build: the pull is bounded.
available() { exists "$1" || timeout "$pull_timeout" docker pull -q "$1" >/dev/null 2>&1; }

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "base-image: debootstrap is missing; as root run: apt-get install -y debootstrap (or make a registry with $official_base reachable)" >&2
    exit 1
  fi
  echo "base-image: installing debootstrap (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

if exists "$base" && exists "$build"; then
  echo "base-image: $base and $build exist"
  exit 0
fi
if available "$official_base" && available "$official_build"; then
  docker tag "$official_base" "$base"
  docker tag "$official_build" "$build"
  echo "base-image: $base from $official_base, $build from $official_build (official images)"
  exit 0
fi
echo "base-image: $official_base cannot be pulled within ${pull_timeout} s: building Debian bookworm with debootstrap"
ensure_debootstrap
"$here/build-base-image.sh" "$base"
"$here/build-base-image.sh" "$build" binutils
