"""The rollout state of one serving directory: which version is stable, which is the
candidate and what share of traffic it gets, in `<serving_dir>/rollout.json`.

It exists so that the three parts of a staged rollout agree through one small file:
`kubetfx rollout` writes it (start, advance, promote, abort), the model server
(model_server.py) and the logging proxy read it at every poll and route by it
(traffic_split.py). It sits beside the integer version folders, where TF Serving and
version_follower.py ignore it (not an integer name).

    {"stable": 3, "candidate": 4, "candidate_percent": 10.0, "step": 1,
     "plan": [5, 10, 20, 100], "started": "2026-12-04T13:50:00+00:00",
     "updated": "2026-12-04T14:10:00+00:00", "status": "running", "key": "header"}

`key` says how a request is made sticky: "header" (its X-Request-Key) or
"feature:<name>" (that feature of its first instance). Fields this module does not know
are kept (`extra`) and written back, so a writer may record more without a change here.

Readers that serve (read(), current()) never fail on the file: a missing one, a finished
rollout or a malformed, torn or oversized file all mean "no routing", the last with one
warning per bad file content; commands call load(), which says what is wrong. Writers
(write()) replace it atomically: a reader sees the old state or the new one, never a
mixture. A finished rollout still decides what unrouted requests meet (pinned_version():
after an abort the stable version, though the aborted candidate is the highest on disk).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import math
import os
import secrets
from dataclasses import dataclass, field

log = logging.getLogger("kubetfx.rollout_state")
FILE_NAME = "rollout.json"
MAX_BYTES = 64 << 10           # a state is a few hundred bytes; anything larger is not one
DEFAULT_PLAN = (5.0, 10.0, 20.0, 100.0)
STATUSES = ("running", "promoted", "aborted")
KNOWN = ("stable", "candidate", "candidate_percent", "step", "plan", "started", "updated", "status", "key")


class RolloutStateError(ValueError):
    """rollout.json is not a rollout state (the message names the file and the field)."""


def now() -> str:
    """The current UTC time as the state's timestamps are written."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RolloutState:
    stable: int
    candidate: int | None
    candidate_percent: float = 0.0
    step: int = 0
    plan: tuple = DEFAULT_PLAN
    started: str = ""
    updated: str = ""
    status: str = "running"
    key: str = "header"
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def begin(cls, stable: int, candidate: int, plan=DEFAULT_PLAN, key: str = "header") -> RolloutState:
        """A running rollout at the first step of `plan`."""
        stamp = now()
        plan = tuple(float(p) for p in plan)
        return cls(stable, candidate, plan[0] if plan else 0.0, 0, plan, stamp, stamp, "running", key).validate()

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def key_feature(self) -> str | None:
        """The feature name when requests are keyed by a feature, else None (the header)."""
        return self.key[len("feature:"):] if self.key.startswith("feature:") else None

    def with_changes(self, **changes) -> RolloutState:
        """A copy with `changes` and `updated` set to now (validated)."""
        return dataclasses.replace(self, **{"updated": now(), **changes}).validate()

    def validate(self) -> RolloutState:
        """self, or RolloutStateError naming the first field that is not as specified."""
        def version(name, value, optional=False):
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RolloutStateError(f"{name} must be a version number (a non-negative integer), got {value!r}")
        version("stable", self.stable)
        version("candidate", self.candidate, optional=True)
        if self.running and self.candidate is not None and self.candidate == self.stable:
            raise RolloutStateError(f"candidate and stable are both version {self.stable}")
        if not _number(self.candidate_percent) or not 0 <= self.candidate_percent <= 100:
            raise RolloutStateError(f"candidate_percent must be a number in 0..100, got {self.candidate_percent!r}")
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 0:
            raise RolloutStateError(f"step must be a non-negative integer, got {self.step!r}")
        if not isinstance(self.plan, (list, tuple)) or not all(_number(p) and 0 < p <= 100 for p in self.plan):
            raise RolloutStateError(f"plan must be a list of percentages in (0, 100], got {self.plan!r}")
        if list(self.plan) != sorted(self.plan):
            raise RolloutStateError(f"plan must rise step by step, got {list(self.plan)}")
        for name in ("started", "updated"):
            value = getattr(self, name)
            if value:
                try:
                    datetime.datetime.fromisoformat(value)
                except (TypeError, ValueError):
                    raise RolloutStateError(f"{name} must be an ISO time, got {value!r}") from None
        if self.status not in STATUSES:
            raise RolloutStateError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if not isinstance(self.key, str) or not (self.key == "header" or
                                                 (self.key.startswith("feature:") and len(self.key) > 8)):
            raise RolloutStateError(f'key must be "header" or "feature:<name>", got {self.key!r}')
        return self

    def to_dict(self) -> dict:
        fields = {name: getattr(self, name) for name in KNOWN}
        fields["plan"] = [float(p) for p in self.plan]
        fields["candidate_percent"] = float(self.candidate_percent)
        return {**self.extra, **fields}

    @classmethod
    def from_dict(cls, payload) -> RolloutState:
        if not isinstance(payload, dict):
            raise RolloutStateError(f"a JSON object expected, got {type(payload).__name__}")
        missing = [name for name in ("stable", "candidate", "candidate_percent", "status") if name not in payload]
        if missing:
            raise RolloutStateError(f"missing field(s) {', '.join(missing)}")
        known = {name: payload[name] for name in KNOWN if name in payload}
        if isinstance(known.get("plan"), list):
            known["plan"] = tuple(known["plan"])
        extra = {k: v for k, v in payload.items() if k not in KNOWN}
        return cls(**known, extra=extra).validate()


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def path(serving_dir) -> str:
    return os.path.join(os.fspath(serving_dir), FILE_NAME)


def load(serving_dir) -> RolloutState | None:
    """The state in the file, whatever its status; None when there is no file;
    RolloutStateError when it is malformed, torn or over MAX_BYTES (for commands that must
    say so; the serving path calls read())."""
    file = path(serving_dir)
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RolloutStateError(f"{file}: cannot be read: {err}") from None
    if len(data) > MAX_BYTES:
        raise RolloutStateError(f"{file}: larger than {MAX_BYTES} bytes, not a rollout state")
    try:
        payload = json.loads(data)
    except ValueError as err:
        raise RolloutStateError(f"{file}: not JSON ({err})") from None
    try:
        return RolloutState.from_dict(payload)
    except (RolloutStateError, TypeError) as err:
        raise RolloutStateError(f"{file}: {err}") from None


# The last bad content warned about, per file: the server re-reads every poll, and one
# warning per bad version of the file is enough (bounded: one entry per serving dir).
_warned: dict[str, str] = {}


def current(serving_dir) -> RolloutState | None:
    """The state of any status, or None: no file, or one that is not a state (logged once
    per bad content, as read() does). Never raises on the file: what the server follows."""
    try:
        state = load(serving_dir)
    except RolloutStateError as err:
        warn_once(serving_dir, err)
        return None
    warn_once(serving_dir, None)
    return state


def warn_once(serving_dir, err: RolloutStateError | None) -> None:
    """Logs that the state file is bad, once per bad content (readers poll it every
    second); err None: it read well, so the next bad content is said again."""
    file, message = path(serving_dir), str(err)
    if err is None:
        _warned.pop(file, None)
        return
    if _warned.get(file) != message:
        _warned[file] = message
        log.warning("%s; serving the stable version only", message)


def read(serving_dir) -> RolloutState | None:
    """The running rollout, or None: no file, a finished rollout (promoted, aborted), or a
    file that is not a state (logged once per bad content). Never raises on the file."""
    state = current(serving_dir)
    return state if state is not None and state.running else None


def pinned_version(state: RolloutState | None, valid_versions) -> int | None:
    """The version that answers every request not routed by a running rollout, when it is
    not the highest valid one: after an abort the stable version (the aborted candidate is
    the highest), after a promote the promoted one (`candidate`, or `stable` when the
    promote moved it there), each until a version newer than both is published (a later
    push supersedes a finished rollout, as it would without one). None: the highest valid
    version answers (no state, a running one, or a superseded one)."""
    if state is None or state.running:
        return None
    newest = max(v for v in (state.stable, state.candidate) if v is not None)
    if any(v > newest for v in valid_versions):
        return None
    if state.status == "aborted":
        return state.stable
    return state.candidate if state.candidate is not None else state.stable


def serving_version(serving_dir) -> str | None:
    """The version everybody not routed to a candidate meets, None when none is whole: the
    stable one during a rollout, the pinned one after it (pinned_version), else the
    highest valid one. The one answer the Evaluator's baseline, `models`, `rollback` and
    the monitor give to "what is served", so an aborted candidate (the highest on disk)
    is never taken for it."""
    from kubetfx.components.serving import valid_version

    versions = valid_version.versions(serving_dir)
    if not versions:
        return None
    state = current(serving_dir)
    if state is not None and state.running:
        chosen = state.stable if state.stable in versions else None
    else:
        chosen = pinned_version(state, versions)
    return str(chosen if chosen in versions else versions[-1])


def write(serving_dir, state: RolloutState) -> None:
    """Replaces the state file atomically and durably (temp file, fsync, os.replace, fsync
    of the folder); RolloutStateError for a state that is not valid or would be over MAX_BYTES."""
    state.validate()
    data = (json.dumps(state.to_dict(), indent=1, sort_keys=True) + "\n").encode()
    if len(data) > MAX_BYTES:
        raise RolloutStateError(f"rollout state of {len(data)} bytes is over the {MAX_BYTES}-byte bound")
    folder = os.fspath(serving_dir)
    temporary = os.path.join(folder, f".{FILE_NAME}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path(folder))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)

