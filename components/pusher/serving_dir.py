"""A TF Serving base directory: integer-named versions, published whole, on any filesystem
`tf.io.gfile` knows (local paths, a mounted volume, gs://, ram://; s3:// needs
tensorflow-io's filesystem plugin, which TF 2.16 does not build in).

TF Serving's rule, which this layout follows (tensorflow/serving, commit 0161cbe,
tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc,
ParseVersionNumber / IndexChildrenByVersion): every child of the base directory whose name
parses as an int64 is a version, the largest is served, any other name is skipped. So a
copy in progress lives under a non-integer name (STAGING_PREFIX) and becomes a version
only when it is complete:
- local filesystems (and volumes mounted as one): one rename(2), atomic;
- object stores (gs://, ram://, ...), where a "directory" rename is a copy and delete of
  each object (ram:// even moves only the marker): the staged copy is copied object by
  object to the integer name with saved_model.pb last, then the staging copy is deleted.
  A server listing the base directory may see the version before it is complete, but
  SavedModel loading needs saved_model.pb, which is written last, as TFX's own Pusher
  does (tfx 1.16 tfx/components/pusher/executor.py); the staging step keeps that window
  to a server-side copy inside the serving bucket instead of an upload. Readers here
  (`served_versions`) count a version only once its saved_model.pb is there."""
from __future__ import annotations

import os
import time
import uuid

import tensorflow as tf

from kubetfx.components.pusher import training_summary
from kubetfx.components.serving import valid_version

STAGING_PREFIX = ".staging-"
# What makes a directory a SavedModel to a loader (TF's loader takes either; Keras and
# TFX write the binary one).
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_CHUNK = 1 << 20
gfile = tf.io.gfile


def _join(*parts: str) -> str:
    return "/".join([parts[0].rstrip("/")] + [p.strip("/") for p in parts[1:]])


def renames_atomically(path: str) -> bool:
    """A local path (or file://): rename(2) moves a whole directory in one step."""
    return "://" not in path or path.startswith("file://")


def _children(path: str) -> list[str]:
    """Direct children, without the trailing "/" object stores put on directories."""
    if not gfile.isdir(path):
        return []
    return sorted({name.rstrip("/").split("/")[0] for name in gfile.listdir(path)} - {""})


def _versions(base_directory: str) -> list[int]:
    return sorted(int(name) for name in _children(base_directory) if name.isascii() and name.isdigit())


def served_versions(base_directory: str) -> list[int]:
    """Versions TF Serving can load, ascending: the one rule of valid_version, which the
    model server, ServedBaseline, `models` and `rollback` use too (a torn copy is skipped)."""
    return valid_version.versions(base_directory)


def latest_version(base_directory: str) -> str | None:
    versions = served_versions(base_directory)
    return str(versions[-1]) if versions else None


def next_version(base_directory: str) -> str:
    """A Unix-time version (TF Serving wants integers), later than every existing name,
    complete or not, so a new push never lands on a half-copied one."""
    return str(max([int(time.time())] + [v + 1 for v in _versions(base_directory)]))


def files(root: str) -> dict[str, int]:
    """{path relative to root: size in bytes} of every file under root."""
    out = {}
    root = root.rstrip("/")
    for directory, _, names in gfile.walk(root):
        relative = directory.rstrip("/")[len(root):].strip("/")
        for name in names:
            path = _join(relative, name) if relative else name.rstrip("/")
            out[path] = gfile.stat(_join(root, path)).length
    return out


def _same_bytes(a: str, b: str) -> bool:
    with gfile.GFile(a, "rb") as fa, gfile.GFile(b, "rb") as fb:
        while True:
            chunk = fa.read(_CHUNK)
            if chunk != fb.read(_CHUNK):
                return False
            if not chunk:
                return True


def model_files(root: str) -> dict[str, int]:
    """files(root) without the training summary kept beside a pushed model
    (training_summary.py): that is a record of the model, not part of it."""
    return {path: size for path, size in files(root).items() if not training_summary.is_summary_path(path)}


def same_model(a: str, b: str) -> bool:
    """Every file of both, byte for byte: the graph (saved_model.pb), the weights
    (variables/), the assets. Sizes first, so a different model is rarely read."""
    listing = model_files(a)
    if listing != model_files(b):
        return False
    return all(_same_bytes(_join(a, path), _join(b, path)) for path in sorted(listing))


def copy_tree(source: str, destination: str) -> None:
    """Every file of source under destination, the top-level saved_model.pb last."""
    listing = sorted(files(source), key=lambda path: (path in SAVED_MODEL_FILES, path))
    gfile.makedirs(destination)
    for path in listing:
        target = _join(destination, path)
        gfile.makedirs(os.path.dirname(target))  # object stores list only what has a marker
        gfile.copy(_join(source, path), target, overwrite=True)


def _write_files(directory: str, extra_files: dict) -> None:
    for relative, content in sorted(extra_files.items()):
        target = _join(directory, relative)
        gfile.makedirs(os.path.dirname(target))
        with gfile.GFile(target, "wb") as f:
            f.write(content)


def _add_missing(version_dir: str, extra_files: dict) -> None:
    """A version served already, pushed before it had these files (an older kubetfx):
    they are added, never replaced. Only readers of the summary see them; TF Serving does
    not read them (training_summary.py)."""
    missing = {p: c for p, c in extra_files.items() if not gfile.exists(_join(version_dir, p))}
    if missing:
        _write_files(version_dir, missing)


def publish(model_path: str, base_directory: str, extra_files: dict | None = None) -> tuple[str, str, bool]:
    """(path, version, pushed): the model as a new version of base_directory, or the
    latest version if that one already holds exactly this model (a retried or re-run
    push adds no duplicate). Another model, even with the same graph, is a new version.
    extra_files ({path relative to the version: bytes}, e.g. training_summary.files) are
    written into the version before it is published, so they appear with it."""
    extra_files = extra_files or {}
    try:
        gfile.makedirs(base_directory)
    except tf.errors.UnimplementedError:
        scheme = base_directory.split("://", 1)[0]
        raise RuntimeError(
            f"serving directory {base_directory}: TensorFlow has no {scheme}:// filesystem here "
            "(s3:// needs tensorflow-io's plugin); use a local or mounted path, or gs://") from None
    current = latest_version(base_directory)
    if current is not None and same_model(_join(base_directory, current), model_path):
        _add_missing(_join(base_directory, current), extra_files)
        return _join(base_directory, current), current, False
    version = next_version(base_directory)
    staging = _join(base_directory, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    final = _join(base_directory, version)
    copy_tree(model_path, staging)
    _write_files(staging, extra_files)
    if renames_atomically(base_directory):
        gfile.rename(staging, final, overwrite=False)
    else:
        copy_tree(staging, final)
        gfile.rmtree(staging)
    return final, version, True
