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

from kubetfx.components.infra_validator.model_server import ModelServer
from kubetfx.components.infra_validator.testing_models import save_scaler
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


def _request(method: str, path: str, body: bytes = b"", extra: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n".encode() + extra + b"\r\n" + body


def _read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return int(lines[0].split()[1]), body


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _concurrent_answers(port: int, request: bytes, clients: int = 200) -> tuple[list, list]:
    """Opens `clients` connections at once (all connected before any request is sent, as
    a burst of clients does), then sends one request on each: (statuses, failures)."""
    socks, failures = [], []
    for _ in range(clients):
        sock = socket.socket()
        sock.settimeout(60)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        socks.append(sock)
    statuses = []
    for sock in socks:
        try:
            sock.setblocking(True)
            sock.settimeout(60)
            sock.sendall(request)
        except OSError as err:
            failures.append(repr(err))
    for sock in socks:
        try:
            statuses.append(_read_answer(sock)[0])
        except OSError as err:
            failures.append(repr(err))
        finally:
            sock.close()
    return statuses, failures


def test_200_concurrent_connections_are_all_answered(server):
    statuses, failures = _concurrent_answers(server.port, _request("POST", f"/v1/models/{NAME}:predict", PREDICT))
    assert failures == [] and statuses == [200] * 200


def test_a_body_over_the_limit_is_413_before_it_is_read_and_the_server_stays_small(server):
    declared = 50 << 20
    before = _rss_bytes()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = _request("POST", f"/v1/models/{NAME}:predict")
        sock.sendall(head.replace(b"Content-Length: 0", f"Content-Length: {declared}".encode()) + b"[" * (1 << 20))
        status, body = _read_answer(sock)
    assert status == 413
    assert "over the limit of 16777216 bytes" in json.loads(body)["error"]
    assert _rss_bytes() - before < 16 << 20
    # and the server still answers
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(_request("POST", f"/v1/models/{NAME}:predict", PREDICT))
        assert _read_answer(sock)[0] == 200


def test_json_nested_100k_deep_is_400_not_a_recursion_error(server):
    nested = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(_request("POST", f"/v1/models/{NAME}:predict", nested))
        status, body = _read_answer(sock)
    assert status == 400 and "nested deeper than 100 levels" in json.loads(body)["error"]


@pytest.mark.parametrize("cut", ["headers", "body"])
def test_a_half_sent_request_is_closed_within_the_read_timeout(base, cut):
    server = _start(base, limits=http_server.Limits(idle_seconds=1, body_seconds=1))
    try:
        full = _request("POST", f"/v1/models/{NAME}:predict", PREDICT)
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
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{NAME}:predict", PREDICT)
        with urllib.request.urlopen(request, timeout=30) as answer:
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


def test_json_too_deep_counts_nesting_not_brackets_in_strings():
    assert not http_server.json_too_deep(b'{"a": "' + b"[" * 500 + b'"}', 10)
    assert not http_server.json_too_deep(json.dumps({"instances": [{"x": [1.0]}] * 500}).encode(), 10)
    assert http_server.json_too_deep(b"[" * 12 + b"]" * 12, 10)
    assert not http_server.json_too_deep(b"[" * 10 + b"]" * 10, 10)
    assert http_server.json_too_deep(b'["\\"", ' + b"[" * 11 + b"]" * 12, 10)  # an escaped quote
