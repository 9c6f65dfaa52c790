"""`kubetfx run --engine containers`: executes the compiled KFP v2 spec on this machine,
each task in its container via Docker, passing executor inputs and artifacts the way the
open-source KFP v2 driver and launcher do — including their quirks (artifacts typed
`system.Artifact`, `minio://` URIs, parameters as `parameterValues`), which the entrypoint
in the image must handle. It follows the spec and nothing else: images, commands, args,
env, resource limits, retry policies and the DAG all come from the spec.

kfp.local's DockerRunner (kfp 2.9) cannot run TFX-compiled specs (resolver tasks, artifact
inputs between tasks), hence this runner. The host home directory plays the role of the
cluster volume mounted at /kubetfx (pipeline root and serving directory)."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import time
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines import kubeflow_compiler, stage_results
from kubetfx.pipelines.config import PipelineConfig
from kubetfx.pipelines.summary import RunSummary, StageResult

PIPELINE_ROOT = kubeflow_compiler.DEFAULT_PIPELINE_ROOT
MOUNT = kubeflow_compiler.CLUSTER_MOUNT


class TaskFailedError(RuntimeError):
    def __init__(self, task: str, log: Path, code: int):
        super().__init__(f"task {task} failed (exit {code}); container log: {log}")
        self.task, self.log = task, log


def topological_order(tasks: dict) -> list:
    order, done = [], set()
    while len(order) < len(tasks):
        ready = sorted(n for n, t in tasks.items() if n not in done and set(t.get("dependentTasks", [])) <= done)
        if not ready:
            raise ValueError("the spec's task graph has a cycle")
        order.extend(ready)
        done.update(ready)
    return order


def _constant(parameter: dict, pipeline_params: dict):
    if "componentInputParameter" in parameter:
        return pipeline_params[parameter["componentInputParameter"]]
    return parameter["runtimeValue"]["constant"]


def _driver_artifact(artifact: dict) -> dict:
    """What the OSS driver hands downstream: the artifact typed from MLMD, no instance schema."""
    return {"name": artifact["name"], "uri": artifact["uri"], "metadata": artifact.get("metadata", {}),
            "type": {"schemaTitle": "system.Artifact"}}


class _Run:
    def __init__(self, config: PipelineConfig, spec: dict, image: str | None):
        self.config, self.spec, self.image = config, spec, image
        self.run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.home = config.home_path
        self.logs = config.logs_dir / self.run_id
        self.outputs: dict = {}  # task -> {key: [artifact dicts]}
        defaults = spec["root"].get("inputDefinitions", {}).get("parameters", {})
        self.params = {k: v.get("defaultValue") for k, v in defaults.items()}
        self.baselines = self.home / "container-runs" / f"{config.name}.json"

    # ---- host paths of the cluster volume --------------------------------------------
    def host_path(self, uri: str) -> Path:
        if uri.startswith(PIPELINE_ROOT.split("/v2/")[0]):
            uri = f"{MOUNT}/root" + uri[len(PIPELINE_ROOT.split("/v2/")[0]):]
        return self.home / os.path.relpath(uri, MOUNT)

    def executor_input(self, name: str, task: dict, component: dict) -> dict:
        params = {k: _constant(v, self.params) for k, v in task.get("inputs", {}).get("parameters", {}).items()}
        inputs = {}
        for key, ref in task.get("inputs", {}).get("artifacts", {}).items():
            producer = ref["taskOutputArtifact"]
            found = self.outputs[producer["producerTask"]].get(producer["outputArtifactKey"], [])
            inputs[key] = {"artifacts": [_driver_artifact(a) for a in found]}
        task_root = f"{PIPELINE_ROOT}/{self.config.name}/{self.run_id}/{name}"
        outputs = {key: {"artifacts": [{"name": f"{name}-{key}", "uri": f"{task_root}/{key}",
                                        "type": {"schemaTitle": "system.Artifact"}, "metadata": {}}]}
                   for key in component.get("outputDefinitions", {}).get("artifacts", {})}
        return {"inputs": {"parameterValues": params, "artifacts": inputs},
                "outputs": {"artifacts": outputs, "outputFile": f"{task_root}/executor_output.json"}}

    def docker_command(self, container: dict, executor_input: dict) -> list:
        payload = json.dumps(executor_input)
        args = [a.replace("{{$}}", payload) for a in container.get("args", [])]
        resources = container.get("resources", {})
        command = ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000",
                   "-v", f"{self.home}:{MOUNT}"]
        data = Path(self.params.get("data_root") or "")
        if data.is_absolute() and data.exists():
            command += ["-v", f"{data}:{data}:ro"]
        for env in container.get("env", []):
            command += ["-e", f"{env['name']}={env['value']}"]
        if resources.get("cpuLimit"):
            command += ["--cpus", str(min(resources["cpuLimit"], os.cpu_count() or 1))]
        if resources.get("memoryLimit"):
            command += ["--memory", f"{int(resources['memoryLimit'] * 1024)}m"]
        image = self.image or container["image"]
        return command + ["--entrypoint", container["command"][0], image, *container["command"][1:], *args]

    def run_container(self, name: str, task: dict, component: dict, container: dict) -> dict:
        executor_input = self.executor_input(name, task, component)
        policy = task.get("retryPolicy", {})
        attempts = 1 + int(policy.get("maxRetryCount", 0))
        log = self.logs / f"{name}.log"
        for attempt in range(1, attempts + 1):
            with open(log, "a") as out:
                out.write(f"=== attempt {attempt}/{attempts}\n")
                out.flush()
                code = subprocess.call(self.docker_command(container, executor_input), stdout=out, stderr=subprocess.STDOUT)
            if code == 0:
                break
            if attempt == attempts or self.is_data_rejection(log):
                raise TaskFailedError(name, log, code)
            time.sleep(min(2 ** attempt, 10))  # the spec's backoff, shortened on one machine
        output_file = self.host_path(executor_input["outputs"]["outputFile"])
        result = json.loads(output_file.read_text()) if output_file.exists() else {}
        produced = {}
        for key, listed in executor_input["outputs"]["artifacts"].items():
            written = result.get("artifacts", {}).get(key, {}).get("artifacts", listed["artifacts"])
            produced[key] = [{**a, "name": a.get("name") or listed["artifacts"][0]["name"]} for a in written]
        return produced

    @staticmethod
    def is_data_rejection(log: Path) -> bool:
        return "DataRejectedError" in log.read_text(errors="replace")

    # ---- the latest blessed model: what Vertex's resolver would query ---------------
    def resolve(self, name: str) -> dict:
        history = json.loads(self.baselines.read_text()) if self.baselines.exists() else []
        latest = history[-1] if history else None
        if name.endswith("model-blessing-resolver"):
            return {"model_blessing": [latest["blessing"]] if latest else []}
        return {"model": [latest["model"]] if latest else []}

    def remember_blessing(self, task: dict) -> None:
        blessing = self.outputs["Evaluator"]["blessing"][0]
        if blessing.get("metadata", {}).get("blessed") in (1, 1.0):
            model_ref = task["inputs"]["artifacts"]["model"]["taskOutputArtifact"]
            model = self.outputs[model_ref["producerTask"]][model_ref["outputArtifactKey"]][0]
            history = json.loads(self.baselines.read_text()) if self.baselines.exists() else []
            self.baselines.parent.mkdir(parents=True, exist_ok=True)
            self.baselines.write_text(json.dumps(history + [{"model": model, "blessing": blessing}]))

    def summary_line(self, name: str, component: dict) -> str:
        declared = {}
        for key, spec in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            title = kubeflow_compiler._declared_types({"outputDefinitions": {"artifacts": {key: spec}}}).get(key, "")
            declared[key] = title.split(".")[-1]
        by_type = {}
        for key, artifacts in self.outputs[name].items():
            if artifacts:
                by_type[declared.get(key, key)] = _mlmd_artifact(artifacts[0], self.host_path(artifacts[0]["uri"]))
        return stage_results.describe(name, by_type)

    def execute(self) -> RunSummary:
        self.logs.mkdir(parents=True, exist_ok=True)
        for path in (self.home / "root", self.home / "serving"):
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)  # the containers run as uid 1000
        (self.logs / "pipeline.yaml").write_text(json.dumps(self.spec, indent=1))
        tasks = self.spec["root"]["dag"]["tasks"]
        executors = self.spec["deploymentSpec"]["executors"]
        summary = RunSummary(pipeline=self.config.name, run_id=self.run_id, stages=[])
        for name in topological_order(tasks):
            task = tasks[name]
            component = self.spec["components"][task["componentRef"]["name"]]
            container = executors[component["executorLabel"]].get("container")
            started = time.monotonic()
            print(f"  {name} ...", flush=True)
            if container is None:
                self.outputs[name] = self.resolve(name)
                continue
            self.outputs[name] = self.run_container(name, task, component, container)
            result = self.summary_line(name, component)
            summary.stages.append(StageResult(name, "complete", time.monotonic() - started, result))
            if name == "Evaluator":
                self.remember_blessing(task)
                summary.blessed = "NOT blessed" not in result
            if name == "Pusher":
                pushed = self.outputs[name]["pushed_model"][0].get("metadata", {})
                if pushed.get("pushed") in (1, 1.0):
                    summary.pushed_path = str(self.host_path(pushed["pushed_destination"]))
        return summary


def _mlmd_artifact(artifact: dict, host_uri: Path):
    """An MLMD-shaped artifact (what stage_results reads) from a KFP runtime artifact."""
    proto = metadata_store_pb2.Artifact(uri=str(host_uri))
    for key, value in artifact.get("metadata", {}).items():
        if isinstance(value, (int, float)) and float(value).is_integer():
            proto.custom_properties[key].int_value = int(value)
        else:
            proto.custom_properties[key].string_value = str(value)
    return proto


def run(config: PipelineConfig, image: str | None = None) -> RunSummary:
    """Compiles `config` (already prepared) and runs every task in Docker; raises on failure."""
    from kubetfx.pipelines import local_runner

    spec, _ = kubeflow_compiler.compile_spec(config, kubeflow_compiler.ClusterSettings(image=image))
    with local_runner.exclusive_run(config):
        return _Run(config, spec, image).execute()
