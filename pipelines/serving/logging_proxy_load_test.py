"""The inference-logging proxy on the model server's HTTP transport: a burst of 200
connections all forwarded and logged, a body over the limit refused before it is read,
and a stop that forwards the request in flight (real model server upstream, loopback)."""
from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from http_probe import concurrent_answers, over_the_limit, request

from kubetfx.components.serving.model_server import ModelServer
from testing_models import save_scaler
from kubetfx.pipelines.serving import logging_proxy

pytestmark = [pytest.mark.serving]
NAME = "scaler"
PREDICT = json.dumps({"instances": [{"x": 1.5}]}).encode()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    save_scaler(base / "3", factor=2.0)
    server = ModelServer(str(base), NAME)
    server.start(0)
    server.wait_until_available(120)
    yield server
    server.shutdown()


def _proxy(upstream, on_request):
    proxy = logging_proxy.LoggingProxy(logging_proxy.Upstream(f"http://127.0.0.1:{upstream.port}", 30), on_request)
    return proxy, proxy.start(0)


def test_200_concurrent_connections_are_forwarded_and_logged(upstream):
    records = []
    proxy, port = _proxy(upstream, records.append)
    try:
        statuses, failures = concurrent_answers(port, request("POST", f"/v1/models/{NAME}:predict", PREDICT))
    finally:
        proxy.shutdown()
    assert failures == [] and statuses == [200] * 200
    assert len(records) == 200 and {r.model_version for r in records} == {3}


def test_a_body_over_the_limit_is_413_and_never_forwarded(upstream):
    records = []
    proxy, port = _proxy(upstream, records.append)
    try:
        status, body = over_the_limit(port, f"/v1/models/{NAME}:predict", declared=50 << 20)
    finally:
        proxy.shutdown()
    assert status == 413 and "over the limit" in json.loads(body)["error"] and records == []


def test_shutdown_forwards_the_request_in_flight(upstream):
    entered, done = threading.Event(), threading.Event()

    def slow_log(record):
        entered.set()
        time.sleep(1.0)
        done.set()
    proxy, port = _proxy(upstream, slow_log)
    answers = []

    def client():
        post = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{NAME}:predict", PREDICT)
        with urllib.request.urlopen(post, timeout=30) as answer:
            answers.append(answer.status)
    thread = threading.Thread(target=client)
    thread.start()
    assert entered.wait(30)
    proxy.shutdown()
    assert done.is_set()
    thread.join(5)
    assert answers == [200]
