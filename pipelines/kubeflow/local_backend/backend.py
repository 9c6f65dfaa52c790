"""A pipeline run on the local KFP backend, from the compiled spec to the summary.

    summary = backend.run_spec(spec, platform, RunRequest(...), Options(kfp_version="2.5"))

The spec passes the apiserver's checks; the object store starts on loopback with what
earlier runs left in it; the data is uploaded where the cluster keeps it and fingerprinted;
then the DAG runs, each task through the driver (executor input, cache lookup), the
launcher (staging, container, upload) or the importer, with the version's retries.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from kubetfx.components.container import images

from kubetfx.components import stage_outputs
from kubetfx.pipelines.kubeflow import backend_rules
from kubetfx.pipelines.kubeflow.local_backend import (cache, dag, docker, driver, importer, launcher, metadata,
                                                      retry, store, versions)
from kubetfx.pipelines.kubeflow.local_backend.options import Options
from kubetfx.pipelines.record.summary import RunSummary, StageResult

# KFP 2.5.0 backend/src/v2/config/env.go: the run's root, else the launcher config's, else this.
DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
DATA_PREFIX = "minio://mlpipeline/kubetfx/data"   # where `kubetfx submit` puts the data too
# On each task container: a killed run's are removed by the next run of its pipeline and home.
HOME_LABEL, PIPELINE_LABEL = "kubetfx.home", "kubetfx.pipeline"
@dataclasses.dataclass
class RunRequest:
    pipeline: str
    home: Path
    parameters: dict = dataclasses.field(default_factory=dict)
    # {uri: local file}: a user's module or schema file, staged as `kubetfx submit` stages it
    # (kubeflow/staged_files.py); without it, the copy the store kept from an earlier run
    files: dict = dataclasses.field(default_factory=dict)
    data: Optional[Path] = None     # uploaded to DATA_PREFIX/<pipeline>/ -> data_root (None: as the store has it)


class TaskFailedError(RuntimeError):
    def __init__(self, task: str, log: Path, reason: str):
        super().__init__(f"task {task} failed: {reason}; container log: {log}")
        self.task, self.log = task, log


class TaskTimedOutError(TaskFailedError):
    pass


def volume_name(claim: str, home: Path) -> str:
    """A Docker named volume per claim and home (homes do not share a serving directory)."""
    return f"{claim}-{hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]}"


def pvc_mounts(platform: Optional[dict], executor_label: str) -> dict:
    """{claim: mount path} of an executor's `pvcMount`s (KFP 2.5.0 backend/src/v2/driver/
    driver.go makeVolumeMountPatch: a constant claim name, or `pvcNameParameter`'s constant)."""
    executors = ((platform or {}).get("platforms", {}).get("kubernetes", {})
                 .get("deploymentSpec", {}).get("executors", {}))
    mounts = {}
    for mount in executors.get(executor_label, {}).get("pvcMount", []):
        claim = mount.get("constant") or mount.get("pvcNameParameter", {}).get("runtimeValue", {}).get("constant")
        if not claim:
            raise backend_rules.Rejected(f"executor {executor_label}: only constant PVC names are emulated")
        mounts[claim] = mount["mountPath"]
    return mounts


def _mlmd_view(artifact: dict, local_uri: str) -> metadata_store_pb2.Artifact:
    """An MLMD-shaped artifact for stage_outputs, reading the mirror's copy of the files."""
    proto = metadata_store_pb2.Artifact(uri=local_uri)
    for key, value in artifact["custom_properties"].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
            proto.custom_properties[key].int_value = int(value)
        else:
            proto.custom_properties[key].string_value = str(value)
    return proto


@dataclasses.dataclass
class EarlyStart:
    """A run begun before its spec exists: its id, and its object store booting."""
    run_id: str
    store: store.Booting

    def close(self) -> None:
        self.store.close()


def start_early(home: Path, pipeline: str) -> Optional[EarlyStart]:
    """Starts the object store of the next run on `home` while the caller compiles its spec
    (store.Booting says why); None when the home cannot take the run's log yet (the run
    then says why, as without an early start)."""
    run_id = str(uuid.uuid4())
    logs = _logs_dir(home, pipeline, run_id)
    try:
        logs.mkdir(parents=True, exist_ok=True)
        os.chmod(logs, 0o700)
    except OSError:
        return None
    return EarlyStart(run_id, store.Booting(home / "object-store", logs / "object-store.log"))


def _logs_dir(home: Path, pipeline: str, run_id: str) -> Path:
    return home / "logs" / pipeline / run_id


class _Run:
    def __init__(self, spec: dict, platform: Optional[dict], request: RunRequest, options: Options,
                 early: Optional[EarlyStart] = None):
        self.spec, self.platform, self.request, self.options = spec, platform, request, options
        self.version = versions.parse(options.kfp_version)
        self.run_as_user = versions.run_as_user(self.version, options.run_as_user)
        self.early = early
        self.run_id = early.run_id if early else str(uuid.uuid4())
        self.owner_labels = {HOME_LABEL: str(Path(request.home).resolve()), PIPELINE_LABEL: request.pipeline}
        self.pipeline = spec["pipelineInfo"]["name"]
        self.root = spec.get("defaultPipelineRoot") or DEFAULT_PIPELINE_ROOT
        backend_dir = request.home / "kfp-backend" / request.pipeline
        self.work = backend_dir / "work" / self.run_id
        self.logs = _logs_dir(request.home, request.pipeline, self.run_id)
        self.metadata = metadata.MetadataStore(backend_dir / "metadata.sqlite")
        self.cache = cache.CacheDB(backend_dir / "cache.sqlite")
        self.outputs: dict = {}   # task -> {key: recorded artifact}
        self.output_parameters: dict = {}   # task -> {key: value} (launcher's collectOutputParameters)
        self.results: dict = {}
        self.lock = threading.Lock()
        self.summary = RunSummary(pipeline=request.pipeline, run_id=self.run_id, stages=[])

    # ---- one task ------------------------------------------------------------------
    def execute(self, name: str) -> None:
        task = self.spec["root"]["dag"]["tasks"][name]
        component = self.spec["components"][task["componentRef"]["name"]]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        started = time.monotonic()
        print(f"  {name} ...", flush=True)
        parameters: dict = {}
        if "importer" in executor:
            outputs = importer.run(executor["importer"], task, component, self.params, self.metadata, self.pipeline)
            state = "imported"
        else:
            outputs, state, parameters = self.run_container(name, task, component, executor["container"])
        with self.lock:
            self.outputs[name] = outputs
            self.output_parameters[name] = parameters
            result = self.describe(name, outputs) if state != "imported" else \
                ", ".join(f"{a['uri']} (artifact {a['id']})" for a in outputs.values())
            self.results[name] = StageResult(name, state, time.monotonic() - started, result)

    def run_container(self, name: str, task: dict, component: dict, container: dict):
        executor_input = driver.executor_input(
            name, task, component, self.params, self.produced, self.root, self.pipeline, self.run_id, self.version,
            produced_parameter=self.produced_parameter)
        fingerprint = None
        if task.get("cachingOptions", {}).get("enableCache"):
            # driver.go getFingerPrint: command + args as written, the spec's image
            types = {k: v.get("parameterType", "") for k, v in
                     component.get("outputDefinitions", {}).get("parameters", {}).items()}
            key = cache.generate_cache_key(executor_input["inputs"], executor_input["outputs"], types,
                                           [*container["command"], *container.get("args", [])], container["image"])
            fingerprint = cache.fingerprint(key)
            hit = self.cache.lookup(fingerprint, self.pipeline)
            if hit is not None:  # driver.go Container: reuseCachedOutputs, no pod
                if types:
                    raise driver.DriverError(f"task {name}: output parameters of a cached execution are not emulated")
                reused = {k: self.metadata.get(artifact_id) for k, artifact_id in hit.items()}
                gone = [a["uri"] for a in reused.values() if not self.store.restore(a["uri"])]
                if gone:
                    # KFP takes the hit all the same: reuseCachedOutputs reads MLMD, never the
                    # store, and the consumers' launcher downloads an empty prefix
                    # (objectstore.DownloadBlob lists nothing, no error). The entrypoint of
                    # the consumer says so (components/container/entrypoint.py).
                    print(f"  {name}: cached, but its outputs are gone from the object store ({gone[0]}); "
                          "KFP hands the empty prefix downstream as well", flush=True)
                return reused, "cached", {}
        produced, parameters = self.attempts(name, task, component, container, executor_input)
        recorded = launcher.record_outputs(self.metadata, self.pipeline, produced)
        if fingerprint:
            self.cache.record(fingerprint, self.pipeline, self.run_id, name, {k: a["id"] for k, a in recorded.items()})
        return recorded, "complete", parameters

    def attempts(self, name, task, component, container, executor_input) -> dict:
        strategy = retry.strategy_for(task, self.version)
        log = self.logs / f"{name}.log"
        image = self.options.image or container["image"]
        volumes = {volume_name(claim, self.request.home): path
                   for claim, path in pvc_mounts(self.platform, component["executorLabel"]).items()}
        first_started, attempt_number = time.time(), 0
        while True:
            attempt_number += 1
            with open(log, "a") as out:
                out.write(f"=== attempt {attempt_number} (KFP {self.version.tag})\n")
            attempt = launcher.Attempt(self.store.s3, self.work / name, log, self.store.mirror,
                                       user=self.run_as_user)
            timeout, deadline = self.options.task_timeout, strategy.retry_deadline(attempt_number, first_started)
            if deadline is not None and deadline - time.time() < timeout:
                timeout = max(0.0, deadline - time.time())
            try:
                produced = attempt.run(f"kubetfx-{self.run_id[:8]}-{name.lower()}-{attempt_number}", executor_input,
                                       component, container, image, volumes, timeout,
                                       {"kubetfx.run": self.run_id, "kubetfx.task": name, **self.owner_labels})
                return produced, attempt.output_parameters
            except docker.TaskTimedOut as err:
                if timeout < self.options.task_timeout:  # Argo's kill at ARGO_DEADLINE; no retry past it
                    raise TaskFailedError(name, log, f"attempt {attempt_number} killed at the retry deadline "
                                                     f"(Argo backoff.maxDuration {strategy.max_duration} s from "
                                                     "the first attempt's start)") from None
                # Our own bound, not the spec's: a hung task would hang again, so no retry.
                raise TaskTimedOutError(name, log, str(err)) from None
            except launcher.TaskFailed as err:
                wait = strategy.next_wait(attempt_number, first_started, time.time())
                if wait is None:
                    raise TaskFailedError(name, log, f"exit code {err.code} after {attempt_number} attempt(s)") from None
                scaled = wait * self.options.backoff_scale
                print(f"  {name}: attempt {attempt_number} failed (exit {err.code}); retry "
                      f"{attempt_number}/{strategy.limit} in {scaled:.1f} s (Argo backoff {wait:.0f} s"
                      f" x --retry-backoff-scale {self.options.backoff_scale:g})", flush=True)
                time.sleep(scaled)

    def produced(self, task: str, key: str) -> Optional[dict]:
        with self.lock:
            return self.outputs.get(task, {}).get(key)

    def produced_parameter(self, task: str, key: str):
        with self.lock:
            return self.output_parameters.get(task, {}).get(key)

    # ---- what the summary says ---------------------------------------------------------
    def describe(self, name: str, outputs: dict) -> str:
        by_type = {}
        for key, artifact in outputs.items():
            title = metadata.schema_title(artifact["schema"])
            try:
                local = str(self.store.mirror_path(artifact["uri"]))
            except ValueError:
                local = artifact["uri"]
            by_type[title.split(".")[-1]] = _mlmd_view(artifact, local)
        return stage_outputs.describe(name, by_type)

    # ---- the whole run -----------------------------------------------------------------
    def execute_all(self) -> RunSummary:
        # The apiserver's checks at upload and run creation (backend_rules cites them).
        import yaml
        parsed_spec, parsed_platform = backend_rules.check_upload(
            yaml.safe_dump_all([self.spec, self.platform] if self.platform else [self.spec]))
        tasks = self.spec["root"]["dag"]["tasks"]
        executors = self.spec["deploymentSpec"]["executors"]
        needed = sorted({self.options.image or e["container"]["image"] for e in executors.values() if "container" in e})
        docker.binary()  # a missing docker command is said as such, before the images
        images.require_images(needed)
        for name in docker.remove_left_over(self.owner_labels):
            print(f"kubetfx: removed container {name}, left running by a killed run on this home", file=sys.stderr)
        for directory in (self.request.home / "kfp-backend", self.logs, self.request.home / "object-store"):
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        claims = {c for t in tasks.values() for c in
                  pvc_mounts(self.platform, self.spec["components"][t["componentRef"]["name"]]["executorLabel"])}
        for claim in sorted(claims):
            docker.ensure_volume(volume_name(claim, self.request.home), needed[0],
                                 {"kubetfx.home": str(self.request.home.resolve()), "kubetfx.claim": claim})
        running = (self.early.store.running() if self.early else
                   store.running(self.request.home / "object-store", self.logs / "object-store.log"))
        with running as self.store:
            self.store.ensure_bucket(self.root)
            self.stage_files(tasks, executors)
            overrides = self.data_parameters()
            backend_rules.check_run(parsed_spec, parsed_platform, overrides)
            self.params = driver.run_parameters(self.spec, overrides)
            try:
                dag.run(tasks, self.execute, self.options.parallelism)
            finally:
                self.summary.stages = list(self.results.values())  # in completion order
        self.note_push(tasks)
        return self.summary

    def stage_files(self, tasks: dict, executors: dict) -> None:
        """The request's files uploaded where the spec's importers read them; the other
        constant importer URIs put back from what the store kept (a recurring run)."""
        from kubetfx.pipelines.kubeflow import object_store

        for uri, local in self.request.files.items():
            self.store.ensure_bucket(uri)
            where = object_store.parse_uri(uri)
            self.store.s3.upload_file(str(local), where.bucket, where.key)
            self.store.mirror(Path(local), uri)
        for task in tasks.values():
            importer = executors.get(self.spec["components"][task["componentRef"]["name"]]["executorLabel"], {})
            uri = importer.get("importer", {}).get("artifactUri", {}).get("constant")
            if uri and uri not in self.request.files:
                self.store.restore(uri)

    def data_parameters(self) -> dict:
        """The run's parameters: with `data`, uploaded as `kubetfx submit` does (and, for a
        spec compiled before the fingerprint task, its submit-time fingerprint); without,
        `data_root` holds what the store keeps there now (a recurring run's start)."""
        declared = self.spec["root"].get("inputDefinitions", {}).get("parameters", {})
        overrides = dict(self.request.parameters)
        if "data_root" not in declared:
            return overrides
        if self.request.data is not None:
            uri = f"{DATA_PREFIX}/{self.request.pipeline}/"
            fingerprint = self.store.sync_data(Path(self.request.data), uri)
            overrides.setdefault("data_root", uri)
            if "data_fingerprint" in declared:
                overrides.setdefault("data_fingerprint", fingerprint)
        else:
            data_root = overrides.get("data_root", declared["data_root"].get("defaultValue"))
            if data_root:
                self.store.restore(data_root)
        return overrides

    def note_push(self, tasks: dict) -> None:
        for name, outputs in self.outputs.items():
            if name.startswith("Evaluator") and name in self.results:
                self.summary.blessed = "NOT blessed" not in self.results[name].result
            pushed = outputs.get("pushed_model")
            if pushed and pushed["custom_properties"].get("pushed") in (1, 1.0):
                executor = self.spec["components"][tasks[name]["componentRef"]["name"]]["executorLabel"]
                where = pushed["custom_properties"].get("pushed_destination")
                volumes = {path: volume_name(claim, self.request.home)
                           for claim, path in pvc_mounts(self.platform, executor).items()}
                volume = next((v for path, v in volumes.items() if str(where).startswith(path)), None)
                self.summary.pushed_path = f"{where} (Docker volume {volume})" if volume else str(where)


def run_spec(spec: dict, platform: Optional[dict], request: RunRequest, options: Options = Options(),
             early: Optional[EarlyStart] = None) -> RunSummary:
    """`early`: from start_early on the same home and pipeline (the caller closes it)."""
    if early is not None and not _logs_dir(request.home, request.pipeline, early.run_id).is_dir():
        raise ValueError("start_early was called for another home or pipeline than this run's")
    return _Run(spec, platform, request, options, early).execute_all()
