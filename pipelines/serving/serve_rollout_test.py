"""`kubetfx serve` during a staged rollout, as a process on a home: its start line names
both tracks, answers carry the track, and the inference log records it."""
from __future__ import annotations

import base64
import json
import shutil
import urllib.request

import pytest
import tensorflow as tf

from kubetfx.components.serving import rollout_state, traffic_split
from kubetfx.components.serving.rollout_state import RolloutState
from kubetfx.pipelines.serving import inference_log
from serve_process import ServeProcess
from testing_models import example, save_scaler, wait_for

pytestmark = [pytest.mark.serving]


def test_serve_routes_both_tracks_and_logs_each_requests_track(tmp_path):
    serving = tmp_path / "home" / "serving" / "m"
    for number in (1, 2):
        shutil.copytree(save_scaler(tmp_path / "models" / str(number), float(number)), serving / str(number))
    rollout_state.write(serving, RolloutState.begin(1, 2, plan=[50, 100]))
    server = ServeProcess(tmp_path / "home", tmp_path, "m")
    try:
        keys = [f"k{i}" for i in range(40)]
        body = json.dumps({"instances": [{"b64": base64.b64encode(example(1.0)).decode()}]}).encode()
        answered = {}
        for key in keys:
            request = urllib.request.Request(server.url + ":predict", body,
                                             {traffic_split.KEY_HEADER: key, "X-Request-Id": key})
            with urllib.request.urlopen(request, timeout=60) as answer:
                scaled = json.loads(answer.read())["predictions"][0]["scaled"][0]
                answered[key] = (answer.headers["X-Model-Track"], int(answer.headers["X-Model-Version"]), scaled)
        expected = {key: ("candidate", 2, 2.0) if traffic_split.bucket(key, 2) < 50 else ("stable", 1, 1.0)
                    for key in keys}
        assert answered == expected
        logs = tmp_path / "home" / "inference-logs" / "m"

        latencies = []

        def logged():
            found = {}
            latencies.clear()
            for record in inference_log.read_examples(logs):
                feature = tf.train.Example.FromString(record).features.feature
                latencies.extend(feature["latency_ms"].float_list.value)
                found[feature["request_id"].bytes_list.value[0].decode()] = (
                    feature["track"].bytes_list.value[0].decode(), feature["model_version"].int64_list.value[0])
            return found if len(found) == len(keys) else None
        assert wait_for(logged, timeout=60, what="every request in the log") == \
            {key: (track, version) for key, (track, version, _) in expected.items()}
        # each answer's time is logged: what the rollout's latency budget judges per track
        assert len(latencies) == len(keys) and all(0 < ms < 60_000 for ms in latencies), latencies
    finally:
        server.stop()
    output = server.log_path.read_text()
    assert ("kubetfx: serving m stable version 1 and candidate version 2 (50% of requests, sticky by X-Request-Key)"
            in output), output
