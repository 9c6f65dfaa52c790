"""kubetfx's model server with real SavedModels on loopback: TF Serving's REST API, the
version policy of TF Serving (highest version, new and rolled-back versions without a
restart, failed loads reported and never served), the per-request hook, and clean stops."""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from kubetfx.components.serving import model_server
from testing_models import example, save_scaler, wait_for

pytestmark = [pytest.mark.serving]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """SavedModels scaling x by 1, 2 and 3 (the answer tells which one computed it)."""
    root = tmp_path_factory.mktemp("saved")
    return {factor: save_scaler(root / str(factor), float(factor)) for factor in (1, 2, 3)}


def call(url: str, payload=None) -> tuple[int, dict, dict]:
    """(HTTP status, headers, JSON body) of a GET, or of a POST when payload is given."""
    body = None if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def b64(value: float) -> dict:
    return {"b64": base64.b64encode(example(value)).decode()}


@pytest.fixture
def serve(tmp_path):
    """serve(**kwargs) -> (server, base url) for model "m" of tmp_path/base; stopped after."""
    servers = []

    def start(**kwargs):
        server = model_server.ModelServer(str(tmp_path / "base"), "m", poll_seconds=0.1, **kwargs)
        servers.append(server)
        return server, f"http://127.0.0.1:{server.start(0)}/v1/models/m"
    yield start
    for server in servers:
        server.shutdown()


def add_version(base, number: int, model) -> None:
    """Publishes a version as our Pusher does: a staging copy renamed into place."""
    base.mkdir(exist_ok=True)
    staging = base / f".staging-{number}-1"
    shutil.copytree(model, staging)
    os.rename(staging, base / str(number))


def scaled_by(url: str) -> float:
    status, _, answer = call(f"{url}:predict", {"instances": [b64(1.0)]})
    assert status == 200, answer
    return answer["predictions"][0]["scaled"][0]


def test_the_highest_version_answers_and_every_answer_names_it(tmp_path, saved, serve):
    base = tmp_path / "base"
    add_version(base, 1, saved[1])
    add_version(base, 2, saved[2])
    shutil.copytree(saved[3], base / ".staging-3-77")  # a copy in progress: never a version
    shutil.copytree(saved[3], base / "latest")         # not an integer: never a version
    server, url = serve()
    assert server.wait_until_available(120) == 2
    status, headers, answer = call(f"{url}:predict", {"instances": [b64(1.5), b64(4.0)]})
    assert status == 200, answer
    assert headers["X-Model-Version"] == "2" and answer["model_version"] == "2"
    assert answer["predictions"] == [{"scaled": [3.0], "n_plus_one": [1]}, {"scaled": [8.0], "n_plus_one": [1]}]
    assert call(url)[2] == {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    status, _, answer = call(f"{url}/versions/2:predict", {"instances": [b64(1.0)]})
    assert status == 200 and answer["model_version"] == "2"
    status, _, answer = call(f"{url}/versions/1:predict", {"instances": [b64(1.0)]})
    assert status == 404 and answer["error"] == "Servable not found for request: Specific(m, 1)"


def test_a_new_version_and_a_rollback_are_served_without_restart(tmp_path, saved, serve):
    base = tmp_path / "base"
    add_version(base, 1, saved[1])
    server, url = serve()
    server.wait_until_available(120)
    assert scaled_by(url) == 1.0
    add_version(base, 2, saved[2])
    wait_for(lambda: scaled_by(url) == 2.0, what="version 2 to answer")
    shutil.rmtree(base / "2")  # roll back: the newest version is withdrawn
    wait_for(lambda: scaled_by(url) == 1.0, what="version 1 to answer again")
    states = {s["version"]: s["state"] for s in call(url)[2]["model_version_status"]}
    assert states == {"2": "END", "1": "AVAILABLE"}


def test_a_version_that_fails_to_load_is_reported_and_never_replaces_the_served_one(tmp_path, saved, serve):
    base = tmp_path / "base"
    add_version(base, 1, saved[1])
    server, url = serve()
    server.wait_until_available(120)
    broken = tmp_path / "broken"
    shutil.copytree(saved[2], broken)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    add_version(base, 2, broken)

    def version_2():
        return [s for s in call(url)[2]["model_version_status"] if s["version"] == "2" and s["state"] == "END"]
    (failed,) = wait_for(version_2, what="version 2 to fail")
    assert failed["status"]["error_code"] == "UNKNOWN"
    assert "version 2 failed to load" in failed["status"]["error_message"]
    assert scaled_by(url) == 1.0  # still served by version 1
    add_version(base, 3, saved[3])  # the next good version is served
    wait_for(lambda: scaled_by(url) == 3.0, what="version 3 to answer")


def test_a_version_still_being_copied_waits_until_complete(tmp_path, saved, serve):
    base = tmp_path / "base"
    add_version(base, 1, saved[1])
    server, url = serve()
    server.wait_until_available(120)
    (base / "2").mkdir()  # copied in place (not renamed): variables first, the graph last
    shutil.copytree(saved[2] / "variables", base / "2" / "variables")
    time.sleep(0.5)  # several polls see it incomplete
    assert [s["version"] for s in call(url)[2]["model_version_status"]] == ["1"]
    shutil.copy(saved[2] / "saved_model.pb", base / "2" / "saved_model.pb")
    wait_for(lambda: scaled_by(url) == 2.0, what="version 2 to answer once complete")


def test_feature_dicts_are_encoded_with_the_types_the_model_parses(tmp_path, saved, serve):
    add_version(tmp_path / "base", 1, saved[2])
    server, url = serve()
    server.wait_until_available(120)
    # "x" is a JSON integer but the model parses a float: sent as an int64 feature, the
    # model would refuse it.
    status, _, answer = call(f"{url}:predict", {"instances": [{"x": 3, "n": 4}, {"x": 0.5}]})
    assert status == 200, answer
    assert answer["predictions"] == [{"scaled": [6.0], "n_plus_one": [5]}, {"scaled": [1.0], "n_plus_one": [1]}]


def test_tensor_signatures_in_row_and_columnar_format(tmp_path, saved, serve):
    add_version(tmp_path / "base", 1, saved[1])
    server, url = serve()
    server.wait_until_available(120)
    rows = {"signature_name": "add", "instances": [{"a": 1, "b": 2}, {"a": 0.5, "b": 0.25}]}
    assert call(f"{url}:predict", rows)[2] == {"predictions": [3.0, 0.75], "model_version": "1"}
    columns = {"signature_name": "add", "inputs": {"a": [1, 2], "b": [10, 20]}}
    assert call(f"{url}:predict", columns)[2] == {"outputs": [11.0, 22.0], "model_version": "1"}


def test_errors_answer_as_tf_serving_does(tmp_path, saved, serve):
    add_version(tmp_path / "base", 1, saved[1])
    server, url = serve()
    server.wait_until_available(120)
    root = url.rsplit("/", 1)[0]
    assert call(f"{root}/other:predict", {"instances": [b64(1.0)]})[:3:2] == (
        404, {"error": "Servable not found for request: Latest(other)"})
    status, _, answer = call(f"{url}:predict", {"signature_name": "nope", "instances": [b64(1.0)]})
    assert status == 400 and 'Serving signature name: "nope" not found' in answer["error"]
    assert call(f"{url}:predict", b"{not json")[0] == 400
    assert call(f"{url}:predict", {"instances": []})[0] == 400
    assert call(f"{url}:predict", {"instances": [{"b64": "%%%"}]})[0] == 400
    assert call(f"{url}:classify", {"examples": [{"x": 1.0}]})[0] == 501
    status, _, meta = call(f"{url}/metadata")
    assert status == 200 and meta["model_spec"] == {"name": "m", "signature_name": "", "version": "1"}
    inputs = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]
    assert inputs["examples"]["dtype"] == "DT_STRING"


def test_the_hook_sees_each_answered_request_before_its_answer(tmp_path, saved, serve):
    add_version(tmp_path / "base", 7, saved[2])
    records = []
    server, url = serve(on_request=records.append)
    server.wait_until_available(120)
    before = time.time()
    status, _, _ = call(f"{url}:predict", {"instances": [b64(1.0), {"x": 2.0}]})
    assert status == 200
    (record,) = records  # already there when the answer arrived
    assert record.model_name == "m" and record.model_version == 7 and record.signature_name == "serving_default"
    assert before <= record.timestamp <= time.time()
    assert record.instances[0] == example(1.0)  # the serialized tf.Examples the model parsed
    from tensorflow.core.example import example_pb2
    parsed = example_pb2.Example.FromString(record.instances[1])
    assert list(parsed.features.feature["x"].float_list.value) == [2.0]
    assert record.outputs["scaled"].tolist() == [[2.0], [4.0]]
    assert call(f"{url}:predict", {"instances": [{"b64": "%%%"}]})[0] == 400
    assert len(records) == 1  # refused requests are not logged as inferences


def test_a_model_call_that_fails_is_logged_with_its_status_and_no_prediction(tmp_path, serve):
    """What a staged rollout's error budget counts: the request passed its checks, the
    version failed it (here a model that parses a feature real examples lack)."""
    add_version(tmp_path / "base", 4, save_scaler(tmp_path / "broken", 2.0, broken_on_examples=True))
    records = []
    server, url = serve(on_request=records.append)
    server.wait_until_available(120)
    status, _, answer = call(f"{url}:predict", {"instances": [b64(1.0)]})
    assert status >= 400 and "missing_feature" in answer["error"]
    (record,) = records
    assert record.model_version == 4 and record.outputs == {} and record.status_code == status
    assert record.latency_ms > 0


def test_a_failing_hook_does_not_fail_the_request_nor_flood_the_log(tmp_path, saved, serve, caplog):
    """A hook that fails on every request (before: a traceback per request, which under load
    fills the disk the hook could not write to): said at the 1st, 2nd, 4th, 8th, ... failure."""
    add_version(tmp_path / "base", 1, saved[1])

    def broken_hook(record):
        raise OSError("disk full")
    server, url = serve(on_request=broken_hook)
    server.wait_until_available(120)
    with caplog.at_level("ERROR", logger="kubetfx.model_server"):
        assert [scaled_by(url) for _ in range(20)] == [1.0] * 20
    said = [r.getMessage() for r in caplog.records if "on_request hook failed" in r.getMessage()]
    assert len(said) == 5 and "(16 failures so far)" in said[-1], said  # 1, 2, 4, 8, 16


def _server_process(tmp_path, *args):
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "kubetfx.components.serving.model_server", "--model_base_path",
         str(tmp_path / "base"), "--model_name", "m", "--port", "0", "--port_file", str(port_file), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, port_file


@pytest.mark.slow
def test_the_command_line_server_answers_then_stops_cleanly_on_sigterm(tmp_path, saved):
    add_version(tmp_path / "base", 1, saved[3])
    process, port_file = _server_process(tmp_path)
    try:
        wait_for(lambda: port_file.exists() or process.poll() is not None, what="the port file")
        url = f"http://127.0.0.1:{port_file.read_text()}/v1/models/m"
        wait_for(lambda: call(url)[2]["model_version_status"][0]["state"] == "AVAILABLE", what="version 1")
        assert scaled_by(url) == 3.0
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "Model server stopped" in output


def test_the_command_line_server_gives_up_when_no_version_arrives(tmp_path):
    (tmp_path / "base").mkdir()
    process, _ = _server_process(tmp_path, "--startup_timeout_seconds", "0.5")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "model m not available within" in output and "no version under" in output
