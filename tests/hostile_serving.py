"""The hostile pass on `kubetfx serve` as a script: requests a careless or hostile client
sends, against a running server on loopback, each printed with the answer it got. Not a
test (no assertion): the table in docs/serving-and-monitoring.md ("Hostile requests") was
made with it, and each case that was wrong has its test beside the behaviour.

    .venv/bin/kubetfx serve --home H --port 8501 &
    .venv/bin/python tests/hostile_serving.py --url http://127.0.0.1:8501/v1/models/kubetfx-penguin

Every request has a timeout; the largest body sent is 16 MiB (a second, bounded)."""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import gzip
import json
import re
import socket
import time
import urllib.parse

VALID = {"island": "Dream", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
         "body_mass_g": 3750, "sex": "male", "year": 2008}


def _raw(host: str, port: int, data: bytes, timeout: float = 30, expect_close: bool = False,
         quiet: float = 2.0) -> bytes:
    """Sends bytes on one connection, returns all it reads until the server closes or is quiet for `quiet` s."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.settimeout(quiet if not expect_close else timeout)
        answer = b""
        try:
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                answer += chunk
        except socket.timeout:
            pass
        return answer


def _statuses(answer: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]  # pipelined answers follow bodies


def _error(answer: bytes) -> str:
    if re.match(rb"HTTP/1\.[01] 2", answer):
        return ""
    try:
        body = answer.split(b"\r\n\r\n", 1)[1]
        return json.loads(body[:body.index(b"}") + 1]).get("error", "")[:110]
    except (ValueError, IndexError):
        return answer[:80].decode("latin-1")


def _post(path: str, body: bytes, headers: dict | None = None, version: str = "1.1") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "t", "Content-Type": "application/json",
                                                  "Content-Length": str(len(body)), **(headers or {})}.items())
    return f"POST {path} HTTP/{version}\r\n{head}\r\n".encode() + body


def cases(url: str) -> list:
    parsed = urllib.parse.urlparse(url)
    host, port, model = parsed.hostname, parsed.port, parsed.path
    predict = model + ":predict"

    def send(body, headers=None, path=predict, version="1.1", quiet=2.0):
        answer = _raw(host, port, _post(path, body if isinstance(body, bytes) else body.encode(), headers, version),
                      quiet=quiet)
        return _statuses(answer), _error(answer)

    def instance(**changes):
        return json.dumps({"instances": [{**VALID, **changes}]})

    def nan_text(name, literal):
        return json.dumps({"instances": [{**VALID, name: 0.5}]}).replace("0.5", literal)

    def pipelined():
        one = _post(predict, instance().encode())
        return _statuses(_raw(host, port, one * 3)), ""

    def keep_alive():
        with socket.create_connection((host, port), timeout=30) as sock:
            statuses = []
            for _ in range(200):
                sock.sendall(_post(predict, instance().encode()))
                data = b""
                while b"\r\n\r\n" not in data:
                    data += sock.recv(65536)
                head, body = data.split(b"\r\n\r\n", 1)
                length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                while len(body) < length:
                    body += sock.recv(65536)
                statuses.append(int(head.split()[1]))
        return sorted(set(statuses)), f"200 requests on one connection: {statuses.count(200)} answered 200"

    def expect_continue(declared):
        with socket.create_connection((host, port), timeout=30) as sock:
            body = instance().encode()
            head = (f"POST {predict} HTTP/1.1\r\nHost: t\r\nContent-Length: {declared or len(body)}\r\n"
                    "Expect: 100-continue\r\n\r\n").encode()
            sock.sendall(head)
            sock.settimeout(5)
            first = sock.recv(65536)
            if first.startswith(b"HTTP/1.1 100"):
                sock.sendall(body)
                first += sock.recv(65536)
            return _statuses(first), _error(first)

    def slow_body():
        with socket.create_connection((host, port), timeout=30) as sock:
            body = instance().encode()
            sock.sendall(_post(predict, body)[:-len(body)])
            started = time.monotonic()
            for byte in body[:10]:  # ten bytes, one a second: a slow client holds one connection
                sock.sendall(bytes([byte]))
                time.sleep(1)
            sock.sendall(body[10:])
            sock.settimeout(30)
            answer = sock.recv(65536)
            return _statuses(answer), f"answered after {time.monotonic() - started:.0f} s of dribbled body"

    def many_instances(n):
        body = json.dumps({"instances": [VALID] * n}).encode()
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            big = pool.submit(send, body, quiet=120)
            time.sleep(0.2)
            small_started = time.monotonic()
            small = pool.submit(send, instance())
            small_status = small.result(timeout=300)[0]
            small_seconds = time.monotonic() - small_started
            statuses, error = big.result(timeout=300)
        return statuses, (f"{len(body) >> 20} MiB, {time.monotonic() - started:.1f} s; a 1-instance request sent "
                          f"meanwhile: {small_status} after {small_seconds:.1f} s {error}")

    chunked_over = (f"POST {predict} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                    + b"".join(b"100000\r\n" + b" " * (1 << 20) + b"\r\n" for _ in range(17)) + b"0\r\n\r\n")
    example_b64 = base64.b64encode(b"\x08\x01").decode()
    lookalike = json.dumps({"instances": [{**{k: v for k, v in VALID.items() if k != "island"}, "\u0456sland": "Dream"}]})
    return [
        ("valid feature dict", lambda: send(instance())),
        ("NaN literal", lambda: send(nan_text("bill_length_mm", "NaN"))),
        ("Infinity literal", lambda: send(nan_text("bill_length_mm", "Infinity"))),
        ("1e400 (inf once parsed)", lambda: send(nan_text("bill_length_mm", "1e400"))),
        ("huge integer 10**30 for INT", lambda: send(instance(body_mass_g=10 ** 30))),
        ("-0.0 (0 is outside every domain here)", lambda: send(nan_text("bill_length_mm", "-0.0").replace('"bill_depth_mm": 18.7', '"bill_depth_mm": -0.0'))),
        ("number as a string \"39.1\"", lambda: send(instance(bill_length_mm="39.1"))),
        ("true for a number", lambda: send(instance(body_mass_g=True))),
        ("unicode lookalike name (Cyrillic i)", lambda: send(lookalike)),
        ("duplicate key in an instance (last wins)", lambda: send(instance().replace('"island": "Dream"', '"island": "x", "island": "Dream"'))),
        ("empty instances list", lambda: send('{"instances": []}')),
        ("instances and inputs both", lambda: send('{"instances": [1], "inputs": [1]}')),
        ("JSON nested 100,000 deep", lambda: send('{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}")),
        ("not JSON", lambda: send("{instances: [")),
        ("b64 that is no tf.Example", lambda: send(json.dumps({"instances": [{"b64": example_b64}]}))),
        ("body declared 1 GB", lambda: (_statuses(a := _raw(host, port, _post(predict, b"", {"Content-Length": str(1 << 30)}))), _error(a))),
        ("chunked body growing past 16 MiB", lambda: (_statuses(_raw(host, port, chunked_over)), "")),
        ("15 MiB of instances (100,000)", lambda: many_instances(100_000)),
        ("pipelined: 3 requests in one write", pipelined),
        ("keep-alive: 200 requests on one connection", keep_alive),
        ("HTTP/1.0", lambda: send(instance(), version="1.0")),
        ("Expect: 100-continue", lambda: expect_continue(None)),
        ("Expect: 100-continue, 1 GB declared", lambda: expect_continue(1 << 30)),
        ("slow body (1 byte/s for 10 s)", slow_body),
        ("Content-Type text/plain", lambda: send(instance(), {"Content-Type": "text/plain"})),
        ("gzip body", lambda: send(gzip.compress(instance().encode()), {"Content-Encoding": "gzip"})),
        ("gzip bomb (17 MiB of spaces in 17 kB)", lambda: send(gzip.compress(b" " * (17 << 20)), {"Content-Encoding": "gzip"})),
        ("Content-Encoding br", lambda: send(instance(), {"Content-Encoding": "br"})),
        ("X-Request-Id of 500 characters", lambda: (lambda a: (_statuses(a), "id answered: " + next(
            (l.split(b": ")[1].decode() for l in a.split(b"\r\n") if l.lower().startswith(b"x-request-id")), "")))(
            _raw(host, port, _post(predict, instance().encode(), {"X-Request-Id": "a" * 500})))),
        ("GET :predict", lambda: (_statuses(a := _raw(host, port, f"GET {predict} HTTP/1.1\r\nHost: t\r\n\r\n".encode())), _error(a))),
        ("HEAD on the model", lambda: (_statuses(_raw(host, port, f"HEAD {model} HTTP/1.1\r\nHost: t\r\n\r\n".encode())), "")),
        ("unknown model name", lambda: send(instance(), path="/v1/models/other:predict")),
        ("version not served", lambda: send(instance(), path=model + "/versions/1:predict")),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://HOST:PORT/v1/models/NAME of a running server")
    parser.add_argument("--only", help="run the cases whose name contains this text")
    args = parser.parse_args(argv)
    print("| case | statuses | detail |\n| --- | --- | --- |")
    for name, case in cases(args.url):
        if args.only and args.only not in name:
            continue
        try:
            statuses, detail = case()
        except OSError as err:
            statuses, detail = [], f"{type(err).__name__}: {err}"
        print(f"| {name} | {' '.join(map(str, statuses)) or '-'} | {detail.replace('|', '/')} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
