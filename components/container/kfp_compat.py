"""What the open-source KFP v2 backend hands a container differs from what TFX's Kubeflow V2
executor expects (Vertex AI shaped). Each function fixes one difference, on the executor
input as JSON, before TFX parses it — no TFX file is patched.

- `system.*` schema titles and empty `instanceSchema`: the OSS driver types artifacts from
  MLMD (`system.Artifact`, `system.Model`...) and leaves `instanceSchema` empty, so TFX
  would build plain `Artifact`s. The compiler passes each artifact's declared TFX type.
- Object-store URIs: the launcher stages every artifact at a local path derived from its URI
  (`minio://b/k` -> `/minio/b/k`, `s3://` -> `/s3/`, `gs://` -> `/gcs/`) and uploads
  outputs from there; TFX reads and writes those paths (`tf.io.gfile` has no `minio://`),
  and the executor output gets the URIs back in the scheme KFP handed out.
- Outputs the component does not declare (`executor-logs`, added by the KFP 2.5 driver and
  written by the launcher itself) are dropped before TFX imports their types.
- Zero-byte directory markers written by object-store clients break TFX's file listings.
- Models produced outside TFX have no `Format-Serving/` subdirectory.
- `KFP_NAMESPACE`, which TFX's Kubernetes helpers need, is not injected by the v2 backend.
- Outputs written beside TFX's executor (the stage's Markdown view) are listed in the
  executor output, as the KFP SDK lists every output artifact it writes.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MARKER_SUFFIXES = ("_$folder$",)


def tfx_instance_schema(title: str) -> str:
    return f"title: {title}\ntype: object\n"


def fix_artifact_types(executor_input: dict, declared: dict) -> None:
    """Gives every artifact the TFX type the component declared for its key."""
    for side in ("inputs", "outputs"):
        for key, artifact_list in executor_input.get(side, {}).get("artifacts", {}).items():
            title = declared.get(key)
            for artifact in artifact_list.get("artifacts", []):
                kind = artifact.get("type") or {}
                current = kind.get("schemaTitle") or _title_of(kind.get("instanceSchema", ""))
                if title and (not current or current.startswith("system.") or current != title):
                    artifact["type"] = {"instanceSchema": tfx_instance_schema(title)}


def _title_of(instance_schema: str) -> str:
    for line in instance_schema.splitlines():
        if line.startswith("title:"):
            return line.split(":", 1)[1].strip()
    return ""


# KFP 2.5.0 backend/src/v2/component/launcher_v2.go LocalPathForURI (same at 2.4.x): where
# the launcher stages an artifact inside the pod. `oci://` models are read-only mounts.
LOCAL_PREFIXES = (("gs://", "/gcs/"), ("minio://", "/minio/"), ("s3://", "/s3/"))
# Tests only: where the launcher's /minio, /s3, /gcs are ("/" in a pod, the default).
LOCAL_ROOT_ENV = "KUBETFX_LAUNCHER_ROOT"


def local_path_for_uri(uri: str, root: str = "/") -> str:
    for scheme, local in LOCAL_PREFIXES:
        if uri.startswith(scheme):
            return root.rstrip("/") + local + uri[len(scheme):]
    if uri.startswith("oci://"):
        return root.rstrip("/") + "/oci/" + uri[len("oci://"):].replace("/", "_") + "/models"
    raise ValueError(f"failed to generate local path for URI {uri}: unsupported storage scheme")


def uri_for_local_path(path: str, root: str = "/") -> str:
    """The inverse of local_path_for_uri for the object-store schemes; other paths unchanged."""
    base = root.rstrip("/")
    for scheme, local in LOCAL_PREFIXES:
        if path.startswith(base + local):
            return scheme + path[len(base + local):]
    return path


def _local(uri: str, root: str) -> str:
    """Object-store URIs to the launcher's local paths; paths and other schemes unchanged."""
    return local_path_for_uri(uri, root) if uri.startswith(tuple(s for s, _ in LOCAL_PREFIXES)) else uri


def map_uris(executor_input: dict, root: str = "/") -> None:
    for side in ("inputs", "outputs"):
        for artifact_list in executor_input.get(side, {}).get("artifacts", {}).values():
            for artifact in artifact_list.get("artifacts", []):
                artifact["uri"] = _local(artifact.get("uri", ""), root)


def drop_undeclared_outputs(executor_input: dict, declared: dict) -> list:
    """Removes output artifacts the component does not declare (KFP 2.5.0
    backend/src/v2/driver/driver.go provisionOutputs adds `executor-logs`, typed
    `system.Artifact`, which the launcher fills from the container's stdout)."""
    outputs = executor_input.get("outputs", {}).get("artifacts", {})
    dropped = [key for key in outputs if key not in declared]
    for key in dropped:
        del outputs[key]
    return dropped


def remove_directory_markers(root: str) -> int:
    """Deletes zero-byte placeholder objects (`dir/`, `dir_$folder$`) under a local root."""
    removed = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            marker = name.endswith(MARKER_SUFFIXES) or os.path.isdir(path.rstrip("/") + "/")
            if marker and os.path.getsize(path) == 0:
                os.remove(path)
                removed += 1
    return removed


def ensure_serving_layout(model_uri: str) -> str:
    """A Model URI TFX can read: models saved at the artifact root get a `Format-Serving`
    view in a temporary directory (the input itself is never modified)."""
    if not os.path.exists(os.path.join(model_uri, "saved_model.pb")) or os.path.isdir(
            os.path.join(model_uri, "Format-Serving")):
        return model_uri
    view = tempfile.mkdtemp(prefix="kubetfx-model-")
    os.symlink(model_uri, os.path.join(view, "Format-Serving"))
    return view


def fix_model_layouts(executor_input: dict, declared: dict) -> None:
    for key, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        if declared.get(key) == "tfx.Model":
            for artifact in artifact_list.get("artifacts", []):
                artifact["uri"] = ensure_serving_layout(artifact["uri"])


def export_namespace(env: dict) -> None:
    if env.get("KFP_NAMESPACE"):
        return
    namespace = env.get("POD_NAMESPACE")
    if not namespace and SERVICE_ACCOUNT_NAMESPACE.exists():
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    if namespace:
        env["KFP_NAMESPACE"] = namespace


def unmap_output_file(path: str, root: str = "/") -> None:
    """Executor output URIs back in the scheme KFP handed out (the launcher uploads from
    LocalPathForURI of each merged URI, launcher_v2.go uploadOutputArtifacts)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        output = json.load(f)
    for artifact_list in output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if "uri" in artifact:
                artifact["uri"] = uri_for_local_path(artifact["uri"], root)
    with open(path, "w") as f:
        json.dump(output, f)


def list_output_artifact(path: str, key: str, artifact: dict) -> None:
    """Adds an output artifact the TFX executor did not write (it never saw it) to the
    executor output at `path`, the way the KFP SDK's executor lists each output artifact
    (kfp 2.9 kfp/dsl/executor.py write_executor_output: `artifacts[key].artifacts` =
    [{name, uri, metadata}]). The backend's launcher merges what is listed into the artifact
    it records (KFP 2.5.0 backend/src/v2/component/launcher_v2.go uploadOutputArtifacts,
    mergeRuntimeArtifacts: uri and metadata); kfp.local reads a task's outputs only from
    this list (kfp 2.9 kfp/local/executor_output_utils.py get_outputs_from_executor_output).
    The URI is the one KFP handed out."""
    output = {}
    if os.path.exists(path):
        with open(path) as f:
            output = json.load(f)
    listed = {"name": artifact.get("name", ""), "uri": artifact.get("uri", ""),
              "metadata": dict(artifact.get("metadata") or {})}
    output.setdefault("artifacts", {})[key] = {"artifacts": [listed]}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(output, f)
