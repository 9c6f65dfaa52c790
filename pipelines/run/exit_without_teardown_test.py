"""exit_now in a real child process: the exit code, piped output and atexit handlers kept."""
import subprocess
import sys

PROGRAM = """
import atexit
from kubetfx.pipelines.run import exit_without_teardown
atexit.register(lambda: print("atexit ran"))
print("written before exit", end="")  # still in stdout's buffer: a pipe is block-buffered
exit_without_teardown.exit_now(3)
"""


def test_exit_now_keeps_the_code_the_buffered_output_and_atexit_handlers():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout == "written before exitatexit ran\n"
