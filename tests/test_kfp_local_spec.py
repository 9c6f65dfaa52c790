"""The compiled spec run by a second, independent executor: the KFP SDK's own local runner
(`kfp.local` with its DockerRunner), which reads the IR as written and knows nothing of
kubetfx's local backend. Every task runs as compiled, in the kubetfx images, as uid 1000.

kfp.local ignores the Kubernetes platform spec (no serving volume) and mounts only the
pipeline root into each container, at the same path. So, the recipe docs/kubeflow.md
gives: the data under the pipeline root (`data_root` a local path), a pipeline root
writable by uid 1000, and the pipeline parameter `serving_dir` pointing at a directory
under it. Before `serving_dir` was a parameter, the Pusher (and nothing else) failed here:
it published to the volume path, /kubetfx/serving/..., which no mount provides.

One run (twelve containers started one after the other; 470 s on 2 cores shared with other
runs, load average 12) shared by the assertions. kfp.local never removes its containers
(kfp 2.9 kfp/local/docker_task_handler.py run_docker_container: `detach=True`, no remove):
the fixture removes those that mounted its pipeline root."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from container_engine import require_engine_and_images

pytestmark = [pytest.mark.slow, pytest.mark.container, pytest.mark.kfp_sdk]

REPO = os.environ.get("KUBETFX_TEST_IMAGE_REPO", "kubetfx")
STAGES = {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform",
          "Trainer", "ServedBaseline", "Evaluator", "InfraValidator", "Pusher"}
WRITABLE_BY_ALL = 0o777  # the containers run as uid 1000, whoever runs the test


def _writable_dir(path):
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(WRITABLE_BY_ALL)
    return path


@pytest.fixture(scope="module")
def kfp_local_run(tmp_path_factory):
    """(compiled spec, pipeline root, serving dir, run dir) after one whole run."""
    from kubetfx.pipelines.config import EMBEDDED_DATA, PipelineConfig
    from kubetfx.pipelines.kubeflow import compiler
    from kubetfx.pipelines.run import inputs

    images = [image.replace("kubetfx/", f"{REPO}/", 1)
              for image in (compiler.PIPELINE_IMAGE, compiler.INFRA_VALIDATOR_IMAGE)]
    require_engine_and_images(images)
    pytest.importorskip("docker", reason="kfp.local's DockerRunner needs the docker package")
    from kfp import components, local

    base = tmp_path_factory.mktemp("kfp_local")
    root = _writable_dir(base / "pipeline_root")
    data = root / "data"
    shutil.copytree(EMBEDDED_DATA, data)
    serving = _writable_dir(root / "serving" / "kubetfx-penguin")
    spec, platform = compiler.compile_spec(PipelineConfig(home=str(base / "home")), prepare=inputs.prepare)
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container")
        if container:  # the images under test, as compiled with --image-repo
            container["image"] = REPO + container["image"][len("kubetfx"):]
    path = compiler.write_yaml(spec, platform, base / "kubetfx-penguin.yaml")

    local.init(runner=local.DockerRunner(), pipeline_root=str(root), raise_on_error=True)
    pipeline = components.load_component_from_file(str(path))
    try:
        pipeline(data_root=str(data), serving_dir=str(serving))  # raises naming the first task that failed
    finally:
        _remove_containers_mounting(root)
    runs = [p for p in root.iterdir() if p.name.startswith("kubetfx-penguin-")]
    assert len(runs) == 1, runs
    return spec, root, serving, runs[0]


def _remove_containers_mounting(root) -> None:
    """The stopped containers kfp.local left, told apart by the pipeline root they mounted."""
    import docker

    client = docker.from_env()
    try:
        for container in client.containers.list(all=True, filters={"status": "exited"}):
            if any(mount.get("Source") == str(root) for mount in container.attrs.get("Mounts", [])):
                container.remove()
    finally:
        client.close()


def _task_dir(spec, run, task):
    """Where kfp.local puts a task's outputs: named after its component, minus the first
    five characters (kfp 2.9 kfp/local/executor_input_utils.py get_local_task_resource_name
    strips a `comp-` it assumes; TFX's component names have none)."""
    from kfp.local import executor_input_utils

    return run / executor_input_utils.get_local_task_resource_name(spec["root"]["dag"]["tasks"][task]["componentRef"]["name"])


def test_every_task_of_the_compiled_spec_succeeds_under_kfp_local(kfp_local_run):
    spec, _, _, run = kfp_local_run
    tasks = set(spec["root"]["dag"]["tasks"])
    assert STAGES | {"data", "data-fingerprint"} == tasks
    # Each TFX stage wrote its executor output (the importer runs in-process, no container).
    wrote = {task for task in STAGES if (_task_dir(spec, run, task) / "executor_output.json").exists()}
    assert wrote == STAGES, sorted(STAGES - wrote)
    assert (_task_dir(spec, run, "data-fingerprint") / "fingerprint").read_text().startswith("sha256:")


def test_the_pusher_publishes_a_valid_version_where_serving_dir_points(kfp_local_run):
    from kubetfx.components.serving import valid_version

    spec, root, serving, run = kfp_local_run
    versions = valid_version.versions(serving)
    assert len(versions) == 1, os.listdir(serving)
    assert valid_version.missing_part(str(serving / str(versions[0]))) is None
    assert not (root / "kubetfx").exists()  # nothing went to a volume path
    pushed = json.loads((_task_dir(spec, run, "Pusher") / "executor_output.json").read_text())
    model = pushed["artifacts"]["pushed_model"]["artifacts"][0]
    assert model["metadata"]["pushed"] == 1
    assert model["metadata"]["pushed_destination"] == str(serving / str(versions[0]))
    baseline = json.loads((_task_dir(spec, run, "ServedBaseline") / "executor_output.json").read_text())
    assert baseline["artifacts"]["baseline_model"]["artifacts"]  # it read serving_dir (nothing served yet)


def test_each_stage_view_is_listed_as_a_task_output(kfp_local_run):
    from kubetfx.pipelines.kubeflow import compiler

    spec, _, _, run = kfp_local_run
    for stage in set(compiler.VIEW_STAGES) & set(spec["root"]["dag"]["tasks"]):
        output = json.loads((_task_dir(spec, run, stage) / "executor_output.json").read_text())
        listed = output["artifacts"][compiler.VIEW_OUTPUT]["artifacts"][0]
        assert listed["uri"] == str(_task_dir(spec, run, stage) / compiler.VIEW_OUTPUT)
        assert open(listed["uri"]).read().startswith(f"# {stage}")
