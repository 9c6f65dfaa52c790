"""The inference log's bounds, on real files and real processes: schema features only, no
shard over its size whatever the request, the folder under its total, two writer
processes on one folder losing nothing to each other, a dead writer's shard recovered,
and the request id answered by the model server and the proxy and stored in the log."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kubetfx.components.serving.model_server import InferenceRecord, ModelServer, request_id
from testing_models import save_scaler, wait_for
from kubetfx.pipelines.serving import inference_log, logging_proxy

SCHEMA = 'feature { name: "island" type: BYTES }\nfeature { name: "body_mass_g" type: INT }\n'


def _example(**features) -> bytes:
    example = tf.train.Example()
    for name, value in features.items():
        if isinstance(value, bytes):
            example.features.feature[name].bytes_list.value.append(value)
        else:
            example.features.feature[name].int64_list.value.append(value)
    return example.SerializeToString()


def _request(instances, version=7, rid="r1") -> InferenceRecord:
    outputs = {"probabilities": np.full((len(instances), 3), 1 / 3, np.float32)}
    return InferenceRecord("m", version, 1700000000.5, "serving_default", list(instances), outputs, rid)


def _features(directory) -> list:
    return [tf.train.Example.FromString(r).features.feature for r in inference_log.read_examples(directory)]


def _schema_dir(base: Path, version: int, text: str = SCHEMA) -> Path:
    where = base / str(version) / "assets.extra" / "kubetfx"
    where.mkdir(parents=True)
    (where / "schema.pbtxt").write_text(text)
    return base


def _files(directory) -> list[Path]:
    return [p for p in Path(directory).iterdir() if p.is_file() and not p.name.startswith(".")]


def test_fields_outside_the_served_versions_schema_are_not_logged(tmp_path):
    serving = _schema_dir(tmp_path / "serving", 7)
    log = inference_log.InferenceLog(tmp_path / "log", features=inference_log.ServingSchemas(serving))
    log(_request([_example(island=b"Dream", body_mass_g=3000, password=b"hunter2")]))
    # a signature fed tensors: its instances are dicts (the proxy, tensor inputs)
    log(_request([{"island": "Biscoe", "password": "hunter2", "ssn": 123}]))
    log(_request([_example(island=b"Torgersen", password=b"hunter2")], version=8))  # no schema for 8
    log.close()
    first, second, third = _features(tmp_path / "log")
    assert set(first) == {"island", "body_mass_g", "prediction", "model_version", "timestamp_ms", "request_id", "status_code"}
    assert first["island"].bytes_list.value == [b"Dream"] and first["body_mass_g"].int64_list.value == [3000]
    assert set(second) == {"island", "prediction", "model_version", "timestamp_ms", "request_id", "status_code"}
    assert set(third) == {"prediction", "model_version", "timestamp_ms", "request_id", "status_code"}  # no schema: no features
    assert not any(b"hunter2" in shard.read_bytes() for shard in inference_log.closed_shards(tmp_path / "log"))


def test_no_shard_exceeds_its_bound_even_for_a_huge_request(tmp_path):
    one = len(inference_log.to_examples(_request([_example(island=b"Dream", body_mass_g=0)]), {"island", "body_mass_g"})[0])
    bound = 10 * (one + inference_log.FRAMING_BYTES)  # ten instances a shard
    log = inference_log.InferenceLog(tmp_path, features=lambda v: {"island", "body_mass_g"}, max_shard_bytes=bound,
                                     max_shards=1000)
    huge = [_example(island=b"Dream", body_mass_g=i) for i in range(995)]
    log(_request(huge, rid="huge"))
    log(_request([_example(island=b"x" * (2 * bound), body_mass_g=-1), _example(island=b"Biscoe", body_mass_g=-2)],
                 rid="oversized"))
    log.close()
    sizes = [p.stat().st_size for p in inference_log.closed_shards(tmp_path)]
    assert len(sizes) >= 100 and max(sizes) <= bound, (len(sizes), max(sizes), bound)
    logged = _features(tmp_path)
    assert [f["body_mass_g"].int64_list.value[0] for f in logged] == list(range(995)) + [-2]  # split, in order
    assert {f["request_id"].bytes_list.value[0] for f in logged[:995]} == {b"huge"}
    assert log.dropped == 1  # the instance larger than a shard, counted


def test_the_folder_stays_under_its_total_bound_oldest_closed_shards_deleted_first(tmp_path):
    log = inference_log.InferenceLog(tmp_path, features=lambda v: {"island", "body_mass_g"}, max_shard_bytes=2048,
                                     max_shards=1000, max_total_bytes=8192)
    peak = 0
    for i in range(300):
        log(_request([_example(island=b"Dream", body_mass_g=i)] * 3, rid=f"r{i}"))
        peak = max(peak, sum(p.stat().st_size for p in _files(tmp_path)))
    log.close()
    assert peak <= 8192 and sum(p.stat().st_size for p in _files(tmp_path)) <= 8192
    kept = [f["body_mass_g"].int64_list.value[0] for f in _features(tmp_path)]
    assert kept[-1] == 299 and kept == sorted(kept) and kept[0] > 200  # the newest, contiguous
    assert len(set(kept)) == kept[-1] - kept[0] + 1


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    import tensorflow as tf
    from kubetfx.components.serving.model_server import InferenceRecord
    from kubetfx.pipelines.serving import inference_log

    directory, who, count, shard_bytes, max_shards = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    ready, resume = (Path(sys.argv[6]), Path(sys.argv[7])) if len(sys.argv) > 7 else (None, None)
    log = inference_log.InferenceLog(directory, features=lambda v: {"writer", "i"}, max_shard_bytes=shard_bytes,
                                     max_shards=max_shards)
    for i in range(count):
        example = tf.train.Example()
        example.features.feature["writer"].bytes_list.value.append(who.encode())
        example.features.feature["i"].int64_list.value.append(i)
        log(InferenceRecord("m", 1, time.time(), "serving_default", [example.SerializeToString()],
                            {"p": np.array([0.5], np.float32)}, f"{who}-{i}"))
        if ready is not None and i == count // 2 - 1:  # half written, its shard open: let the other one run
            ready.touch()
            deadline = time.monotonic() + 120
            while not resume.exists():
                if time.monotonic() > deadline:
                    sys.exit("never resumed")
                time.sleep(0.05)
        if who == "killed" and i == count - 1:
            print("written", flush=True)
            time.sleep(600)  # killed here, its shard still open
    log.close()
""")


def _writer(directory, who, count, shard_bytes, max_shards, *pause) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(directory), who, str(count), str(shard_bytes),
                             str(max_shards), *map(str, pause)], stdout=subprocess.PIPE, text=True)


def _by_writer(directory) -> dict:
    seen: dict = {}
    for f in _features(directory):
        seen.setdefault(f["writer"].bytes_list.value[0].decode(), []).append(f["i"].int64_list.value[0])
    return seen


def test_two_writer_processes_on_one_folder_never_lose_each_others_records(tmp_path):
    """A writes half its records and keeps its shard open while B rotates through many
    shards with retention on (4 closed shards); then A finishes. A loses nothing, B keeps
    its newest records, no shard is left open."""
    ready, resume = tmp_path / "a-ready", tmp_path / "a-resume"
    log_dir = tmp_path / "log"
    a = _writer(log_dir, "a", 20, 1 << 20, 4, ready, resume)
    try:
        wait_for(ready.exists, 120, "writer a half done")
        b = _writer(log_dir, "b", 30, 190, 4)  # 190 bytes: one record a shard
        assert b.wait(120) == 0
        resume.touch()
        assert a.wait(120) == 0
    finally:
        for process in (a,):
            if process.poll() is None:
                process.kill()
    seen = _by_writer(log_dir)
    assert sorted(seen["a"]) == list(range(20))  # every record of the writer whose shard was open
    assert seen["b"] == [27, 28, 29]  # retention: the newest closed shards (a's among the 4)
    assert inference_log.open_shards(log_dir) == [] and len(inference_log.closed_shards(log_dir)) == 4


def test_a_shard_left_open_by_a_killed_writer_is_closed_by_the_next_and_read(tmp_path):
    killed = _writer(tmp_path, "killed", 5, 1 << 20, 16)
    try:
        assert killed.stdout.readline().strip() == "written"
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(60)
    assert len(inference_log.open_shards(tmp_path)) == 1 and inference_log.shards(tmp_path) == \
        inference_log.open_shards(tmp_path)  # `monitor --logs` finds a log whose one shard is open
    assert sorted(_by_writer(tmp_path)["killed"]) == list(range(5))  # readers read an open shard
    survivor = _writer(tmp_path, "next", 2, 1 << 20, 16)
    assert survivor.wait(120) == 0
    assert inference_log.open_shards(tmp_path) == [] and len(inference_log.closed_shards(tmp_path)) == 2
    seen = _by_writer(tmp_path)
    assert sorted(seen["killed"]) == list(range(5)) and sorted(seen["next"]) == [0, 1]


def test_request_ids_are_kept_when_sane_else_generated():
    assert request_id("abc-123_X.y:9") == "abc-123_X.y:9"
    for bad in (None, "", "a b", "x" * 129, "evil\r\nSet-Cookie: 1", "é"):
        generated = request_id(bad)
        assert generated != bad and len(generated) == 32 and int(generated, 16) >= 0


@pytest.fixture(scope="module")
def scaler_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    save_scaler(base / "7", factor=2.0)
    schemas = _schema_dir(tmp_path_factory.mktemp("schemas"), 7,
                          'feature { name: "x" type: FLOAT }\nfeature { name: "n" type: INT }\n')
    return base, schemas


def _post(url, payload, headers=None):
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json",
                                                                          **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status, answer.headers.get("X-Request-Id"), json.loads(answer.read())


def test_the_request_id_is_answered_in_a_header_and_stored_with_each_logged_instance(scaler_dir, tmp_path):
    """Through the model server with its log hook (`kubetfx serve`), and through the
    logging proxy in front of a model server, as in front of TF Serving."""
    base, schemas = scaler_dir
    served_log = inference_log.InferenceLog(tmp_path / "served", features=inference_log.ServingSchemas(schemas))
    server = ModelServer(str(base), "scaler", on_request=served_log)
    plain = ModelServer(str(base), "scaler")
    proxy_log = inference_log.InferenceLog(tmp_path / "proxied", features=inference_log.ServingSchemas(schemas))
    try:
        url = f"http://127.0.0.1:{server.start(0)}/v1/models/scaler:predict"
        upstream = f"http://127.0.0.1:{plain.start(0)}"
        server.wait_until_available(120)
        plain.wait_until_available(120)
        proxy = logging_proxy.LoggingProxy(logging_proxy.Upstream(upstream, 30), proxy_log)
        proxied = f"http://127.0.0.1:{proxy.start(0)}/v1/models/scaler:predict"
        try:
            answers = []
            for target in (url, proxied):
                answers.append(_post(target, {"instances": [{"x": 1.0, "password": "hunter2"}, {"x": 2.0}]},
                                     {"X-Request-Id": "client-42"}))
                answers.append(_post(target, {"instances": [{"x": 3.0}]}))
                answers.append(_post(target, {"instances": [{"x": 4.0}]}, {"X-Request-Id": "bad id\tx"}))
        finally:
            proxy.shutdown()
    finally:
        server.shutdown()
        plain.shutdown()
        served_log.close()
        proxy_log.close()
    for where, (given, generated, replaced) in (("served", answers[:3]), ("proxied", answers[3:])):
        assert given[0] == 200 and given[1] == "client-42"
        assert len(generated[1]) == 32 and len(replaced[1]) == 32 and replaced[1] != generated[1]
        logged = _features(tmp_path / where)
        assert [f["request_id"].bytes_list.value[0].decode() for f in logged] == \
            ["client-42", "client-42", generated[1], replaced[1]], where
        assert [f["x"].float_list.value[0] for f in logged] == [1.0, 2.0, 3.0, 4.0]
        assert all("password" not in f for f in logged), where


def _serve(home, tmp_path, name) -> tuple[subprocess.Popen, str]:
    """`kubetfx serve --port 0` as a child process with small shards (a few requests each)."""
    port_file = tmp_path / f"{name}.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "kubetfx.pipelines.cli", "serve", "--home", str(home), "--port", "0", "--port-file",
         str(port_file), "--log-shard-mb", "0.001", "--log-shards", "1000"],
        stdout=open(tmp_path / f"{name}.log", "wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wait_for(lambda: port_file.exists() or process.poll() is not None, 300, f"{name} answering")
    assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
    return process, f"http://127.0.0.1:{port_file.read_text()}/v1/models/kubetfx-penguin:predict"


def test_two_serve_processes_on_one_home_log_every_request_with_its_id(tmp_path):
    home = tmp_path / "home"
    save_scaler(home / "serving" / "kubetfx-penguin" / "7", factor=2.0)
    _schema_dir(home / "serving" / "kubetfx-penguin", 7, 'feature { name: "x" type: FLOAT }\n')
    servers = [_serve(home, tmp_path, "one"), _serve(home, tmp_path, "two")]
    try:
        for i in range(15):  # alternating, so both rotate through many shards at once
            for k, (_, url) in enumerate(servers):
                status, answered_id, _ = _post(url, {"instances": [{"x": float(i)}, {"x": -1.0}]},
                                               {"X-Request-Id": f"s{k}-{i}"})
                assert status == 200 and answered_id == f"s{k}-{i}"
    finally:
        for process, _ in servers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process, _ in servers]
    assert codes == [0, 0]
    log_dir = home / "inference-logs" / "kubetfx-penguin"
    logged = _features(log_dir)
    ids = sorted(f["request_id"].bytes_list.value[0].decode() for f in logged)
    assert ids == sorted(f"s{k}-{i}" for k in (0, 1) for i in range(15) for _ in range(2))  # each instance, once
    assert all(set(f) == {"x", "prediction_scaled", "prediction_n_plus_one", "model_version", "timestamp_ms",
                          "request_id", "track", "latency_ms", "status_code"} for f in logged)
    assert inference_log.open_shards(log_dir) == [] and len(inference_log.closed_shards(log_dir)) >= 8
