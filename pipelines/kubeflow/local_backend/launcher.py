"""One attempt of a container task, as KFP's launcher runs it inside the pod
(KFP 2.5.0 backend/src/v2/component/launcher_v2.go Execute, executeV2, execute):

1. placeholders: `{{$}}` is the executor input with the component's parameter defaults
   added (addDefaultParams, getPlaceholders), plus the artifact uri/path and parameter
   placeholders;
2. inputs downloaded from the object store to LocalPathForURI of each input artifact's URI
   (downloadArtifacts; the first artifact of each input);
3. the parent folder of each output's local path prepared (prepareOutputFolders);
4. the command run; in 2.5.0 its output also goes to the `executor-logs` artifact's local
   path (getLogWriter);
5. the executor output read from the output file (getExecutorOutputFile: absent = empty);
   output parameters it does not hold read from their output files, as text of the
   declared type (collectOutputParameters, metadata/converter.go TextToPbValue);
   each output artifact merged with it (mergeRuntimeArtifacts: a non-empty URI replaces,
   metadata fields are added) and uploaded from LocalPathForURI of the merged URI (a
   missing local path only warns), then recorded (uploadOutputArtifacts, RecordArtifact).

Here the launcher runs beside the container instead of inside it: steps 2-3 fill a staging
folder that is copied into the container, step 5 copies the outputs out of it.
"""
from __future__ import annotations

import copy
import json
import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Callable

from kubetfx.components.container import kfp_compat
from kubetfx.pipelines.kubeflow import object_store
from kubetfx.pipelines.kubeflow.local_backend import docker, metadata
from kubetfx.pipelines.kubeflow.local_backend.driver import EXECUTOR_LOGS

STAGED_ROOTS = ("/minio", "/s3", "/gcs")


def add_default_params(executor_input: dict, component: dict) -> dict:
    with_defaults = copy.deepcopy(executor_input)
    values = with_defaults.setdefault("inputs", {}).setdefault("parameterValues", {})
    for name, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
        if "defaultValue" in definition and name not in values:
            values[name] = definition["defaultValue"]
    return with_defaults


def _parameter_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        # strconv.FormatFloat(v, 'f', -1, 64)
        return str(int(value)) if float(value).is_integer() else format(Decimal(repr(float(value))), "f")
    return json.dumps(value, separators=(",", ":"))


def placeholders(executor_input: dict) -> dict:
    found = {"{{$}}": json.dumps(executor_input, separators=(",", ":"))}
    for side in ("inputs", "outputs"):
        for name, artifact_list in executor_input.get(side, {}).get("artifacts", {}).items():
            if not artifact_list.get("artifacts"):
                continue
            uri = artifact_list["artifacts"][0]["uri"]
            found[f"{{{{$.{side}.artifacts['{name}'].uri}}}}"] = uri
            try:
                found[f"{{{{$.{side}.artifacts['{name}'].path}}}}"] = kfp_compat.local_path_for_uri(uri)
            except ValueError:
                if side == "outputs":
                    raise
    for name, value in executor_input.get("inputs", {}).get("parameterValues", {}).items():
        found[f"{{{{$.inputs.parameters['{name}']}}}}"] = _parameter_text(value)
    for name, parameter in executor_input.get("outputs", {}).get("parameters", {}).items():
        found[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = parameter["outputFile"]
    return found


def resolve_placeholders(items: list, found: dict) -> list:
    resolved = []
    for item in items:
        for placeholder, value in found.items():
            item = item.replace(placeholder, value)
        resolved.append(item)
    return resolved


def merge_runtime_artifacts(source: dict, target: dict) -> None:
    if source.get("uri"):
        target["uri"] = source["uri"]
    if source.get("metadata") is not None:
        target.setdefault("metadata", {}).update(source["metadata"])


def artifact_schema(artifact_type: dict) -> str:
    """launcher_v2.go getArtifactSchema."""
    if "instanceSchema" in artifact_type:
        return artifact_type["instanceSchema"]
    if "schemaTitle" in artifact_type:
        return "title: " + artifact_type["schemaTitle"]
    raise ValueError(f"unsupported artifact type {artifact_type}")


def stage_inputs(s3, executor_input: dict, staging: Path) -> int:
    count = 0
    for artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).values():
        if not artifact_list.get("artifacts"):
            continue
        uri = artifact_list["artifacts"][0]["uri"]
        try:
            local = kfp_compat.local_path_for_uri(uri)
        except ValueError:
            continue  # launcher_v2.go: not a recognized storage URI, not downloaded
        count += object_store.download_tree(s3, uri, staging / local.lstrip("/"))
    return count


def prepare_output_folders(executor_input: dict, staging: Path) -> None:
    for artifact_list in executor_input["outputs"].get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            local = kfp_compat.local_path_for_uri(artifact["uri"])
            (staging / local.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)


def upload(s3, local: Path, uri: str, mirror: Callable[[Path, str], None]) -> int:
    """objectstore.UploadBlob: a file to the key itself, a folder file by file below it."""
    if local.is_file():
        where = object_store.parse_uri(uri)
        s3.upload_file(str(local), where.bucket, where.key)
        count = 1
    else:
        count = object_store.upload_tree(s3, local, uri)
    mirror(local, uri)
    return count


def text_to_value(text: str, parameter_type: str):
    """metadata/converter.go TextToPbValue (KFP 2.5.0): STRING as is, numbers and booleans
    parsed from the trimmed text, LIST and STRUCT as JSON."""
    if parameter_type == "STRING":
        return text
    if parameter_type == "NUMBER_INTEGER":
        return float(int(text.strip()))
    if parameter_type == "NUMBER_DOUBLE":
        return float(text.strip())
    if parameter_type == "BOOLEAN":
        value = text.strip()
        if value not in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"):
            raise ValueError(f"TextToPbValue(text={text!r}, type=BOOLEAN) failed")
        return value in ("1", "t", "T", "TRUE", "true", "True")
    value = json.loads(text)
    if not isinstance(value, list if parameter_type == "LIST" else dict):
        raise ValueError(f"TextToPbValue(text={text!r}, type={parameter_type}) failed: unexpected type")
    return value


class Attempt:
    """Stages, runs and collects one attempt; the caller records the outputs it returns."""

    def __init__(self, s3, work: Path, log: Path, mirror: Callable[[Path, str], None], user=None):
        self.s3, self.work, self.log, self.mirror = s3, work, log, mirror
        self.user = user   # the pod's runAsUser (None: the image's USER), docker.py
        self.output_parameters: dict = {}   # {name: value} collected after a successful run

    def run(self, name: str, executor_input: dict, component: dict, container_spec: dict, image: str,
            volumes: dict, timeout: float, labels: dict) -> dict:
        """Returns {output key: runtime artifact (merged, uploaded)}; raises on failure."""
        staged_in, staged_out = self.work / "in", self.work / "out"
        shutil.rmtree(self.work, ignore_errors=True)
        staged_in.mkdir(parents=True)
        clock = time.monotonic()
        downloaded = stage_inputs(self.s3, executor_input, staged_in)
        timings = {"download": time.monotonic() - clock}
        prepare_output_folders(executor_input, staged_in)
        found = placeholders(add_default_params(executor_input, component))
        command = resolve_placeholders(container_spec["command"], found)
        args = resolve_placeholders(container_spec.get("args", []), found)
        env = {e["name"]: e["value"] for e in container_spec.get("env", [])}
        resources = container_spec.get("resources", {})
        container = docker.Container(name, image, command, args, env, volumes, resources.get("cpuLimit"),
                                     resources.get("memoryLimit"), labels, user=self.user)
        try:
            container.copy_in(staged_in, [r.lstrip("/") for r in STAGED_ROOTS if (staged_in / r.lstrip("/")).exists()])
            (self.log.parent / f"{self.log.stem}.mounts.json").write_text(json.dumps(container.mounts()))
            attempt_log = self.work / "stdout.log"
            with open(attempt_log, "wb") as out:
                clock = time.monotonic()
                code = container.run(out, timeout)
                timings["container"] = time.monotonic() - clock
            with open(self.log, "ab") as log, open(attempt_log, "rb") as out:
                shutil.copyfileobj(out, log)
            outputs = executor_input["outputs"]
            logs = outputs.get("artifacts", {}).get(EXECUTOR_LOGS)
            if logs:  # getLogWriter: the launcher tees the command's output into the artifact
                target = staged_out / kfp_compat.local_path_for_uri(logs["artifacts"][0]["uri"]).lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(attempt_log, target)
            if code != 0:
                raise TaskFailed(name, code)
            output_file = staged_out / "output_metadata.json"
            executor_output = {}
            if container.copy_out(outputs["outputFile"], output_file):
                executor_output = json.loads(output_file.read_text())
            self.output_parameters = dict(executor_output.get("parameterValues", {}))
            declared = component.get("outputDefinitions", {}).get("parameters", {})
            for key, parameter in outputs.get("parameters", {}).items():
                if key in self.output_parameters:
                    continue  # the output metadata file has the highest priority
                text_file = staged_out / "parameters" / key
                if not container.copy_out(parameter["outputFile"], text_file):
                    raise TaskFailed(name, 0, f"failed to read output parameter name={key!r} "
                                              f"path={parameter['outputFile']!r}")
                self.output_parameters[key] = text_to_value(text_file.read_text(), declared[key]["parameterType"])
            produced, uploaded, clock = {}, 0, time.monotonic()
            for key, artifact_list in outputs.get("artifacts", {}).items():
                artifact = copy.deepcopy(artifact_list["artifacts"][0])
                written = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [])
                if written:
                    merge_runtime_artifacts(written[0], artifact)
                local = kfp_compat.local_path_for_uri(artifact["uri"])
                target = staged_out / local.lstrip("/")
                if key != EXECUTOR_LOGS:
                    container.copy_out(local, target)
                if target.exists():
                    uploaded += upload(self.s3, target, artifact["uri"], self.mirror)
                produced[key] = artifact
            timings["upload"] = time.monotonic() - clock
            with open(self.log, "a") as log:  # where a task's time went, for the benchmarks
                log.write(f"=== launcher: {downloaded} files downloaded in {timings['download']:.1f} s, container "
                          f"{timings['container']:.1f} s, {uploaded} files uploaded in {timings['upload']:.1f} s\n")
            return produced
        finally:
            container.remove()
            shutil.rmtree(self.work, ignore_errors=True)


class TaskFailed(RuntimeError):
    def __init__(self, task: str, code: int, reason: str = ""):
        super().__init__(reason or f"task {task} exited with code {code}")
        self.task, self.code = task, code


def record_outputs(store: metadata.MetadataStore, pipeline: str, produced: dict) -> dict:
    """uploadOutputArtifacts -> metadata.RecordArtifact, per output: the recorded artifacts."""
    recorded = {}
    for key, artifact in produced.items():
        properties = dict(artifact.get("metadata", {}))
        properties.setdefault("display_name", key)
        properties.setdefault("store_session_info", metadata.session_info(artifact["uri"]))
        recorded[key] = store.record(pipeline, artifact["uri"], artifact_schema(artifact["type"]), properties)
    return recorded
