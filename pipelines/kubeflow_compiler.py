"""`kubetfx compile`: the pipeline as a KFP v2 pipeline spec (IR YAML) that runs on
open-source Kubeflow Pipelines and on Vertex AI Pipelines.

TFX's KubeflowV2DagRunner writes the DAG; this module finishes what it leaves out for OSS
KFP: our entrypoint (which repairs the executor input, see components/container), each
artifact's declared TFX type passed to it, per-stage images, CPU/memory requests and
limits, retry policies, pipeline parameters (data location, evaluation threshold) and an
optional Kubernetes platform spec (volume for the pipeline root, secret references by
name, node selector). No secret value ever enters the spec."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Optional

import yaml

from kubetfx.pipelines.config import PipelineConfig

VERSION = "0.1.0"
PIPELINE_IMAGE = f"kubetfx/pipeline:{VERSION}"
INFRA_VALIDATOR_IMAGE = f"kubetfx/infra-validator:{VERSION}"
ENTRYPOINT = ["python", "-m", "kubetfx.components.container.entrypoint"]
# OSS KFP's default artifact store, mapped by the entrypoint onto the mounted volume.
DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
CLUSTER_MOUNT = "/kubetfx"
# Where the installed package (with the embedded data and schema) lives in the image.
IMAGE_PACKAGE = "/opt/kubetfx/lib/python3.11/site-packages/kubetfx/pipelines"
IMAGE_DATA_ROOT = f"{IMAGE_PACKAGE}/data/penguins"
IMAGE_SCHEMA = f"{IMAGE_PACKAGE}/schemas/penguins.schema.pbtxt"

# (cpu request, cpu limit, memory request GB, memory limit GB) by stage; default otherwise.
RESOURCES = {
    "Transform": (1.0, 2.0, 2.0, 4.0),
    "Trainer": (1.0, 2.0, 2.0, 4.0),
    "Evaluator": (1.0, 2.0, 2.0, 4.0),
    "InfraValidator": (0.5, 2.0, 2.0, 4.0),
}
DEFAULT_RESOURCES = (0.5, 1.0, 1.0, 2.0)
RETRY = {"maxRetryCount": 2, "backoffDuration": "30s", "backoffFactor": 2.0, "backoffMaxDuration": "300s"}


@dataclasses.dataclass
class ClusterSettings:
    """Where the pipeline's volumes and secrets are in the cluster (names, never values)."""
    pipeline_root: str = DEFAULT_PIPELINE_ROOT
    volume_claim: Optional[str] = "kubetfx-pipeline-root"   # PVC mounted at /kubetfx
    object_store_secret: Optional[str] = None               # e.g. mlpipeline-minio-artifact
    node_selector: dict = dataclasses.field(default_factory=dict)
    image: Optional[str] = None                             # one image for every task

    @property
    def serving_dir(self) -> str:
        return f"{CLUSTER_MOUNT}/serving"


_PARAMETER_TYPES = {"STRING": "STRING", "INT": "NUMBER_INTEGER", "DOUBLE": "NUMBER_DOUBLE"}


def modernize_parameters(spec: dict) -> None:
    """TFX 1.16 writes the deprecated parameter forms (`runtimeValue.constantValue`,
    `type: STRING`) that only Vertex still reads; the OSS KFP v2 driver (and kfp.local:
    "Expected constant") needs `runtimeValue.constant` and `parameterType`."""
    for component in spec["components"].values():
        for definition in component.get("inputDefinitions", {}).get("parameters", {}).values():
            if "type" in definition:
                definition["parameterType"] = _PARAMETER_TYPES[definition.pop("type")]
    for task in spec["root"]["dag"]["tasks"].values():
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            old = parameter.get("runtimeValue", {}).pop("constantValue", None)
            if old is not None:
                (kind, value), = old.items()
                parameter["runtimeValue"]["constant"] = {"intValue": int, "doubleValue": float}.get(kind, str)(value)


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


def _add_parameter(spec: dict, task: str, name: str, pipeline_param: str, kind: str) -> None:
    component = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]
    component.setdefault("inputDefinitions", {}).setdefault("parameters", {})[name] = {"parameterType": kind}
    spec["root"]["dag"]["tasks"][task]["inputs"].setdefault("parameters", {})[name] = {
        "componentInputParameter": pipeline_param}


def _tfx_ir(config: PipelineConfig, settings: ClusterSettings) -> dict:
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    from kubetfx.pipelines.pipeline import create_pipeline

    pipeline = create_pipeline(config, pipeline_root=settings.pipeline_root)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=PIPELINE_IMAGE),
        output_filename="unused.json")
    return runner.run(pipeline, write_out=False)


def finish_spec(job: dict, config: PipelineConfig, settings: ClusterSettings, data_root_default: str) -> tuple[dict, dict]:
    """(PipelineSpec dict, Kubernetes platform spec dict) from TFX's pipeline job dict."""
    spec = copy.deepcopy(job["pipelineSpec"])
    spec["pipelineInfo"]["description"] = f"kubetfx {VERSION}: {config.name} ({config.task}, label {config.label})"
    tasks = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    env = [{"name": "KUBETFX_URI_MAP", "value": f"{settings.pipeline_root.split('/v2/')[0]}={CLUSTER_MOUNT}/root"},
           {"name": "TF_USE_LEGACY_KERAS", "value": "1"}]
    platform_executors = {}
    modernize_parameters(spec)
    example_gen = next(n for n in tasks if n.endswith("ExampleGen"))
    _add_parameter(spec, example_gen, "kubetfx_data_root", "data_root", "STRING")
    _add_parameter(spec, "Evaluator", "kubetfx_eval_threshold", "eval_threshold", "NUMBER_DOUBLE")
    for name, task in tasks.items():
        component = spec["components"][task["componentRef"]["name"]]
        executor_label = component["executorLabel"]
        container = executors[executor_label].get("container")
        if container is None:  # the latest-blessed-model resolver: a Vertex resolver executor
            continue
        stage = _stage_of(name)
        container["image"] = settings.image or (INFRA_VALIDATOR_IMAGE if stage == "InfraValidator" else PIPELINE_IMAGE)
        container["command"] = list(ENTRYPOINT)
        # The parameter types tell TFX's runner to read `parameterValues` (what OSS KFP sends).
        inputs_spec = {"parameters": component.get("inputDefinitions", {}).get("parameters", {})}
        container["args"] = ["--artifact_types", json.dumps(_declared_types(component), sort_keys=True),
                             "--json_serialized_inputs_spec_args", json.dumps(inputs_spec, sort_keys=True),
                             ] + container["args"]
        cpu_req, cpu_lim, mem_req, mem_lim = RESOURCES.get(stage, DEFAULT_RESOURCES)
        container["resources"] = {"cpuRequest": cpu_req, "cpuLimit": cpu_lim,
                                  "memoryRequest": mem_req, "memoryLimit": mem_lim}
        container["env"] = list(env)
        task["retryPolicy"] = dict(RETRY)
        task["cachingOptions"] = {"enableCache": config.enable_cache}
        platform_executors[executor_label] = _platform(settings)
    spec["root"].setdefault("inputDefinitions", {}).setdefault("parameters", {}).update({
        "data_root": {"parameterType": "STRING", "defaultValue": data_root_default, "isOptional": True},
        "eval_threshold": {"parameterType": "NUMBER_DOUBLE", "isOptional": True,
                           "defaultValue": config.effective_threshold() if config.effective_threshold() is not None else -1.0},
    })
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": platform_executors}}}}
    return spec, platform


def _platform(settings: ClusterSettings) -> dict:
    config = {}
    if settings.volume_claim:
        config["pvcMount"] = [{"constant": settings.volume_claim, "mountPath": CLUSTER_MOUNT}]
    if settings.object_store_secret:
        config["secretAsEnv"] = [{"secretName": settings.object_store_secret, "keyToEnv": [
            {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
            {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]
    if settings.node_selector:
        config["nodeSelector"] = {"labels": dict(settings.node_selector)}
    return config


def compile_spec(config: PipelineConfig, settings: Optional[ClusterSettings] = None) -> tuple[dict, dict]:
    from kubetfx.pipelines import prepare

    settings = settings or ClusterSettings()
    # In the cluster, outputs go to the mounted volume, not this machine's home (and no
    # baseline schema of a local run leaks into the spec).
    cluster = prepare.prepare(config.replace(home=CLUSTER_MOUNT))
    data_root = IMAGE_DATA_ROOT if cluster.uses_embedded_data else str(Path(cluster.data).resolve())
    if cluster.schema_file and cluster.uses_embedded_data:
        cluster = cluster.replace(schema_file=IMAGE_SCHEMA)
    cluster = dataclasses.replace(cluster, data=data_root)
    return finish_spec(_tfx_ir(cluster, settings), cluster, settings, data_root)


def write_yaml(spec: dict, platform: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("# Compiled by kubetfx; regenerate with `make compile`.\n")
        yaml.safe_dump_all([spec, platform], f, sort_keys=True)
    return path


def compile_to_file(config: PipelineConfig, output: Optional[str] = None, image: Optional[str] = None) -> Path:
    spec, platform = compile_spec(config, ClusterSettings(image=image))
    return write_yaml(spec, platform, Path(output or f"build/{config.name}.yaml"))
