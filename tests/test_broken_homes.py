"""A home as a crash, a disk or an admin leaves it, with the real CLI: a torn version in the
serving directory, a damaged metadata store, a read-only home, a full disk. Each command
answers with one line naming the file and what to do, exit 2 (or works around a torn
version), and changes nothing. One pipeline run for the module; each test works on a copy.

How they are made: the torn version is a pushed one with variables/ deleted; the damaged
store is the real one truncated to half its size; a read-only home is `chmod -R a-w`, and
as root (CI) the command runs without CAP_DAC_OVERRIDE (util-linux setpriv), so the mode
bits bind as they do for a user; the full disk is RLIMIT_FSIZE in the command's process
(EFBIG on any write past the limit: portable and unprivileged, where a small tmpfs needs
mount rights), which SQLite, TensorFlow's file system and Python report like ENOSPC."""
from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow]
NAME = "kubetfx-penguin"
PENGUINS = REPO / "pipelines" / "data" / "penguins" / "penguins.csv"
# Without these, root ignores the mode bits (capabilities(7)).
WITHOUT_ROOTS_OVERRIDE = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                          "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.fixture(scope="module")
def pushed_home(tmp_path_factory, run_kubetfx):
    home = tmp_path_factory.mktemp("pushed") / "home"
    result = run_kubetfx("run", "--home", home)
    assert result.returncode == 0, result.stdout + result.stderr
    return home


@pytest.fixture
def home(pushed_home, tmp_path):
    copy = tmp_path / "home"
    shutil.copytree(pushed_home, copy, symlinks=True)
    return copy


def _serving(home) -> Path:
    return home / "serving" / NAME


def _versions(home) -> list[str]:
    return sorted((p.name for p in _serving(home).iterdir() if p.name.isdigit()), key=int)


def _second_version(home) -> tuple[str, str]:
    """(first, second): a second complete version beside the pushed one (its copy with one
    more file, as a push of another model would leave it)."""
    (first,) = _versions(home)
    second = str(int(first) + 100)
    shutil.copytree(_serving(home) / first, _serving(home) / second)
    (_serving(home) / second / "assets.extra" / "note").write_text("another push")
    return first, second


def _tear(home, version: str) -> Path:
    """A copy of `version` as a killed `cp -r` or a hand cleanup leaves it: the graph
    without its weights."""
    torn = _serving(home) / str(int(_versions(home)[-1]) + 100)
    shutil.copytree(_serving(home) / version, torn)
    shutil.rmtree(torn / "variables")
    return torn


def _snapshot(root: Path) -> dict:
    """Every path under root with its kind, a file's size and mtime: what "nothing modified" compares
    (but the lock files, which every command that writes takes first: home_lock.py)."""
    found = {}
    for directory, dirs, files in os.walk(root):
        if Path(directory) == root:
            dirs[:] = [d for d in dirs if d != "locks"]
        for name in dirs + files:
            path = Path(directory) / name
            st = path.lstat()
            is_file = name in files  # a folder's mtime moves when a staging copy comes and goes
            found[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_size if is_file else 0,
                                                  st.st_mtime_ns if is_file else 0)
    return found


def _kubetfx(*args, prefix=(), file_size_limit=None, timeout=600):
    def limit():
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([*prefix, sys.executable, "-m", "kubetfx.pipelines.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO,
                          preexec_fn=limit)


def _one_line(result, *words) -> str:
    """The command's error: one `kubetfx: error:` line with `words`, exit 2, no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("kubetfx: error:")]
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def _no_staging(home) -> None:
    assert not [p for p in _serving(home).iterdir() if p.name.startswith(".staging-")]


# --- a torn version -------------------------------------------------------------------

def test_models_monitor_and_rollback_skip_a_torn_version(home):
    first, second = _second_version(home)
    torn = _tear(home, first)
    models = _kubetfx("models", "--home", home, "--json")
    assert models.returncode == 0, models.stderr
    versions = json.loads(models.stdout)["versions"]
    assert [(v["version"], v["serving"]) for v in versions] == [(first, False), (second, True)]
    assert [line for line in models.stderr.splitlines() if str(torn) in line] == [
        f"WARNING skipping model version {torn}: saved_model.pb has variables but variables/ is missing"]

    monitor = _kubetfx("monitor", "--home", home, "--data", PENGUINS)
    assert monitor.returncode == 0, monitor.stdout + monitor.stderr
    assert f"against version {second} of {NAME}" in monitor.stdout

    back = _kubetfx("rollback", first, "--home", home)
    assert back.returncode == 0, back.stdout + back.stderr
    assert back.stdout.rstrip().endswith(f"was {second}")
    history = (_serving(home) / "rollbacks.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["previous_served"] == second


def test_a_torn_version_is_never_the_evaluators_baseline(home):
    (first,) = _versions(home)
    _tear(home, first)
    result = _kubetfx("run", "--home", home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"baseline: served version {first}" in result.stdout


# --- a damaged metadata store -----------------------------------------------------------

def test_a_damaged_metadata_store_is_one_line_for_every_command(home):
    first, second = _second_version(home)
    store = home / "metadata" / f"{NAME}.sqlite"
    os.truncate(store, store.stat().st_size // 2)
    before = _snapshot(home)
    for command in (["models"], ["rollback", first], ["report"], ["monitor", "--data", PENGUINS], ["run"]):
        result = _kubetfx(*command, "--home", home)
        _one_line(result, f"metadata store {store} is damaged", f"mv {store}")
        assert _snapshot(home) == before, command


# --- a read-only home -------------------------------------------------------------------

def test_a_read_only_home_is_one_line_for_every_command(home):
    first, _ = _second_version(home)
    prefix = WITHOUT_ROOTS_OVERRIDE if os.geteuid() == 0 else []
    subprocess.run(["chmod", "-R", "a-w", str(home)], check=True)
    try:
        before = _snapshot(home)
        for command in (["rollback", first], ["report"], ["monitor", "--data", PENGUINS],
                        ["serve", "--port", "0"], ["run"]):
            result = _kubetfx(*command, "--home", home, prefix=prefix)
            _one_line(result, "cannot write", str(home))
            assert _snapshot(home) == before, command
        assert _kubetfx("models", "--home", home, prefix=prefix).returncode == 0  # reading needs no write
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(home)], check=True)


# --- a full disk ------------------------------------------------------------------------

def test_a_full_disk_stops_rollback_without_a_staging_copy_or_a_record(home):
    first, second = _second_version(home)
    before = _snapshot(home)
    limit = (_serving(home) / first / "saved_model.pb").stat().st_size // 2  # the copy cannot finish
    result = _kubetfx("rollback", first, "--home", home, file_size_limit=limit)
    _one_line(result, f"cannot write {_serving(home)}/", "free space")
    _no_staging(home)
    assert _snapshot(home) == before


def test_a_full_disk_stops_run_with_one_line_not_an_error_in_its_error_handler(home):
    limit = 16 * 1024  # the metadata store and the run's log cannot grow
    result = _kubetfx("run", "--home", home, "--no-cache", file_size_limit=limit)
    _one_line(result, str(home / "metadata" / f"{NAME}.sqlite"), "free space")
    _no_staging(home)
    assert "During handling of the above exception" not in result.stderr


def test_a_read_only_metadata_store_stops_rollback_and_unpublishes_its_copy(home):
    """The copy is published before it is recorded; unrecorded, it must not stay served."""
    first, second = _second_version(home)
    store = home / "metadata" / f"{NAME}.sqlite"
    store.chmod(0o444)
    before = _snapshot(home)
    prefix = WITHOUT_ROOTS_OVERRIDE if os.geteuid() == 0 else []
    result = _kubetfx("rollback", first, "--home", home, prefix=prefix)
    _one_line(result, f"metadata store {store} cannot be written", "writable")
    assert _versions(home) == [first, second]
    _no_staging(home)
    assert _snapshot(home) == before
