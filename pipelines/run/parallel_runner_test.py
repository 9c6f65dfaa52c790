"""ParallelDagRunner on real TFX function components, real SQLite MLMD and real files."""
# No `from __future__ import annotations`: TFX reads the component signature's real types.

import _thread
import gc
import json
import signal
import threading
import time
import weakref
from pathlib import Path

import pytest
from tfx import v1 as tfx
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.orchestration import metadata
from tfx.types.standard_artifacts import String

from kubetfx.pipelines.run import freed_memory, parallel_runner
from kubetfx.pipelines.run.parallel_runner import ParallelDagRunner


@tfx.dsl.components.component
def Step(log_dir: Parameter[str], name: Parameter[str], seconds: Parameter[float],
         fail: Parameter[int], meet: Parameter[str], out: OutputArtifact[String]):
    """Records when it ran (start and end, wall clock) in log_dir/name.json. With `meet`,
    waits (up to `seconds`) until that other step has started: it returns only if both
    ran at the same time, which proves overlap without comparing durations."""
    start = time.time()
    Path(log_dir, f"{name}.started").touch()
    if meet:
        if not _appears(Path(log_dir, f"{meet}.started"), seconds):
            raise RuntimeError(f"{name}: {meet} did not start within {seconds} s")
    else:
        time.sleep(seconds)
    if fail:
        raise RuntimeError(f"{name} failed on purpose")
    Path(log_dir, f"{name}.json").write_text(json.dumps({"start": start, "end": time.time()}))


def _appears(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _pipeline(tmp_path: Path, fail_left: bool = False, branch_seconds: float = 1.0,
              meet: bool = False) -> tfx.dsl.Pipeline:
    def step(name, seconds=1.0, fail=False, after=(), other=""):
        node = Step(log_dir=str(tmp_path), name=name, seconds=seconds, fail=int(fail), meet=other).with_id(name)
        for upstream in after:
            node.add_upstream_node(upstream)
        return node

    root = step("root", seconds=0.0)
    left = step("left", seconds=branch_seconds, fail=fail_left, after=[root], other="right" if meet else "")
    right = step("right", seconds=branch_seconds, after=[root], other="left" if meet else "")
    join = step("join", seconds=0.0, after=[left, right])
    return tfx.dsl.Pipeline(
        pipeline_name="parallel", pipeline_root=str(tmp_path / "root"), components=[root, left, right, join],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite")))


# Long enough that no run waits for them by accident, short enough that a runner that does
# wait fails the test in minutes rather than hanging it.
BRANCH_SECONDS = 90.0


def _ran(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_independent_nodes_overlap_and_the_join_waits_for_both(tmp_path):
    # Each branch waits for the other to start: both finish only if they ran side by side.
    ParallelDagRunner(max_workers=2).run(_pipeline(tmp_path, branch_seconds=120.0, meet=True))
    root, left, right, join = (_ran(tmp_path, name) for name in ("root", "left", "right", "join"))
    assert root["end"] <= min(left["start"], right["start"])
    assert join["start"] >= max(left["end"], right["end"])


def test_one_worker_runs_them_one_after_another(tmp_path):
    ParallelDagRunner(max_workers=1).run(_pipeline(tmp_path))
    left, right = _ran(tmp_path, "left"), _ran(tmp_path, "right")
    assert left["end"] <= right["start"] or right["end"] <= left["start"]


def test_a_failed_node_raises_and_nothing_downstream_runs(tmp_path):
    with pytest.raises(RuntimeError, match="left failed on purpose"):
        ParallelDagRunner(max_workers=2).run(_pipeline(tmp_path, fail_left=True))
    assert (tmp_path / "right.json").exists()  # already running: it is let finish
    assert not (tmp_path / "join.json").exists()


def _real_signal():
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def _signal_before_the_wait_blocks():
    # What a Ctrl-C is when it lands after the interpreter's last signal check and before
    # the scheduler's wait blocks: the flag is set, nothing interrupts the wait. Made
    # deterministic by setting only the flag.
    _thread.interrupt_main(signal.SIGINT)


@pytest.fixture
def sigint_as_at_a_terminal():
    """SIGINT raising KeyboardInterrupt and unblocked in the main thread, as in a shell's
    foreground job, restored afterwards. A suite started in the background (`nohup`, `&`,
    many schedulers) inherits SIGINT ignored, and Python then installs no handler."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, handler)


@pytest.mark.parametrize("interrupt", [_real_signal, _signal_before_the_wait_blocks], ids=["sigint", "pending-sigint"])
def test_ctrl_c_ends_the_run_without_waiting_for_running_nodes(tmp_path, interrupt, sigint_as_at_a_terminal):
    # The fixture set the disposition; an earlier test or library that swapped the handler
    # or blocked SIGINT since would make this test fail for a reason that is not the
    # runner's: check both first.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.getsignal(signal.SIGINT)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []), "SIGINT is blocked in the main thread"
    both_running, stop = threading.Event(), threading.Event()

    def interrupt_once_both_branches_run():
        # Both branches' executors have started (not merely been scheduled); bounded wait.
        deadline = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < deadline:
            if (tmp_path / "left.started").exists() and (tmp_path / "right.started").exists():
                both_running.set()
                interrupt()
                return
            time.sleep(0.05)

    interrupter = threading.Thread(target=interrupt_once_both_branches_run, daemon=True)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ParallelDagRunner(max_workers=2).run(_pipeline(tmp_path, branch_seconds=BRANCH_SECONDS))
    finally:
        stop.set()
        interrupter.join(timeout=10)
    assert both_running.is_set()
    # A run that waited for the branches would have raised only after they wrote these.
    assert not (tmp_path / "left.json").exists() and not (tmp_path / "right.json").exists()
    assert not (tmp_path / "join.json").exists()


class _Recorder(parallel_runner.Listener):
    def __init__(self):
        self.events = []

    def started(self, node_id):
        self.events.append(("started", node_id))

    def finished(self, node_id, seconds, state, error):
        self.events.append((state, node_id, type(error).__name__ if error else None))

    def outputs(self, node_id, output_dict):
        self.events.append(("outputs", node_id, sorted(output_dict)))


def test_the_listener_hears_every_start_and_end_and_a_rerun_is_cached(tmp_path):
    def cached_pipeline():
        pipeline = _pipeline(tmp_path, branch_seconds=0.0)
        pipeline.enable_cache = True
        return pipeline

    recorder = _Recorder()
    ParallelDagRunner(max_workers=2, listener=recorder).run(cached_pipeline())
    lifecycle = [e for e in recorder.events if e[0] != "outputs"]
    assert lifecycle[0] == ("started", "root") and lifecycle[1] == ("complete", "root", None)
    assert sorted(e[1] for e in lifecycle if e[0] == "complete") == ["join", "left", "right", "root"]
    assert lifecycle[-1] == ("complete", "join", None)
    # A node's outputs are heard before any node downstream of it starts (the local runner
    # starts the Pusher's ONNX copy from the Trainer's).
    root_outputs = [e for e in recorder.events if e[:2] == ("outputs", "root")]
    assert len(root_outputs) == 1 and root_outputs[0][2]
    assert recorder.events.index(root_outputs[0]) < recorder.events.index(("started", "left"))
    again = _Recorder()
    ParallelDagRunner(max_workers=2, listener=again).run(cached_pipeline())
    assert sorted(e[1] for e in again.events if e[0] == "cached") == ["join", "left", "right", "root"]


def test_a_failed_node_is_heard_and_its_error_kept_on_its_execution(tmp_path):
    from kubetfx.pipelines.report import run_record

    recorder = _Recorder()
    with pytest.raises(RuntimeError):
        ParallelDagRunner(max_workers=2, listener=recorder, run_id="run-1").run(_pipeline(tmp_path, fail_left=True))
    assert ("failed", "left", "RuntimeError") in recorder.events
    record = run_record.read(str(tmp_path / "mlmd.sqlite"), "parallel", "run-1")
    left = record.stage("left")
    assert left.state == "failed" and "RuntimeError: left failed on purpose" in left.error
    assert 'in Step' in left.error and "Traceback (most recent call last)" in left.error
    assert record.stage("root").error is None


class _Garbage:
    """Something a stage leaves behind in a reference cycle (as Keras models and traced
    functions do): freed only by the cyclic collector."""


_LEFT_BEHIND = []  # weak references to what the Leaver stage dropped


@tfx.dsl.components.component
def Leaver(out: OutputArtifact[String]):
    garbage = _Garbage()
    garbage.cycle = garbage
    # Resident (written) bytes, more than makes the runner collect after a stage.
    garbage.payload = b"\x01" * ((freed_memory.COLLECT_AFTER_GROWTH_MB + 64) * 2**20)
    _LEFT_BEHIND.append(weakref.ref(garbage))


@tfx.dsl.components.component
def Checker(out: OutputArtifact[String]):
    if any(ref() is not None for ref in _LEFT_BEHIND):
        raise RuntimeError("the previous stage's garbage is still in memory")


def test_a_stage_garbage_is_collected_before_the_next_stage_runs(tmp_path):
    """The run is one process: what a stage dropped must not stay resident under the next
    (the wide table's Trainer leftovers under the Evaluator and the model server)."""
    leaver = Leaver().with_id("leaver")
    checker = Checker().with_id("checker")
    checker.add_upstream_node(leaver)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="garbage", pipeline_root=str(tmp_path / "root"), components=[leaver, checker],
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite")))
    _LEFT_BEHIND.clear()
    gc.disable()  # only the runner may collect: the interpreter's own timing is chance
    try:
        ParallelDagRunner(max_workers=1).run(pipeline)
    finally:
        gc.enable()
    assert len(_LEFT_BEHIND) == 1 and _LEFT_BEHIND[0]() is None


def test_release_after_a_small_stage_only_trims():
    """No full collection (a walk over every live object) after a stage that grew nothing."""
    assert freed_memory.release_after(freed_memory.resident_mb())["collected"] is None
    assert freed_memory.release_after(0.0)["collected"] is not None
