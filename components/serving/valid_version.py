"""What a valid model version directory is: one rule for everything that reads a serving
directory (the model server's version follower, ServedBaseline, `kubetfx models`,
`kubetfx rollback`, the monitor, the served build), so that a torn or half-copied version
is skipped by all of them alike instead of served by one and refused by another.

A child of the base directory is a version (TF Serving 2.16,
tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc,
ParseVersionNumber) when its name is a non-negative int64 in ASCII digits; other names
(the Pusher's `.staging-*` copies, `rollbacks.jsonl`) are not versions and are ignored
silently. A version is complete when a SavedModel loader would find everything it reads
(tensorflow/cc/saved_model/loader.cc, reader.cc; TF's checkpoint layout):
- `saved_model.pb` or `saved_model.pbtxt` is a file;
- `variables/` holds `variables.index` and every data shard the shard names announce
  (`variables.data-00000-of-0000N`: N of them);
- without `variables/`, the graph holds no variable op (a graph without weights needs
  none); a graph whose bytes name VarHandleOp or VariableV2 is torn: its weights are gone.
A version whose name is an integer but which is not complete yet (a copy in progress, a
kill during `cp -r`, a hand-deleted `variables/`) is skipped and reported once per process
(one warning naming the directory and what is missing).

Local paths are read with os (no TensorFlow import: the CLI's prepare step and the served
build read this before a run's log exists); URIs (gs://, ram://, ...) with tf.io.gfile."""
from __future__ import annotations

import logging
import os
import re

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
VARIABLES_DIR = "variables"
INDEX_FILE = "variables.index"
_SHARD = re.compile(r"variables\.data-([0-9]+)-of-([0-9]+)\Z")
# Ops a graph holds its weights in (TF2 resource variables; TF1 ref variables).
_VARIABLE_OPS = (b"VarHandleOp", b"VariableV2")
_INT64_MAX = 2 ** 63 - 1
_CHUNK = 1 << 20
log = logging.getLogger("kubetfx.versions")
_reported: set = set()


class _Local:
    listdir = staticmethod(os.listdir)
    isdir = staticmethod(os.path.isdir)
    isfile = staticmethod(os.path.isfile)

    @staticmethod
    def open(path):
        return open(path, "rb")


class _Remote:
    @staticmethod
    def listdir(path):
        import tensorflow as tf

        return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]

    @staticmethod
    def isdir(path):
        import tensorflow as tf

        return tf.io.gfile.isdir(path)

    @staticmethod
    def isfile(path):
        import tensorflow as tf

        return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)

    @staticmethod
    def open(path):
        import tensorflow as tf

        return tf.io.gfile.GFile(path, "rb")


def _fs(path: str):
    path = str(path)
    return _Local if "://" not in path or path.startswith("file://") else _Remote


def _join(base: str, *parts: str) -> str:
    base = str(base)
    if base.startswith("file://"):
        base = base[len("file://"):]
    return "/".join([base.rstrip("/")] + list(parts))


def is_version_name(name: str) -> bool:
    """TF Serving's ParseVersionNumber: an int64 written in ASCII digits."""
    return name.isascii() and name.isdigit() and int(name) <= _INT64_MAX


def _names_variable_ops(fs, path: str) -> bool:
    tail = b""
    longest = max(len(op) for op in _VARIABLE_OPS)
    with fs.open(path) as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return False
            window = tail + chunk
            if any(op in window for op in _VARIABLE_OPS):
                return True
            tail = window[-longest:]


def missing_part(path: str) -> str | None:
    """None when the version directory at `path` is complete, else what is missing (for
    the one line that reports it)."""
    fs = _fs(path)
    graphs = [name for name in SAVED_MODEL_FILES if fs.isfile(_join(path, name))]
    if not graphs:
        return "no saved_model.pb (a copy in progress, or not a SavedModel)"
    variables = _join(path, VARIABLES_DIR)
    if not fs.isdir(variables):
        try:
            holds_weights = _names_variable_ops(fs, _join(path, graphs[0]))
        except OSError as err:
            return f"{graphs[0]} unreadable ({err.strerror or err})"
        return f"{graphs[0]} has variables but {VARIABLES_DIR}/ is missing" if holds_weights else None
    try:
        names = set(fs.listdir(variables))
    except OSError as err:
        return f"{VARIABLES_DIR}/ unreadable ({err.strerror or err})"
    if INDEX_FILE not in names:
        return f"{VARIABLES_DIR}/{INDEX_FILE} is missing"
    shards = [m for m in map(_SHARD.match, names) if m]
    if not shards:
        return f"{VARIABLES_DIR}/ has no variables.data-* shard"
    total = int(shards[0].group(2))
    present = {int(m.group(1)) for m in shards if int(m.group(2)) == total}
    absent = sorted(set(range(total)) - present)
    if absent:
        return f"{VARIABLES_DIR}/ lacks data shard {absent[0]} of {total}"
    return None


def report_once(path: str, why: str) -> None:
    if (path, why) not in _reported:
        _reported.add((path, why))
        log.warning("skipping model version %s: %s", path, why)


def valid_versions(base_directory) -> dict[int, str]:
    """{version: directory} of the complete versions under base_directory ({} when it is
    missing or unreadable); incomplete ones are reported once and left out."""
    base = str(base_directory)
    fs = _fs(base)
    try:
        names = fs.listdir(base) if fs.isdir(base) else []
    except OSError:
        return {}
    found = {}
    for name in names:
        path = _join(base, name)
        if not is_version_name(name) or not fs.isdir(path):
            continue
        why = missing_part(path)
        if why is None:
            found[int(name)] = path
        else:
            report_once(path, why)
    return found


def versions(base_directory) -> list[int]:
    """The complete versions, ascending."""
    return sorted(valid_versions(base_directory))


def latest(base_directory) -> str | None:
    """The version TF Serving serves (the highest complete one), or None."""
    found = versions(base_directory)
    return str(found[-1]) if found else None
