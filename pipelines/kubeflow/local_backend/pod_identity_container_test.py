"""The local backend's task containers are who a KFP pod is, not who runs the tests: the
image's uid 1000 (or PIPELINE_RUN_AS_USER on 2.5), no fsGroup, the launcher's downloads
owned by that uid, the claim's volume root-owned 0777 as kind's local-path makes it, and
KFP_POD_NAME / KFP_POD_UID set (see docker.py for the KFP files each rule comes from).
These hold when the suite runs as root, where the old backend ran everything as root."""
from __future__ import annotations

import copy
import json
import subprocess
import uuid

import pytest
from container_engine import require_engine_and_images

from kubetfx.pipelines.kubeflow.local_backend import backend
from kubetfx.pipelines.kubeflow.local_backend.options import Options
from kubetfx.pipelines.kubeflow.local_backend.rules_test import small_spec

pytestmark = pytest.mark.container

# `make` reports who it runs as and what it may do to the staged input (the launcher's own
# download in a pod), then does what backend_container_test's `make` does.
WHO = r"""
import json, os, sys
ei = json.loads(sys.argv[1])
local = lambda uri: "/" + uri.replace("minio://", "minio/", 1)
data = local(ei["inputs"]["artifacts"]["kubetfx_data"]["artifacts"][0]["uri"])
open(os.path.join(data, ".written-by-the-task"), "w").close()   # fails unless the pod owns its inputs
os.remove(os.path.join(data, ".written-by-the-task"))
st = os.stat(data)
out = ei["outputs"]["artifacts"]["examples"]["artifacts"][0]
os.makedirs(local(out["uri"]))
open(os.path.join(local(out["uri"]), "rows.txt"), "w").write("2")
os.makedirs(os.path.dirname(ei["outputs"]["outputFile"]), exist_ok=True)
json.dump({"artifacts": {"examples": {"artifacts": [{"metadata": {"rows": 2}}]}}}, open(ei["outputs"]["outputFile"], "w"))
print("WHO", json.dumps({"uid": os.getuid(), "groups": os.getgroups(), "input_owner": st.st_uid,
                         "pod_name": os.environ.get("KFP_POD_NAME"), "pod_uid": os.environ.get("KFP_POD_UID")}))
"""


IMAGE = "kubetfx/pipeline:0.1.0"
USE = r"""
import json, os, sys
ei = json.loads(sys.argv[1])
os.makedirs("/kubetfx/serving/tiny", exist_ok=True)
open("/kubetfx/serving/tiny/rows", "w").write("2")
out = "/" + ei["outputs"]["artifacts"]["out"]["artifacts"][0]["uri"].replace("minio://", "minio/", 1)
os.makedirs(out)
open(os.path.join(out, "seen.txt"), "w").write("2")
"""


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    require_engine_and_images([IMAGE])


def _data(tmp_path):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "part0.csv").write_text("a,b\n1,2\n3,4\n")
    return data


def _who(home, run_id) -> dict:
    log = (home / "logs" / "tiny" / run_id / "make.log").read_text()
    return json.loads(log.split("WHO ", 1)[1].splitlines()[0])


def _spec():
    """rules_test's two tasks: `make` reads the data, `use` writes to the claim's volume."""
    spec = small_spec()
    executors = spec["deploymentSpec"]["executors"]
    executors["exec-make"]["container"].update(command=["python", "-c", WHO], args=["{{$}}"])
    executors["exec-use"]["container"].update(command=["python", "-c", USE], args=["{{$}}"])
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
        "exec-use": {"pvcMount": [{"constant": "kubetfx-serving", "mountPath": "/kubetfx/serving"}]}}}}}}
    return spec, platform


def _volume_listing(home) -> str:
    volume = backend.volume_name("kubetfx-serving", home)
    return subprocess.run(["docker", "run", "--rm", "--pull=never", "--network", "none", "--user", "0:0",
                           "-v", f"{volume}:/s", "--entrypoint", "stat", IMAGE, "-c", "%u %g %a %n", "/s",
                           "/s/tiny/rows"], capture_output=True, text=True, timeout=120).stdout.split("\n")


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    subprocess.run(["docker", "volume", "rm", "-f", backend.volume_name("kubetfx-serving", home)],
                   capture_output=True, timeout=60)


def test_tasks_run_as_the_images_uid_without_fs_group_whoever_runs_the_backend(tmp_path, home):
    spec, platform = _spec()
    summary = backend.run_spec(copy.deepcopy(spec), platform, backend.RunRequest("tiny", home, data=_data(tmp_path)),
                               Options(kfp_version="2.5"))
    assert [s.state for s in summary.stages][-1] == "complete"
    who = _who(home, summary.run_id)
    assert who["uid"] == 1000 and who["input_owner"] == 1000
    assert who["pod_name"].startswith(f"kubetfx-{summary.run_id[:8]}-make-")
    assert str(uuid.UUID(who["pod_uid"])) == who["pod_uid"]
    root, rows = _volume_listing(home)[:2]
    assert root.startswith("0 0 777 ")       # local-path's directory: nobody's, writable by all
    assert rows.startswith("1000 ")          # the Pusher-like task wrote it as uid 1000


def test_pipeline_run_as_user_is_the_pods_uid_on_2_5_and_unknown_to_2_4(tmp_path, home):
    spec, platform = _spec()
    request = backend.RunRequest("tiny", home, data=_data(tmp_path))
    summary = backend.run_spec(copy.deepcopy(spec), platform, request, Options(kfp_version="2.5", run_as_user=4321))
    who = _who(home, summary.run_id)
    assert who["uid"] == 4321 and who["input_owner"] == 4321
    with pytest.raises(ValueError, match="KFP 2.4.0 has no PIPELINE_RUN_AS_USER"):
        backend.run_spec(copy.deepcopy(spec), platform, request, Options(kfp_version="2.4", run_as_user=4321))
