"""Ending the `kubetfx` process as soon as its work and output are done.

After a run, CPython's own teardown (clearing every module of TensorFlow, Beam and TFX,
their objects, then native destructors) took 2.2-2.9 s on 2 cores with nothing left to
save: 15% of a run on the embedded data, waited for by every user. The atexit handlers
still run (logging's flush, weakref finalizers such as temporary directories' cleanup);
then the process ends without the teardown. Only the console command and the bench's
runner exit so; code that calls `cli.main` in-process (tests) is not affected."""
from __future__ import annotations

import atexit
import os
import sys


def exit_now(code: int) -> None:
    """Runs the atexit handlers, flushes stdout and stderr, and ends the process with code."""
    # CPython's atexit module runs and clears its handlers here, as at a normal exit
    # (Lib/atexit: _run_exitfuncs); os._exit then skips only the interpreter's teardown.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
