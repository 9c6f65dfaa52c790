"""Requests checked against a real tensorflow_metadata Schema (the penguin schema's shape:
domains, one-value features, required and gappy presence, the label), without a server:
feature dicts, serialized tf.Examples and columnar feature columns through rest_api."""
from __future__ import annotations

import base64
import json

import pytest

from kubetfx.components.serving import rest_api
from kubetfx.components.serving.request_schema import RequestSchema, SchemaViolation

SCHEMA = """
feature { name: "bill_length_mm" type: FLOAT float_domain { min: 25.0 max: 70.0 }
          presence { min_fraction: 0.95 min_count: 1 } value_count { max: 1 } }
feature { name: "body_mass_g" type: INT int_domain { min: 2000 max: 7000 }
          presence { min_fraction: 1.0 min_count: 1 } value_count { max: 1 } }
feature { name: "flipper_length_mm" type: FLOAT presence { min_fraction: 0.97 } }
feature { name: "island" type: BYTES domain: "island"
          presence { min_fraction: 1.0 min_count: 1 } value_count { max: 1 } }
feature { name: "species" type: BYTES presence { min_fraction: 1.0 min_count: 1 } value_count { max: 1 } }
feature { name: "tags" type: BYTES presence { min_fraction: 0.5 } value_count { min: 1 max: 3 } }
feature { name: "legacy_id" type: INT presence { min_fraction: 1.0 } not_in_environment: "SERVING" }
feature { name: "year" type: INT domain: "years" presence { min_fraction: 0.2 } }
string_domain { name: "island" value: "Biscoe" value: "Dream" value: "Torgersen" }
int_domain { name: "years" min: 2007 max: 2030 }
"""
VALID = {"bill_length_mm": 39.1, "body_mass_g": 3750, "island": "Dream"}
TYPES = {"bill_length_mm": "float", "body_mass_g": "int64", "flipper_length_mm": "float", "island": "string",
         "tags": "string", "year": "int64"}


@pytest.fixture(scope="module")
def checker() -> RequestSchema:
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return RequestSchema(text_format.Parse(SCHEMA, schema_pb2.Schema()), label="species")


def example(features: dict, types: dict | None = None) -> bytes:
    return rest_api.example_from_features(features, {**TYPES, **(types or {})})


@pytest.mark.parametrize("instance", [
    VALID,
    {**VALID, "species": "Adelie"},                       # the label: known, not required
    {**VALID, "bill_length_mm": None, "flipper_length_mm": []},  # gaps where training had gaps
    {**VALID, "body_mass_g": [3750], "bill_length_mm": 40},  # one value as a list; an int for FLOAT
    {**VALID, "body_mass_g": 3750.0},                     # an integral number for INT
    {**VALID, "island": "Atlantis"},                      # string domains are not enforced
    {**VALID, "island": {"b64": base64.b64encode(b"Dream").decode()}},
    {**VALID, "tags": ["a", "b", "c"], "year": 2008},     # a named int domain
    {"body_mass_g": 3750, "island": "Dream", "legacy_id": 7},  # not expected at serving, allowed
])
def test_valid_feature_dicts_and_their_examples_pass(checker, instance):
    checker.check_features(0, instance)
    checker.check_example(0, example(instance))


@pytest.mark.parametrize("instance, message", [
    ({**VALID, "islnd": "Dream"}, "instance 0: unknown feature 'islnd' (did you mean 'island'?); the model's "
     "features: bill_length_mm, body_mass_g, flipper_length_mm, island, legacy_id, tags, year; label 'species' optional"),
    ({}, "instance 0 has none of the model's features; the model's features: bill_length_mm,"),
    ({"flipper_length_mm": 200.0}, "instance 0: feature 'body_mass_g' is missing (and 1 more required)"),
    ({"body_mass_g": 3750}, "instance 0: feature 'island' is missing; every training example had it"),
    ({**VALID, "body_mass_g": None}, "feature 'body_mass_g' is missing"),
    ({**VALID, "body_mass_g": "heavy"}, "instance 0: feature 'body_mass_g' must be an integer (schema type INT), got 'heavy'"),
    ({**VALID, "body_mass_g": 3750.5}, "feature 'body_mass_g' must be an integer (schema type INT), got 3750.5"),
    ({**VALID, "body_mass_g": True}, "feature 'body_mass_g' must be an integer"),
    ({**VALID, "island": 3}, "feature 'island' must be a string or {\"b64\": ...} (schema type BYTES), got 3"),
    ({**VALID, "bill_length_mm": "39.1"}, "feature 'bill_length_mm' must be a number (schema type FLOAT)"),
    ({**VALID, "bill_length_mm": float("nan")}, "feature 'bill_length_mm' is NaN; send null or leave the feature out"),
    ({**VALID, "bill_length_mm": float("inf")}, "feature 'bill_length_mm' is Infinity"),
    ({**VALID, "flipper_length_mm": float("-inf")}, "feature 'flipper_length_mm' is -Infinity"),
    ({**VALID, "flipper_length_mm": 1e300}, "feature 'flipper_length_mm' is 1e+300, beyond float32"),
    ({**VALID, "body_mass_g": 10 ** 30}, "feature 'body_mass_g' is 1000000000000000000000000000000, outside int64"),
    ({**VALID, "flipper_length_mm": 10 ** 400}, "feature 'flipper_length_mm' is 1000000000000000000000000000000000000000..., "
     "beyond float32"),
    ({**VALID, "body_mass_g": -(10 ** 400)}, "feature 'body_mass_g' is -100000000000000000000000000000000000000..., outside int64"),
    ({**VALID, "body_mass_g": 9000}, "feature 'body_mass_g' is 9000, outside the schema's domain [2000, 7000]"),
    ({**VALID, "bill_length_mm": 5.5}, "feature 'bill_length_mm' is 5.5, outside the schema's domain [25, 70]"),
    ({**VALID, "year": 1999}, "feature 'year' is 1999, outside the schema's domain [2007, 2030]"),
    ({**VALID, "island": ["Dream", "Biscoe"]}, "feature 'island' has 2 values; the schema allows one value"),
    ({**VALID, "tags": ["a", "b", "c", "d"]}, "feature 'tags' has 4 values; the schema allows at most 3 values"),
    ({**VALID, "bill_length_mm": [[39.1]]}, "feature 'bill_length_mm' must be a number"),
])
def test_feature_dicts_the_schema_does_not_allow_are_refused_with_the_feature_named(checker, instance, message):
    with pytest.raises(SchemaViolation, match=_literal(message)):
        checker.check_features(0, instance)


def _literal(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("features, types, message", [
    ({**VALID, "islnd": "Dream"}, {"islnd": "string"}, "unknown feature 'islnd'"),
    ({"island": "Dream"}, {}, "feature 'body_mass_g' is missing"),
    ({**VALID, "body_mass_g": 3750.0}, {"body_mass_g": "float"}, "feature 'body_mass_g' is a float_list; "
     "the schema says INT (int64_list)"),
    ({**VALID, "island": 3}, {"island": "int64"}, "feature 'island' is a int64_list; the schema says BYTES"),
    ({**VALID, "bill_length_mm": float("nan")}, {}, "feature 'bill_length_mm' is NaN"),
    ({**VALID, "bill_length_mm": float("inf")}, {}, "feature 'bill_length_mm' is Infinity"),
    ({**VALID, "body_mass_g": 1}, {}, "feature 'body_mass_g' is 1, outside the schema's domain"),
    ({**VALID, "island": ["Dream", "Biscoe"]}, {}, "feature 'island' has 2 values"),
])
def test_serialized_examples_are_checked_by_the_same_rules(checker, features, types, message):
    with pytest.raises(SchemaViolation, match=_literal(message)):
        checker.check_example(3, example(features, types))


@pytest.mark.parametrize("serialized, message", [
    (b"not a tf.Example", "instance 3: not a serialized tf.Example"),
    (b"\x08\x01", "instance 3: not a serialized tf.Example (fields a tf.Example does not have)"),
    (b"", "instance 3 has none of the model's features"),
])
def test_bytes_that_are_not_a_tf_example_are_refused(checker, serialized, message):
    with pytest.raises(SchemaViolation, match=_literal(message)):
        checker.check_example(3, serialized)


def test_without_required_features_an_empty_instance_is_still_refused():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    feature = schema.feature.add(name="x", type=schema_pb2.FLOAT)
    feature.presence.min_fraction = 0.5
    with pytest.raises(SchemaViolation, match="instance 0 has none of the model's features; the model's features: x"):
        RequestSchema(schema).check_features(0, {})


def test_a_wide_schema_lists_a_bounded_number_of_names():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for i in range(300):
        schema.feature.add(name=f"column_{i:03d}", type=schema_pb2.FLOAT)
    with pytest.raises(SchemaViolation) as raised:
        RequestSchema(schema).check_features(0, {"zzz": 1})
    assert "... (270 more)" in str(raised.value) and len(str(raised.value)) < 600


def feed(checker, body: dict):
    import tensorflow as tf

    specs = {"examples": tf.TensorSpec([None], tf.string, name="examples")}
    request = rest_api.parse_predict_request(json.dumps(body).encode())
    return rest_api.signature_feed(request, specs, lambda: TYPES, checker=checker)


def test_every_request_format_is_checked_with_the_instance_index(checker):
    wrong = {**VALID, "body_mass_g": "heavy"}
    b64 = {"b64": base64.b64encode(example({**VALID, "body_mass_g": 1})).decode()}
    refused = [
        ({"instances": [VALID, wrong]}, "instance 1: feature 'body_mass_g' must be an integer"),
        ({"instances": [{"b64": base64.b64encode(example(VALID)).decode()}, b64]},
         "instance 1: feature 'body_mass_g' is 1, outside"),
        ({"instances": [VALID, {"examples": b64}]}, "instance 1: feature 'body_mass_g' is 1"),
        ({"inputs": [VALID, VALID, wrong]}, "instance 2: feature 'body_mass_g' must be an integer"),
        ({"inputs": {"examples": [b64]}}, "instance 0: feature 'body_mass_g' is 1"),
        ({"inputs": {"island": ["Dream", "Biscoe"], "body_mass_g": [3750, float("nan")]}},
         "instance 1: feature 'body_mass_g' is NaN"),
        ({"inputs": {"island": ["Dream"], "body_mass_g": [3750, 4000]}}, "one list per feature, all of one length"),
        ({"instances": [VALID, {"b64": "not base64!"}]}, "instance 1: invalid base64 value"),
    ]
    for body, message in refused:
        with pytest.raises(rest_api.BadRequest, match=_literal(message)):
            feed(checker, body)
    for body in ({"instances": [VALID, VALID]}, {"inputs": {"island": ["Dream", "Biscoe"], "body_mass_g": [3750, 4100]}}):
        tensors, instances = feed(checker, body)
        assert len(instances) == 2 and tensors["examples"].shape == (2,)
    # Without a schema (the InfraValidator's candidate) nothing is checked, as before.
    assert len(feed(None, {"instances": [{**VALID, "islnd": "Dream"}, {}]})[1]) == 2


def test_a_version_directory_gives_its_schema_and_label(tmp_path):
    where = tmp_path / "1" / "assets.extra" / "kubetfx"
    assert RequestSchema.from_version_dir(str(tmp_path / "1")) is None  # no summary: unchecked
    where.mkdir(parents=True)
    (where / "schema.pbtxt").write_text(SCHEMA)
    (where / "training.json").write_text(json.dumps({"label": "species"}))
    loaded = RequestSchema.from_version_dir(str(tmp_path / "1"))
    assert loaded.label == "species" and not loaded.rules["species"].required and loaded.rules["island"].required
    (where / "schema.pbtxt").write_text("feature { name: ")
    with pytest.raises(ValueError, match="schema beside the model unreadable"):
        RequestSchema.from_version_dir(str(tmp_path / "1"))


def test_a_value_that_cannot_be_encoded_is_refused_with_the_instance_index(checker):
    # JSON allows a lone surrogate ("\ud800"), UTF-8 does not: the 400 named no instance.
    for body in ({"instances": [VALID, {**VALID, "island": "Dr\ud800am"}]},
                 {"instances": [VALID, {**VALID, "island": {"b64": "!!"}}]}):
        with pytest.raises(rest_api.BadRequest, match=_literal("instance 1: feature 'island'")):
            feed(checker, body)
