"""`kubetfx serve` flags a hostile or careless user gives: one line and exit 2 before
anything starts (no model is needed to refuse them)."""
from __future__ import annotations

import pytest

from kubetfx.pipelines import cli


@pytest.mark.parametrize("flags, message", [
    (["--port", "99999"], "--port 99999 is not a TCP port"),   # served on 34463 (99999 - 65536)
    (["--port", "-1"], "--port -1 is not a TCP port"),
    (["--log-shard-mb", "nan"], "must be positive finite numbers"),  # ValueError traceback, exit 1
    (["--log-max-mb", "inf"], "must be positive finite numbers"),
    (["--port-file", "/nonexistent/dir/port"], "--port-file /nonexistent/dir/port: folder /nonexistent/dir does not exist"),
    (["--poll-seconds", "0"], "--poll-seconds 0 must be a positive finite number of seconds"),
    (["--poll-seconds", "nan"], "--poll-seconds nan must be a positive finite number of seconds"),
])
def test_bad_serve_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    assert cli.main(["serve", "--home", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("flags, message", [
    (["--upstream-timeout", "nan"], "must be positive finite numbers"),  # served, every call failing
    (["--ship-seconds", "inf"], "must be positive finite numbers"),
    (["--port", "99999"], "--port 99999 is not a TCP port"),           # answered on 34463
])
def test_bad_inference_logger_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    argv = ["inference-logger", "--upstream", "http://127.0.0.1:1", "--log-dir", str(tmp_path / "logs"), *flags]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
