"""The inference-logging proxy in front of the real model server (a small real SavedModel),
and its shipping to the real S3 protocol (moto on loopback): answers unchanged, each
answered prediction logged, an upstream that is down or silent answered 502/504 with
nothing logged, closed shards in the store where the monitor's download finds them."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from kubetfx.components.serving.model_server import ModelServer
from testing_models import save_scaler
from kubetfx.pipelines.serving import inference_log, log_shipper, logging_proxy

NAME = "scaler"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    save_scaler(base / "7", factor=2.0)
    server = ModelServer(str(base), NAME)
    port = server.start(0)
    server.wait_until_available(120)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def _proxy(upstream_url, log_dir, timeout=30):
    log = inference_log.InferenceLog(log_dir, features=lambda version: {"x", "n"})
    proxy = logging_proxy.LoggingProxy(logging_proxy.Upstream(upstream_url, timeout), log)
    return proxy, log, f"http://127.0.0.1:{proxy.start(0)}"


def _post(url, payload):
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _logged(directory) -> list:
    import tensorflow as tf

    return [tf.train.Example.FromString(r).features.feature for r in inference_log.read_examples(directory)]


def test_answers_pass_unchanged_and_each_prediction_is_logged(upstream, tmp_path):
    proxy, log, url = _proxy(upstream, tmp_path / "log")
    try:
        payload = {"instances": [{"x": 1.5, "n": 3}, {"x": 4.0}]}
        through = _post(f"{url}/v1/models/{NAME}:predict", payload)
        direct = _post(f"{upstream}/v1/models/{NAME}:predict", payload)
        assert through == direct and through[0] == 200
        status = urllib.request.urlopen(f"{url}/v1/models/{NAME}", timeout=60).read()  # GET passes too
        assert json.loads(status)["model_version_status"][0]["version"] == "7"
        bad = _post(f"{url}/v1/models/other:predict", payload)  # the upstream's own error, unchanged
        assert bad[0] == 404 and bad == _post(f"{upstream}/v1/models/other:predict", payload)
    finally:
        proxy.shutdown()
        log.close()
    first, second = _logged(tmp_path / "log")
    assert first["x"].float_list.value == [1.5] and first["n"].int64_list.value == [3]
    assert first["prediction_scaled"].float_list.value == [3.0] and second["prediction_scaled"].float_list.value == [8.0]
    assert first["model_version"].int64_list.value == [7] and first["timestamp_ms"].int64_list.value[0] > 0
    assert proxy.logged == 2


def test_the_version_comes_from_the_status_when_the_answer_lacks_it(upstream):
    """TF Serving's REST predict answer carries no version; its model status does."""
    assert logging_proxy.Upstream(upstream, 30).available_version(NAME) == 7


def test_upstream_down_is_502_with_a_message_and_nothing_logged(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proxy, log, url = _proxy(f"http://127.0.0.1:{dead}", tmp_path / "log")
    try:
        status, body = _post(f"{url}/v1/models/{NAME}:predict", {"instances": [{"x": 1.0}]})
    finally:
        proxy.shutdown()
        log.close()
    assert status == 502 and "unreachable" in json.loads(body)["error"]
    assert inference_log.shards(tmp_path / "log") == [] and proxy.logged == 0


def test_an_upstream_that_never_answers_is_504_after_the_timeout(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        proxy, log, url = _proxy(f"http://127.0.0.1:{silent.getsockname()[1]}", tmp_path / "log", timeout=1)
        try:
            status, body = _post(f"{url}/v1/models/{NAME}:predict", {"instances": [{"x": 1.0}]})
        finally:
            proxy.shutdown()
            log.close()
    assert status == 504 and "did not answer within 1 s" in json.loads(body)["error"]
    assert inference_log.shards(tmp_path / "log") == []


def test_closed_shards_are_shipped_to_the_store_and_read_back_by_the_monitor(upstream, tmp_path, monkeypatch):
    from kubetfx.pipelines.kubeflow import object_store, object_store_server
    from kubetfx.pipelines.kubeflow import remote_source

    with object_store_server.running() as running:
        s3 = object_store.client(running.endpoint, running.access_key, running.secret_key)
        s3.create_bucket(Bucket="mlpipeline")
        uri = "minio://mlpipeline/kubetfx/inference-logs/scaler"
        proxy, log, url = _proxy(upstream, tmp_path / "spool")
        log.max_shard_bytes = 400  # one logged instance (about 250 bytes with its framing) a shard
        shipper = log_shipper.ShardShipper(log, uri, s3, interval_seconds=3600, max_shard_seconds=3600,
                                           store_shards=2)
        try:
            for x in (1.0, 2.0, 3.0):
                assert _post(f"{url}/v1/models/{NAME}:predict", {"instances": [{"x": x}]})[0] == 200
            assert shipper.ship_once() == 2  # the open shard stays
        finally:
            proxy.shutdown()
            assert shipper.stop() == 1  # the last one, closed and shipped at the end
        keys = [e["Key"] for e in object_store.list_objects(s3, uri)]
        assert len(keys) == 2 and all(k.endswith(".tfrecord") for k in keys)  # store_shards=2: oldest pruned
        assert inference_log.shards(tmp_path / "spool") == []  # shipped shards leave the spool
        monkeypatch.setenv("KUBETFX_OBJECT_STORE_ENDPOINT", running.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", running.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", running.secret_key)
        local = remote_source.download(uri, tmp_path / "scratch")
        assert sorted(f["x"].float_list.value[0] for f in _logged(local)) == [2.0, 3.0]


def test_a_failed_predict_is_logged_with_its_status_and_latency_and_no_prediction(tmp_path):
    """What a staged rollout's error budget counts behind the proxy, as the model server
    logs it (components/serving/model_server.py): the request's instances, the upstream's
    status, the latency, no prediction. Here the upstream's version fails every prediction
    (it parses a feature real examples lack); a 404 (no such model) is still not logged."""
    base = tmp_path / "serving"
    save_scaler(base / "3", factor=2.0, broken_on_examples=True)
    server = ModelServer(str(base), NAME)
    upstream_url = f"http://127.0.0.1:{server.start(0)}"
    try:
        server.wait_until_available(120)
        proxy, log, url = _proxy(upstream_url, tmp_path / "log")
        try:
            status, body = _post(f"{url}/v1/models/{NAME}:predict", {"instances": [{"x": 1.5, "n": 3}]})
            assert status >= 400 and "missing_feature" in json.loads(body)["error"]
            assert _post(f"{url}/v1/models/other:predict", {"instances": [{"x": 1.0}]})[0] == 404
        finally:
            proxy.shutdown()
            log.close()
    finally:
        server.shutdown()
    (record,) = _logged(tmp_path / "log")
    assert record["status_code"].int64_list.value == [status]
    assert record["model_version"].int64_list.value == [3]
    assert record["latency_ms"].float_list.value[0] > 0
    assert record["x"].float_list.value == [1.5] and record["request_id"].bytes_list.value
    assert not [name for name in record if name.startswith("prediction")]
    assert proxy.failures_logged == 1 and proxy.logged == 0


def test_a_gzip_body_is_forwarded_uncompressed_and_logged(upstream, tmp_path):
    """A client that gzips its predict (TF Serving takes Content-Encoding: gzip): before, the
    proxy forwarded the compressed bytes without the header, so the upstream answered 400
    "not JSON" and nothing was logged. A bomb is refused as the model server refuses it."""
    import gzip

    proxy, log, url = _proxy(upstream, tmp_path / "log")
    payload = {"instances": [{"x": 1.5}]}

    def post(body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{url}/v1/models/{NAME}:predict", body,
                                         {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
    try:
        assert post(gzip.compress(json.dumps(payload).encode())) == _post(f"{upstream}/v1/models/{NAME}:predict", payload)
        status, answer = post(gzip.compress(b" " * ((16 << 20) + 1)))
        assert status == 413 and b"once uncompressed" in answer
    finally:
        proxy.shutdown()
        log.close()
    (logged,) = _logged(tmp_path / "log")
    assert logged["x"].float_list.value == [1.5] and logged["prediction_scaled"].float_list.value == [3.0]


def test_a_log_that_fails_every_request_is_reported_at_the_1st_2nd_4th_failure(upstream, caplog):
    """A full disk fails every record: one warning per request would bury the proxy's log."""
    def failing(record):
        raise OSError("No space left on device")

    proxy = logging_proxy.LoggingProxy(logging_proxy.Upstream(upstream, 30), failing)
    url = f"http://127.0.0.1:{proxy.start(0)}"
    try:
        with caplog.at_level("WARNING", logger=logging_proxy.log.name):
            for _ in range(5):
                assert _post(f"{url}/v1/models/{NAME}:predict", {"instances": [{"x": 1.0}]})[0] == 200
    finally:
        proxy.shutdown()
    lines = [r.getMessage() for r in caplog.records if "not logged" in r.getMessage()]
    assert len(lines) == 3 and lines[0].endswith("(1 not logged so far)") and lines[2].endswith("(4 not logged so far)")
    assert proxy.logged == 0
