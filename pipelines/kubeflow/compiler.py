"""`kubetfx compile`: the pipeline as a KFP v2 pipeline spec (IR YAML) that open-source
Kubeflow Pipelines 2.4.x and 2.5.0 accept at upload and compile at run creation (checked by
pipelines/kubeflow/backend_rules.py, which cites the KFP source of each rule).

TFX's KubeflowV2DagRunner writes the DAG (schema 2.1.0, `use_pipeline_spec_2_1`); this
module finishes what it leaves out for OSS KFP: our entrypoint (which repairs the executor
input, see components/container), each artifact's declared TFX type passed to it, per-stage
images, CPU/memory requests and limits, retry policies, the data as an importer task and a
fingerprint task run when the run starts (pipelines/kubeflow/data_import.py), the evaluation threshold as a
pipeline parameter that is the only bound applied, the serving location as the pipeline
parameter `serving_dir` (default: the directory on the serving volume), and a Kubernetes
platform spec (the serving volume for the two tasks that use it, secret references by name,
node selector).
No secret value ever enters the spec."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Optional

import yaml

from kubetfx.pipelines.config import PipelineConfig
from kubetfx.pipelines.kubeflow import data_import, staged_files

VERSION = "0.1.0"
PIPELINE_IMAGE = f"kubetfx/pipeline:{VERSION}"
INFRA_VALIDATOR_IMAGE = f"kubetfx/infra-validator:{VERSION}"
ENTRYPOINT = ["python", "-m", "kubetfx.components.container.entrypoint"]
# OSS KFP's default artifact store (KFP 2.5.0 backend/src/v2/config/env.go): the launcher
# stages artifacts from and to it; no volume holds artifacts.
DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
CLUSTER_MOUNT = "/kubetfx"
# The only volume a task mounts: the Pusher's serving directory, read by ServedBaseline and
# by the serving Deployment (manifests/), PVC `kubetfx-serving` at /kubetfx/serving.
SERVING_CLAIM = "kubetfx-serving"
SERVING_MOUNT = f"{CLUSTER_MOUNT}/serving"
SERVING_TASKS = ("Pusher", "ServedBaseline")
# Where the installed package (with the embedded schema) lives in the image.
IMAGE_PACKAGE = "/opt/kubetfx/lib/python3.11/site-packages/kubetfx/pipelines"
IMAGE_SCHEMA = f"{IMAGE_PACKAGE}/schemas/penguins.schema.pbtxt"
NO_MODULE_PACKAGING = "UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES"
SCHEMA_VERSION = "2.1.0"  # the only one KFP 2.x uploads (apiserver/template/v2_template.go)

# (cpu request, cpu limit, memory request GB, memory limit GB) by stage; default otherwise.
RESOURCES = {
    "Transform": (1.0, 2.0, 2.0, 4.0),
    "Trainer": (1.0, 2.0, 2.0, 4.0),
    "Tuner": (1.0, 2.0, 2.0, 4.0),
    "Evaluator": (1.0, 2.0, 2.0, 4.0),
    "InfraValidator": (0.5, 2.0, 2.0, 4.0),
}
DEFAULT_RESOURCES = (0.5, 1.0, 1.0, 2.0)
# Retries (KFP 2.4.1 and 2.5.0 backend/src/v2/compiler/argocompiler/container.go
# getTaskRetryStrategy -> Argo v3.4.17 / v3.5.14 workflow/controller/operator.go
# processNodeRetries, workflowpod.go getDeadline). A `backoffMaxDuration` becomes Argo's
# backoff.maxDuration, counted from the *first* attempt's start: no retry once it has
# passed, and every retry pod gets ARGO_DEADLINE = first start + maxDuration, where it is
# killed. 300 s meant a Transform or Trainer that failed after five minutes was never
# retried. Left out, container.go writes no maxDuration and Argo sets no deadline: the retry
# count and the back-off alone bound the retries, for every stage, however long it runs.
# Argo's default retryPolicy (OnFailure, as KFP writes none) retries every non-zero exit: it
# cannot tell a deterministic outcome from a crash. Only one outcome of ours exits non-zero
# by design, ExampleValidator's rejection of the data (on_anomalies: fail; a model that is
# not blessed exits 0 and the Pusher skips it): that stage retries once, after 10 s, so a
# rejection costs one more ExampleValidator pod (seconds of work) and 10 s.
RETRY = {"maxRetryCount": 2, "backoffDuration": "30s", "backoffFactor": 2.0}
STAGE_RETRY = {"ExampleValidator": {"maxRetryCount": 1, "backoffDuration": "10s", "backoffFactor": 2.0}}
FINGERPRINT_RETRY = {"maxRetryCount": 2, "backoffDuration": "10s", "backoffFactor": 2.0}
# Stages whose results a KFP user should see on the run page: each gets a `system.Markdown`
# output (kfp 2.x SDK kfp/dsl/types/artifact_types.py Markdown) that the entrypoint writes
# from the stage's outputs (components/container/views.py); the KFP UI renders it in the
# task's Visualizations tab.
VIEW_OUTPUT = "kubetfx_view"
VIEW_STAGES = ("StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator", "Trainer", "Evaluator",
               "InfraValidator")
EVAL_THRESHOLD = "eval_threshold"                 # pipeline parameter
# Where ServedBaseline reads and the Pusher publishes: a pipeline parameter whose default is
# the pipeline's directory on the serving volume, so a cluster run is as before. A runner
# that ignores the Kubernetes platform spec (the KFP SDK's kfp.local: no volume) points it at
# a directory its containers see (docs/kubeflow.md); so can a run started from the UI.
SERVING_DIR = "serving_dir"                       # pipeline parameter
EVALUATOR_THRESHOLD = "kubetfx_eval_threshold"    # Evaluator parameter, applied by the entrypoint


@dataclasses.dataclass
class ClusterSettings:
    """Where the pipeline's volume and secrets are in the cluster (names, never values)."""
    pipeline_root: str = DEFAULT_PIPELINE_ROOT
    serving_claim: Optional[str] = SERVING_CLAIM             # PVC mounted at /kubetfx/serving
    object_store_secret: Optional[str] = None               # e.g. mlpipeline-minio-artifact
    node_selector: dict = dataclasses.field(default_factory=dict)
    image: Optional[str] = None                             # one image for every task

    @property
    def serving_dir(self) -> str:
        return SERVING_MOUNT


def _stage_of(task_name: str) -> str:
    return task_name.split("-", 1)[0]


def _declared_types(component: dict) -> dict:
    types = {}
    for side in ("inputDefinitions", "outputDefinitions"):
        for key, spec in component.get(side, {}).get("artifacts", {}).items():
            kind = spec.get("artifactType", {})
            title = kind.get("schemaTitle") or yaml.safe_load(kind.get("instanceSchema") or "{}").get("title")
            if title:
                types[key] = title
    return types


def _component_of(spec: dict, task: str) -> dict:
    return spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]


def tidy_parameters(spec: dict) -> None:
    """TFX writes unset optional exec properties as the string 'null', which the UI shows
    as a value: left out, the executors read them as unset (`.get(key)`), as before. Integer
    constants TFX writes as doubles (6.0) are written as integers."""
    for name, task in spec["root"]["dag"]["tasks"].items():
        parameters = task.get("inputs", {}).get("parameters", {})
        definitions = _component_of(spec, name).get("inputDefinitions", {}).get("parameters", {})
        for key in list(parameters):
            value = parameters[key].get("runtimeValue", {})
            if value.get("constant") == "null":
                del parameters[key]
                definitions.pop(key, None)
            elif definitions.get(key, {}).get("parameterType") == "NUMBER_INTEGER" and "constant" in value:
                value["constant"] = int(value["constant"])


def wire_eval_threshold(spec: dict, config: PipelineConfig) -> None:
    """The gate's bound becomes the pipeline parameter `eval_threshold` (the one the UI shows
    is the one applied): the compiled eval_config keeps no value bound for the gate metric,
    the entrypoint sets it from `kubetfx_eval_threshold`. Without a threshold (regression
    without --eval-threshold) there is no parameter and the eval_config keeps its "no bound"."""
    from kubetfx.components.evaluator.component import GATE_METRICS

    threshold = config.effective_threshold()
    if threshold is None:
        return
    gate_metrics = {metric for metric, _ in GATE_METRICS.values()}
    parameters = spec["root"]["dag"]["tasks"]["Evaluator"]["inputs"]["parameters"]
    eval_config = json.loads(parameters["eval_config"]["runtimeValue"]["constant"])
    for metrics_spec in eval_config.get("metrics_specs", []):
        for metric in metrics_spec.get("metrics", []):
            if metric.get("class_name") in gate_metrics:
                metric.get("threshold", {}).pop("value_threshold", None)
    parameters["eval_config"]["runtimeValue"]["constant"] = json.dumps(eval_config, indent=2, sort_keys=True)
    parameters[EVALUATOR_THRESHOLD] = {"componentInputParameter": EVAL_THRESHOLD}
    _component_of(spec, "Evaluator")["inputDefinitions"]["parameters"][EVALUATOR_THRESHOLD] = {
        "parameterType": "NUMBER_DOUBLE"}
    spec["root"]["inputDefinitions"]["parameters"][EVAL_THRESHOLD] = {
        "parameterType": "NUMBER_DOUBLE", "isOptional": True, "defaultValue": float(threshold)}


def wire_serving_dir(spec: dict) -> None:
    """ServedBaseline's `serving_dir` and the Pusher's (components/pusher/executor.py reads it
    before its compiled push_destination) come from the pipeline parameter `serving_dir`,
    whose default is the directory TFX compiled for ServedBaseline."""
    tasks = spec["root"]["dag"]["tasks"]
    if not all(name in tasks for name in SERVING_TASKS):
        return
    served = tasks["ServedBaseline"]["inputs"]["parameters"]
    default = served[SERVING_DIR]["runtimeValue"]["constant"]
    served[SERVING_DIR] = {"componentInputParameter": SERVING_DIR}
    tasks["Pusher"]["inputs"]["parameters"][SERVING_DIR] = {"componentInputParameter": SERVING_DIR}
    _component_of(spec, "Pusher")["inputDefinitions"]["parameters"][SERVING_DIR] = {"parameterType": "STRING"}
    spec["root"]["inputDefinitions"]["parameters"][SERVING_DIR] = {
        "parameterType": "STRING", "isOptional": True, "defaultValue": default}


def _tfx_ir(config: PipelineConfig, settings: ClusterSettings) -> dict:
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from kubetfx.pipelines.pipeline import create_pipeline

    # TFX would package a module file as a wheel under the minio:// root through tf.io.gfile
    # (tfx/components/util/udf_utils.py; UnimplementedError): its documented switch keeps the
    # path, which staged_files.stage replaces with the staged copy.
    previous = os.environ.get(NO_MODULE_PACKAGING)
    os.environ[NO_MODULE_PACKAGING] = "1"
    try:
        pipeline = create_pipeline(config, pipeline_root=settings.pipeline_root)
    finally:
        if previous is None:
            os.environ.pop(NO_MODULE_PACKAGING, None)
        else:
            os.environ[NO_MODULE_PACKAGING] = previous
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=PIPELINE_IMAGE, use_pipeline_spec_2_1=True),
        output_filename="unused.json")
    return runner.run(pipeline, write_out=False)


def _without_option(args: list, option: str) -> list:
    """`args` without `option VALUE` (TFX's own copy, replaced by ours)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        else:
            out.append(arg)
    return out


def _finish_container(spec: dict, name: str, settings: ClusterSettings, enable_cache: bool) -> None:
    task = spec["root"]["dag"]["tasks"][name]
    component = _component_of(spec, name)
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    stage = _stage_of(name)
    container["image"] = settings.image or (INFRA_VALIDATOR_IMAGE if stage == "InfraValidator" else PIPELINE_IMAGE)
    container["command"] = list(ENTRYPOINT)
    # The parameter types tell TFX's runner to read `parameterValues` (what OSS KFP sends);
    # written from the final definitions, with the parameters added and dropped here.
    inputs_spec = {"parameters": component.get("inputDefinitions", {}).get("parameters", {})}
    container["args"] = ["--artifact_types", json.dumps(_declared_types(component), sort_keys=True),
                         "--json_serialized_inputs_spec_args", json.dumps(inputs_spec, sort_keys=True),
                         ] + _without_option(container["args"], "--json_serialized_inputs_spec_args")
    cpu_req, cpu_lim, mem_req, mem_lim = RESOURCES.get(stage, DEFAULT_RESOURCES)
    container["resources"] = {"cpuRequest": cpu_req, "cpuLimit": cpu_lim,
                              "memoryRequest": mem_req, "memoryLimit": mem_lim}
    container["env"] = [{"name": "TF_USE_LEGACY_KERAS", "value": "1"}]
    task["retryPolicy"] = dict(STAGE_RETRY.get(stage, RETRY))
    # ServedBaseline reads the serving volume, which KFP's cache key cannot see (see
    # components/evaluator/served_baseline.py): never cached.
    task["cachingOptions"] = {"enableCache": enable_cache and stage != "ServedBaseline"}


def add_view_output(spec: dict, name: str) -> None:
    """The stage's Markdown view as one more output artifact, and the stage name the
    entrypoint titles it with. TFX's executor never sees it (the entrypoint takes it out)."""
    stage = _stage_of(name)
    if stage not in VIEW_STAGES:
        return
    component = _component_of(spec, name)
    component.setdefault("outputDefinitions", {}).setdefault("artifacts", {})[VIEW_OUTPUT] = {
        "artifactType": {"schemaTitle": "system.Markdown", "schemaVersion": "0.0.1"}}
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    container["args"] = ["--view_stage", stage] + container["args"]


def finish_spec(job: dict, config: PipelineConfig, settings: ClusterSettings) -> tuple[dict, dict]:
    """(PipelineSpec dict, Kubernetes platform spec dict) from TFX's pipeline job dict."""
    spec = copy.deepcopy(job["pipelineSpec"])
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise ValueError(f"TFX wrote schemaVersion {spec.get('schemaVersion')}; KFP uploads only {SCHEMA_VERSION}")
    spec["pipelineInfo"]["description"] = f"kubetfx {VERSION}: {config.name} ({config.task}, label {config.label})"
    tasks = spec["root"]["dag"]["tasks"]
    container_tasks = list(tasks)  # TFX's tasks, all container executors; the importer comes next
    spec["root"].setdefault("inputDefinitions", {}).setdefault("parameters", {}).update(
        data_import.root_parameters(config.name))
    tidy_parameters(spec)
    data_import.add_importer(spec)
    data_import.add_fingerprint_task(spec, settings.image or PIPELINE_IMAGE, FINGERPRINT_RETRY)
    data_import.wire_example_gen(spec, next(n for n in container_tasks if n.endswith("ExampleGen")))
    wire_eval_threshold(spec, config)
    wire_serving_dir(spec)
    platform_executors = {}
    for name in container_tasks:
        _finish_container(spec, name, settings, config.enable_cache)
        add_view_output(spec, name)
        platform = _platform(settings, serving=name in SERVING_TASKS)
        if platform:
            platform_executors[_component_of(spec, name)["executorLabel"]] = platform
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": platform_executors}}}}
    return spec, platform


def _platform(settings: ClusterSettings, serving: bool) -> dict:
    config = {}
    if serving and settings.serving_claim:
        config["pvcMount"] = [{"constant": settings.serving_claim, "mountPath": SERVING_MOUNT}]
    if settings.object_store_secret:
        config["secretAsEnv"] = [{"secretName": settings.object_store_secret, "keyToEnv": [
            {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
            {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]
    if settings.node_selector:
        config["nodeSelector"] = {"labels": dict(settings.node_selector)}
    return config


def compile_spec(config: PipelineConfig, settings: Optional[ClusterSettings] = None, *,
                 prepare: Callable[[PipelineConfig], PipelineConfig]) -> tuple[dict, dict]:
    """`prepare`: what every runner does first (run/inputs.prepare: checks, task, roles,
    schema), passed in by the command so that kubeflow/ and run/ import nothing of each other."""
    settings = settings or ClusterSettings()
    # In the cluster, outputs go to the object store and the serving volume, not this
    # machine's home (and no baseline schema of a local run leaks into the spec).
    cluster = prepare(config.replace(home=CLUSTER_MOUNT))
    user_files = staged_files.user_files(config.module_file, config.schema_file)
    if cluster.schema_file and cluster.uses_embedded_data and not config.schema_file:
        cluster = cluster.replace(schema_file=IMAGE_SCHEMA)  # the curated schema, in the image
    # ExampleGen's input_base is wired to `data_root` (data_import.py); this constant only
    # keeps a local path out of the spec.
    cluster = dataclasses.replace(cluster, data=data_import.default_data_root(cluster.name))
    spec, platform = finish_spec(_tfx_ir(cluster, settings), cluster, settings)
    staged_files.stage(spec, cluster.name, user_files)  # the user's files: staged, never a host path
    return spec, platform


def write_yaml(spec: dict, platform: dict, path: Path) -> Path:
    """Written beside `path` and renamed over it: a full disk, a Ctrl-C or a kill mid-write
    leaves the previous spec whole (a schedule's next `submit` may read it), never half a one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "w") as f:
            f.write("# Compiled by kubetfx; regenerate with `make compile`.\n")
            yaml.safe_dump_all([spec, platform], f, sort_keys=True)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    return path


def compile_to_file(config: PipelineConfig, output: Optional[str] = None, image: Optional[str] = None, *,
                    prepare: Callable[[PipelineConfig], PipelineConfig]) -> Path:
    spec, platform = compile_spec(config, ClusterSettings(image=image), prepare=prepare)
    return write_yaml(spec, platform, Path(output or f"build/{config.name}.yaml"))
