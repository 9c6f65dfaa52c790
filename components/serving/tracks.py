"""The model server's two tracks during a staged rollout: which loaded versions answer the
requests that name no version, re-decided at every poll from `rollout.json`
(rollout_state.py), so that the version follower's rule (the highest valid version,
version_follower.py) applies only when no rollout says otherwise.

A poll publishes one immutable Routing (or None: the follower's version answers), and a
request reads `routing` once, so it is routed by one consistent state even while the
next poll replaces it:
- a running rollout: the stable and the candidate version, both valid versions, loaded
  side by side; each request goes to one by traffic_split.track_for. A candidate that is
  not on disk yet, is incomplete or fails to load gets no traffic: stable answers all of
  it, and the reason is logged once and shown in the model status (`note`);
- a finished rollout whose version is not the highest (after an abort: stable,
  rollout_state.pinned_version): that version answers everything, at once, as it stayed
  loaded;
- a state file that does not read (malformed, torn, oversized): the version that answered
  unrouted requests under the last state that did read keeps answering all of them
  (stable); None when no state ever read;
- anything else, including a stable version that is not valid here: None.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from kubetfx.components.serving import rollout_state, traffic_split
from kubetfx.components.serving.rollout_state import RolloutState
from kubetfx.components.serving.version_follower import LoadedVersion, VersionState, files_stamp, version_dirs

log = logging.getLogger("kubetfx.model_server")
STABLE, CANDIDATE = traffic_split.STABLE, traffic_split.CANDIDATE


@dataclass(frozen=True, eq=False)
class Routing:
    stable: LoadedVersion
    candidate: LoadedVersion | None = None
    state: RolloutState | None = None   # the running rollout; None: stable answers all
    note: str = ""                      # why the candidate gets no traffic (while a rollout runs)
    unreadable: bool = False            # the state file does not read: the last stable answers

    def choose(self, key: str | None) -> tuple[LoadedVersion, str]:
        """(the version, its track) for a request with this routing key."""
        if self.candidate is None or self.state is None:
            return self.stable, STABLE
        track = traffic_split.track_for(key, self.state.candidate_percent, self.candidate.version)
        return (self.candidate, track) if track == CANDIDATE else (self.stable, track)

    def track_of(self, version: int) -> str:
        return CANDIDATE if self.candidate is not None and self.candidate.version == version else STABLE

    def find(self, version: int) -> LoadedVersion | None:
        for loaded in (self.stable, self.candidate):
            if loaded is not None and loaded.version == version:
                return loaded
        return None

    def describe(self) -> tuple:
        state = self.state
        return (self.stable.version, self.candidate and self.candidate.version,
                state and (state.status, state.candidate_percent, state.key), self.unreadable)

    def summary(self) -> dict:
        """What GET /v1/models/NAME adds to TF Serving's status while a routing holds."""
        state = self.state
        return {"status": state.status if state else "unreadable" if self.unreadable else "finished",
                "stable": str(self.stable.version),
                "candidate": str(state.candidate) if state and state.candidate is not None else None,
                "candidate_percent": state.candidate_percent if state else 0.0,
                "candidate_serving": self.candidate is not None and state is not None,
                "key": state.key if state else None,
                "note": self.note}


Loader = Callable[[int, str], LoadedVersion]


class TrackFollower:
    """Follows `<base_path>/rollout.json`; poll() publishes `routing`. Loads through
    `loader`; versions the follower has loaded already are passed in and reused."""

    def __init__(self, base_path: str, loader: Loader):
        self.base_path = base_path
        self._loader = loader
        self.routing: Routing | None = None
        self._loaded: dict[int, tuple[tuple, LoadedVersion]] = {}   # stable and candidate only
        self._failed: dict[int, tuple[tuple, str, Exception]] = {}
        self._said: set = set()   # (version, reason) already logged: once, not at every poll
        self._last_stable: int | None = None  # answered unrouted requests under the last state that read

    def status(self) -> dict[int, VersionState]:
        """The tracks' versions as TF Serving reports them (overrides the follower's view)."""
        states = {v: VersionState("END", error=f"version {v} {why}") for v, (_, why, _) in list(self._failed.items())}
        routing = self.routing
        if routing is not None:
            for loaded in (routing.stable, routing.candidate):
                if loaded is not None:
                    states[loaded.version] = VersionState("AVAILABLE")
        return states

    def poll(self, available: tuple = ()) -> None:
        """One step. `available`: versions loaded elsewhere (the follower's), reused as is."""
        try:
            state = rollout_state.load(self.base_path)
        except rollout_state.RolloutStateError as err:
            rollout_state.warn_once(self.base_path, err)
            return self._keep_stable(f"{rollout_state.FILE_NAME} does not read: {err}")
        rollout_state.warn_once(self.base_path, None)
        on_disk = version_dirs(self.base_path) if state is not None else {}
        if state is None:
            self._last_stable = None
            return self._publish(None, [])
        if state.running:
            wanted = [state.stable] + ([state.candidate] if state.candidate is not None else [])
        else:
            pinned = rollout_state.pinned_version(state, on_disk)
            if pinned is None:
                self._last_stable = None
                return self._publish(None, [])
            wanted = [pinned]
        self._last_stable = wanted[0]
        stable, why = self._get(wanted[0], on_disk, available)
        if stable is None:
            self._say(wanted[0], f"rollout.json names version {wanted[0]} to serve, but it {why}: "
                                 f"serving as without a rollout (the highest valid version)")
            return self._publish(None, wanted)
        if not state.running:
            return self._publish(Routing(stable), wanted)
        if len(wanted) == 1:
            return self._publish(Routing(stable, None, state), wanted)
        if self.routing is None or self.routing.stable is not stable:
            # stable answers alone while the candidate loads (seconds): never the follower's
            # highest version, which may be the candidate itself
            self._publish(Routing(stable, None, state, note=f"candidate version {wanted[1]} loading"), wanted)
        candidate, why = self._get(wanted[1], on_disk, available)
        note = ""
        if candidate is None:
            note = f"candidate version {wanted[1]} {why}: all traffic to stable version {stable.version}"
            self._say(wanted[1], note)
        self._publish(Routing(stable, candidate, state, note), wanted)

    def loaded(self, version: int, path: str) -> LoadedVersion | None:
        """The version as a track holds it, when its files are unchanged (the follower
        reuses it instead of loading the same SavedModel twice); the exception it failed
        with is raised again (instead of a second load that fails the same way)."""
        stamp = files_stamp(path)
        kept = self._loaded.get(version)
        if kept is not None and kept[1].path == path and kept[0] == stamp:
            return kept[1]
        failed = self._failed.get(version)
        if failed is not None and failed[0] == stamp:
            raise failed[2]
        return None

    def _keep_stable(self, why: str) -> None:
        routing = self.routing
        if routing is None or self._last_stable is None:
            return self._publish(None, [])
        stable = routing.find(self._last_stable)
        if stable is None:
            return self._publish(None, [])
        self._publish(Routing(stable, None, None, note=why, unreadable=True), [stable.version])

    def _get(self, version: int, on_disk: dict, available: tuple) -> tuple[LoadedVersion | None, str]:
        path = on_disk.get(version)
        if path is None:
            return None, "is not a valid version in the serving directory (absent or incomplete)"
        stamp = files_stamp(path)
        kept = self._loaded.get(version)
        if kept is not None and kept[0] == stamp:
            return kept[1], ""
        reused = next((v for v in available if v is not None and v.version == version and v.path == path), None)
        if reused is not None:
            self._loaded[version] = (stamp, reused)
            return reused, ""
        failed = self._failed.get(version)
        if failed is not None and failed[0] == stamp:
            return None, failed[1]  # retried only when its files change, as the follower does
        log.info("Loading version %d from %s for the rollout", version, path)
        try:
            loaded = self._loader(version, path)
        except Exception as err:  # noqa: BLE001 - any load failure is reported, never served
            why = f"failed to load: {type(err).__name__}: {err}".strip()[:2000]
            self._failed[version] = (stamp, why, err)
            return None, why
        self._failed.pop(version, None)
        self._loaded[version] = (stamp, loaded)
        return loaded, ""

    def _say(self, version: int, message: str) -> None:
        if (version, message) not in self._said:
            self._said.add((version, message))
            log.warning("%s", message)

    def _publish(self, routing: Routing | None, wanted: list) -> None:
        previous, self.routing = self.routing, routing
        before = previous.describe() if previous else None
        if (routing.describe() if routing else None) != before:
            if routing is None:
                if previous is not None:
                    log.info("No rollout routes requests: the highest valid version answers")
            elif routing.state is None:
                log.info("%s: version %d answers every request", "Rollout state unreadable" if routing.unreadable
                         else "Rollout finished", routing.stable.version)
            elif routing.candidate is not None:
                log.info("Rollout: %.4g%% of requests to candidate version %d, the rest to stable version %d",
                         routing.state.candidate_percent, routing.candidate.version, routing.stable.version)
        # hold only what the state names: a finished rollout's versions are released with it
        for version in [v for v in self._loaded if v not in wanted]:
            del self._loaded[version]
        for version in [v for v in self._failed if v not in wanted]:
            del self._failed[version]
        if len(self._said) > 64:  # bounded: an old reason may be said again, which is harmless
            self._said.clear()
