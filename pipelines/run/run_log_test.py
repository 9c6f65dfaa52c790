"""run_log.capture in a real child process: what libraries write to fds 1 and 2 (C-level
writes included) lands in the log, kubetfx's own lines on the terminal."""
from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import logging, os, sys, warnings
    from pathlib import Path
    from kubetfx.pipelines.run import run_log

    logging.basicConfig(level=logging.WARNING)
    with run_log.capture(Path(sys.argv[1]), verbose=sys.argv[2] == "1") as log:
        log.terminal.write("ours: stage started\\n")
        os.write(2, b"E external/cuda_dnn.cc:10575] Unable to register cuDNN factory\\n")
        print("300/300 - 2s - loss: 0.03")
        logging.getLogger("absl").info("Component Trainer is running.")
        warnings.warn("deprecated thing", DeprecationWarning if False else FutureWarning)
        subprocess_line = os.system("echo model server says hi >&2")
    print("ours: summary")
""")


def _run(tmp_path, verbose: bool):
    log = tmp_path / "logs" / "run.log"
    result = subprocess.run([sys.executable, "-c", CHILD, str(log), "1" if verbose else "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result, log.read_text()


def test_library_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path):
    result, log = _run(tmp_path, verbose=False)
    assert result.stdout == "ours: stage started\nours: summary\n"
    assert result.stderr == ""
    for line in ("cuDNN factory", "300/300", "Component Trainer is running.", "FutureWarning: deprecated thing",
                 "model server says hi"):
        assert line in log, line
    assert "ours:" not in log


def test_verbose_shows_the_library_output_live_and_still_logs_it(tmp_path):
    result, log = _run(tmp_path, verbose=True)
    assert "ours: stage started" in result.stdout and "ours: summary" in result.stdout
    for line in ("cuDNN factory", "300/300", "Component Trainer is running.", "model server says hi"):
        assert line in log and line in result.stderr, line
