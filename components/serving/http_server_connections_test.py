"""The transport's bound on open connections, on loopback with a plain handler (no model):
many clients that connect and stay idle, and a process out of file descriptors, where
tornado's accept loop retried accept() at once, forever (a core at 100% and a traceback per
try: 29 MB of log in 4 s for 200 idle connections under `ulimit -n 160`)."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

from kubetfx.components.serving import http_server


def _hello(request: http_server.Request) -> http_server.Response:
    return http_server.json_response(200, {"path": request.path})


def _get(port: int, sock: socket.socket | None = None, timeout: float = 10) -> bytes:
    sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    return answer


def test_idle_connections_past_the_bound_wait_in_the_backlog_and_are_served_when_one_closes():
    server = http_server.HttpServer(_hello, http_server.Limits(max_connections=5), name="bounded")
    port = server.start(0)
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        deadline = time.monotonic() + 5
        while server.open_connections < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # time to accept more, were it not bounded
        assert server.open_connections == 5
        for sock in idle[:5]:
            sock.close()
        # the next five waiting in the backlog are taken; a request on one of them is answered
        assert _get(port, idle[5]).startswith(b"HTTP/1.1 200")
        for sock in idle[6:]:
            sock.close()
        assert _get(port).startswith(b"HTTP/1.1 200")
    finally:
        server.stop(5)


def test_out_of_file_descriptors_the_server_backs_off_instead_of_spinning(tmp_path):
    child = textwrap.dedent("""
        import os, resource, sys, time
        from kubetfx.components.serving import http_server
        server = http_server.HttpServer(lambda r: http_server.json_response(200, {}), name="fds")
        port = server.start(0)
        used = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        print(port, flush=True)
        time.sleep(3)
        start = time.process_time()
        time.sleep(1.5)
        print(f"{time.process_time() - start:.3f}", flush=True)
        server.stop(1)
    """)
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            port = int(process.stdout.readline())
            clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(60)]
            cpu = float(process.stdout.readline())
            process.wait(30)
            for sock in clients:
                sock.close()
        finally:
            process.kill()
            process.wait(10)
    lines = log.read_text().splitlines()
    assert len(lines) < 20, lines[:5]       # one warning, not a traceback per accept() retried
    assert cpu < 0.5                        # of 1.5 s: waiting, not accept() in a loop
