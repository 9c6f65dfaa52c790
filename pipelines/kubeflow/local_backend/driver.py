"""The executor input of a task, as KFP's container driver builds it before the pod starts
(KFP 2.5.0 backend/src/v2/driver/driver.go Container; 2.4.x where noted).

- Run parameters: the root's declared defaults, overridden by the run's values
  (backend/src/v2/compiler/argocompiler/argo.go fills root defaults; driver.go RootDAG
  validates them).
- Task parameters: `componentInputParameter` from the run, `runtimeValue.constant` as is,
  `taskOutputParameter` from the producer's collected outputs (resolveUpstreamParameters),
  then type-checked against the component's inputDefinitions (driver.go resolveInputs,
  handleParamTypeValidationAndConversion): STRING accepts anything (non-strings become
  their JSON text), other types must match, null is refused; optional parameters without
  a value are left to the component.
- Input artifacts: the producer's recorded output, as MLMD gives it: id as `name`, URI,
  custom properties as metadata, `instanceSchema: ""` (driver.go resolveUpstreamArtifacts).
- Outputs: one artifact per declared output, typed as the spec declares it (schemaTitle
  or instanceSchema) with its declared metadata and no name, at
  `<root>/<pipeline>/<run>/<task>/<uuid>/<key>` (driver.go provisionOutputs,
  metadata/client.go GenerateOutputURI); `executor-logs` (system.Artifact) added when the
  version publishes logs (2.5.0); the output file `/tmp/kfp_outputs/output_metadata.json`
  (launcher_v2.go OutputMetadataFilepath); output parameters at /tmp/kfp/outputs/<name>.
"""
from __future__ import annotations

import json
import uuid
from typing import Callable, Optional

from kubetfx.pipelines.kubeflow.backend_rules import value_kind
from kubetfx.pipelines.kubeflow.local_backend import metadata
from kubetfx.pipelines.kubeflow.local_backend.versions import KfpVersion

OUTPUT_METADATA_FILE = "/tmp/kfp_outputs/output_metadata.json"
EXECUTOR_LOGS = "executor-logs"
NUMBER_TYPES = ("NUMBER_DOUBLE", "NUMBER_INTEGER")


class DriverError(ValueError):
    """The spec or the run's parameters cannot be resolved; the message says which."""


_EXPECTED = {"number": NUMBER_TYPES, "bool": ("BOOLEAN",), "list": ("LIST",), "struct": ("STRUCT",),
             "string": ("STRING",)}


def check_parameter(name: str, value, parameter_type: str):
    """One parameter as handleParamTypeValidationAndConversion leaves it (or refuses it)."""
    kind = value_kind(value).removesuffix("_value")
    if parameter_type == "STRING":
        # metadata.PbValueToText: a non-string becomes its JSON text
        return value if kind == "string" else json.dumps(value, separators=(",", ":"))
    if kind == "null":
        raise DriverError(f"got null for input parameter {name!r}")
    if parameter_type not in _EXPECTED[kind]:
        raise DriverError(f"input parameter {name!r} type mismatch: expect {parameter_type}, got {kind}")
    return value


def run_parameters(spec: dict, overrides: dict) -> dict:
    """The root DAG's parameters: declared defaults, then the run's values, type-checked."""
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DriverError(f"the pipeline has no parameter {unknown[0]!r}; it has {', '.join(sorted(declared))}")
    values = {}
    for name, definition in declared.items():
        if name in overrides:
            values[name] = check_parameter(name, overrides[name], definition["parameterType"])
        elif "defaultValue" in definition:
            values[name] = definition["defaultValue"]
        elif not definition.get("isOptional"):
            raise DriverError(f"neither value nor default value provided for non-optional parameter {name!r}")
    return values


def resolve_parameters(task: dict, component: dict, run_params: dict,
                       produced_parameter: Optional[Callable[[str, str], object]] = None) -> dict:
    """`produced_parameter(task, key)`: an upstream task's output parameter, as the
    launcher collected it (driver.go resolveUpstreamParameters reads it from the
    producer's execution in MLMD); None when it has none."""
    declared = component.get("inputDefinitions", {}).get("parameters", {})
    values = {}
    for name, source in task.get("inputs", {}).get("parameters", {}).items():
        if "taskOutputParameter" in source and produced_parameter is not None:
            upstream = source["taskOutputParameter"]
            value = produced_parameter(upstream["producerTask"], upstream["outputParameterKey"])
            if value is None:
                raise DriverError(f"cannot find output parameter key {upstream['outputParameterKey']!r} "
                                  f"in producer task {upstream['producerTask']!r}")
            values[name] = value
            continue
        if "componentInputParameter" in source:
            key = source["componentInputParameter"]
            if key not in run_params:
                if declared.get(name, {}).get("isOptional"):
                    continue  # ErrResolvedParameterNull on an optional input: the component's default
                raise DriverError(f"task parameter {name!r} reads pipeline parameter {key!r}, which has no value")
            values[name] = run_params[key]
        elif "runtimeValue" in source:
            values[name] = source["runtimeValue"].get("constant")
        else:
            raise DriverError(f"parameter {name!r}: only pipeline parameters, constants and task outputs are "
                              f"resolved here, not {sorted(source)}")
    for name, definition in declared.items():
        if name not in values:
            if not definition.get("isOptional") and "defaultValue" not in definition:
                raise DriverError(f"neither value nor default value provided for non-optional parameter {name!r}")
            continue
        values[name] = check_parameter(name, values[name], definition["parameterType"])
    return values


def resolve_artifacts(task: dict, produced: Callable[[str, str], Optional[dict]]) -> dict:
    """`produced(task, key)` is the recorded artifact of an upstream output."""
    artifacts = {}
    for name, source in task.get("inputs", {}).get("artifacts", {}).items():
        upstream = source.get("taskOutputArtifact")
        if not upstream:
            raise DriverError(f"input artifact {name!r}: only task outputs are resolved here, not {sorted(source)}")
        artifact = produced(upstream["producerTask"], upstream["outputArtifactKey"])
        if artifact is None:
            raise DriverError(f"cannot find output artifact key {upstream['outputArtifactKey']!r} "
                              f"in producer task {upstream['producerTask']!r}")
        artifacts[name] = {"artifacts": [metadata.to_runtime_artifact(artifact)]}
    return artifacts


def output_uri(pipeline_root: str, pipeline: str, run_id: str, task: str, salt: str, key: str) -> str:
    """metadata/client.go GenerateOutputURI twice: the run's root, then task/salt/key
    (no path.Join on the scheme; the query string of the root dropped for outputs)."""
    root = pipeline_root.split("?")[0].rstrip("/")
    return f"{root}/{pipeline}/{run_id}/{task}/{salt}/{key}"


def provision_outputs(component: dict, pipeline_root: str, pipeline: str, run_id: str, task: str,
                      version: KfpVersion, salt: Optional[str] = None) -> dict:
    salt = salt or str(uuid.uuid4())
    declared = dict(component.get("outputDefinitions", {}).get("artifacts", {}))
    if version.publish_logs:
        declared[EXECUTOR_LOGS] = {"artifactType": {"schemaTitle": "system.Artifact"}}
    artifacts = {}
    for key, definition in declared.items():
        artifact = {"uri": output_uri(pipeline_root, pipeline, run_id, task, salt, key),
                    "type": definition["artifactType"]}
        if "metadata" in definition:
            artifact["metadata"] = definition["metadata"]
        artifacts[key] = {"artifacts": [artifact]}
    outputs = {"artifacts": artifacts, "outputFile": OUTPUT_METADATA_FILE}
    parameters = component.get("outputDefinitions", {}).get("parameters", {})
    if parameters:
        outputs["parameters"] = {name: {"outputFile": f"/tmp/kfp/outputs/{name}"} for name in parameters}
    return outputs


def executor_input(task_name: str, task: dict, component: dict, run_params: dict,
                   produced: Callable[[str, str], Optional[dict]], pipeline_root: str, pipeline: str,
                   run_id: str, version: KfpVersion, salt: Optional[str] = None,
                   produced_parameter: Optional[Callable[[str, str], object]] = None) -> dict:
    if task.get("triggerPolicy", {}).get("condition"):
        raise DriverError(f"task {task_name}: trigger conditions are not emulated")
    if "iteratorPolicy" in task or "parameterIterator" in task or "artifactIterator" in task:
        raise DriverError(f"task {task_name}: loops are not emulated")
    return {"inputs": {"parameterValues": resolve_parameters(task, component, run_params, produced_parameter),
                       "artifacts": resolve_artifacts(task, produced)},
            "outputs": provision_outputs(component, pipeline_root, pipeline, run_id, task_name, version, salt)}
