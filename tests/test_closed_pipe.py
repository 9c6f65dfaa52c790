"""Writing to a closed pipe ends quietly: `kubetfx models | head -1` and the like end with
the documented code and nothing on stderr, never a BrokenPipeError traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

from kubetfx.pipelines import exit_codes


def _with_closed_stdout(*args, timeout=120):
    """`kubetfx ARGS` whose stdout reader has gone before the first write (as `| head -1`
    once it has its line): deterministic, unlike racing a real `head`."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", *map(str, args)],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=timeout, cwd=REPO,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["models"], ["models", "--json"], ["compile", "--output", "{tmp}/spec.yaml"]],
                         ids=["models", "models-json", "compile"])
def test_a_closed_stdout_ends_quietly_with_the_documented_code(tmp_path, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = _with_closed_stdout(*args, "--home", tmp_path / "home")
    assert done.returncode == exit_codes.PIPE_CLOSED, done.stderr
    assert done.stderr == "", done.stderr


def test_a_real_head_reads_the_first_line_and_the_command_ends_quietly(tmp_path):
    # The shell's way: `kubetfx models --json | head -1`, head gone after its line.
    done = subprocess.run(f"{sys.executable} -m kubetfx.pipelines.cli models --json --home {tmp_path} | head -c 1; "
                          "echo; echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    first, status = done.stdout.splitlines()
    assert first == "{" and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert int(status) in (exit_codes.OK, exit_codes.PIPE_CLOSED)  # OK when it all fit before head left
