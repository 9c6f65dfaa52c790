"""The routing rule both the model server and the logging proxy apply: sticky by key,
proportional, reshuffled per candidate, and the same key from a feature however it is sent."""
from __future__ import annotations

import base64
import math

from kubetfx.components.serving import traffic_split
from kubetfx.components.serving.traffic_split import request_key, track_for


def test_the_same_key_always_gets_the_same_track():
    for key in (f"user-{i}" for i in range(200)):
        tracks = {track_for(key, 10, salt=7) for _ in range(20)}
        assert len(tracks) == 1


def test_raising_the_percent_moves_only_keys_below_the_new_threshold():
    keys = [f"k{i}" for i in range(5000)]
    at_10 = {k for k in keys if track_for(k, 10, 4) == "candidate"}
    at_20 = {k for k in keys if track_for(k, 20, 4) == "candidate"}
    assert at_10 < at_20  # nobody who met the candidate goes back
    assert all(10 <= traffic_split.bucket(k, 4) < 20 for k in at_20 - at_10)


def test_the_split_is_proportional_and_a_new_candidate_reshuffles():
    keys = [f"caller-{i}" for i in range(20000)]
    share = sum(track_for(k, 10, 4) == "candidate" for k in keys) / len(keys)
    bound = 3.29 * math.sqrt(0.1 * 0.9 / len(keys))  # binomial, 99.9% two-sided
    assert abs(share - 0.10) < bound
    first = {k for k in keys if track_for(k, 10, 4) == "candidate"}
    second = {k for k in keys if track_for(k, 10, 5) == "candidate"}
    assert len(first & second) < 0.2 * len(first)  # independent draws overlap by ~10%


def test_without_a_key_each_request_is_a_fresh_draw():
    tracks = [track_for(None, 50, 4) for _ in range(400)]
    assert 120 < tracks.count("candidate") < 280
    assert {track_for("", 50, 4) for _ in range(100)} == {"stable", "candidate"}


def test_zero_and_hundred_percent_are_absolute():
    assert {track_for(f"k{i}", 0, 1) for i in range(500)} == {"stable"}
    assert {track_for(f"k{i}", 100, 1) for i in range(500)} | {track_for(None, 100, 1)} == {"candidate"}


def test_a_feature_key_is_the_same_from_json_and_from_a_tf_example():
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    example.features.feature["user"].bytes_list.value.append(b"ada")
    example.features.feature["x"].float_list.value.append(0.1)
    example.features.feature["n"].float_list.value.append(3.0)
    serialized = example.SerializeToString()
    b64 = {"b64": base64.b64encode(serialized).decode()}
    for instance in ({"user": "ada", "x": 0.1, "n": 3}, {"user": ["ada"], "x": [0.1], "n": [3]}, b64, serialized):
        assert request_key("feature:user", None, instance) == "ada"
        assert request_key("feature:x", None, instance) == "0.1"
        assert request_key("feature:n", None, instance) == "3"


def test_a_missing_feature_falls_back_to_the_header_then_to_none():
    assert request_key("feature:user", "h-1", {"other": 1}) == "h-1"
    assert request_key("feature:user", None, {"b64": "%%%"}) is None
    assert request_key("feature:user", None, b"\xff\xff not a proto") is None
    assert request_key("header", "h-2", {"user": "ada"}) == "h-2"
    assert request_key("header", "", None) is None
