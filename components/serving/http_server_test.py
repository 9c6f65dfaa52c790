"""The shared HTTP transport under the load and the abuse the standard library's server
did not hold, through its real users on loopback: kubetfx's model server (a real
SavedModel) and the inference-logging proxy in front of it. Raw sockets where a client
library would hide what the server did (a reset, a half-sent request)."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
from http_probe import concurrent_answers, over_the_limit, read_answer, request

from kubetfx.components.serving.model_server import ModelServer
from testing_models import save_scaler
from kubetfx.components.serving import http_server

pytestmark = [pytest.mark.serving]
NAME = "scaler"
PREDICT = json.dumps({"instances": [{"x": 1.5}]}).encode()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    save_scaler(base / "1", factor=2.0)
    return base


def _start(base, **kwargs) -> ModelServer:
    server = ModelServer(str(base), NAME, **kwargs)
    server.start(0)
    server.wait_until_available(120)
    return server


@pytest.fixture(scope="module")
def server(base):
    server = _start(base)
    yield server
    server.shutdown()


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def test_200_concurrent_connections_are_all_answered(server):
    statuses, failures = concurrent_answers(server.port, request("POST", f"/v1/models/{NAME}:predict", PREDICT))
    assert failures == [] and statuses == [200] * 200


def test_concurrent_predicts_batched_together_each_get_their_own_answer(server):
    answers = {}

    def one(i):
        post = urllib.request.Request(f"http://127.0.0.1:{server.port}/v1/models/{NAME}:predict",
                                      json.dumps({"instances": [{"x": float(i)}, {"x": -float(i)}]}).encode())
        with urllib.request.urlopen(post, timeout=60) as answer:
            answers[i] = [p["scaled"][0] for p in json.loads(answer.read())["predictions"]]
    calls_before = server._batcher.calls
    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == {i: [2.0 * i, -2.0 * i] for i in range(64)}
    assert server._batcher.calls - calls_before <= 64


def test_a_body_over_the_limit_is_413_before_it_is_read_and_the_server_stays_small(server):
    before = _rss_bytes()
    status, body = over_the_limit(server.port, f"/v1/models/{NAME}:predict", declared=50 << 20)
    assert status == 413
    assert "over the limit of 16777216 bytes" in json.loads(body)["error"]
    assert _rss_bytes() - before < 16 << 20
    # and the server still answers
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request("POST", f"/v1/models/{NAME}:predict", PREDICT))
        assert read_answer(sock)[0] == 200


def test_json_nested_100k_deep_is_400_not_a_recursion_error(server):
    nested = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request("POST", f"/v1/models/{NAME}:predict", nested))
        status, body = read_answer(sock)
    assert status == 400 and "nested deeper than 100 levels" in json.loads(body)["error"]


@pytest.mark.parametrize("cut", ["headers", "body"])
def test_a_half_sent_request_is_closed_within_the_read_timeout(base, cut):
    server = _start(base, limits=http_server.Limits(idle_seconds=1, body_seconds=1))
    try:
        full = request("POST", f"/v1/models/{NAME}:predict", PREDICT)
        half = full[:20] if cut == "headers" else full[:-5]
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(half)
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed: no answer to a request never finished
            assert time.monotonic() - started < 5
    finally:
        server.shutdown()


def test_shutdown_answers_the_request_in_flight_then_refuses(base):
    hook_entered, hook_done = threading.Event(), threading.Event()

    def slow_hook(record):
        hook_entered.set()
        time.sleep(1.0)
        hook_done.set()

    server = _start(base, on_request=slow_hook)
    port, answers = server.port, []

    def client():
        post = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{NAME}:predict", PREDICT)
        with urllib.request.urlopen(post, timeout=30) as answer:
            answers.append((answer.status, json.loads(answer.read())))
    thread = threading.Thread(target=client)
    thread.start()
    assert hook_entered.wait(30)
    server.shutdown()
    assert hook_done.is_set()  # shutdown() waited for the request in flight
    thread.join(5)
    assert answers and answers[0][0] == 200 and answers[0][1]["predictions"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)




def test_an_answer_written_while_stopping_closes_its_keep_alive_connection(base):
    """An answer written once a stop began says Connection: close and ends its connection, so a
    keep-alive client learns it must reconnect instead of sending its next request into a
    connection about to close (before: a keep-alive answer, then the close). Measured under
    wrk -c64 with SIGTERM, before and after alike: stopped in 0.3 s, every answer logged."""
    hook_entered = threading.Event()

    def slow_hook(record):
        hook_entered.set()
        time.sleep(0.5)

    server = _start(base, on_request=slow_hook)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request("POST", f"/v1/models/{NAME}:predict", PREDICT))
        assert hook_entered.wait(30)
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        stopper.join(30)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200") and b"\r\nconnection: close" in head, head


def test_json_too_deep_counts_nesting_not_brackets_in_strings():
    assert not http_server.json_too_deep(b'{"a": "' + b"[" * 500 + b'"}', 10)
    assert not http_server.json_too_deep(json.dumps({"instances": [{"x": [1.0]}] * 500}).encode(), 10)
    assert http_server.json_too_deep(b"[" * 12 + b"]" * 12, 10)
    assert not http_server.json_too_deep(b"[" * 10 + b"]" * 10, 10)
    assert http_server.json_too_deep(b'["\\"", ' + b"[" * 11 + b"]" * 12, 10)  # an escaped quote


@pytest.mark.parametrize("flag", ["--max_body_bytes=0", "--read_timeout_seconds=-1", "--http_workers=0",
                                  "--max_batch_rows=0"])
def test_a_bound_that_is_not_positive_is_a_one_line_error_exit_2(tmp_path, flag, caplog):
    from kubetfx.components.serving import model_server

    assert model_server.main(["--model_base_path", str(tmp_path), "--model_name", NAME, "--port", "0", flag]) == 2
    assert "Bad flag" in caplog.text


def test_the_model_servers_default_bounds_take_overrides():
    from kubetfx.components.serving import model_server

    limits = model_server.default_limits(max_body_bytes=1000)
    assert (limits.max_body_bytes, limits.workers) == (1000, model_server.WORKERS)
    with pytest.raises(ValueError, match="max_body_bytes must be positive"):
        model_server.default_limits(max_body_bytes=0)
