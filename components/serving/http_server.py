"""One HTTP transport for everything kubetfx answers on (the model server, the
inference-logging proxy): tornado's HTTPServer on an IOLoop in a background thread, with
the bounds a server under load needs, calling a plain blocking function per request in a
bounded thread pool (so a TensorFlow call never blocks the loop that accepts and reads).

Why tornado: it is in the locks already (requirements.lock 6.6.1, requirements-py310.lock
6.5.10), so the container image gains no dependency; its HTTPServer takes a listen
backlog, a body size bound, idle and body read timeouts, and stops listening apart from
closing connections, which a graceful stop needs. The standard library's http.server it
replaces had a listen backlog of 5 (176 of 200 concurrent clients reset), no read
timeouts and a thread per connection.

    def handle(request: Request) -> Response: ...   # blocking; runs in the pool
    server = HttpServer(handle, Limits(max_body_bytes=16 << 20), name="model-server")
    port = server.start(0)      # binds (0: any free port), answers from a background thread
    server.stop()               # stops listening, finishes in-flight requests, closes

What the bounds answer, in TF Serving's error JSON {"error": "..."}: a body declared over
max_body_bytes 413 before any of it is read, then the connection is closed (a chunked body
that grows past it: tornado's 400 and close); headers that do not arrive within
idle_seconds (also the keep-alive idle bound: tornado uses one value for both) or a body
not complete within body_seconds: the connection is closed; more than max_pending
requests waiting for the pool: 503. A handler that raises: 500 with the reason. At most
max_connections open connections (and half the process's file descriptors): past it the
server stops accepting and the kernel's listen backlog holds the rest until one closes; out
of file descriptors anyway (EMFILE), it stops accepting for ACCEPT_RETRY_SECONDS, where
tornado's accept loop retried at once forever (a core at 100% and a traceback per try).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

log = logging.getLogger("kubetfx.http_server")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 << 20
    idle_seconds: float = 60.0     # headers of a request, and an idle keep-alive connection
    body_seconds: float = 60.0     # the whole body of a request, once its headers arrived
    backlog: int = 1024            # the kernel caps it at net.core.somaxconn (see effective_backlog)
    workers: int = 4               # handler threads (TensorFlow releases the GIL while it computes)
    max_pending: int = 1024        # requests taken and not yet answered; more: 503
    stop_seconds: float = 10.0     # how long a stop waits for in-flight requests
    max_connections: int = 10_000  # open at once; capped at half of RLIMIT_NOFILE (effective_max_connections)

    def validate(self) -> Limits:
        for name in ("max_body_bytes", "idle_seconds", "body_seconds", "backlog", "workers",
                     "max_pending", "stop_seconds", "max_connections"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        return self


@dataclass(frozen=True)
class Request:
    method: str
    path: str                      # with its query string, as sent
    headers: Mapping[str, str]     # case-insensitive
    body: bytes
    arrived: float                 # time.time() when its headers were read


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)


Handler = Callable[[Request], Response]


def json_response(status: int, payload, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def error(status: int, message: str) -> Response:
    """TF Serving's error answer: {"error": message}."""
    return json_response(status, {"error": message})


class BodyError(ValueError):
    """A request body that cannot be read as sent (its status: 400, 413 or 415)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decoded_body(request: Request, max_bytes: int) -> bytes:
    """The body without its Content-Encoding: gzip (TF Serving's HTTP server uncompresses it,
    tensorflow_serving/util/net_http RequestHandlerOptions auto_uncompress_input, default
    true) uncompressed up to max_bytes, so a small bomb cannot outgrow the bound the
    transport put on the bytes sent (413 past it); identity as is; another encoding a 415."""
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding == "identity":
        return request.body
    if encoding not in ("gzip", "x-gzip"):
        raise BodyError(415, f"Content-Encoding {encoding[:40]!r} is not accepted: send the body as it is, or gzip")
    import zlib

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        data = inflater.decompress(request.body, max_bytes + 1)
    except zlib.error as err:
        raise BodyError(400, f"request body is not gzip ({err}) though Content-Encoding says so") from None
    if len(data) > max_bytes:
        raise BodyError(413, f"request body is over the limit of {max_bytes} bytes once uncompressed")
    if not inflater.eof:
        raise BodyError(400, "request body is a gzip stream cut short")
    return data


def effective_backlog(asked: int) -> int:
    """The listen backlog the kernel grants: listen() silently caps it at somaxconn."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return min(asked, int(f.read()))
    except (OSError, ValueError):
        return min(asked, socket.SOMAXCONN)


def effective_max_connections(asked: int) -> int:
    """Open connections allowed: half the file descriptors the process may open are kept
    for everything else (model files, log shards, upstream calls)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return asked if soft == resource.RLIM_INFINITY else max(1, min(asked, soft // 2))


ACCEPT_RETRY_SECONDS = 0.5   # out of file descriptors: accepting resumes after this pause
_WARN_EVERY_SECONDS = 60.0


class _Acceptor:
    """Accepts on one listening socket in tornado's place, pausing at the connection bound
    and backing off when accept() fails for want of resources (tornado.netutil's
    add_accept_handler re-raises, and the loop calls it again at once)."""

    def __init__(self, owner: "HttpServer", sock: socket.socket):
        from tornado.ioloop import IOLoop

        self.owner, self.sock, self.loop = owner, sock, IOLoop.current()
        self.listening = self.closed = False

    def resume(self) -> None:
        if not self.listening and not self.closed:
            from tornado.ioloop import IOLoop

            self.loop.add_handler(self.sock, self._accept, IOLoop.READ)
            self.listening = True

    def pause(self) -> None:
        if self.listening:
            self.loop.remove_handler(self.sock)
            self.listening = False

    def close(self) -> None:  # tornado's stop() calls it before closing the socket
        self.pause()
        self.closed = True

    def _accept(self, fd, events) -> None:
        owner = self.owner
        for _ in range(128):  # then let the loop serve what it accepted
            if owner.open_connections >= owner.max_connections:
                self.pause()  # resumed by a connection's close (HttpServer._closed)
                return
            try:
                connection, address = self.sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as err:  # EMFILE, ENFILE, ENOBUFS: retrying at once would spin
                self.pause()
                self.loop.call_later(ACCEPT_RETRY_SECONDS, self.resume)
                owner.warn(f"cannot accept connections ({err.strerror or err}) with {owner.open_connections} "
                           f"open; retrying every {ACCEPT_RETRY_SECONDS} s")
                return
            owner._http._handle_connection(connection, address)


# A JSON string, escapes included (unrolled: no backtracking per character).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_too_deep(body: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit`, found without
    parsing it (json.loads recurses: 100k levels are a RecursionError, not a 400).
    Brackets inside strings do not count; malformed text is left to the parser."""
    if body.count(b"[") + body.count(b"{") <= limit:  # cannot nest deeper than it opens
        return False
    import numpy as np

    brackets = _JSON_STRING.sub(b'""', body).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets, np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1).astype(np.int32))
    return bool(depth.size) and int(depth.max()) > limit


class HttpServer:
    """Answers every request with handle(request), run in a pool of limits.workers threads."""

    def __init__(self, handle: Handler, limits: Limits | None = None, *, name: str = "http"):
        self.handle = handle
        self.limits = (limits or Limits()).validate()
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._port: int | None = None
        self.in_flight = 0        # requests whose headers were read and whose answer is not yet sent
        self.stopping = False     # set by stop(): every answer from then on closes its connection
        self._pending = 0         # requests waiting for or running in the pool
        self.max_connections = self.limits.max_connections
        self._acceptors: list[_Acceptor] = []
        self._warned_at = -_WARN_EVERY_SECONDS

    @property
    def open_connections(self) -> int:
        return len(self._http._connections) if self._http is not None else 0

    def warn(self, message: str) -> None:
        """A warning at most once a minute: what repeats under abuse must not fill the log."""
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("%s: %s", self.name, message)

    def _closed(self) -> None:
        if self.open_connections < self.max_connections:
            for acceptor in self._acceptors:
                acceptor.resume()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} server not started")
        return self._port

    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Binds (OSError here if it cannot), then answers from a background thread; the port."""
        from tornado import netutil

        if self._thread is not None:
            raise RuntimeError(f"{self.name} server already started")
        backlog = effective_backlog(self.limits.backlog)
        if backlog < self.limits.backlog:
            log.info("%s: listen backlog %d capped at net.core.somaxconn %d", self.name, self.limits.backlog, backlog)
        self.max_connections = effective_max_connections(self.limits.max_connections)
        if self.max_connections < self.limits.max_connections:
            log.info("%s: at most %d open connections (half of the file descriptor limit)", self.name,
                     self.max_connections)
        sockets = netutil.bind_sockets(port, host, backlog=backlog)
        self._port = sockets[0].getsockname()[1]
        self._pool = concurrent.futures.ThreadPoolExecutor(self.limits.workers, thread_name_prefix=f"{self.name}-worker")
        started: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(sockets, started), name=f"{self.name}-ioloop", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self._port

    def stop(self, timeout: float | None = None) -> bool:
        """Stops listening, waits up to `timeout` seconds (default limits.stop_seconds) for
        in-flight requests to be answered, then closes every connection. True if none was
        cut short. Idempotent; callable from any thread but the loop's."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return True
        timeout = self.limits.stop_seconds if timeout is None else timeout
        try:
            clean = asyncio.run_coroutine_threadsafe(self._stop(timeout), loop).result(timeout + 10)
        except (concurrent.futures.TimeoutError, RuntimeError):  # RuntimeError: the loop already ended
            clean = False
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop, self._thread = None, None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # a hung handler must not hang the stop
        if not clean:
            log.warning("%s: stopped with requests still in flight after %.0f s", self.name, timeout)
        return clean

    # -- the loop thread ----------------------------------------------------------------
    def _run(self, sockets, started: concurrent.futures.Future) -> None:
        from tornado import httpserver, web

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            app = web.Application([(r".*", _handler_class())], compress_response=False, kubetfx_server=self,
                                  log_function=_log_request)
            limits = self.limits
            self._http = _server_class()(app, max_body_size=limits.max_body_bytes, xheaders=False,
                                         idle_connection_timeout=limits.idle_seconds,
                                         body_timeout=limits.body_seconds)
            self._http.kubetfx_server = self
            self._http.add_sockets(sockets)
            for fd, sock in self._http._sockets.items():  # tornado 6.5/6.6 TCPServer bookkeeping
                self._http._handlers.pop(fd)()            # its accept loop, replaced by a bounded one
                acceptor = _Acceptor(self, sock)
                self._acceptors.append(acceptor)
                self._http._handlers[fd] = acceptor.close
                acceptor.resume()
            self._loop = loop
        except Exception as err:  # noqa: BLE001 - handed to start()'s caller
            started.set_exception(err)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _stop(self, timeout: float) -> bool:
        # Each answer written from now on says Connection: close and ends its connection, so a
        # keep-alive client learns from the answer that it must reconnect (to another replica)
        # instead of meeting a closed connection with its next request.
        self.stopping = True
        self._http.stop()  # no new connections; the listening sockets are closed
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        clean = not self.in_flight
        try:  # idle keep-alive connections, and any request cut short
            await asyncio.wait_for(self._http.close_all_connections(), 5)
        except asyncio.TimeoutError:
            pass
        return clean

    async def answer(self, request: Request) -> Response:
        if self._pending >= self.limits.max_pending:
            return error(503, f"{self.name} busy: {self._pending} requests waiting; retry")
        self._pending += 1  # only the loop's thread counts: no lock
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, request)
        finally:
            self._pending -= 1

    def _call(self, request: Request) -> Response:
        try:
            return self.handle(request)
        except Exception as err:  # noqa: BLE001 - answered, with the reason, and logged
            log.exception("%s: %s %s failed", self.name, request.method, request.path)
            return error(500, f"{type(err).__name__}: {err}")


def _log_request(handler) -> None:
    """tornado logs each 4xx/5xx answer as a warning; one line per request is the debug log's."""
    request = handler.request
    log.debug("%d %s %s (%s) %.1f ms", handler.get_status(), request.method, request.uri, request.remote_ip,
              1000 * request.request_time())


@functools.cache
def _server_class():
    """tornado's HTTPServer telling its HttpServer when a connection closes (to resume
    accepting below the bound); made when a server starts, as _handler_class."""
    from tornado import httpserver

    class Server(httpserver.HTTPServer):
        kubetfx_server: HttpServer

        def on_close(self, server_conn) -> None:
            super().on_close(server_conn)
            self.kubetfx_server._closed()

    return Server


@functools.cache
def _handler_class():
    """The tornado handler, made when a server starts: tornado is imported then, not when
    this module is (the model server's module is imported by the InfraValidator's
    component code, which never serves)."""
    from tornado import web

    @web.stream_request_body
    class Handler(web.RequestHandler):
        SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE")

        def initialize(self) -> None:
            self.owner: HttpServer = self.application.settings["kubetfx_server"]
            self.chunks: list[bytes] = []
            self.counted = False

        def set_default_headers(self) -> None:
            self.clear_header("Content-Type")
            self.set_header("Server", f"kubetfx-{self.application.settings['kubetfx_server'].name}")

        def compute_etag(self):
            return None

        async def prepare(self) -> None:
            self.arrived = time.time()
            self.owner.in_flight += 1
            self.counted = True
            length = self.request.headers.get("Content-Length", "")
            limit = self.owner.limits.max_body_bytes
            if length.isdigit() and int(length) > limit:
                # Answered before the body is read; tornado closes the connection after it.
                await self._send(error(413, f"request body of {int(length)} bytes is over the limit of {limit} bytes"))

        def data_received(self, chunk: bytes) -> None:
            self.chunks.append(chunk)

        async def _answer(self) -> None:
            request = Request(self.request.method, self.request.uri, self.request.headers, b"".join(self.chunks), self.arrived)
            self.chunks = []
            await self._send(await self.owner.answer(request))

        get = post = put = delete = _answer

        async def _send(self, response: Response) -> None:
            if self.owner.stopping and hasattr(self.request.connection, "_disconnect_on_finish"):
                self.request.connection._disconnect_on_finish = True  # tornado 6.5/6.6 HTTP1Connection: "Connection: close"
            self.set_status(response.status)
            for key, value in response.headers.items():
                self.set_header(key, value)
            try:
                await self.finish(response.body)
            except Exception:  # noqa: BLE001 - the client went away; nothing to answer
                pass
            finally:
                self._uncount()

        def on_connection_close(self) -> None:
            self._uncount()

        def write_error(self, status_code: int, **kwargs) -> None:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": self._reason}))

        def on_finish(self) -> None:
            self._uncount()

        def _uncount(self) -> None:
            if self.counted:
                self.counted = False
                self.owner.in_flight -= 1

    return Handler
