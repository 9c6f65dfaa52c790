"""Importer tasks, as KFP's importer launcher runs them (KFP 2.5.0
backend/src/v2/component/importer_launcher.go Execute, ImportSpecToMLMDArtifact,
findOrNewArtifactToImport):

- the URI is the importer's `artifactUri`: a constant, or a runtime parameter, read from
  the task's input parameter of that name, which must come from a pipeline parameter;
  empty is an error;
- the artifact gets the importer's type schema, its metadata as custom properties and
  `store_session_info` {"Provider": <scheme>, "Params": {"fromEnv": "true"}};
- `reimport: false` returns the artifact already recorded in the pipeline's context with
  the same URI, type and custom properties (metadata/client.go FindMatchedArtifact): the
  same id, run after run, so the cache key of its consumers does not move with it;
- nothing is downloaded or copied: the importer only records.
"""
from __future__ import annotations

from kubetfx.pipelines.kubeflow.local_backend import metadata
from kubetfx.pipelines.kubeflow.local_backend.driver import DriverError
from kubetfx.pipelines.kubeflow.local_backend.launcher import artifact_schema


def artifact_uri(importer: dict, task: dict, run_params: dict) -> str:
    source = importer.get("artifactUri", {})
    if "constant" in source:
        uri = source["constant"]
        if not uri:
            raise DriverError("empty Artifact URI constant value")
        return uri
    parameter = source.get("runtimeParameter")
    if not parameter:
        raise DriverError("artifact uri not provided")
    task_input = task.get("inputs", {}).get("parameters", {}).get(parameter)
    if task_input is None:
        raise DriverError(f"cannot find parameter {parameter} in task input to fetch artifact uri")
    name = task_input.get("componentInputParameter")
    if name not in run_params:
        raise DriverError(f"error resolving artifact URI: parent DAG does not have input parameter {name}")
    uri = run_params[name]
    if not uri:
        raise DriverError(f"empty artifact URI runtime value for parameter {parameter}")
    return uri


def run(importer: dict, task: dict, component: dict, run_params: dict, store: metadata.MetadataStore,
        pipeline: str) -> dict:
    """{output key: recorded artifact} of one importer task."""
    uri = artifact_uri(importer, task, run_params)
    if "://" not in uri:  # objectstore.ParseProviderFromPath
        raise DriverError(f"no provider scheme found in artifact URI: {uri}")
    schema = artifact_schema(importer["typeSchema"])
    properties = dict(importer.get("metadata", {}))
    properties["store_session_info"] = metadata.imported_session_info(uri)
    outputs = list(component.get("outputDefinitions", {}).get("artifacts", {}))
    if len(outputs) != 1:
        raise DriverError("failed to extract output artifact name from componentOutputSpec")
    found = None if importer.get("reimport") else store.find_matched(pipeline, uri, metadata.schema_title(schema),
                                                                       properties)
    return {outputs[0]: found or store.record(pipeline, uri, schema, properties)}
