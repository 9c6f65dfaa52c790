"""How the data enters the compiled spec: an importer task and ExampleGen wiring.

KFP's cache key is the input artifact ids + parameters + command + image (KFP 2.5.0
backend/src/v2/cacheutils/cache.go GenerateCacheKey); TFX's own ExampleGen fingerprint
(`lifecycle.preCacheCheck`) is never read by OSS KFP. So the data is an input artifact of
ExampleGen (importer `data`, artifactUri = the pipeline parameter `data_root`, staged by the
launcher like any input) and its content fingerprint is a parameter (`data_fingerprint`,
computed by `kubetfx submit` with object_store.data_fingerprint): new files under the same
`data_root` change the key, the same files hit the cache.

The importer has the shape the KFP SDK 2.9 compiles `dsl.importer(artifact_uri=<param>,
artifact_class=dsl.Dataset, reimport=False)` to; the importer launcher reads the URI from
the task's input parameter named in `runtimeParameter` (KFP 2.2.0, 2.4.x and 2.5.0
backend/src/v2/component/importer_launcher.go ImportSpecToMLMDArtifact)."""
from __future__ import annotations

DATA_TASK = "data"
DATA_COMPONENT = "comp-data"
DATA_EXECUTOR = "exec-data"
DATA_OUTPUT = "artifact"
URI_PARAMETER = "uri"
DATASET_TYPE = {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}

DATA_ROOT = "data_root"                      # pipeline parameter: where the data is
DATA_FINGERPRINT = "data_fingerprint"        # pipeline parameter: what the data is
EXAMPLE_GEN_DATA = "kubetfx_data"            # ExampleGen input artifact (the staged data)
EXAMPLE_GEN_FINGERPRINT = "kubetfx_data_fingerprint"  # ExampleGen parameter (cache key only)


def default_data_root(pipeline_name: str) -> str:
    """Where `kubetfx submit` uploads the data: in KFP's own bucket, so it exists for the cluster."""
    return f"minio://mlpipeline/kubetfx/data/{pipeline_name}/"


def add_importer(spec: dict) -> None:
    spec["components"][DATA_COMPONENT] = {
        "executorLabel": DATA_EXECUTOR,
        "inputDefinitions": {"parameters": {URI_PARAMETER: {"parameterType": "STRING"}}},
        "outputDefinitions": {"artifacts": {DATA_OUTPUT: {"artifactType": dict(DATASET_TYPE)}}},
    }
    spec["deploymentSpec"]["executors"][DATA_EXECUTOR] = {"importer": {
        "artifactUri": {"runtimeParameter": URI_PARAMETER}, "typeSchema": dict(DATASET_TYPE)}}
    # reimport false (the proto default, omitted as the SDK omits it): the same URI in the
    # same pipeline is one MLMD artifact, so its id only changes with data_root.
    spec["root"]["dag"]["tasks"][DATA_TASK] = {
        "cachingOptions": {"enableCache": True},
        "componentRef": {"name": DATA_COMPONENT},
        "inputs": {"parameters": {URI_PARAMETER: {"componentInputParameter": DATA_ROOT}}},
        "taskInfo": {"name": DATA_TASK},
    }


def wire_example_gen(spec: dict, task_name: str) -> None:
    """ExampleGen reads the staged data (`kubetfx_data`) and its fingerprint enters the key.
    `input_base` shows the runtime `data_root` in the UI; the entrypoint replaces it with the
    launcher's local path of `kubetfx_data` (components/container/entrypoint.py)."""
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    definitions = component.setdefault("inputDefinitions", {})
    definitions.setdefault("artifacts", {})[EXAMPLE_GEN_DATA] = {"artifactType": dict(DATASET_TYPE)}
    definitions.setdefault("parameters", {})[EXAMPLE_GEN_FINGERPRINT] = {"parameterType": "STRING"}
    inputs = task.setdefault("inputs", {})
    inputs.setdefault("artifacts", {})[EXAMPLE_GEN_DATA] = {
        "taskOutputArtifact": {"producerTask": DATA_TASK, "outputArtifactKey": DATA_OUTPUT}}
    parameters = inputs.setdefault("parameters", {})
    parameters["input_base"] = {"componentInputParameter": DATA_ROOT}
    parameters[EXAMPLE_GEN_FINGERPRINT] = {"componentInputParameter": DATA_FINGERPRINT}
    task["dependentTasks"] = sorted(set(task.get("dependentTasks", [])) | {DATA_TASK})


def root_parameters(pipeline_name: str) -> dict:
    return {
        DATA_ROOT: {"parameterType": "STRING", "isOptional": True, "defaultValue": default_data_root(pipeline_name)},
        # Empty: not computed (a run started by hand in the UI); then only data_root keys the cache.
        DATA_FINGERPRINT: {"parameterType": "STRING", "isOptional": True, "defaultValue": ""},
    }
