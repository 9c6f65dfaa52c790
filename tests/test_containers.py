"""The compiled KFP v2 spec on the local KFP backend, for real: every stage in its container,
artifacts only through the S3 object store on loopback, KFP's cache across runs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from container_engine import remove_serving_volume, require_engine_and_images

from kubetfx.components.container import images
from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler
from kubetfx.pipelines.config import EMBEDDED_DATA

pytestmark = [pytest.mark.container, pytest.mark.slow]
# Images under test: kubetfx/* (make image), or another repo's build of them.
REPO = os.environ.get("KUBETFX_TEST_IMAGE_REPO", "kubetfx")
IMAGES = [image.replace("kubetfx/", f"{REPO}/", 1)
          for image in (kubeflow_compiler.PIPELINE_IMAGE, kubeflow_compiler.INFRA_VALIDATOR_IMAGE)]
# On your own data (--data), the schema is inferred: SchemaGen, downstream of the data too.
CONTAINER_TASKS = ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                   "Trainer", "ServedBaseline", "Evaluator", "InfraValidator", "Pusher")


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    require_engine_and_images(IMAGES)


def test_image_runs_as_non_root_without_network_and_imports_the_stack():
    out = subprocess.run(
        ["docker", "run", "--rm", images.PULL_NEVER, "--network", "none", "--entrypoint", "sh", IMAGES[0], "-c",
         "id -u && python -c 'import tfx.v1, tensorflow_transform, tensorflow_model_analysis, kfp, "
         "kubetfx.components.trainer.model, kubetfx.components.container.entrypoint; print(\"imports ok\")' "
         "&& (command -v gcc || echo no-gcc) && (python -m pip --version 2>/dev/null || echo no-pip)"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "1000" and "ok" in lines and "no-gcc" in lines and "no-pip" in lines


def test_any_uid_has_a_writable_home():
    # The local backend runs stages as the calling user, and clusters may assign any uid
    # (OpenShift's restricted SCC; KFP's PIPELINE_RUN_AS_USER): Keras, Matplotlib and Beam
    # write under $HOME, which must not be writable by uid 1000 alone.
    out = subprocess.run(
        ["docker", "run", "--rm", images.PULL_NEVER, "--network", "none", "--user", "4242:4242",
         "--entrypoint", "sh", IMAGES[0], "-c",
         "touch \"$HOME/probe\" && python -c 'import os, tf_keras; print(os.path.isdir(os.path.expanduser(\"~/.keras\")))'"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "True"


def test_the_infra_validator_image_is_the_pipeline_image_under_2_55_gb():
    # Its model server runs on the pipeline environment's TensorFlow: one image, two names.
    ids = [subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}", image],
                          capture_output=True, text=True, check=True).stdout.split() for image in IMAGES]
    assert ids[0] == ids[1]
    # 2.46 GB before the Pusher's ONNX copy (tf2onnx and onnx add ~70 MB; onnxruntime, only
    # the tests' check of that copy, is left out of the image).
    assert int(ids[0][1]) < 2.55e9


def test_image_is_labelled():
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", IMAGES[0]],
                         capture_output=True, text=True, check=True)
    assert '"org.opencontainers.image.version":"0.1.0"' in out.stdout


def _states(stdout: str) -> dict:
    return dict(re.findall(r"^  (\S+)\s+(complete|cached|imported)\s", stdout, flags=re.M))


def _store_keys(home) -> list:
    # What the store held (the backend mirrors every object it uploads under <home>/object-store).
    bucket = home / "object-store" / "mlpipeline"
    return sorted(p.relative_to(bucket).as_posix() for p in bucket.rglob("*") if p.is_file())


def _run(run_kubetfx, home, data, version):
    result = run_kubetfx("run", "--engine", "containers", "--kfp-version", version, "--image-repo", REPO,
                         "--home", home, "--data", data, "--label", "species", "--name", "kubetfx-penguin",
                         timeout=2400)
    assert result.returncode == 0, result.stdout + result.stderr
    run_id = re.search(r"^Run (\S+) of", result.stdout, flags=re.M).group(1)
    return result, run_id


@pytest.fixture
def penguins(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(EMBEDDED_DATA, data)
    yield data
    remove_serving_volume(tmp_path / "home")


def test_kfp_2_5_trains_through_the_object_store_and_reruns_from_cache_until_the_data_changes(
        tmp_path, penguins, run_kubetfx):
    home = tmp_path / "home"
    first, run_id = _run(run_kubetfx, home, penguins, "2.5")
    assert _states(first.stdout) == {"data": "imported", "data-fingerprint": "complete",
                                     **{t: "complete" for t in CONTAINER_TASKS}}
    assert re.search(r"model pushed to /kubetfx/serving/kubetfx-penguin/\d+ \(Docker volume kubetfx-serving-\w+\)",
                     first.stdout)

    keys = _store_keys(home)
    for task in CONTAINER_TASKS:  # every output, and the 2.5 executor logs, are in the store
        produced = [k for k in keys if k.startswith(f"v2/artifacts/kubetfx-penguin/{run_id}/{task}/")]
        assert any(k.endswith("/executor-logs") for k in produced), task
        assert len(produced) > 1, task
    # The Markdown views the KFP UI shows, uploaded beside the stages' outputs.
    views = {k.split("/")[4]: home / "object-store" / "mlpipeline" / k for k in keys if k.endswith("/kubetfx_view")}
    schema_stage = next(t for t in CONTAINER_TASKS if t.endswith("SchemaGen"))
    assert set(views) == {"StatisticsGen", schema_stage, "ExampleValidator", "Trainer", "Evaluator", "InfraValidator"}
    assert "## Schema" in views[schema_stage].read_text()
    assert "| bill_length_mm | FLOAT |" in views["StatisticsGen"].read_text()
    assert "**No anomalies**" in views["ExampleValidator"].read_text()
    assert "ModelBlessing: blessed" in views["Evaluator"].read_text()
    assert "InfraBlessing: blessed" in views["InfraValidator"].read_text()
    report = run_kubetfx("report", "--home", home)  # no TFX ML Metadata run: says where the views are
    assert report.returncode == 2 and "kubetfx_view Markdown output" in report.stderr, report.stderr
    logs = home / "logs" / "kubetfx-penguin" / run_id
    for task in CONTAINER_TASKS:  # what each container saw mounted: no host path, only the serving claim
        import json
        mounts = json.loads((logs / f"{task}.mounts.json").read_text())
        assert all(m["Type"] == "volume" and m["Destination"] == "/kubetfx/serving" for m in mounts), (task, mounts)
        assert bool(mounts) == (task in ("Pusher", "ServedBaseline")), task
    assert not list(home.glob("pipelines/*")) and not (home / "serving").exists()  # nothing on the host side

    second, _ = _run(run_kubetfx, home, penguins, "2.5")
    # Nothing new: every stage is cached but the baseline lookup, which reads the serving
    # volume KFP's cache key cannot see (never cached), and the two that take its output; the
    # Pusher then finds the same model served and publishes no new version.
    rerun = ("ServedBaseline", "Evaluator", "Pusher")
    assert _states(second.stdout) == {"data": "imported", "data-fingerprint": "complete",
                                      **{t: "complete" if t in rerun else "cached" for t in CONTAINER_TASKS}}
    # The version holds the schema and training statistics the Pusher task received as
    # input artifacts (for the monitor pod); they do not make the same model look new.
    version = re.search(r"model pushed to (/kubetfx/serving/kubetfx-penguin/\d+)", first.stdout).group(1)
    assert f"model pushed to {version} " in second.stdout
    from kubetfx.pipelines.kubeflow.local_backend import backend, docker
    listing = subprocess.run(  # as the tasks run: the calling user owns the volume (mode 0700)
        ["docker", "run", "--rm", images.PULL_NEVER, "--network", "none", "--user", docker.calling_user(),
         "--entrypoint", "find",
         "-v", f"{backend.volume_name('kubetfx-serving', home)}:/kubetfx/serving:ro", IMAGES[0],
         "/kubetfx/serving/kubetfx-penguin", "-path", "*assets.extra/kubetfx/*", "-type", "f"],
        capture_output=True, text=True, timeout=300)
    # The ONNX copy beside them (components/pusher/onnx_export.py) is there when the image
    # holds tf2onnx (images built from the lock since it was added), and not a summary file.
    assert sorted(p[len(version) + 1:] for p in listing.stdout.split()
                  if not p.endswith("/assets.extra/kubetfx/model.onnx")) == [
        "assets.extra/kubetfx/schema.pbtxt", "assets.extra/kubetfx/statistics/Split-train/FeatureStats.pb",
        "assets.extra/kubetfx/training.json"], listing.stdout + listing.stderr
    # New data re-running ExampleGen and all after it: tests/test_recurring_containers.py (a
    # schedule's ticks), one full pipeline run fewer here.


def test_kfp_2_4_runs_without_executor_logs(tmp_path, penguins, run_kubetfx):
    home = tmp_path / "home"
    result, run_id = _run(run_kubetfx, home, penguins, "2.4")
    assert "model pushed to /kubetfx/serving/kubetfx-penguin/" in result.stdout
    keys = _store_keys(home)
    assert any(k.startswith(f"v2/artifacts/kubetfx-penguin/{run_id}/Trainer/") for k in keys)
    assert not [k for k in keys if k.endswith("executor-logs")]
