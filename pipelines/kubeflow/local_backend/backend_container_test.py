"""The local backend for real on a small hand-made spec: Docker containers, a real S3 server
on loopback, the cache across runs, recurring runs, retries, the time limit, the PVC volume.

Images: kubetfx/pipeline:0.1.0 (`make image`), or $KUBETFX_TEST_IMAGE_REPO/pipeline:0.1.0."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from container_engine import require_engine_and_images

from kubetfx.pipelines.kubeflow import data_import
from kubetfx.pipelines.kubeflow.local_backend import backend, docker, recurring, store
from kubetfx.pipelines.kubeflow.local_backend.options import Options
from kubetfx.pipelines.kubeflow.local_backend.rules_test import small_spec

pytestmark = pytest.mark.container
IMAGE = os.environ.get("KUBETFX_TEST_IMAGE_REPO", "kubetfx") + "/pipeline:0.1.0"

# `make`: counts the staged CSV rows, writes them to its output, prints for executor-logs.
MAKE = r"""
import json, os, sys
ei = json.loads(sys.argv[1])
local = lambda uri: "/" + uri.replace("minio://", "minio/", 1)
data = local(ei["inputs"]["artifacts"]["kubetfx_data"]["artifacts"][0]["uri"])
rows = sum(len(open(os.path.join(data, f)).read().splitlines()) - 1 for f in sorted(os.listdir(data)))
out = ei["outputs"]["artifacts"]["examples"]["artifacts"][0]
os.makedirs(local(out["uri"]))
open(os.path.join(local(out["uri"]), "rows.txt"), "w").write(str(rows))
os.makedirs(os.path.dirname(ei["outputs"]["outputFile"]), exist_ok=True)
json.dump({"artifacts": {"examples": {"artifacts": [{"metadata": {"rows": rows}}]}}}, open(ei["outputs"]["outputFile"], "w"))
print("make counted", rows, "rows as uid", os.getuid())
"""
USE = r"""
import json, os, sys
ei = json.loads(sys.argv[1])
local = lambda uri: "/" + uri.replace("minio://", "minio/", 1)
rows = open(os.path.join(local(ei["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"]), "rows.txt")).read()
os.makedirs("/kubetfx/serving/tiny", exist_ok=True)
open("/kubetfx/serving/tiny/rows", "w").write(rows)
out = local(ei["outputs"]["artifacts"]["out"]["artifacts"][0]["uri"])
os.makedirs(out)
open(os.path.join(out, "seen.txt"), "w").write(rows)
"""


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    require_engine_and_images([IMAGE])


def tiny_spec():
    """data -> data-fingerprint -> make -> use, the fingerprint wired into `make` as the
    compiler wires it into ExampleGen (data_import.py)."""
    spec = small_spec()
    data_import.add_fingerprint_task(spec, IMAGE, {"maxRetryCount": 1, "backoffDuration": "1s"})
    make = spec["root"]["dag"]["tasks"]["make"]
    make["inputs"]["parameters"]["kubetfx_data_fingerprint"] = {"taskOutputParameter": {
        "producerTask": data_import.FINGERPRINT_TASK, "outputParameterKey": data_import.FINGERPRINT_OUTPUT}}
    make["dependentTasks"].append(data_import.FINGERPRINT_TASK)
    spec["components"]["comp-make"]["inputDefinitions"]["parameters"]["kubetfx_data_fingerprint"] = {"parameterType": "STRING"}
    executors = spec["deploymentSpec"]["executors"]
    executors["exec-make"]["container"].update(command=["python", "-c", MAKE], args=["{{$}}"], image=IMAGE)
    executors["exec-use"]["container"].update(command=["python", "-c", USE], args=["{{$}}"], image=IMAGE,
                                              resources={"cpuLimit": 1.0, "memoryLimit": 0.5})
    spec["root"]["dag"]["tasks"]["use"]["cachingOptions"] = {"enableCache": True}
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
        "exec-use": {"pvcMount": [{"constant": "kubetfx-serving", "mountPath": "/kubetfx/serving"}]}}}}}}
    return spec, platform


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    volume = backend.volume_name("kubetfx-serving", home)
    subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, timeout=60)


def _data(tmp_path, files=1) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for i in range(files):
        (data / f"part{i}.csv").write_text("a,b\n1,2\n3,4\n")
    return data


def _listing(home: Path) -> list:
    """Every object the store kept (the backend mirrors each upload under <home>/object-store)."""
    bucket = home / "object-store" / "mlpipeline"
    return sorted(p.relative_to(bucket).as_posix() for p in bucket.rglob("*") if p.is_file())


def first_data_id(summary) -> str:
    return summary.stages[0].result.rsplit("artifact ", 1)[1].rstrip(")")


def _run(spec, platform, home, data, **options):
    request = backend.RunRequest(pipeline="tiny", home=home, data=data)
    return backend.run_spec(copy.deepcopy(spec), platform, request, Options(**options))


def test_artifacts_travel_through_the_store_and_a_rerun_hits_the_cache_until_the_data_changes(tmp_path, home):
    spec, platform = tiny_spec()
    data = _data(tmp_path)
    first = _run(spec, platform, home, data, kfp_version="2.5")
    assert [(s.stage, s.state) for s in first.stages] == [("data", "imported"), ("data-fingerprint", "complete"),
                                                          ("make", "complete"), ("use", "complete")]

    keys = _listing(home)
    run = first.run_id
    assert "kubetfx/data/tiny/part0.csv" in keys
    assert any(k.startswith(f"v2/artifacts/tiny/{run}/make/") and k.endswith("/examples/rows.txt") for k in keys)
    assert any(k.startswith(f"v2/artifacts/tiny/{run}/use/") and k.endswith("/out/seen.txt") for k in keys)
    logs = [k for k in keys if k.endswith("/make/") or (f"{run}/make/" in k and k.endswith("executor-logs"))]
    assert logs, keys  # 2.5: the launcher's tee of stdout, uploaded as the executor-logs artifact
    mounts = json.loads((home / "logs" / "tiny" / run / "use.mounts.json").read_text())
    assert [m["Type"] for m in mounts] == ["volume"] and mounts[0]["Destination"] == "/kubetfx/serving"
    assert json.loads((home / "logs" / "tiny" / run / "make.mounts.json").read_text()) == []  # no bind mount
    assert "make counted 2 rows as uid 1000" in (home / "logs" / "tiny" / run / "make.log").read_text()
    assert oct((home / "object-store").stat().st_mode & 0o777) == "0o700"

    second = _run(spec, platform, home, data, kfp_version="2.5")
    assert [s.state for s in second.stages] == ["imported", "complete", "cached", "cached"]
    assert second.stages[0].result == f"minio://mlpipeline/kubetfx/data/tiny/ (artifact {first_data_id(first)})"

    (data / "new.csv").write_text("a,b\n5,6\n")
    third = _run(spec, platform, home, data, kfp_version="2.5")
    assert [s.state for s in third.stages] == ["imported", "complete", "complete", "complete"]
    # A changed `use` reads the cached `make`'s output: put back from the mirror for this run.
    spec["deploymentSpec"]["executors"]["exec-use"]["container"]["command"][-1] += "\n# changed"
    fourth = _run(spec, platform, home, data, kfp_version="2.5")
    assert [s.state for s in fourth.stages] == ["imported", "complete", "cached", "complete"]
    volume = backend.volume_name("kubetfx-serving", home)
    def read_volume(user):
        return subprocess.run(["docker", "run", "--rm", "--pull=never", "--network", "none", "--user", user,
                               "-v", f"{volume}:/s", "--entrypoint", "cat", IMAGE, "/s/tiny/rows"],
                              capture_output=True, text=True, timeout=120)
    assert read_volume(docker.calling_user()).stdout == "3"
    # The claim is local-path's 0777 directory and nothing sets an fsGroup: any uid reads it.
    assert read_volume("4242:4242").stdout == "3"


def test_kfp_2_4_has_no_executor_logs_and_does_not_retry(tmp_path, home):
    spec, platform = tiny_spec()
    spec["deploymentSpec"]["executors"]["exec-use"]["container"].update(command=["sh", "-c", "exit 3"], args=[])
    spec["root"]["dag"]["tasks"]["use"]["retryPolicy"] = spec["root"]["dag"]["tasks"]["make"]["retryPolicy"]
    with pytest.raises(backend.TaskFailedError, match="task use failed: exit code 3 after 1 attempt"):
        _run(spec, platform, home, _data(tmp_path), kfp_version="2.4")
    assert not [k for k in _listing(home) if "executor-logs" in k]

    # 2.5: the spec's two retries, backoff 30 s then 60 s scaled by an explicit 0.01
    with pytest.raises(backend.TaskFailedError, match="exit code 3 after 3 attempt"):
        _run(spec, platform, home, _data(tmp_path), kfp_version="2.5", backoff_scale=0.01)


def test_a_task_that_hangs_is_stopped_at_the_time_limit_and_its_container_removed(tmp_path, home):
    spec, platform = tiny_spec()
    spec["deploymentSpec"]["executors"]["exec-use"]["container"].update(command=["sleep", "100000"], args=[])
    with pytest.raises(backend.TaskTimedOutError, match="stopped after 5 s"):
        _run(spec, platform, home, _data(tmp_path), task_timeout=5)
    left = subprocess.run(["docker", "ps", "-a", "-q", "--filter", "label=kubetfx.task=use"],
                          capture_output=True, text=True, timeout=60).stdout.split()
    assert left == []
    assert not [k for k in _listing(home) if "/use/" in k]  # nothing uploaded for the stopped task


def test_a_missing_image_says_run_make_image(tmp_path, home):
    spec, platform = tiny_spec()
    spec["deploymentSpec"]["executors"]["exec-use"]["container"]["image"] = "kubetfx/absent:0.0.0"
    from kubetfx.components.container import images

    with pytest.raises(images.MissingImageError, match=r"image kubetfx/absent:0.0.0 is not in the local Docker engine: run `make image`"):
        _run(spec, platform, home, _data(tmp_path))


def test_no_docker_binary_is_said_in_one_line(tmp_path, home, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    spec, platform = tiny_spec()
    with pytest.raises(docker.DockerUnavailable, match="the docker command is not installed"):
        _run(spec, platform, home, _data(tmp_path))


def test_a_spec_the_apiserver_refuses_is_refused_before_anything_runs(tmp_path, home):
    from kubetfx.pipelines.kubeflow import backend_rules

    spec, platform = tiny_spec()
    spec["schemaVersion"] = "2.0.0"
    with pytest.raises(backend_rules.Rejected, match="KFP only supports schema version 2.1.0"):
        _run(spec, platform, home, _data(tmp_path))
    spec, platform = tiny_spec()
    spec["deploymentSpec"]["executors"]["exec-use"] = {"resolver": {"outputArtifactQueries": {}}}
    with pytest.raises(backend_rules.Rejected, match="non-container and non-importer executor not implemented"):
        _run(spec, platform, home, _data(tmp_path))


def test_a_cache_hit_whose_outputs_are_gone_hands_on_an_empty_prefix_and_the_entrypoint_says_so(tmp_path, home):
    spec, platform = tiny_spec()
    data = _data(tmp_path)
    first = _run(spec, platform, home, data)
    # Outputs deleted from the store (a lifecycle rule, a clean-up); the cache still names them.
    shutil.rmtree(home / "object-store" / "mlpipeline" / "v2" / "artifacts" / "tiny" / first.run_id / "make")
    # `use` is now a kubetfx stage: our entrypoint, which checks its inputs before anything else.
    spec["deploymentSpec"]["executors"]["exec-use"]["container"].update(
        command=["python", "-m", "kubetfx.components.container.entrypoint"],
        args=["--executor_class_path", "tfx.components.trainer.executor.GenericExecutor",
              "--json_serialized_invocation_args", "{{$}}"])
    with pytest.raises(backend.TaskFailedError, match="task use failed: exit code 12 after 1 attempt"):
        _run(spec, platform, home, data)
    run_logs = sorted((home / "logs" / "tiny").iterdir(), key=lambda p: p.stat().st_mtime)[-1]
    log = (run_logs / "use.log").read_text()
    assert "kubetfx: error: cached output of make is gone from the object store (input examples: nothing under " \
           "minio://mlpipeline/v2/artifacts/tiny/" in log and "re-run with caching off" in log
    assert "Traceback" not in log


def test_a_recurring_run_retrains_when_a_file_lands_and_caches_when_none_did(tmp_path, home):
    spec, platform = tiny_spec()
    uri = "minio://mlpipeline/kubetfx/data/tiny/"
    kept = store.Store(None, home / "object-store")  # what the store holds between runs
    kept.mirror(_data(tmp_path), uri)                # `kubetfx submit --schedule` uploaded this
    recurring.create(home, "tiny", "tiny-schedule", spec, platform, {"data_root": uri}, cron="0 0 3 * * *")
    recurring.create(home, "tiny", "tiny-schedule", spec, platform, {"data_root": uri}, cron="0 0 4 * * *")
    assert recurring.names(home, "tiny") == ["tiny-schedule"]  # submitted again: replaced, not added

    def tick():
        summary = recurring.tick(home, "tiny", "tiny-schedule", Options(image=IMAGE))
        return {s.stage: s.state for s in summary.stages}

    assert tick() == {"data": "imported", "data-fingerprint": "complete", "make": "complete", "use": "complete"}
    assert tick() == {"data": "imported", "data-fingerprint": "complete", "make": "cached", "use": "cached"}
    (tmp_path / "landed.csv").write_text("a,b\n7,8\n9,10\n")
    kept.mirror(tmp_path / "landed.csv", uri + "landed.csv")  # a new file lands between two ticks
    assert tick() == {"data": "imported", "data-fingerprint": "complete", "make": "complete", "use": "complete"}
    rows = subprocess.run(["docker", "run", "--rm", "--pull=never", "--network", "none", "--user",
                           docker.calling_user(), "-v", f"{backend.volume_name('kubetfx-serving', home)}:/s",
                           "--entrypoint", "cat", IMAGE, "/s/tiny/rows"], capture_output=True, text=True, timeout=120)
    assert rows.stdout == "4"  # 2 rows, then 2 more: the tick read the store as it is now
