"""What the KFP apiserver refuses before a run exists: at upload
(KFP 2.5.0 backend/src/apiserver/template/v2_template.go NewV2SpecTemplate: strict protojson
parse of the PipelineSpec, schemaVersion 2.1.0 only, a pipeline name matching the DNS
pattern, a root component) and at run creation, when the spec is compiled to Argo
(backend/src/v2/compiler/visitor.go: container and importer executors only)."""
from __future__ import annotations

import re

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

SCHEMA_VERSION = "2.1.0"
NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class SpecRejected(ValueError):
    """The backend would refuse this spec; the message is the apiserver's."""


def check(spec: dict, platform_spec: dict | None = None) -> None:
    try:
        parsed = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as err:
        raise SpecRejected(f"invalid v2 pipeline spec: {err}") from None
    if parsed.schema_version != SCHEMA_VERSION:
        raise SpecRejected(f"KFP only supports schema version 2.1.0, but the pipeline spec has version "
                           f"{parsed.schema_version}")
    name = parsed.pipeline_info.name
    if not name:
        raise SpecRejected("invalid v2 pipeline spec: name is empty")
    if not NAME.match(name):  # Go's MatchString: a match anywhere, as upstream
        raise SpecRejected("invalid v2 pipeline spec: name should consist of lower case alphanumeric characters, "
                           "'-' or '.', and must start and end with an alphanumeric character")
    if not parsed.HasField("root"):
        raise SpecRejected("invalid v2 pipeline spec: root component is empty")
    if platform_spec is not None:
        try:
            json_format.ParseDict(platform_spec, pipeline_spec_pb2.PlatformSpec(), ignore_unknown_fields=False)
        except json_format.ParseError as err:
            raise SpecRejected(f"cannot unmarshal platform specific configs: {err}") from None
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for task_name, task in spec["root"].get("dag", {}).get("tasks", {}).items():
        component = spec["components"][task["componentRef"]["name"]]
        label = component.get("executorLabel")
        executor = executors.get(label, {})
        if "container" not in executor and "importer" not in executor:
            raise SpecRejected(f"Failed to compile job: task {task_name}: executor(label={label!r}): "
                               "non-container and non-importer executor not implemented")
