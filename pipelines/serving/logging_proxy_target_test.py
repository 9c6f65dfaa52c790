"""The proxy forwards to its upstream and nowhere else, whatever request target a client
sends: the upstream URL was joined to the target as text, so with an upstream named without
a port (http://model-server) the target ":8080/admin" reached another port of that host and
".evil.example/x" another host. On loopback, with raw sockets (a client library would not
send such a target)."""
from __future__ import annotations

import socket

import pytest

from kubetfx.components.serving import http_server
from kubetfx.pipelines.serving.logging_proxy import LoggingProxy, Upstream


def _raw(port: int, target: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.fixture(scope="module")
def other():
    """Another service on the upstream's host, which the proxy must never reach."""
    server = http_server.HttpServer(lambda r: http_server.json_response(200, {"reached": "the other service"}), name="other")
    port = server.start(0)
    yield port
    server.stop(5)


@pytest.mark.parametrize("target", [b":{port}/secret", b"@127.0.0.1:{port}/secret", b"http://127.0.0.1:{port}/x"])
def test_a_request_target_that_is_not_a_path_is_refused_not_forwarded(other, target):
    proxy = LoggingProxy(Upstream("http://127.0.0.1", timeout=5), on_request=lambda record: None)
    port = proxy.start(0)
    try:
        answer = _raw(port, target.replace(b"{port}", str(other).encode()))
    finally:
        proxy.shutdown()
    assert b"the other service" not in answer
    assert answer.startswith(b"HTTP/1.1 400") and b'{"error": "' in answer
