"""InfraValidator against kubetfx's real model server: blesses a model that loads and
answers, refuses one that cannot load or cannot answer, and never leaves a server behind,
not even when the stage's process is stopped with SIGTERM mid-validation."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubetfx.components.infra_validator import canary, executor, server_process
from testing_models import example, save_scaler, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.serving]


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a live process from /proc, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[1]), int(fields[19])


def model_servers(parent_pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of the live model-server processes started by parent_pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        stat = _proc_stat(int(entry))
        if stat and stat[0] != "Z" and stat[1] == parent_pid and server_process.SERVER_MODULE.encode() in cmdline:
            found.append((int(entry), stat[2]))
    return found


def _alive(pid: int, started: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == started


def _artifacts(tmp_path, model_uri: Path, examples_uri: Path):
    from tfx.types import standard_artifacts

    model, examples, blessing = standard_artifacts.Model(), standard_artifacts.Examples(), standard_artifacts.InfraBlessing()
    model.uri, examples.uri, blessing.uri = str(model_uri), str(examples_uri), str(tmp_path / "blessing")
    examples.split_names = '["eval"]'
    return model, examples, blessing


EXEC_PROPERTIES = {
    "validation_spec": json.dumps({"max_loading_time_seconds": 120, "num_tries": 1}),
    "request_spec": json.dumps({"tensorflow_serving": {}, "num_examples": 3}),
}


def _run(tmp_path, model_uri: Path, examples_uri: Path):
    model, examples, blessing = _artifacts(tmp_path, model_uri, examples_uri)
    executor.Executor().Do({"model": [model], "examples": [examples]}, {"blessing": [blessing]}, EXEC_PROPERTIES)
    return blessing


def test_a_model_that_loads_and_answers_is_blessed(tmp_path, examples_dir):
    save_scaler(tmp_path / "model" / "Format-Serving", 2.0)
    blessing = _run(tmp_path, tmp_path / "model", examples_dir)
    assert (Path(blessing.uri) / "INFRA_BLESSED").exists()
    assert blessing.get_int_custom_property("blessed") == 1
    assert model_servers(os.getpid()) == []


def test_a_model_that_cannot_load_is_not_blessed(tmp_path, examples_dir):
    pb = save_scaler(tmp_path / "model" / "Format-Serving", 2.0) / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])  # truncated, as after a failed copy
    blessing = _run(tmp_path, tmp_path / "model", examples_dir)
    assert (Path(blessing.uri) / "INFRA_NOT_BLESSED").exists()
    assert blessing.get_int_custom_property("blessed") == 0
    assert "could not load the model: version 1 failed to load" in blessing.get_string_custom_property("reason")
    assert model_servers(os.getpid()) == []


def test_a_model_that_fails_on_real_examples_is_not_blessed(tmp_path, examples_dir):
    save_scaler(tmp_path / "model" / "Format-Serving", 2.0, broken_on_examples=True)
    blessing = _run(tmp_path, tmp_path / "model", examples_dir)
    assert blessing.get_int_custom_property("blessed") == 0
    reason = blessing.get_string_custom_property("reason")
    assert "HTTP 400" in reason and "missing_feature" in reason  # the server said why
    assert model_servers(os.getpid()) == []


def test_a_server_that_cannot_start_is_a_refusal_not_a_crash(tmp_path, examples_dir, monkeypatch):
    save_scaler(tmp_path / "model" / "Format-Serving", 2.0)
    monkeypatch.setenv(server_process.SERVING_PYTHON_ENV, "/bin/false")
    blessing = _run(tmp_path, tmp_path / "model", examples_dir)
    assert blessing.get_int_custom_property("blessed") == 0
    assert "exited with code 1 before answering" in blessing.get_string_custom_property("reason")


STAGE_PROCESS = textwrap.dedent("""
    import json, sys
    from tfx.types import standard_artifacts
    from kubetfx.components.infra_validator import executor
    model, examples, blessing = standard_artifacts.Model(), standard_artifacts.Examples(), standard_artifacts.InfraBlessing()
    model.uri, examples.uri, blessing.uri = sys.argv[1:4]
    examples.split_names = '["eval"]'
    executor.Executor().Do({"model": [model], "examples": [examples]}, {"blessing": [blessing]},
                           json.loads(sys.argv[4]))
""")


@pytest.mark.parametrize("sig, exit_code", [
    # SIGTERM raises TFX's GracefulShutdown in the stage (its handler), whose unwinding
    # stops the server: the stage fails with that exception (exit code 1).
    (signal.SIGTERM, 1),
    # SIGKILL runs no `finally`; the server (in a session of its own) sees its parent gone.
    (signal.SIGKILL, -signal.SIGKILL),
])
def test_a_stopped_stage_process_leaves_no_model_server(tmp_path, examples_dir, sig, exit_code):
    save_scaler(tmp_path / "model" / "Format-Serving", 2.0)
    stage = subprocess.Popen(
        [sys.executable, "-c", STAGE_PROCESS, str(tmp_path / "model"), str(examples_dir),
         str(tmp_path / "blessing"), json.dumps(EXEC_PROPERTIES)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # The server is found as soon as it is spawned, seconds before it has imported
        # TensorFlow and loaded the model, so the stage is still validating.
        servers = wait_for(lambda: model_servers(stage.pid) or stage.poll() is not None, what="the model server")
        assert stage.poll() is None, "the stage ended before its model server was seen"
        stage.send_signal(sig)
        _, stderr = stage.communicate(timeout=60)
        assert stage.returncode == exit_code  # stopped mid-validation, not finished
        if sig == signal.SIGTERM:
            assert b"GracefulShutdown" in stderr
        wait_for(lambda: not any(_alive(pid, started) for pid, started in servers), timeout=60,
                 what=f"model server {servers} to stop after its stage was stopped")
        assert not (tmp_path / "blessing" / "INFRA_BLESSED").exists()
    finally:
        if stage.poll() is None:
            stage.kill()
            stage.wait()


def test_make_warmup_puts_the_canary_requests_beside_a_copy_of_the_model(tmp_path, examples_dir):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2
    from tfx.utils import path_utils

    save_scaler(tmp_path / "model" / "Format-Serving", 2.0)
    model, examples, blessing = _artifacts(tmp_path, tmp_path / "model", examples_dir)
    properties = {**EXEC_PROPERTIES, "request_spec": json.dumps(
        {"tensorflow_serving": {"signature_names": ["serving_default"]}, "num_examples": 3, "make_warmup": True})}
    executor.Executor().Do({"model": [model], "examples": [examples]}, {"blessing": [blessing]}, properties)
    assert blessing.get_int_custom_property("blessed") == 1 and blessing.get_int_custom_property("has_model") == 1
    copy = path_utils.stamped_model_path(blessing.uri)
    assert (Path(copy) / "saved_model.pb").exists()
    logs = [prediction_log_pb2.PredictionLog.FromString(r)
            for r in tf.data.TFRecordDataset(path_utils.warmup_file_path(copy)).as_numpy_iterator()]
    sent = [executor.serialized_examples(log.predict_log.request) for log in logs]
    # One request per example, as TFX's request_builder builds them (in its reading order).
    assert all(len(one) == 1 for one in sent) and len({one[0] for one in sent}) == 3
    assert {one[0] for one in sent} <= {example(v) for v in (1.0, 2.0, 3.0, 4.0)}


def test_canary_body_carries_every_example_as_b64():
    records = [example(v) for v in (1.0, 2.0, 3.0, 4.0)]
    body = json.loads(canary.predict_body(records))
    assert [base64.b64decode(i["b64"]) for i in body["instances"]] == records
