"""What the open-source KFP v2 backend hands a container differs from what TFX's Kubeflow V2
executor expects (Vertex AI shaped). Each function fixes one difference, on the executor
input as JSON, before TFX parses it — no TFX file is patched.

- `system.*` schema titles and empty `instanceSchema`: the OSS driver types artifacts from
  MLMD (`system.Artifact`, `system.Model`...) and leaves `instanceSchema` empty, so TFX
  would build plain `Artifact`s. The compiler passes each artifact's declared TFX type.
- Object-store URIs: OSS KFP's default pipeline root is `minio://` (or SeaweedFS `s3://`),
  which `tf.io.gfile` cannot open. URIs are mapped onto a mounted volume (KUBETFX_URI_MAP),
  and mapped back in the executor output so KFP records what it handed out.
- Zero-byte directory markers written by object-store clients break TFX's file listings.
- Models produced outside TFX have no `Format-Serving/` subdirectory.
- `KFP_NAMESPACE`, which TFX's Kubernetes helpers need, is not injected by the v2 backend.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
URI_MAP_ENV = "KUBETFX_URI_MAP"
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


def uri_map(env: dict) -> list[tuple[str, str]]:
    """`minio://mlpipeline=/kubetfx/root,s3://bucket=/mnt/b` -> [(prefix, local dir)]."""
    pairs = []
    for item in filter(None, (env.get(URI_MAP_ENV) or "").split(",")):
        prefix, _, local = item.partition("=")
        if not local:
            raise ValueError(f"{URI_MAP_ENV} entry {item!r} must be PREFIX=LOCAL_DIR")
        pairs.append((prefix.rstrip("/"), local.rstrip("/")))
    return pairs


def map_uri(uri: str, mapping: list) -> str:
    for prefix, local in mapping:
        if uri == prefix or uri.startswith(prefix + "/"):
            return local + uri[len(prefix):]
    if uri.startswith("minio://"):
        raise ValueError(
            f"cannot read {uri}: tf.io.gfile has no minio:// filesystem. Mount the pipeline root "
            f"(e.g. a PVC) and set {URI_MAP_ENV}=minio://<bucket>=<mount path> (see manifests/README.md)")
    return uri


def unmap_uri(uri: str, mapping: list) -> str:
    for prefix, local in mapping:
        if uri == local or uri.startswith(local + "/"):
            return prefix + uri[len(local):]
    return uri


def map_uris(executor_input: dict, mapping: list) -> None:
    for side in ("inputs", "outputs"):
        for artifact_list in executor_input.get(side, {}).get("artifacts", {}).values():
            for artifact in artifact_list.get("artifacts", []):
                artifact["uri"] = map_uri(artifact.get("uri", ""), mapping)
    outputs = executor_input.get("outputs", {})
    if outputs.get("outputFile"):
        outputs["outputFile"] = map_uri(outputs["outputFile"], mapping)


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


def unmap_output_file(path: str, mapping: list) -> None:
    """Executor output URIs back in the scheme KFP handed out."""
    if not mapping or not os.path.exists(path):
        return
    with open(path) as f:
        output = json.load(f)
    for artifact_list in output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if "uri" in artifact:
                artifact["uri"] = unmap_uri(artifact["uri"], mapping)
    with open(path, "w") as f:
        json.dump(output, f)
