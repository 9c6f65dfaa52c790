"""Which pipelines a home holds, and which one ran last: the default of the follow-up
commands (`report`, `serve`, `monitor`, `models`, `rollback`) when --name is not given, so
that after `kubetfx run --data trips.csv` (pipeline kubetfx-trips) they look at that run,
not at the embedded penguins' pipeline; and the list a "not found" error shows.

A pipeline is in the home when it left a metadata store, a pipeline root or a serving
directory there (config.py's layout). Its last run is the newest run log
(`<home>/logs/<name>/<run id>.log`, run/run_log.py), else its pipeline root's time (the
container engine keeps its logs elsewhere); the metadata store's time is not used, since
`monitor` and `rollback` write there too."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

_RUN_LOG = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T.*\.log\Z")  # a run id is an ISO time
_MAX_NAMES = 1000  # a home is not a directory of everything; the bound keeps a listing short


def _names(folder: Path, suffix: str = "") -> set:
    """Folders (or, with a suffix, files ending so, without it) directly in `folder`."""
    try:
        entries = sorted(folder.iterdir())[:_MAX_NAMES]
    except OSError:
        return set()
    if suffix:
        return {p.name[: -len(suffix)] for p in entries if p.name.endswith(suffix) and p.is_file()}
    return {p.name for p in entries if p.is_dir() and not p.name.startswith(".")}


def pipelines(home) -> list[str]:
    """The pipelines in the home, sorted by name."""
    home = Path(home)
    return sorted(_names(home / "metadata", ".sqlite") | _names(home / "pipelines") | _names(home / "serving"))


def _last_run(home: Path, name: str) -> float:
    try:
        logs = [p.stat().st_mtime for p in (home / "logs" / name).iterdir() if _RUN_LOG.match(p.name)]
    except OSError:
        logs = []
    if logs:
        return max(logs)
    try:
        return (home / "pipelines" / name).stat().st_mtime
    except OSError:
        return 0.0


def latest(home) -> Optional[str]:
    """The pipeline of the latest run in the home (the only one, if one), or None."""
    home = Path(home)
    names = pipelines(home)
    if len(names) <= 1:
        return names[0] if names else None
    return max(names, key=lambda name: (_last_run(home, name), name))


def default_name(home, given: Optional[str], fallback: str) -> str:
    """--name when given, else the latest pipeline of the home, else `fallback`."""
    return given or latest(home) or fallback


def listing(home) -> str:
    """For a "not found" error: which pipelines the home holds."""
    names = pipelines(home)
    if not names:
        return f"no pipeline has run in {home}: run `kubetfx run` first"
    return f"pipelines in {home}: {', '.join(names)} (pick one with --name)"
