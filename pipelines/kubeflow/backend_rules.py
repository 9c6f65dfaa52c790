"""What a real Kubeflow Pipelines backend checks in a compiled spec, as code: the
apiserver at upload, the apiserver and its v2 compiler at run creation, the driver and the
importer launcher when a task starts. Each rule cites the KFP source file (kubeflow/pipelines
`backend/src/`); the code is the same at tags 2.2.0, 2.4.0, 2.4.1 and 2.5.0 unless said
(compared in git). Each returns the backend's own message, so a spec that passes here is
not refused there for these reasons.

Not reproduced: the driver's strict parse of each task's Kubernetes executor config
(v2/cmd/driver/main.go, KubernetesExecutorConfig): its Python protos ship in
kfp-kubernetes, which is not in the lock; the apiserver itself keeps those as Structs.

Parsing uses the real `kfp-pipeline-spec` protos with json_format (unknown fields fail, as
Go's protojson.Unmarshal). Used by the compile tests and by the local stand-in of the KFP
REST API that `kubetfx submit` is tested against."""
from __future__ import annotations

import re
from typing import Optional

import yaml

SCHEMA_VERSION = "2.1.0"   # apiserver/template/template.go SCHEMA_VERSION_2_1_0
_BUCKET = re.compile(r"(^[a-z][a-z0-9]+:///?)([^/?]+)(/[^?]*)?(\?.+)?$")  # v2/objectstore/config.go (2.5.0)


class Rejected(ValueError):
    """The backend refuses the spec or the run with this message (HTTP 400 at the API)."""


def _parse(document: dict, message_class):
    from google.protobuf import json_format

    return json_format.ParseDict(document, message_class())  # unknown fields raise, as protojson


def _documents(text: str) -> list:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise Rejected(f"unable to decode yaml document: {err}") from None


def _is_pipeline_spec(document) -> bool:
    """apiserver/template/template.go isPipelineSpec: strict parse, a name and a root."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not isinstance(document, dict):
        return False
    try:
        spec = _parse(document, pipeline_spec_pb2.PipelineSpec)
    except Exception:  # noqa: BLE001 — any parse failure means "not a pipeline spec", as upstream
        return False
    return bool(spec.pipeline_info.name) and spec.HasField("root")


def _is_kubernetes_platform_spec(document) -> bool:
    """apiserver/template/v2_template.go IsPlatformSpecWithKubernetesConfig: a document that
    does not parse strictly is not a platform spec and is silently ignored."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not isinstance(document, dict):
        return False
    try:
        return "kubernetes" in _parse(document, pipeline_spec_pb2.PlatformSpec).platforms
    except Exception:  # noqa: BLE001
        return False


def check_upload(text: str) -> tuple:
    """(PipelineSpec, PlatformSpec or None) of a YAML upload, or Rejected with the
    apiserver's message. KFP 2.2.0 and 2.5.0 apiserver/template/template.go New,
    inferTemplateFormat, and v2_template.go NewV2SpecTemplate."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not text.strip():
        raise Rejected("unknown template format")
    documents = _documents(text)
    if documents and isinstance(documents[0], dict) and str(documents[0].get("apiVersion", "")).startswith(
            "argoproj.io") and documents[0].get("kind") == "Workflow":
        # Accepted upstream as a v1 template (argo_template.go); kubetfx never writes one.
        raise Rejected("an Argo Workflow (KFP v1) template, not a v2 pipeline spec")
    if not any(_is_pipeline_spec(d) for d in documents):  # template.go isV2Spec
        raise Rejected("unknown template format")
    spec, platform = None, None
    for document in documents:
        if _is_pipeline_spec(document):
            if spec is not None:
                raise Rejected("multiple pipeline specs provided")
            spec = _parse(document, pipeline_spec_pb2.PipelineSpec)
            if spec.schema_version != SCHEMA_VERSION:
                raise Rejected(f"KFP only supports schema version 2.1.0, but the pipeline spec has version "
                               f"{spec.schema_version}")
            # Unanchored in Go (regexp.MatchString): any lower-case letter or digit matches.
            if not re.search(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                             spec.pipeline_info.name):
                raise Rejected("invalid v2 pipeline spec: name should consist of lower case alphanumeric "
                               "characters, '-' or '.', and must start and end with an alphanumeric character")
        elif _is_kubernetes_platform_spec(document):
            if platform is not None:
                raise Rejected("multiple platform specs provided")
            platform = _parse(document, pipeline_spec_pb2.PlatformSpec)
    return spec, platform


_TYPE_NAMES = {"NUMBER_DOUBLE": "double or integer", "NUMBER_INTEGER": "double or integer", "STRING": "string",
               "BOOLEAN": "bool", "LIST": "list", "STRUCT": "struct"}
_KINDS = {"NUMBER_DOUBLE": "number_value", "NUMBER_INTEGER": "number_value", "STRING": "string_value",
          "BOOLEAN": "bool_value", "LIST": "list_value", "STRUCT": "struct_value"}


def value_kind(value) -> str:
    """The google.protobuf.Value kind a JSON value becomes (null_value, number_value, ...)."""
    if value is None:
        return "null_value"
    if isinstance(value, bool):
        return "bool_value"
    if isinstance(value, (int, float)):
        return "number_value"
    if isinstance(value, str):
        return "string_value"
    return "list_value" if isinstance(value, list) else "struct_value"


def check_run_parameters(spec, parameters: Optional[dict]) -> None:
    """apiserver/template/v2_template.go validatePipelineJobInputs (2.5.0; 2.2.0 has the same
    checks): required parameters present, values of the declared type, nothing extra."""
    from kfp.pipeline_spec import pipeline_spec_pb2

    declared = spec.root.input_definitions.parameters
    if parameters is None:
        if declared:
            raise Rejected("invalid pipeline job inputs: pipeline requiring input has no parameter(s) provided. "
                           f"Need parameter(s): {', '.join(declared)}")
        return
    type_name = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name
    for name, definition in declared.items():
        if name not in parameters:
            if not definition.is_optional and not definition.HasField("default_value"):
                raise Rejected(f"invalid pipeline job inputs: parameter {name} is not optional, yet has neither "
                               "default value nor user provided value")
            continue
        kind = type_name(definition.parameter_type)
        if kind not in _KINDS:
            raise Rejected(f"invalid pipeline job inputs: input parameter {name} has unspecified type")
        if value_kind(parameters[name]) != _KINDS[kind]:
            raise Rejected(f"invalid pipeline job inputs: input parameter {name} requires type "
                           f"{_TYPE_NAMES[kind]}, but the parameter value is not of "
                           f"{'number' if kind.startswith('NUMBER') else _TYPE_NAMES[kind]} value type")
    extra = [name for name in parameters if name not in declared]
    if extra:
        raise Rejected(f"invalid pipeline job inputs: parameter(s) provided are not required by pipeline: "
                       f"{', '.join(extra)}")


def check_compile(spec, platform=None) -> None:
    """apiserver/template/v2_template.go RunWorkflow -> v2/compiler/argocompiler/argo.go
    Compile -> v2/compiler/visitor.go Accept (depth first from the root, tasks in sorted
    order) and argocompiler/dag.go: only container and importer executors, every
    component and producer task known, no empty DAG."""
    def fail(message: str):
        raise Rejected(f"Failed to compile job: {message}")

    if not spec.pipeline_info.name:
        fail("pipelineInfo.name is empty")
    executors = spec.deployment_spec.fields.get("executors")
    executors = dict(executors.struct_value.fields) if executors is not None else {}
    visited = set()

    def visit(name: str, component) -> None:
        if name in visited:
            return
        visited.add(name)
        label = component.executor_label
        if label:
            if label not in executors:
                fail(f'error processing component name="{name}": executor(label="{label}") not found in '
                     "deployment config")
            kinds = set(executors[label].struct_value.fields)
            if not kinds & {"container", "importer"}:
                fail(f'error processing component name="{name}": executor(label="{label}"): '
                     "non-container and non-importer executor not implemented")
            return
        if not component.HasField("dag"):
            fail(f"error processing component name={name!r}: unknown component implementation")
        tasks = component.dag.tasks
        for key in sorted(tasks):
            reference = tasks[key].component_ref.name
            if not reference:
                fail(f'error processing component name="{name}": component ref name is empty for task '
                     f'name="{tasks[key].task_info.name}"')
            if reference not in spec.components:
                fail(f'error processing component name="{name}": cannot find component ref name="{reference}"')
            visit(reference, spec.components[reference])
        if not tasks:  # argocompiler/dag.go
            fail(f"compiling DAG {name!r}: DAG {name} must contain one or more non-exit tasks")
        for task in tasks.values():  # argocompiler/dag.go addImplicitDependencies
            producers = [p.task_output_parameter.producer_task for p in task.inputs.parameters.values()
                         if p.HasField("task_output_parameter")]
            producers += [a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()
                          if a.HasField("task_output_artifact")]
            for producer in producers:
                if producer not in tasks:
                    fail(f'compiling DAG "{name}": failed to add implicit deps: unknown producer task '
                         f'"{producer}" in DAG')

    visit("root", spec.root)


def _root_values(spec, parameters: dict) -> dict:
    """v2/compiler/argocompiler/argo.go Compile: run values, else the default, else null
    for an optional parameter."""
    from google.protobuf import json_format

    values = dict(parameters)
    for name, definition in spec.root.input_definitions.parameters.items():
        if name not in values:
            if definition.HasField("default_value"):
                values[name] = json_format.MessageToDict(definition.default_value)
            elif definition.is_optional:
                values[name] = None
    return values


_UPSTREAM = object()  # a value an upstream task gives at run time


def check_task_inputs(spec, parameters: dict) -> None:
    """What each root task's driver and the importer launcher check when the task starts:
    v2/driver/driver.go resolveInputs (parameter presence and types; 2.2.0 and 2.5.0) and
    v2/component/importer_launcher.go ImportSpecToMLMDArtifact (the artifact URI). A
    parameter from an upstream task's output is known only then (resolveUpstreamParameters):
    here only its producer's declaration of it is checked."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    type_name = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name
    root = _root_values(spec, parameters)
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    for task_name, task in spec.root.dag.tasks.items():
        component = spec.components[task.component_ref.name]
        values = {}
        for name, source in task.inputs.parameters.items():
            if source.HasField("component_input_parameter"):
                if source.component_input_parameter in root:
                    values[name] = root[source.component_input_parameter]
            elif source.HasField("runtime_value"):
                values[name] = json_format.MessageToDict(source.runtime_value.constant)
            elif source.HasField("task_output_parameter"):
                upstream = source.task_output_parameter
                producer = spec.root.dag.tasks.get(upstream.producer_task)
                declared = spec.components[producer.component_ref.name].output_definitions.parameters \
                    if producer is not None else {}
                if upstream.output_parameter_key not in declared:
                    raise Rejected(f"task {task_name}: cannot find output parameter key "
                                   f"{upstream.output_parameter_key!r} in producer task {upstream.producer_task!r}")
                values[name] = _UPSTREAM
        for name, definition in component.input_definitions.parameters.items():
            if name not in values:
                if not definition.is_optional and not definition.HasField("default_value"):
                    raise Rejected(f"task {task_name}: neither value nor default value provided for non-optional "
                                   f"parameter {name!r}")
                continue
            kind = type_name(definition.parameter_type)
            if kind == "STRING" or values[name] is _UPSTREAM:
                continue  # the driver turns any value into its JSON text
            actual = value_kind(values[name])
            if actual == "null_value":
                raise Rejected(f"task {task_name}: got null for input parameter {name!r}")
            if actual != _KINDS.get(kind):
                raise Rejected(f"task {task_name}: input parameter {name!r} type mismatch: expect {kind}, got "
                               f"{actual.split('_')[0]}")
        importer = executors[component.executor_label].struct_value.fields.get("importer")
        if importer is not None:
            _check_importer(task_name, task, json_format.MessageToDict(importer), root)


def _check_importer(task_name: str, task, importer: dict, root: dict) -> None:
    uri = importer.get("artifactUri", {})
    if "constant" in uri:
        value = uri["constant"]
    elif uri.get("runtimeParameter"):
        name = uri["runtimeParameter"]
        if name not in task.inputs.parameters:
            raise Rejected(f"task {task_name}: cannot find parameter {name} in task input to fetch artifact uri")
        source = task.inputs.parameters[name].component_input_parameter
        if source not in root:
            raise Rejected(f"task {task_name}: error resolving artifact URI: parent DAG does not have input "
                           f"parameter {source}")
        value = root[source]
        if not value:
            raise Rejected(f"task {task_name}: empty artifact URI runtime value for parameter {name}")
    else:
        raise Rejected(f"task {task_name}: artifact uri not provided")
    # 2.5.0 only (not at 2.4.1): the URI must name an object store (objectstore.ParseProviderFromPath).
    match = _BUCKET.match(str(value))
    if not match or match.group(1) not in ("gs://", "s3://", "minio://", "mem://"):
        raise Rejected(f"task {task_name}: no provider scheme found in artifact URI: {value}")


def check_run(spec, platform, parameters: Optional[dict]) -> None:
    """Everything between `create run` and the first task's start, in the backend's order."""
    check_run_parameters(spec, parameters)
    check_compile(spec, platform)
    check_task_inputs(spec, parameters or {})
