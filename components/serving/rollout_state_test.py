"""rollout.json: written atomically and durably, read back field for field; a malformed,
torn or oversized file never breaks a reader that serves (it means "stable only")."""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import replace

import pytest

from kubetfx.components.serving import rollout_state
from kubetfx.components.serving.rollout_state import RolloutState, RolloutStateError


def test_a_written_state_reads_back_with_unknown_fields_kept(tmp_path):
    state = RolloutState.begin(3, 4, plan=[5, 10, 20, 100], key="feature:user_id")
    state = replace(state, extra={"evidence": {"n": 12}})
    rollout_state.write(tmp_path, state)
    assert sorted(os.listdir(tmp_path)) == ["rollout.json"]  # no temp file left behind
    back = rollout_state.read(tmp_path)
    assert back == state and back.extra == {"evidence": {"n": 12}}
    assert back.key_feature == "user_id" and back.candidate_percent == 5.0 and back.plan == (5, 10, 20, 100)
    on_disk = json.loads((tmp_path / "rollout.json").read_text())
    assert on_disk["stable"] == 3 and on_disk["candidate"] == 4 and on_disk["status"] == "running"


def test_no_file_and_finished_rollouts_read_as_none(tmp_path):
    assert rollout_state.read(tmp_path) is None and rollout_state.load(tmp_path) is None
    state = RolloutState.begin(1, 2)
    for status in ("aborted", "promoted"):
        rollout_state.write(tmp_path, state.with_changes(status=status))
        assert rollout_state.read(tmp_path) is None
        assert rollout_state.load(tmp_path).status == status  # commands still see how it ended


@pytest.mark.parametrize("content, why", [
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 10, "sta', "not JSON"),  # torn
    (b"[1, 2]", "JSON object expected"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 10}', "missing field(s) status"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 101, "status": "running"}', "candidate_percent"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": NaN, "status": "running"}', "candidate_percent"),
    (b'{"stable": "1", "candidate": 2, "candidate_percent": 10, "status": "running"}', "stable must be"),
    (b'{"stable": 1, "candidate": 1, "candidate_percent": 10, "status": "running"}', "both version 1"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 10, "status": "paused"}', "status must be"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 10, "status": "running", "key": "cookie"}', "key must be"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 10, "status": "running", "plan": [20, 5]}', "rise"),
    (b'{"stable": 1, "candidate": 2, "candidate_percent": 10, "status": "running", "bogus_extra": 1, '
     b'"started": "yesterday"}', "ISO time"),
])
def test_a_malformed_file_is_none_for_the_server_and_an_error_for_commands(tmp_path, caplog, content, why):
    (tmp_path / "rollout.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="kubetfx.rollout_state"):
        assert rollout_state.read(tmp_path) is None
        assert rollout_state.read(tmp_path) is None  # re-read at the next poll: not warned again
    (warning,) = [r for r in caplog.records if r.name == "kubetfx.rollout_state"]
    assert why in warning.getMessage() and "serving the stable version only" in warning.getMessage()
    with pytest.raises(RolloutStateError, match="rollout.json"):
        rollout_state.load(tmp_path)


def test_a_file_over_64_kib_is_refused_unread(tmp_path):
    big = {"stable": 1, "candidate": 2, "candidate_percent": 10, "status": "running", "pad": "x" * (64 << 10)}
    (tmp_path / "rollout.json").write_text(json.dumps(big))
    assert rollout_state.read(tmp_path) is None
    with pytest.raises(RolloutStateError, match="larger than 65536 bytes"):
        rollout_state.load(tmp_path)
    state = RolloutState.begin(1, 2)
    with pytest.raises(RolloutStateError, match="over the 65536-byte bound"):
        rollout_state.write(tmp_path, replace(state, extra={"pad": "x" * (64 << 10)}))


def test_an_invalid_state_is_never_written(tmp_path):
    with pytest.raises(RolloutStateError, match="candidate_percent"):
        rollout_state.write(tmp_path, replace(RolloutState.begin(1, 2), candidate_percent=150.0))
    assert os.listdir(tmp_path) == []


def test_readers_see_one_whole_state_while_a_writer_replaces_it(tmp_path):
    """Each write is atomic: 2,000 reads racing 300 writes only ever see a complete state,
    one of those written (its percent and step agree)."""
    base = replace(RolloutState.begin(1, 2, plan=[1, 100]), candidate_percent=0.0)
    rollout_state.write(tmp_path, base)
    done = threading.Event()
    errors = []

    def writer():
        for i in range(300):
            rollout_state.write(tmp_path, replace(base, candidate_percent=float(i % 100),
                                                              step=i % 100, extra={"pad": "y" * (i * 37 % 4000)}))
        done.set()
    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads < 2000:
        try:
            state = rollout_state.load(tmp_path)
        except RolloutStateError as err:  # a torn read would land here
            errors.append(str(err))
            break
        assert state.candidate_percent == state.step
        reads += 1
    thread.join(timeout=60)
    assert errors == [] and reads >= 2000
    assert [n for n in os.listdir(tmp_path) if n != "rollout.json"] == []


def test_a_finished_rollout_pins_its_version_until_a_newer_push():
    running = RolloutState.begin(3, 4)
    assert rollout_state.pinned_version(None, [3, 4]) is None
    assert rollout_state.pinned_version(running, [3, 4]) is None  # routed, not pinned
    aborted = running.with_changes(status="aborted")
    assert rollout_state.pinned_version(aborted, [1, 3, 4]) == 3  # not the highest (4)
    assert rollout_state.pinned_version(aborted, [3, 4, 5]) is None  # a later push is served
    promoted_in_place = running.with_changes(status="promoted")
    assert rollout_state.pinned_version(promoted_in_place, [3, 4]) == 4
    moved = replace(running, stable=4, candidate=None, status="promoted").validate()
    assert rollout_state.pinned_version(moved, [3, 4]) == 4
    assert replace(running, candidate=3, status="promoted").validate().candidate == 3  # same version: allowed once finished
