"""The model server refuses, before the model runs, requests that the served version's
schema (`<version>/assets.extra/kubetfx/schema.pbtxt`, as the Pusher writes it) does not
allow, in every request format; valid requests are still answered; a version whose schema
does not read is never served. A real SavedModel on loopback."""
from __future__ import annotations

import base64
import json
import shutil
import time
import urllib.error
import urllib.request

import pytest

from kubetfx.components.serving import model_server, rest_api

pytestmark = [pytest.mark.serving]

SCHEMA = """
feature { name: "bill_length_mm" type: FLOAT presence { min_fraction: 0.95 } value_count { max: 1 } }
feature { name: "body_mass_g" type: INT int_domain { min: 2000 max: 7000 }
          presence { min_fraction: 1.0 min_count: 1 } value_count { max: 1 } }
feature { name: "island" type: BYTES presence { min_fraction: 1.0 min_count: 1 } value_count { max: 1 } }
feature { name: "species" type: BYTES presence { min_fraction: 1.0 min_count: 1 } value_count { max: 1 } }
"""
VALID = {"bill_length_mm": 40.0, "body_mass_g": 4000, "island": "Dream"}
TYPES = {"bill_length_mm": "float", "body_mass_g": "int64", "island": "string"}


def save_penguin_scorer(path):
    """A SavedModel whose serving_default parses tf.Examples as a TFX model's does, with
    defaults for every feature (so today's server answers anything): score = body mass in
    kg + bill length + 1 on Dream."""
    import tensorflow as tf

    spec = {"bill_length_mm": tf.io.VarLenFeature(tf.float32),
            "body_mass_g": tf.io.FixedLenFeature([1], tf.int64, default_value=[0]),
            "island": tf.io.FixedLenFeature([1], tf.string, default_value=[""])}

    class Scorer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            parsed = tf.io.parse_example(serialized, spec)
            bill = tf.reduce_sum(tf.sparse.to_dense(parsed["bill_length_mm"]), axis=1, keepdims=True)
            dream = tf.cast(tf.equal(parsed["island"], "Dream"), tf.float32)
            return {"score": tf.cast(parsed["body_mass_g"], tf.float32) / 1000 + bill + dream}

    module = Scorer()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def with_summary(model, version_dir, schema_text: str = SCHEMA):
    shutil.copytree(model, version_dir)
    where = version_dir / "assets.extra" / "kubetfx"
    where.mkdir(parents=True)
    (where / "schema.pbtxt").write_text(schema_text)
    (where / "training.json").write_text(json.dumps({"label": "species"}))


def call(url: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def b64(features: dict, types: dict | None = None) -> dict:
    serialized = rest_api.example_from_features(features, {**TYPES, **(types or {})})
    return {"b64": base64.b64encode(serialized).decode()}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_penguin_scorer(tmp_path_factory.mktemp("model") / "scorer")


@pytest.fixture(scope="module")
def served(tmp_path_factory, model):
    """(predict URL, the records the hook received) of a server on a version with its schema."""
    base = tmp_path_factory.mktemp("serving")
    with_summary(model, base / "1")
    records = []
    server = model_server.ModelServer(str(base), "penguin", poll_seconds=0.1, on_request=records.append)
    port = server.start(0)
    assert server.wait_until_available(120) == 1
    yield f"http://127.0.0.1:{port}/v1/models/penguin:predict", records
    server.shutdown()


# Bodies as clients send them; NaN and Infinity are the literals Python's and JavaScript's
# lenient encoders write, which json.loads accepts.
REFUSED = [
    ('{"instances": [{"bill_length_mm": 40.0, "body_mass_g": 4000, "islnd": "Dream"}]}',
     "instance 0: unknown feature 'islnd' (did you mean 'island'?); the model's features: bill_length_mm, "
     "body_mass_g, island; label 'species' optional"),
    ('{"instances": [{}]}', "instance 0 has none of the model's features"),
    ('{"instances": [{"bill_length_mm": 40.0, "body_mass_g": 4000}]}', "instance 0: feature 'island' is missing"),
    ('{"instances": [{"bill_length_mm": NaN, "body_mass_g": 4000, "island": "Dream"}]}',
     "instance 0: feature 'bill_length_mm' is NaN; send null or leave the feature out for a missing value"),
    ('{"instances": [{"bill_length_mm": Infinity, "body_mass_g": 4000, "island": "Dream"}]}',
     "instance 0: feature 'bill_length_mm' is Infinity"),
    ('{"instances": [{"bill_length_mm": 1e300, "body_mass_g": 4000, "island": "Dream"}]}',
     "instance 0: feature 'bill_length_mm' is 1e+300, beyond float32"),
    ('{"instances": [{"bill_length_mm": 40.0, "body_mass_g": 1%s, "island": "Dream"}]}' % ("0" * 400),
     "instance 0: feature 'body_mass_g' is 1000000000000000000000000000000000000000..., outside int64"),
    ('{"instances": [{"bill_length_mm": 40.0, "body_mass_g": 40000, "island": "Dream"}]}',
     "instance 0: feature 'body_mass_g' is 40000, outside the schema's domain [2000, 7000]"),
    ('{"instances": [{"bill_length_mm": [40.0, 41.0], "body_mass_g": 4000, "island": "Dream"}]}',
     "instance 0: feature 'bill_length_mm' has 2 values; the schema allows one value"),
    ('{"instances": [{"bill_length_mm": 40.0, "body_mass_g": 4000, "island": 3}]}',
     "instance 0: feature 'island' must be a string"),
    ('{"instances": [{"bill_length_mm": 40.0, "body_mass_g": 4000, "island": "Dream"}, '
     '{"bill_length_mm": 40.0, "body_mass_g": 4000.5, "island": "Dream"}]}',
     "instance 1: feature 'body_mass_g' must be an integer (schema type INT), got 4000.5"),
    ('{"inputs": {"island": ["Dream", "Biscoe"], "body_mass_g": [4000, "4100"]}}',
     "instance 1: feature 'body_mass_g' must be an integer"),
    ('{"inputs": [{"island": "Dream", "body_mass_g": 4000}, {"island": "Dream", "body_mss_g": 4000}]}',
     "instance 1: unknown feature 'body_mss_g'"),
    (json.dumps({"instances": [b64(VALID), b64({**VALID, "bill_length_mm": float("inf")})]}),
     "instance 1: feature 'bill_length_mm' is Infinity"),
    (json.dumps({"instances": [b64({**VALID, "body_mass_g": 4000.0}, {"body_mass_g": "float"})]}),
     "instance 0: feature 'body_mass_g' is a float_list; the schema says INT (int64_list)"),
    (json.dumps({"inputs": {"examples": [b64({"island": "Dream", "species": "Adelie"})]}}),
     "instance 0: feature 'body_mass_g' is missing"),
    (json.dumps({"instances": [{"b64": base64.b64encode(b"\x08\x01").decode()}]}),
     "instance 0: not a serialized tf.Example"),
]


@pytest.mark.parametrize("body, message", REFUSED, ids=range(len(REFUSED)))
def test_requests_the_schema_does_not_allow_get_400_before_the_model_runs(served, body, message):
    url, records = served
    logged = len(records)
    status, answer = call(url, body.encode())
    assert (status, set(answer)) == (400, {"error"}), answer
    assert message in answer["error"] and "\n" not in answer["error"]
    assert len(records) == logged  # refused before the model: nothing answered, nothing logged


def test_valid_requests_in_every_format_are_still_answered(served):
    url, records = served
    gap = {"body_mass_g": 4000, "island": "Dream", "bill_length_mm": None}  # a gap where training had gaps
    bodies = [{"instances": [VALID, {**VALID, "species": "Adelie"}, gap]},
              {"instances": [b64(VALID), b64({**VALID, "species": "Adelie"}), b64(gap)]},
              {"inputs": {"examples": [b64(VALID), b64(VALID), b64(gap)]}},
              {"inputs": {"island": ["Dream", "Dream", "Dream"], "body_mass_g": [4000, 4000, 4000],
                          "bill_length_mm": [40.0, 40, None]}}]
    for body in bodies:
        logged = len(records)
        status, answer = call(url, json.dumps(body).encode())
        assert status == 200, answer
        scores = [row[0] for row in answer.get("predictions") or answer["outputs"]]
        assert scores == [pytest.approx(45.0), pytest.approx(45.0), pytest.approx(5.0)]
        assert len(records) == logged + 1


def test_a_version_whose_schema_does_not_read_is_never_served(tmp_path, model):
    with_summary(model, tmp_path / "base" / "1")
    with_summary(model, tmp_path / "base" / "2", schema_text="feature { name: ")
    server = model_server.ModelServer(str(tmp_path / "base"), "penguin", poll_seconds=0.1)
    try:
        server.start(0)
        assert server.wait_until_available(120) == 1  # 2 failed, 1 serves (checked) instead
        states = server.versions.status()
        assert "schema beside the model unreadable" in states[2].error
        url = f"http://127.0.0.1:{server.port}/v1/models/penguin:predict"
        assert call(url, json.dumps({"instances": [{**VALID, "islnd": "x"}]}).encode())[0] == 400
    finally:
        server.shutdown()


def test_a_version_without_schema_is_served_unchecked_as_the_infra_validators_candidate(tmp_path, model):
    shutil.copytree(model, tmp_path / "base" / "1")
    server = model_server.ModelServer(str(tmp_path / "base"), "penguin", poll_seconds=0.1)
    try:
        server.start(0)
        assert server.wait_until_available(120) == 1
        url = f"http://127.0.0.1:{server.port}/v1/models/penguin:predict"
        status, answer = call(url, json.dumps({"instances": [{**VALID, "unknown": 1}]}).encode())
        assert status == 200 and answer["predictions"][0][0] == pytest.approx(45.0)
    finally:
        server.shutdown()


def test_stable_stays_checked_however_many_versions_load_beside_it(tmp_path, model):
    """During a staged rollout stable keeps serving while the follower loads every newer
    push (candidates, aborted ones, rollbacks). The server kept the schemas of the last
    four loads only, by path: after four more loads stable's was gone and its requests were
    answered unchecked (a misspelled feature a 200 again). The schema now lives with the
    loaded version."""
    from kubetfx.components.serving import rollout_state

    base = tmp_path / "base"
    with_summary(model, base / "1")
    rollout_state.write(base, rollout_state.RolloutState(1, None))  # stable 1 pinned, as a staged push does
    server = model_server.ModelServer(str(base), "penguin", poll_seconds=0.05)
    try:
        server.start(0)
        assert server.wait_until_available(120) == 1
        for version in range(2, 7):  # each loaded by the follower in turn, never served (the pin)
            with_summary(model, base / str(version))
            deadline = time.monotonic() + 60
            while server.versions.serving.version != version:
                assert time.monotonic() < deadline, server.versions.last_error
                time.sleep(0.05)
        url = f"http://127.0.0.1:{server.port}/v1/models/penguin:predict"
        status, answer = call(url, json.dumps({"instances": [{**VALID, "islnd": "x"}]}).encode())
        assert status == 400 and "unknown feature 'islnd'" in answer["error"], answer
        assert call(url, json.dumps({"instances": [VALID]}).encode())[0] == 200
    finally:
        server.shutdown()


def test_a_gzip_body_is_answered_and_what_it_inflates_to_is_bounded(served):
    """Content-Encoding: gzip, which TF Serving's HTTP server uncompresses (net_http
    auto_uncompress_input, default true): before, a 400 "request body is not JSON". The
    uncompressed size has the body bound (a 17 kB bomb of 17 MiB: 413, never inflated whole);
    another encoding is a 415, a torn stream a 400."""
    import gzip

    url, _ = served

    def post(body: bytes, encoding: str) -> tuple[int, dict]:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json",
                                                                  "Content-Encoding": encoding})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    body = json.dumps({"instances": [VALID]}).encode()
    status, answer = post(gzip.compress(body), "gzip")
    assert status == 200 and answer["predictions"][0][0] == pytest.approx(45.0), answer
    status, answer = post(gzip.compress(b" " * (17 << 20)), "gzip")
    assert status == 413 and "once uncompressed" in answer["error"]
    assert post(body, "br")[0] == 415
    status, answer = post(gzip.compress(body)[:-12], "gzip")
    assert status == 400 and "cut short" in answer["error"]
