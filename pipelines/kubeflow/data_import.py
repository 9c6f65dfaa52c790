"""How the data enters the compiled spec: an importer task, a fingerprint task, and
ExampleGen wiring.

KFP's cache key is the input artifact ids + parameters + command + image (KFP 2.5.0
backend/src/v2/cacheutils/cache.go GenerateCacheKey, called by driver/driver.go Container);
TFX's own ExampleGen fingerprint (`lifecycle.preCacheCheck`) is never read by OSS KFP, and
the importer's artifact is the same one run after run for the same URI (`reimport: false`,
v2/component/importer_launcher.go findOrNewArtifactToImport). So what the data *is* must be
an input of ExampleGen, and it must be decided when the run starts, whoever starts it
(`kubetfx submit`, a recurring run, the UI, the API): a value frozen at submit time would
key every scheduled run to the first upload.

- `data` (importer): artifactUri = the pipeline parameter `data_root`;
- `data-fingerprint` (container, never cached: with `cachingOptions.enableCache` false the
  driver neither looks it up nor reuses outputs, driver.go getFingerPrintsAndID and
  Container `opts.Task.GetCachingOptions().GetEnableCache()`): the launcher stages `data` into the pod as it stages any input
  (launcher_v2.go downloadArtifacts), components/container/data_fingerprint.py hashes what
  is there now and writes the output parameter `fingerprint` (launcher_v2.go
  collectOutputParameters reads its output file);
- ExampleGen takes `data` as input artifact `kubetfx_data` and the fingerprint as parameter
  `kubetfx_data_fingerprint` (taskOutputParameter, driver.go resolveUpstreamParameters):
  new, changed or removed files under the same `data_root` change its key and everything
  after it re-runs; the same files hit the cache end to end.

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

FINGERPRINT_TASK = "data-fingerprint"
FINGERPRINT_COMPONENT = "comp-data-fingerprint"
FINGERPRINT_EXECUTOR = "exec-data-fingerprint"
FINGERPRINT_INPUT = "data"
FINGERPRINT_OUTPUT = "fingerprint"
FINGERPRINT_COMMAND = ["python", "-m", "kubetfx.components.container.data_fingerprint"]
# Hashing a CSV folder needs little; KFP's defaults would not bound it at all.
FINGERPRINT_RESOURCES = {"cpuRequest": 0.1, "cpuLimit": 1.0, "memoryRequest": 0.25, "memoryLimit": 0.5}

DATA_ROOT = "data_root"                      # pipeline parameter: where the data is
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


def add_fingerprint_task(spec: dict, image: str, retry_policy: dict) -> None:
    """The task that says what is under `data_root` when the run starts (see the module
    docstring); its input is the importer's artifact, staged by the launcher."""
    spec["components"][FINGERPRINT_COMPONENT] = {
        "executorLabel": FINGERPRINT_EXECUTOR,
        "inputDefinitions": {"artifacts": {FINGERPRINT_INPUT: {"artifactType": dict(DATASET_TYPE)}}},
        "outputDefinitions": {"parameters": {FINGERPRINT_OUTPUT: {"parameterType": "STRING"}}},
    }
    spec["deploymentSpec"]["executors"][FINGERPRINT_EXECUTOR] = {"container": {
        "image": image,
        "command": list(FINGERPRINT_COMMAND),
        "args": ["--data", f"{{{{$.inputs.artifacts['{FINGERPRINT_INPUT}'].path}}}}",
                 "--uri", f"{{{{$.inputs.artifacts['{FINGERPRINT_INPUT}'].uri}}}}",
                 "--output", f"{{{{$.outputs.parameters['{FINGERPRINT_OUTPUT}'].output_file}}}}"],
        "resources": dict(FINGERPRINT_RESOURCES),
    }}
    spec["root"]["dag"]["tasks"][FINGERPRINT_TASK] = {
        # Its inputs (the importer's artifact id, the command) are the same every run: a
        # cache hit would hand on the first run's fingerprint. Never cached.
        "cachingOptions": {"enableCache": False},
        "componentRef": {"name": FINGERPRINT_COMPONENT},
        "dependentTasks": [DATA_TASK],
        "inputs": {"artifacts": {FINGERPRINT_INPUT: {
            "taskOutputArtifact": {"producerTask": DATA_TASK, "outputArtifactKey": DATA_OUTPUT}}}},
        "retryPolicy": dict(retry_policy),
        "taskInfo": {"name": FINGERPRINT_TASK},
    }


def wire_example_gen(spec: dict, task_name: str) -> None:
    """ExampleGen reads the staged data (`kubetfx_data`) and the run-time fingerprint of it
    enters its cache key.
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
    parameters[EXAMPLE_GEN_FINGERPRINT] = {"taskOutputParameter": {
        "producerTask": FINGERPRINT_TASK, "outputParameterKey": FINGERPRINT_OUTPUT}}
    task["dependentTasks"] = sorted(set(task.get("dependentTasks", [])) | {DATA_TASK, FINGERPRINT_TASK})


def root_parameters(pipeline_name: str) -> dict:
    return {
        DATA_ROOT: {"parameterType": "STRING", "isOptional": True, "defaultValue": default_data_root(pipeline_name)},
    }
