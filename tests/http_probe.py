"""Raw-socket HTTP/1.1 for the transport tests (components/serving, the logging proxy):
where a client library would hide what the server did (a reset, a half-sent request, an
answer before the body was sent)."""
from __future__ import annotations

import socket


def request(method: str, path: str, body: bytes = b"", content_length: int | None = None) -> bytes:
    """One request's bytes; content_length: declare another length than the body's."""
    length = len(body) if content_length is None else content_length
    return (f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + body


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 answer with a Content-Length; ConnectionError if closed."""
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


def concurrent_answers(port: int, one_request: bytes, clients: int = 200) -> tuple[list, list]:
    """Opens `clients` connections at once (all connecting before any request is sent, as a
    burst of clients does), then sends one request on each: (statuses, failures)."""
    socks, failures, statuses = [], [], []
    for _ in range(clients):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        socks.append(sock)
    for sock in socks:
        try:
            sock.setblocking(True)
            sock.settimeout(60)
            sock.sendall(one_request)
        except OSError as err:
            failures.append(repr(err))
    for sock in socks:
        try:
            statuses.append(read_answer(sock)[0])
        except OSError as err:
            failures.append(repr(err))
        finally:
            sock.close()
    return statuses, failures


def over_the_limit(port: int, path: str, declared: int, sent: int = 1 << 20) -> tuple[int, bytes]:
    """Declares a body of `declared` bytes, sends `sent` of them, reads the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request("POST", path, b"[" * sent, content_length=declared))
        return read_answer(sock)
