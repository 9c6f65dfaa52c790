"""CLI conventions: --version, examples in every command's help, and every exit code of
`kubetfx` documented in the README's table (submit's included)."""
from __future__ import annotations

import re

from conftest import REPO

from kubetfx.pipelines import cli, exit_codes


def _readme_exit_codes() -> dict:
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Exit codes"):].split("\n## ", 1)[0]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+) \|$", table, re.M)}


def test_every_exit_code_is_in_the_readme_table():
    codes = {value for name, value in vars(exit_codes).items() if name.isupper() and isinstance(value, int)}
    documented = _readme_exit_codes()
    assert codes == set(documented), f"README exit codes {sorted(documented)} vs exit_codes.py {sorted(codes)}"


def test_version(run_kubetfx):
    result = run_kubetfx("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"kubetfx \d+\.\d+\.\d+ \(TFX 1\.16\.\d+, TensorFlow 2\.\d+\.\d+\)\n", result.stdout)


def test_every_command_help_has_examples():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"run", "compile", "report"} <= set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        assert "examples:" in text and f"kubetfx {name}" in text.split("examples:", 1)[1], name


def test_run_help_offers_json_and_verbose():
    run = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["run"]
    text = run.format_help()
    assert "--json" in text and "--verbose" in text


def test_report_without_runs_or_of_an_unknown_run_is_a_one_line_error(tmp_path, run_kubetfx):
    result = run_kubetfx("report", "--home", tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("kubetfx: error: no runs of pipeline 'kubetfx-penguin'")
    assert "run `kubetfx run` first" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "reports").exists()

    from ml_metadata.proto import metadata_store_pb2
    from kubetfx.pipelines.record import mlmd

    (tmp_path / "metadata").mkdir()
    store = mlmd.open_store(tmp_path / "metadata" / "kubetfx-penguin.sqlite", writable=True)
    store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    result = run_kubetfx("report", "no-such-run", "--home", tmp_path)
    assert result.returncode == 2
    assert "has no run 'no-such-run'" in result.stderr and "Traceback" not in result.stderr


def test_a_mistake_in_a_command_that_imports_tensorflow_is_one_line_without_its_noise(tmp_path):
    """As a user's shell runs it (no TF_CPP_MIN_LOG_LEVEL): TensorFlow's import-time C++
    errors and google-auth's FutureWarning used to stand before the one line."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", "monitor", "--data", "x.csv",
                             "--home", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert result.returncode == exit_codes.USAGE and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("kubetfx: error: pipeline kubetfx-penguin serves no model")
