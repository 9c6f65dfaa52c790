"""A run's log file: what TensorFlow, Beam, absl and user code print goes there, and only
kubetfx's own lines reach the terminal (with --verbose, everything is also shown live).

The noise comes from three places a Python-level redirect does not all reach: Python
`logging`/absl and `warnings` (sys.stderr), `print` in libraries and Keras' progress bars
(sys.stdout), and TensorFlow's C++ logging and the model server subprocess (file
descriptors 1 and 2 directly). So the descriptors themselves are redirected, and kubetfx
writes its own lines to a copy of the terminal's descriptor taken before."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TextIO


class RunLog:
    """Inside `capture`: `terminal` is where kubetfx's own lines go; `path` the log file."""

    def __init__(self, path: Path, terminal: TextIO):
        self.path = path
        self.terminal = terminal

    def write(self, text: str) -> None:
        """Appends `text` to the log file (through the redirected stderr)."""
        sys.stderr.write(text)
        sys.stderr.flush()


def _tee(read_fd: int, log_fd: int, terminal_fd: int) -> None:
    try:
        while chunk := os.read(read_fd, 65536):
            os.write(log_fd, chunk)
            os.write(terminal_fd, chunk)
    except OSError:  # the run is over and its descriptors closed: nothing left to show
        pass
    finally:
        os.close(read_fd)


@contextlib.contextmanager
def capture(path: Path, *, verbose: bool = False, terminal_fd: int = 1):
    """Redirects fds 1 and 2 to `path` (and to the terminal too when `verbose`) for the
    duration; Python logging goes there at INFO, so the log has everything TFX said."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal = os.fdopen(os.dup(saved[terminal_fd]), "w", buffering=1)
    tee = None
    if verbose:
        read_fd, write_fd = os.pipe()
        tee = threading.Thread(target=_tee, args=(read_fd, log_fd, saved[2]), name="run-log-tee", daemon=True)
        tee.start()
        target = write_fd
    else:
        target = log_fd
    for fd in (1, 2):
        os.dup2(target, fd)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    from absl import logging as absl_logging  # TFX and Beam log through absl

    absl_level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        yield RunLog(path, terminal)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        root.setLevel(level)
        absl_logging.set_verbosity(absl_level)
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
        if tee is not None:
            os.close(target)
            # A subprocess still holding the pipe (a model server being stopped) must not
            # hold up the end of the run: what it writes later is lost, nothing else.
            tee.join(timeout=5)
        terminal.close()
        for fd in (*saved.values(), log_fd):
            os.close(fd)
