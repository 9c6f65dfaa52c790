"""The latest output of a stage in a finished run under a kubetfx home, for the benchmarks
that re-run one stage alone on it (trainer_alone.py, transform_alone.py)."""
import glob
import os


def latest(home: str, pattern: str) -> str:
    """The newest `<home>/pipelines/*/<pattern>` by its execution id (the last path part)."""
    paths = sorted(glob.glob(os.path.join(home, "pipelines", "*", pattern)),
                   key=lambda p: int(os.path.basename(p)) if os.path.basename(p).isdigit() else -1)
    if not paths:
        raise SystemExit(f"no {pattern} under {home}/pipelines: run the pipeline first")
    return paths[-1]
