#!/usr/bin/env bash
# Prepares the wheelhouse the images install from with --no-index: one wheel per pin of the
# lock (downloaded, or built here for sdist-only packages) and the kubetfx wheel itself.
# Containers never reach a package index; air-gapped teams carry this folder instead.
set -euo pipefail
usage="usage: build-wheelhouse.sh LOCK OUTDIR [EXTRA_PIN...]"
lock="${1:?$usage}"
out="${2:?$usage}"
shift 2
# Extra pins: tools the image build itself needs (uv), which the runtime lock does not list.
extra=("$@")
python="${PYTHON:-python3}"
mkdir -p "$out"

fetch() {
  local pin="$1" out="$2" python="$3"
  # TFX 1.16's metadata caps Python below 3.11 although it runs on 3.11: ignore the cap.
  "$python" -m pip download -q --no-deps --ignore-requires-python --only-binary=:all: "$pin" -d "$out" 2>/dev/null \
    || "$python" -m pip wheel -q --no-deps --ignore-requires-python "$pin" -w "$out" 2>/dev/null \
    || { echo "wheelhouse: cannot get $pin" >&2; return 1; }
}
export -f fetch
{ grep -E '^[A-Za-z0-9_.-]+==' "$lock" | sed 's/ .*//'; printf '%s\n' "${extra[@]}"; } \
  | grep . | xargs -P 4 -I{} bash -c 'fetch "$@"' _ {} "$out" "$python"
echo "wheelhouse: $(ls "$out" | wc -l) wheels, $(du -sh "$out" | cut -f1)"
