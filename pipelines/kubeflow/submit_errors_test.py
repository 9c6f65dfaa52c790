"""`kubetfx submit` against what goes wrong, each on a real server on loopback: the exact
stderr a user sees (the CLI in a subprocess, its logging as configured), one line per cause,
the exit code the README's table gives, and the backend's version checked before anything
is uploaded."""
from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

import kfp_api_standin
from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.kubeflow import object_store_server, submit

GOLDEN = Path(__file__).parent.parent / "testdata" / "kubetfx-penguin.golden.yaml"

pytestmark = pytest.mark.kfp_sdk  # submit needs the kfp SDK (absent on the 3.10 lock)


@contextlib.contextmanager
def answering(status: int):
    """A loopback web server that is not KFP: every request gets `status`."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = b"<html>no such page</html>"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once we leave: nothing listens there


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "kubetfx-penguin.yaml"
    shutil.copy(GOLDEN, path)
    return path


def kubetfx_submit(*args, token=None, store=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != submit.TOKEN_ENV}
    env.update(KUBETFX_OBJECT_STORE_ENDPOINT=store or f"http://127.0.0.1:{closed_port()}",
               AWS_ACCESS_KEY_ID="minio", AWS_SECRET_ACCESS_KEY="minio123")
    if token:
        env[submit.TOKEN_ENV] = token
    return subprocess.run([str(Path(sys.executable).parent / "kubetfx"), "submit", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


def one_line(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and "Retrying" not in err, err
    return err


def test_a_host_that_is_not_kfp_answering_404_is_one_line(spec):
    with answering(404) as host:
        result = kubetfx_submit("--host", host, "--spec", spec, "--request-timeout", "5")
    assert result.returncode == exit_codes.SUBMIT_REFUSED
    assert f"{host} answered 404 for /apis/v2beta1/healthz: not a Kubeflow Pipelines 2.x API" in one_line(result)


def test_refused_credentials_are_one_line(spec):
    with kfp_api_standin.running(required_token="right") as api:
        result = kubetfx_submit("--host", api.host, "--spec", spec, token="wrong")
    assert result.returncode == exit_codes.SUBMIT_REFUSED and not api.pipelines
    err = one_line(result.__class__(result.args, result.returncode, result.stdout,
                                    result.stderr.split("\n", 1)[1]))  # after the plain-http warning
    assert f"{api.host} refused the credentials (HTTP 401); check $KUBETFX_KFP_TOKEN" in err


def test_a_closed_port_is_one_line_without_retry_warnings(spec):
    port = closed_port()
    result = kubetfx_submit("--host", f"http://127.0.0.1:{port}", "--spec", spec)
    assert result.returncode == exit_codes.SUBMIT_REFUSED
    assert f"nothing answers at http://127.0.0.1:{port} (connection refused)" in one_line(result)


def test_https_to_a_plain_http_server_is_one_tls_line(spec):
    with answering(200) as host:
        result = kubetfx_submit("--host", host.replace("http://", "https://"), "--spec", spec)
    assert result.returncode == exit_codes.SUBMIT_REFUSED
    assert "TLS with https://127.0.0.1:" in one_line(result)


def test_an_api_that_does_not_answer_in_time_is_one_line(spec):
    with kfp_api_standin.running(stall_seconds=5) as api:
        result = kubetfx_submit("--host", api.host, "--spec", spec, "--request-timeout", "0.5")
    assert result.returncode == exit_codes.SUBMIT_REFUSED
    assert f"Kubeflow Pipelines at {api.host} did not answer within 0.5 s (--request-timeout)" in one_line(result)


def test_verbose_shows_what_the_libraries_said(spec):
    port = closed_port()
    result = kubetfx_submit("--host", f"http://127.0.0.1:{port}", "--spec", spec, "--verbose")
    assert result.returncode == exit_codes.SUBMIT_REFUSED and "connection refused" in result.stderr


def test_a_backend_before_2_3_is_refused_before_anything_is_uploaded(spec):
    with kfp_api_standin.running(tag_name="2.2.0") as api:
        result = kubetfx_submit("--host", api.host, "--spec", spec)
    assert result.returncode == exit_codes.SUBMIT_UNSUPPORTED_BACKEND
    assert [path for _, path, _ in api.requests] == ["/apis/v2beta1/healthz"]
    err = one_line(result)
    assert f"Kubeflow Pipelines at {api.host} is 2.2.0: the spec needs 2.3.0 or later" in err


@pytest.mark.parametrize("tag, warning", [
    ("unknown", "cannot tell the KFP version of {host} (tag_name 'unknown')"),
    ("2.3.0", "is 2.3.0, outside the tested 2.4.0-2.5.0: going on"),
    ("2.4.1", None),
])
def test_an_unknown_or_untested_version_warns_and_goes_on(spec, tag, warning):
    with kfp_api_standin.running(tag_name=tag) as api:
        result = kubetfx_submit("--host", api.host, "--spec", spec)
    # It went on, past the version, to the data upload (the store here is a closed port).
    assert result.returncode == exit_codes.SUBMIT_REFUSED
    lines = result.stderr.strip().splitlines()
    assert "nothing answers at the object store endpoint" in lines[-1]
    if warning:
        assert len(lines) == 2 and warning.format(host=api.host) in lines[0]
    else:
        assert len(lines) == 1


def test_an_object_store_refusing_the_credentials_is_exit_7_in_one_line(spec):
    with object_store_server.running() as store, kfp_api_standin.running() as api:
        # moto's own switch: from now on every request is authenticated (and ours are unknown)
        request = urllib.request.Request(store.endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(request, timeout=10).close()
        result = kubetfx_submit("--host", api.host, "--spec", spec, store=store.endpoint)
    assert result.returncode == exit_codes.SUBMIT_REFUSED
    assert f"the object store at {store.endpoint} refused the credentials (HTTP 403" in one_line(result)
    assert not api.runs


def test_a_token_over_plain_http_is_warned_about_once(spec):
    with kfp_api_standin.running(tag_name="2.2.0") as api:
        result = kubetfx_submit("--host", api.host, "--spec", spec, token="s3cret")
    warning, refusal = result.stderr.strip().splitlines()
    assert f"warning: the bearer token goes to {api.host} unencrypted (http://)" in warning
    assert "s3cret" not in result.stderr + result.stdout
    assert "2.2.0" in refusal


@pytest.mark.parametrize("flag, value", [("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"),
                                         ("--request-timeout", "nan"), ("--request-timeout", "-1")])
def test_a_wait_bound_that_bounds_nothing_is_refused(spec, capsys, flag, value):
    """--timeout nan waited forever (`monotonic() > nan` is never true); --request-timeout 0
    or less was urllib3's ValueError traceback."""
    from kubetfx.pipelines import cli

    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["submit", "--host", "http://127.0.0.1:1", "--spec", str(spec), flag, value])
    assert exit_.value.code == exit_codes.USAGE
    assert f"argument {flag}: '{value}': give a finite number of seconds above 0" in capsys.readouterr().err


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # nobody writes to it: a plain read would block forever
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "token.bin").write_bytes(b"\x89PNG\r\n\x1a\n") and d / "token.bin", "is not a bearer token"),
    (lambda d: (d / "token").write_text("abc def\n") and d / "token", "is not a bearer token"),
    (lambda d: _fifo(d / "fifo"), "is not a regular file"),
    (lambda d: Path("/dev/zero"), "is not a regular file"),
    (lambda d: (d / "big").write_bytes(b"a" * (64 * 1024 + 1)) and d / "big", "is larger than 64 KiB"),
], ids=["binary", "a space inside", "fifo", "dev-zero", "over 64 KiB"])
def test_a_token_file_that_holds_no_token_is_one_line_at_once(spec, tmp_path, capsys, make, message):
    """A binary file was a UnicodeDecodeError traceback, a FIFO blocked forever, /dev/zero
    filled the memory; a token with a space failed as 'cannot reach' when the header was built."""
    from kubetfx.pipelines import cli

    token_file = make(tmp_path)
    code = cli.main(["submit", "--host", f"http://127.0.0.1:{closed_port()}", "--spec", str(spec),
                     "--token-file", str(token_file)])
    err = capsys.readouterr().err
    assert code == exit_codes.USAGE, err
    assert err.startswith(f"kubetfx: error: --token-file {token_file} ") and message in err, err
    assert err.count("\n") == 1
