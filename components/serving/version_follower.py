"""Following a base directory of integer model versions as TF Serving does: the highest
complete version is served, a new (or, after the newest is removed, an older) one is
loaded without a restart, and a version that fails to load is reported and never
replaces the one serving.

The rules, from TF Serving 2.16 with its defaults (`--model_base_path`, version policy
"latest 1", `--file_system_poll_wait_seconds=1`):
- tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc
  (ParseVersionNumber / AspireLatestVersions): a child of the base path whose name is an
  integer is a version; other names (our Pusher's `.staging-*` copies) are ignored; the
  highest version is the aspired one.
- tensorflow_serving/core/availability_preserving_policy.cc: the new version is loaded
  before the old one is unloaded, so requests never meet an empty server; when no version
  is left on disk the model is unloaded.
- tensorflow_serving/apis/get_model_status.proto: states LOADING, AVAILABLE, END, with an
  error status for a version that failed to load.
Where kubetfx differs: a version directory that is not complete yet by valid_version.py's
rule (no `saved_model.pb(txt)` yet, or weights missing: a copy in progress, a torn copy) is
skipped and reported once, and waits, instead of failing; the same rule decides for
ServedBaseline, `models`, `rollback` and the monitor. A failed version is retried only when
its files change (TF Serving retries 5 times a minute apart, `--max_num_load_retries`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from kubetfx.components.serving import valid_version

SAVED_MODEL_FILES = valid_version.SAVED_MODEL_FILES
# tensorflow_serving/servables/tensorflow/saved_model_bundle_factory: `--saved_model_tags`.
SERVE_TAGS = ["serve"]
log = logging.getLogger("kubetfx.model_server")


def version_dirs(base_path: str) -> dict[int, str]:
    """{version: directory} of the complete versions under base_path (none if it is missing)."""
    return valid_version.valid_versions(base_path)


def files_stamp(path: str) -> tuple:
    """Changes when a version's files are replaced (a failed version is retried then)."""
    stamp = []
    for name in SAVED_MODEL_FILES + ("variables", os.path.join("variables", valid_version.INDEX_FILE)):
        try:
            st = os.stat(os.path.join(path, name))
            stamp.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            pass
    return tuple(stamp)


@dataclass
class LoadedVersion:
    """A SavedModel loaded for serving: its signatures and what the REST API reports."""
    version: int
    path: str
    model: object
    signatures: dict
    _feature_types: dict = field(default_factory=dict)
    checker: object = None   # its request_schema.RequestSchema (model_server.py); None: requests unchecked

    def feature_types(self, signature_name: str) -> dict:
        if signature_name not in self._feature_types:
            self._feature_types[signature_name] = parsed_feature_types(self.signatures[signature_name])
        return self._feature_types[signature_name]

    def signature_defs(self) -> dict:
        """TF Serving's GetModelMetadata "signature_def" map, as JSON."""
        from google.protobuf import json_format
        from tensorflow.python.saved_model import loader_impl

        saved_model = loader_impl.parse_saved_model(self.path)
        graphs = [g for g in saved_model.meta_graphs if set(SERVE_TAGS) <= set(g.meta_info_def.tags)]
        defs = graphs[0].signature_def if graphs else {}
        return {name: json_format.MessageToDict(d, preserving_proto_field_name=True)
                for name, d in sorted(defs.items()) if not name.startswith("__")}


_PARSE_TYPES = {1: "float", 9: "int64", 7: "string"}  # DT_FLOAT, DT_INT64, DT_STRING


def parsed_feature_types(concrete_function) -> dict:
    """{feature: "float" | "int64" | "string"} as the signature's ParseExampleV2 ops parse
    serialized tf.Examples (keys are constants of the graph), so a JSON feature dict
    becomes the tf.Example the model expects; {} when it parses none this way."""
    from tensorflow.python.framework import tensor_util

    graph_def = concrete_function.graph.as_graph_def()
    types = {}
    for nodes in [graph_def.node] + [f.node_def for f in graph_def.library.function]:
        by_name = {n.name: n for n in nodes}

        def constant_strings(input_name: str) -> list:
            source = by_name.get(input_name.split(":")[0])
            if source is None or source.op != "Const":
                return []
            return [k.decode() for k in tensor_util.MakeNdarray(source.attr["value"].tensor).ravel()]

        for node in nodes:
            if node.op != "ParseExampleV2":
                continue
            # inputs: serialized, names, sparse_keys, dense_keys, ragged_keys, dense_defaults...
            for keys_input, type_attr in ((2, "sparse_types"), (3, "Tdense"), (4, "ragged_value_types")):
                keys = constant_strings(node.input[keys_input])
                for key, dtype in zip(keys, node.attr[type_attr].list.type):
                    types[key] = _PARSE_TYPES.get(dtype, "string")
    return types


def load_version(version: int, path: str) -> LoadedVersion:
    import tensorflow as tf

    model = tf.saved_model.load(path, tags=SERVE_TAGS)
    signatures = dict(model.signatures)
    if not signatures:
        raise ValueError(f"{path} has no signatures to serve")
    return LoadedVersion(version, path, model, signatures)


@dataclass
class VersionState:
    state: str            # LOADING, AVAILABLE or END (TF Serving's ModelVersionStatus.State)
    error: str = ""
    stamp: tuple = ()


class VersionFollower:
    """One model's versions under base_path. poll() makes one step; `serving` is the version
    answering requests (read it once per request: a poll may replace it meanwhile)."""

    def __init__(self, base_path: str, loader=load_version):
        self.base_path = base_path
        self._loader = loader
        self._lock = threading.Lock()
        self._states: dict[int, VersionState] = {}
        self.serving: LoadedVersion | None = None
        self.last_error = ""

    def status(self) -> dict[int, VersionState]:
        with self._lock:
            return dict(self._states)

    def _set(self, version: int, state: VersionState) -> None:
        with self._lock:
            self._states[version] = state

    def _candidate(self, on_disk: dict) -> int | None:
        """The highest version on disk that has not failed to load with these same files."""
        for version in sorted(on_disk, reverse=True):
            previous = self._states.get(version)
            if previous and previous.error and previous.stamp == files_stamp(on_disk[version]):
                continue
            return version
        return None

    def poll(self) -> None:
        on_disk = version_dirs(self.base_path)
        serving = self.serving
        if not on_disk:
            if serving is not None:
                log.warning("No version left under %s: unloading version %d", self.base_path, serving.version)
                self.serving = None
                self._set(serving.version, VersionState("END"))
            self.last_error = f"no version under {self.base_path} (integer-named directories with a complete SavedModel)"
            return
        candidate = self._candidate(on_disk)
        if candidate is None or (serving is not None and candidate == serving.version):
            return
        path, stamp = on_disk[candidate], files_stamp(on_disk[candidate])
        log.info("Loading version %d from %s", candidate, path)
        self._set(candidate, VersionState("LOADING", stamp=stamp))
        started = time.monotonic()
        try:
            loaded = self._loader(candidate, path)
        except Exception as err:  # noqa: BLE001 - any load failure is reported, never served
            message = f"version {candidate} failed to load: {type(err).__name__}: {err}".strip()
            log.error("%s; %s", message, f"still serving version {serving.version}" if serving else "nothing served")
            self._set(candidate, VersionState("END", error=message[:2000], stamp=stamp))
            self.last_error = message
            return
        self.serving = loaded  # availability preserving: swap only once the new one is loaded
        self._set(candidate, VersionState("AVAILABLE", stamp=stamp))
        if serving is not None:
            self._set(serving.version, VersionState("END"))
        self.last_error = ""
        log.info("Serving version %d (loaded in %.1f s)", candidate, time.monotonic() - started)
