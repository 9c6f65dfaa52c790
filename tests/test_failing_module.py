"""A module file whose run_fn raises: `kubetfx run` names the exception and the failing line
without --verbose, points at the full log, and --verbose shows the whole traceback."""
from __future__ import annotations

import re

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

FAILING = "    return columns['bill_length_cm']  # the column is bill_length_mm\n"


@pytest.fixture(scope="module")
def bad_module(tmp_path_factory):
    text = (REPO / "tests" / "module_file_example.py").read_text()
    text = text.replace("def run_fn(fn_args):\n", "def run_fn(fn_args):\n    columns = {}\n" + FAILING, 1)
    path = tmp_path_factory.mktemp("user") / "my_module.py"
    path.write_text(text)
    return path, text.splitlines().index(FAILING.rstrip("\n")) + 1


def test_the_error_and_the_failing_line_without_verbose(bad_module, tmp_path, run_kubetfx):
    module, line = bad_module
    result = run_kubetfx("run", "--home", tmp_path, "--module-file", module)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"Trainer +FAILED after", result.stdout)
    assert "kubetfx: Trainer failed: KeyError: 'bill_length_cm'" in result.stderr
    assert f"{module}:{line} in run_fn" in result.stderr
    assert FAILING.strip() in result.stderr
    assert "Traceback" not in result.stderr
    log = re.search(r"full log: (\S+\.log)", result.stderr).group(1)
    assert "Traceback (most recent call last)" in open(log).read()

    verbose = run_kubetfx("run", "--home", tmp_path, "--module-file", module, "--verbose")
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert f"{module}:{line} in run_fn" in verbose.stderr

    report = run_kubetfx("report", "--home", tmp_path, "--output", tmp_path / "r.html")
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert "Stopped at Trainer: KeyError: &#x27;bill_length_cm&#x27;" in page
    assert f"my_module.py (your module file):{line}" in page
