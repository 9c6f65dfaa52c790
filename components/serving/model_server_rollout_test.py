"""The model server's two tracks with real SavedModels on loopback (issue 26): one server
for the module, its serving directory's rollout.json rewritten test by test. Version 1
scales x by 1 (stable), version 2 by 2 (candidate), so every answer proves which version
computed it, besides its X-Model-Version and X-Model-Track headers."""
from __future__ import annotations

import base64
import concurrent.futures
import json
import logging
import math
import os
import shutil
import threading
import urllib.error
import urllib.request
from dataclasses import replace

import pytest
import tensorflow as tf

from kubetfx.components.serving import model_server, rollout_state, traffic_split
from kubetfx.components.serving.rollout_state import RolloutState
from kubetfx.pipelines.serving import inference_log
from testing_models import example, save_scaler, wait_for

pytestmark = [pytest.mark.serving]
POLL = 0.1


class Served:
    def __init__(self, base, server, url, log_dir):
        self.base, self.server, self.url, self.log_dir = base, server, url, log_dir

    def state(self, state: RolloutState | None) -> None:
        """Writes (or removes) rollout.json and waits until the server routes by it."""
        if state is None:
            (self.base / "rollout.json").unlink(missing_ok=True)
            wait_for(lambda: "rollout" not in status(self.url), timeout=30, what="the rollout to end")
            return
        rollout_state.write(self.base, state)
        expected = "finished" if not state.running else state.status

        def routed():
            summary = status(self.url).get("rollout") or {}
            return summary.get("status") == expected and (not state.running or (
                summary.get("candidate_percent") == state.candidate_percent and
                summary.get("candidate") == str(state.candidate) and summary.get("key") == state.key))
        wait_for(routed, timeout=60, what=f"the server to route by {state}")


def publish(base, number: int, model) -> None:
    """As our Pusher does: a staging copy renamed into place."""
    staging = base / f".staging-{number}"
    shutil.copytree(model, staging)
    os.rename(staging, base / str(number))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollout")
    models = root / "models"
    base = root / "serving"
    base.mkdir()
    for number in (1, 2):
        publish(base, number, save_scaler(models / str(number), float(number)))
    log = inference_log.InferenceLog(root / "log", features=lambda version: {"x"})
    server = model_server.ModelServer(str(base), "m", poll_seconds=POLL, on_request=log)
    port = server.start(0)
    try:
        server.wait_until_available(120)
        yield Served(base, server, f"http://127.0.0.1:{port}/v1/models/m", root / "log")
    finally:
        server.shutdown()
        log.close()


def status(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def predict(url: str, key: str | None = None, instance=None, request_id: str | None = None) -> tuple[str, int, float, dict]:
    """(track, version, the scaled answer, headers) of one predict of x = 1."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[traffic_split.KEY_HEADER] = key
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    body = json.dumps({"instances": [instance or {"b64": base64.b64encode(example(1.0)).decode()}]}).encode()
    request = urllib.request.Request(f"{url}:predict", data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        answer, headers = json.loads(response.read()), dict(response.headers)
    scaled = answer["predictions"][0]["scaled"][0]
    assert int(answer["model_version"]) == int(headers["X-Model-Version"])
    return headers["X-Model-Track"], int(headers["X-Model-Version"]), scaled, headers


def many(url: str, keys: list) -> list:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda key: predict(url, key)[:3], keys))


def at(percent: float, key: str = "header", stable: int = 1, candidate: int = 2) -> RolloutState:
    return replace(RolloutState.begin(stable, candidate, key=key), candidate_percent=float(percent))


def test_without_a_rollout_file_the_highest_version_answers_as_stable(served):
    served.state(None)
    track, version, scaled, _ = predict(served.url, "anyone")
    assert (track, version, scaled) == ("stable", 2, 2.0)
    assert "rollout" not in status(served.url)


def test_the_same_key_meets_the_same_track_and_raising_the_percent_moves_only_new_keys(served):
    served.state(at(10))
    keys = [f"user-{i}" for i in range(40)]
    first = {}
    for key in keys:
        seen = {predict(served.url, key)[:3] for _ in range(5)}
        assert len(seen) == 1, (key, seen)  # sticky, and track, version and answer agree
        (first[key],) = seen
        assert first[key] in {("stable", 1, 1.0), ("candidate", 2, 2.0)}
    same = [predict(served.url, "one caller")[0] for _ in range(200)]
    assert len(set(same)) == 1
    served.state(at(50))
    for key in keys:
        track = predict(served.url, key)[0]
        expected = "candidate" if traffic_split.bucket(key, 2) < 50 else "stable"
        assert track == expected
        if first[key][0] == "candidate":
            assert track == "candidate"  # nobody who met the candidate goes back
        elif track == "candidate":
            assert 10 <= traffic_split.bucket(key, 2) < 50  # only keys between the thresholds move


def test_the_observed_split_of_2000_keyed_requests_is_within_binomial_bounds(served):
    served.state(at(10))
    answers = many(served.url, [f"caller-{i}" for i in range(2000)])
    to_candidate = sum(track == "candidate" for track, _, _ in answers)
    assert all((track, version, scaled) in {("stable", 1, 1.0), ("candidate", 2, 2.0)}
               for track, version, scaled in answers)
    half_width = 3.29 * math.sqrt(0.1 * 0.9 * 2000)  # 99.9% two-sided, normal approximation
    assert abs(to_candidate - 200) < half_width, to_candidate


def test_track_version_and_request_id_are_in_the_headers_and_in_the_log(served):
    served.state(at(50))
    sent = {}
    for i in range(30):
        track, version, _, headers = predict(served.url, f"logged-{i}", request_id=f"req-{i}")
        assert headers["X-Request-Id"] == f"req-{i}"
        sent[f"req-{i}"] = (track, version)
    assert {track for track, _ in sent.values()} == {"stable", "candidate"}
    logged = {}
    for record in inference_log.read_examples(served.log_dir):
        feature = tf.train.Example.FromString(record).features.feature
        request_id = feature["request_id"].bytes_list.value[0].decode()
        if request_id in sent:
            logged[request_id] = (feature["track"].bytes_list.value[0].decode(),
                                  feature["model_version"].int64_list.value[0])
    assert logged == sent


def test_a_url_naming_a_version_is_never_rerouted_and_metadata_is_stables(served):
    served.state(at(50))
    assert {status(f"{served.url}/metadata")["model_spec"]["version"] for _ in range(20)} == {"1"}
    keys = [f"pinned-{i}" for i in range(20)]
    body = json.dumps({"instances": [{"b64": base64.b64encode(example(1.0)).decode()}]}).encode()
    for version, track in ((1, "stable"), (2, "candidate")):
        for key in keys:
            request = urllib.request.Request(f"{served.url}/versions/{version}:predict", data=body,
                                             headers={traffic_split.KEY_HEADER: key})
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.headers["X-Model-Version"] == str(version)
                assert response.headers["X-Model-Track"] == track
                assert json.loads(response.read())["predictions"][0]["scaled"] == [float(version)]


def test_a_feature_key_routes_by_the_first_instance_whatever_the_header(served):
    served.state(at(50, key="feature:n"))
    for n in range(12):
        expected = "candidate" if traffic_split.bucket(str(n), 2) < 50 else "stable"
        for header in ("a", "b", None):
            assert predict(served.url, header, instance={"x": 1.0, "n": n})[0] == expected


def test_an_abort_sends_all_traffic_to_stable_at_the_next_poll(served):
    served.state(at(50))
    keys = [f"abort-{i}" for i in range(60)]
    assert {track for track, _, _ in many(served.url, keys)} == {"stable", "candidate"}
    stable = served.server.tracks.routing.stable
    served.state(at(50).with_changes(status="aborted"))
    # the stable version stayed loaded: no load between the poll and the switch
    assert served.server.tracks.routing.stable is stable
    assert set(many(served.url, keys)) == {("stable", 1, 1.0)}
    assert status(served.url)["rollout"]["status"] == "finished"


@pytest.mark.parametrize("content", [b'{"stable": 1, "candidate": 2, "candidate_percent": 5', b"\x00" * 10,
                                     b'{"stable": 1, "candidate": 2, "candidate_percent": 500, "status": "running"}'])
def test_a_malformed_or_torn_state_serves_the_last_stable_only(served, caplog, content):
    served.state(at(50))
    with caplog.at_level(logging.WARNING, logger="kubetfx.rollout_state"):
        (served.base / "rollout.json").write_bytes(content)
        wait_for(lambda: status(served.url).get("rollout", {}).get("status") == "unreadable",
                 timeout=60, what="the bad state to be noticed")
        assert set(many(served.url, [f"torn-{i}" for i in range(40)])) == {("stable", 1, 1.0)}
        threading.Event().wait(5 * POLL)  # several polls of the same bad file
    warnings = [r for r in caplog.records if r.name == "kubetfx.rollout_state"]
    assert len(warnings) == 1 and "serving the stable version only" in warnings[0].getMessage()


def test_a_candidate_published_after_its_state_never_answers_unrouted_stable_keys(served, tmp_path):
    stable_keys = [k for k in (f"early-{i}" for i in range(400)) if traffic_split.bucket(k, 4) >= 50][:20]
    served.state(at(50, candidate=4))
    assert "candidate version 4 is not a valid version" in status(served.url)["rollout"]["note"]
    assert {predict(served.url, key)[1] for key in stable_keys} == {1}
    stop, seen = threading.Event(), []

    def traffic():
        while not stop.is_set():
            seen.extend(predict(served.url, key)[1] for key in stable_keys)
    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        publish(served.base, 4, save_scaler(tmp_path / "4", 4.0))
        wait_for(lambda: served.server.versions.serving is not None and served.server.versions.serving.version == 4,
                 timeout=120, what="the follower to load version 4 (the highest)")
        wait_for(lambda: status(served.url)["rollout"]["candidate_serving"], timeout=60,
                 what="version 4 to get traffic")
        assert {version for _, version, _ in many(served.url, [f"late-{i}" for i in range(40)])} == {1, 4}
    finally:
        stop.set()
        thread.join(timeout=60)
    assert seen and set(seen) == {1}  # stable's callers never met version 4, even while it loaded
    shutil.rmtree(served.base / "4")


def test_a_candidate_that_fails_to_load_leaves_stable_serving_and_says_so_once(served, caplog, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(served.base / "2", broken)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    with caplog.at_level(logging.WARNING, logger="kubetfx.model_server"):
        publish(served.base, 3, broken)
        try:
            served.state(at(50, candidate=3))

            def failed():
                return "failed to load" in status(served.url)["rollout"]["note"]
            wait_for(failed, timeout=60, what="the candidate's failure in the status")
            threading.Event().wait(5 * POLL)
            assert set(many(served.url, [f"broken-{i}" for i in range(40)])) == {("stable", 1, 1.0)}
            answer = status(served.url)
            (version_3,) = [s for s in answer["model_version_status"] if s["version"] == "3"]
            assert version_3["state"] == "END" and "failed to load" in version_3["status"]["error_message"]
            assert answer["rollout"]["candidate_serving"] is False
        finally:
            shutil.rmtree(served.base / "3")
            served.state(None)
    said = [r for r in caplog.records if "candidate version 3" in r.getMessage()]
    assert len(said) == 1 and "all traffic to stable version 1" in said[0].getMessage()
