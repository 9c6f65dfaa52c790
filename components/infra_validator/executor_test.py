"""InfraValidator against a real model server: blesses a model that loads and answers,
refuses one that cannot load or cannot answer, and never leaves a server behind."""
from __future__ import annotations

import base64
import gzip
import json
import os
import struct
from pathlib import Path

import pytest

from kubetfx.components.infra_validator import canary, executor, server_process

pytestmark = [pytest.mark.slow, pytest.mark.serving]


def _example(value: float) -> bytes:
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["x"].float_list.value.append(value)
    return example.SerializeToString()


def _write_examples(uri: Path, values) -> None:
    import tensorflow as tf

    split = uri / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for v in values:
            writer.write(_example(v))


def _save_model(model_dir: Path, broken_on_examples: bool = False) -> None:
    """A real SavedModel whose serving_default parses serialized tf.Examples."""
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            key = "missing_feature" if broken_on_examples else "x"
            parsed = tf.io.parse_example(serialized, {key: tf.io.FixedLenFeature([1], tf.float32)})
            return {"doubled": parsed[key] * 2.0}

    module = Doubler()
    tf.saved_model.save(module, str(model_dir / "Format-Serving"), signatures={"serving_default": module.serve})


def _run(tmp_path, model_uri: Path):
    from tfx.types import standard_artifacts

    model, examples, blessing = standard_artifacts.Model(), standard_artifacts.Examples(), standard_artifacts.InfraBlessing()
    model.uri, examples.uri, blessing.uri = str(model_uri), str(tmp_path / "examples"), str(tmp_path / "blessing")
    examples.split_names = '["eval"]'
    exec_properties = {
        "validation_spec": json.dumps({"max_loading_time_seconds": 60, "num_tries": 1}),
        "request_spec": json.dumps({"tensorflow_serving": {}, "num_examples": 3}),
    }
    executor.Executor().Do({"model": [model], "examples": [examples]}, {"blessing": [blessing]}, exec_properties)
    return blessing


def _no_server_left(tmp_path) -> bool:
    """No live process is left that this test process started (the server runs in its own
    session, still our child) or whose command line names this test's files. Read from
    /proc, which must be there: a check that cannot look (as with `ps` missing from an
    image) must fail, not pass. Other model servers on the machine do not count."""
    proc, me = Path("/proc"), os.getpid()
    assert (proc / str(me) / "stat").exists(), "cannot list processes: no /proc"
    parents, cmdlines = {}, {}
    for entry in proc.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmdlines[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:  # the process ended while we looked
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":  # an exited child not yet reaped is not a server
            parents[int(entry.name)] = int(ppid)

    def descends_from_me(pid):
        while pid in parents and pid > 1:
            pid = parents[pid]
            if pid == me:
                return True
        return False

    mine = str(tmp_path).encode()
    return not [pid for pid in parents if pid != me and (descends_from_me(pid) or mine in cmdlines.get(pid, b""))]


@pytest.fixture
def examples(tmp_path):
    _write_examples(tmp_path / "examples", [1.0, 2.0, 3.0, 4.0])


def test_a_model_that_loads_and_answers_is_blessed(tmp_path, examples):
    _save_model(tmp_path / "model")
    blessing = _run(tmp_path, tmp_path / "model")
    assert (Path(blessing.uri) / "INFRA_BLESSED").exists()
    assert blessing.get_int_custom_property("blessed") == 1
    assert _no_server_left(tmp_path)


def test_a_model_that_cannot_load_is_not_blessed(tmp_path, examples):
    _save_model(tmp_path / "model")
    pb = tmp_path / "model" / "Format-Serving" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])  # truncated, as after a failed copy
    blessing = _run(tmp_path, tmp_path / "model")
    assert (Path(blessing.uri) / "INFRA_NOT_BLESSED").exists()
    assert blessing.get_int_custom_property("blessed") == 0
    assert "exited" in blessing.get_string_custom_property("reason")
    assert _no_server_left(tmp_path)


def test_a_model_that_fails_on_real_examples_is_not_blessed(tmp_path, examples):
    _save_model(tmp_path / "model", broken_on_examples=True)
    blessing = _run(tmp_path, tmp_path / "model")
    assert blessing.get_int_custom_property("blessed") == 0
    assert "HTTP" in blessing.get_string_custom_property("reason")  # the server said why
    assert _no_server_left(tmp_path)


def test_no_server_environment_is_a_clear_refusal(tmp_path, examples, monkeypatch):
    monkeypatch.delenv("KUBETFX_SERVING_PYTHON", raising=False)
    monkeypatch.setattr(server_process, "IMAGE_SERVING_PYTHON", tmp_path / "none")
    monkeypatch.setattr(server_process, "REPO_SERVING_PYTHON", tmp_path / "none-either")
    with pytest.raises(server_process.ServerUnavailableError, match="make serving-env"):
        server_process.serving_python()


def test_canary_body_carries_every_example_as_b64(tmp_path):
    _write_examples(tmp_path / "ex", [1.0, 2.0])
    records = canary.read_examples(str(tmp_path / "ex"), "eval", limit=10)
    assert records == [_example(1.0), _example(2.0)]
    body = json.loads(canary.predict_body(records))
    assert [base64.b64decode(i["b64"]) for i in body["instances"]] == records
