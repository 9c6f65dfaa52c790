"""The `data-fingerprint` task of the compiled spec: what is under `data_root` when the run
starts, as one sha256, written to the task's output parameter for ExampleGen's cache key
(pipelines/kubeflow/data_import.py says why it is a task of its own, never cached).

    python -m kubetfx.components.container.data_fingerprint \
        --data {{$.inputs.artifacts['data'].path}} --uri {{$.inputs.artifacts['data'].uri}} \
        --output {{$.outputs.parameters['fingerprint'].output_file}}

KFP's launcher has staged the data at `--data` (downloadArtifacts: every object under the
prefix; a URI that is one object, as a file). The hash covers each file's path below the
root, its size and its content: new, changed, removed or renamed files change it; the same
bytes uploaded again do not. Files are read in bounded chunks.

Exit codes: 0 written; 2 no file under `data_root` (one line: which URI, what to do)."""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from kubetfx.components.container.kfp_compat import MARKER_SUFFIXES

NO_DATA = 2
CHUNK_BYTES = 1 << 20


def data_files(data: Path) -> list:
    """(relative path, path) of every data file, sorted; a single file is its own name."""
    if data.is_file():
        return [(data.name, data)]
    if not data.is_dir():
        return []
    found = [(p.relative_to(data).as_posix(), p) for p in data.rglob("*")
             if p.is_file() and not p.name.endswith(MARKER_SUFFIXES)]
    return sorted(found)


def fingerprint(data: Path) -> str:
    digest = hashlib.sha256()
    for relative, path in data_files(data):
        content = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                content.update(chunk)
        digest.update(f"{relative}\t{path.stat().st_size}\t{content.hexdigest()}\n".encode())
    return "sha256:" + digest.hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="local path where the launcher staged data_root")
    parser.add_argument("--uri", default="", help="data_root as the run has it (for the message)")
    parser.add_argument("--output", required=True, help="the output parameter's file")
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not data_files(data):
        print(f"data-fingerprint: data_root {args.uri or data} holds no files: upload the data there "
              "(kubetfx submit --data) or start the run with another data_root", file=sys.stderr)
        return NO_DATA
    value = fingerprint(data)
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as f:
        f.write(value)
    print(f"data-fingerprint: {len(data_files(data))} file(s) under {args.uri or data}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
