"""The inference-logging proxy as the traffic splitter of a staged rollout on the cluster:
two real model servers on loopback (stable serves version 1, x * 2; candidate version 2,
x * 3, so each answer says which version computed it) behind one proxy that follows a real
rollout.json. The split of 2,000 keyed requests within binomial bounds, stickiness (the
model server's own rule), a candidate that is down or not ready answered by stable and
counted, an abort that sends everything to stable within one poll, and the TF Serving
model config each track is pinned by, parsed by TF Serving's own proto."""
from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import socket
import time
import urllib.error
import urllib.request

import pytest

from kubetfx.components.serving import rollout_state, traffic_split
from kubetfx.components.serving.model_server import ModelServer
from kubetfx.pipelines import cli
from kubetfx.pipelines.serving import logging_proxy
from testing_models import save_scaler

pytestmark = [pytest.mark.serving]
NAME = "scaler"
POLL = 0.5
FACTOR = {1: 2.0, 2: 3.0}  # version -> what it multiplies x by


def _server(base):
    server = ModelServer(str(base), NAME)
    server.start(0)
    server.wait_until_available(120)
    return server


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    """{track: its model server's URL}: two servers, as two TF Serving Deployments would be."""
    stable_dir, candidate_dir = tmp_path_factory.mktemp("stable"), tmp_path_factory.mktemp("candidate")
    save_scaler(stable_dir / "1", factor=FACTOR[1])
    save_scaler(candidate_dir / "2", factor=FACTOR[2])
    servers = {traffic_split.STABLE: _server(stable_dir), traffic_split.CANDIDATE: _server(candidate_dir)}
    yield {track: f"http://127.0.0.1:{s.port}" for track, s in servers.items()}
    for server in servers.values():
        server.shutdown()


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class Splitter:
    """A proxy in front of `stable` and `candidate`, following rollout.json in `state_dir`."""

    def __init__(self, stable: str, candidate: str, state_dir, configs=None):
        self.state_dir, self.records = state_dir, []
        self.watch = logging_proxy.RolloutWatch(state_dir, POLL, configs)
        self.proxy = logging_proxy.LoggingProxy(logging_proxy.Upstream(stable, 30), self.records.append,
                                                candidate=logging_proxy.Upstream(candidate, 30), rollout=self.watch)
        self.watch.start()
        self.url = f"http://127.0.0.1:{self.proxy.start(0)}"

    def set_state(self, state) -> None:
        """Writes the state and returns once a whole poll has read the file after the write."""
        before = self.watch.polls
        rollout_state.write(self.state_dir, state)
        deadline = time.monotonic() + 60
        while self.watch.polls < before + 2:  # the poll in progress may have read the old file
            assert time.monotonic() < deadline, "the rollout state was not re-read within 60 s"
            time.sleep(POLL / 10)

    def predict(self, x: float, key: str | None = None, path: str = f"/v1/models/{NAME}:predict"):
        """(status, track header, version header, the computed x * factor)."""
        headers = {"Content-Type": "application/json", **({traffic_split.KEY_HEADER: key} if key else {})}
        request = urllib.request.Request(self.url + path, json.dumps({"instances": [{"x": x}]}).encode(), headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                body = json.loads(answer.read())
                return (answer.status, answer.headers["X-Model-Track"], answer.headers["X-Model-Version"],
                        body["predictions"][0]["scaled"][0])
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("X-Model-Track"), err.headers.get("X-Model-Version"), err.read()

    def close(self) -> None:
        self.proxy.shutdown()
        self.watch.stop()


def _running(percent: float, stable: int = 1, candidate: int = 2, key: str = "header"):
    return rollout_state.RolloutState.begin(stable, candidate, key=key).with_changes(candidate_percent=percent)


@pytest.fixture(scope="module")
def splitter(tracks, tmp_path_factory):
    splitter = Splitter(tracks["stable"], tracks["candidate"], tmp_path_factory.mktemp("state"))
    yield splitter
    splitter.close()


def _binomial_bounds(n: int, p: float, z: float = 3.29) -> tuple:
    """Two-sided 99.9% normal bounds of a Binomial(n, p) count."""
    half = z * math.sqrt(n * p * (1 - p))
    return n * p - half, n * p + half


def test_2000_keyed_requests_split_within_binomial_bounds_each_answer_from_its_track(splitter):
    splitter.set_state(_running(10))
    del splitter.records[:]
    keys = [f"caller-{i}" for i in range(2000)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda k: splitter.predict(1.0, k), keys))
    assert all(a[0] == 200 for a in answers)
    for key, (_, track, version, scaled) in zip(keys, answers):
        assert track == traffic_split.track_for(key, 10, 2)  # the model server's rule: same caller, same track
        assert version == {"stable": "1", "candidate": "2"}[track] and scaled == FACTOR[int(version)]
    on_candidate = sum(a[1] == traffic_split.CANDIDATE for a in answers)
    low, high = _binomial_bounds(2000, 0.10)
    assert low <= on_candidate <= high, on_candidate
    logged = {r.request_id: r for r in splitter.records}
    assert len(splitter.records) == 2000 and sorted(r.model_version for r in logged.values()).count(2) == on_candidate
    assert sum(r.track == traffic_split.CANDIDATE for r in splitter.records) == on_candidate
    assert all((r.track == traffic_split.CANDIDATE) == (r.model_version == 2) for r in splitter.records)


def test_the_inference_log_on_disk_has_each_records_track(tracks, tmp_path):
    import tensorflow as tf

    from kubetfx.pipelines.serving import inference_log

    splitter = Splitter(tracks["stable"], tracks["candidate"], tmp_path)
    log = inference_log.InferenceLog(tmp_path / "log", features=lambda version: {"x"})
    splitter.proxy.on_request = log
    try:
        splitter.set_state(_running(50))
        answers = [splitter.predict(1.0, f"k{i}") for i in range(40)]
    finally:
        splitter.close()
        log.close()
    logged = [tf.train.Example.FromString(r).features.feature for r in inference_log.read_examples(tmp_path / "log")]
    assert len(logged) == 40 and {a[1] for a in answers} == {"stable", "candidate"}
    for features, (_, track, version, _) in zip(logged, answers):
        assert features["track"].bytes_list.value == [track.encode()]
        assert features["model_version"].int64_list.value == [int(version)]


def test_a_caller_stays_on_its_track_and_a_higher_step_only_adds_callers(splitter):
    splitter.set_state(_running(10))
    keys = [f"sticky-{i}" for i in range(60)]
    first = {k: splitter.predict(2.0, k)[1] for k in keys}
    assert all(splitter.predict(2.0, k)[1] == first[k] for k in keys for _ in range(3))
    splitter.set_state(_running(50))
    second = {k: splitter.predict(2.0, k)[1] for k in keys}
    assert all(second[k] == traffic_split.CANDIDATE for k in keys if first[k] == traffic_split.CANDIDATE)
    assert sum(t == traffic_split.CANDIDATE for t in second.values()) > sum(t == traffic_split.CANDIDATE for t in first.values())


def test_an_explicit_version_bypasses_the_split_and_status_goes_to_stable(splitter):
    splitter.set_state(_running(100))
    assert splitter.predict(1.0, "anyone", f"/v1/models/{NAME}/versions/1:predict")[1:] == ("stable", "1", 2.0)
    assert splitter.predict(1.0, "anyone")[1:] == ("candidate", "2", 3.0)
    status = json.loads(urllib.request.urlopen(f"{splitter.url}/v1/models/{NAME}", timeout=60).read())
    assert status["model_version_status"][0]["version"] == "1"


def test_abort_sends_every_request_to_stable_within_one_poll(splitter):
    splitter.set_state(_running(100))
    assert {splitter.predict(1.0, f"k{i}")[1] for i in range(20)} == {traffic_split.CANDIDATE}
    splitter.set_state(_running(100).with_changes(status="aborted", candidate_percent=0.0))
    answers = [splitter.predict(1.0, f"k{i}") for i in range(20)]
    assert {a[1:] for a in answers} == {("stable", "1", 2.0)}


def test_a_malformed_state_serves_stable(splitter):
    splitter.set_state(_running(100))
    before = splitter.watch.polls
    (splitter.state_dir / "rollout.json").write_text('{"stable": 1, "candidate": 2, "candidate_per')  # torn
    while splitter.watch.polls < before + 2:
        time.sleep(POLL / 10)
    assert {splitter.predict(1.0, f"k{i}")[1] for i in range(10)} == {traffic_split.STABLE}


@pytest.mark.parametrize("candidate, state", [
    ("down", _running(100)),                        # nothing listens where the candidate should be
    ("not ready", _running(100, candidate=3)),      # it answers, but has not loaded version 3 (404)
])
def test_requests_for_a_candidate_that_cannot_answer_go_to_stable_counted_and_said_once(
        tracks, tmp_path, caplog, candidate, state):
    url = _dead_url() if candidate == "down" else tracks["candidate"]
    splitter = Splitter(tracks["stable"], url, tmp_path)
    try:
        splitter.set_state(state)
        with caplog.at_level(logging.WARNING, logger="kubetfx.logging_proxy"):
            answers = [splitter.predict(float(i), f"k{i}") for i in range(25)]
            if candidate == "down":  # asked by its version, the candidate's error is the answer
                explicit = splitter.predict(1.0, "k", f"/v1/models/{NAME}/versions/2:predict")
            else:  # the candidate gets its version: its callers are back on it, said once
                splitter.set_state(_running(100))
                back = [splitter.predict(1.0, f"k{i}")[1:] for i in range(5)]
    finally:
        splitter.close()
    assert [a[0] for a in answers] == [200] * 25  # none lost
    assert {a[1:3] for a in answers} == {("stable", "1")} and [a[3] for a in answers] == [2.0 * i for i in range(25)]
    assert splitter.proxy.fallbacks == 25 and len(splitter.records) == 25 + (1 if candidate == "down" else 5)
    said = [r for r in caplog.records if "cannot answer" in r.getMessage()]
    assert len(said) == 1 and url in said[0].getMessage()
    if candidate == "down":
        assert explicit[0] == 502 and b"unreachable" in explicit[3]
        failed = splitter.records[-1]  # a failure of the candidate, for its error budget
        assert (failed.track, failed.model_version, failed.status_code, failed.outputs) == ("candidate", 2, 502, {})
    else:
        assert back == [("candidate", "2", 3.0)] * 5
        assert len([r for r in caplog.records if "answers again; 25 request(s)" in r.getMessage()]) == 1


def test_each_tracks_tf_serving_config_pins_the_version_the_state_names(tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    serving = tmp_path / "serving"

    def publish(version):  # a valid version (valid_version.py: a graph without variable ops)
        (serving / str(version)).mkdir(parents=True)
        (serving / str(version) / "saved_model.pb").write_bytes(b"")
    for version in (4, 7):
        publish(version)
    configs = logging_proxy.TrackConfigs(tmp_path / "tracks", "kubetfx-penguin", str(serving))
    watch = logging_proxy.RolloutWatch(serving, POLL, configs)

    def pinned():
        versions = {}
        for track in (traffic_split.STABLE, traffic_split.CANDIDATE):
            parsed = text_format.Parse((tmp_path / "tracks" / f"{track}.config").read_text(),
                                       model_server_config_pb2.ModelServerConfig())  # TF Serving's own parser
            (config,) = parsed.model_config_list.config
            assert (config.name, config.base_path) == ("kubetfx-penguin", str(serving))
            policy = config.model_version_policy
            versions[track] = list(policy.specific.versions) if policy.HasField("specific") else \
                f"latest {policy.latest.num_versions}"
        return versions

    watch.poll()  # no rollout ever: TF Serving's default, the highest version
    assert pinned() == {"stable": "latest 1", "candidate": "latest 1"}
    rollout_state.write(serving, _running(5, stable=4, candidate=7))
    watch.poll()
    assert pinned() == {"stable": [4], "candidate": [7]}
    written = configs.written
    watch.poll()
    assert configs.written == written  # unchanged text is not rewritten (TF Serving would reload)
    rollout_state.write(serving, _running(5, stable=4, candidate=7).with_changes(status="aborted"))
    watch.poll()
    assert pinned() == {"stable": [4], "candidate": [4]}  # never the aborted candidate, the highest version
    rollout_state.write(serving, rollout_state.RolloutState(7, None, 0.0, 3, status="promoted"))
    watch.poll()
    assert pinned() == {"stable": [7], "candidate": [7]}
    (serving / "rollout.json").write_text("{")  # not a state: the tracks keep what they load
    watch.poll()
    assert pinned() == {"stable": [7], "candidate": [7]}
    rollout_state.write(serving, _running(5, stable=4, candidate=7).with_changes(status="aborted"))
    publish(8)  # a push after a finished rollout supersedes it, as in the model server
    watch.poll()
    assert pinned() == {"stable": "latest 1", "candidate": "latest 1"}
    rollout_state.write(serving, rollout_state.RolloutState(7, None, 0.0, status="running"))  # a pin, no candidate yet
    watch.poll()
    assert pinned() == {"stable": [7], "candidate": [7]}


@pytest.mark.parametrize("flags, message", [
    (["--track-configs", "/tmp/t"], "--track-configs need(s) --candidate-upstream"),
    (["--candidate-upstream", "http://127.0.0.1:1"], "--candidate-upstream is --upstream"),
    (["--candidate-upstream", "127.0.0.1:2"], "must be an http:// or https:// address"),
    (["--candidate-upstream", "http://127.0.0.1:2"], "needs --rollout-dir or --serving-dir"),
    (["--candidate-upstream", "http://127.0.0.1:2", "--rollout-dir", "/tmp", "--rollout-poll-seconds", "nan"],
     "--rollout-poll-seconds must be a positive finite number"),
    (["--candidate-upstream", "http://127.0.0.1:2", "--rollout-dir", "/tmp", "--track-configs", "/tmp/t"],
     "--track-configs needs --serving-dir"),
])
def test_rollout_flags_that_do_not_go_together_are_one_line_and_exit_2(tmp_path, capsys, flags, message):
    argv = ["inference-logger", "--upstream", "http://127.0.0.1:1", "--log-dir", str(tmp_path / "logs"), *flags]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
