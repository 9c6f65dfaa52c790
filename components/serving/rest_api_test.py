"""TF Serving's REST encoding (tensorflow_serving/util/json_tensor.cc, TF Serving 2.16),
rule by rule, without a server."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from kubetfx.components.serving import rest_api


@pytest.mark.parametrize("body, message", [
    (b"[1]", "exactly one of"),
    (b'{"instances": [1], "inputs": [1]}', "exactly one of"),
    (b'{"instances": {}}', "non-empty list"),
    (b"{", "not JSON"),
])
def test_malformed_requests_are_refused_with_the_reason(body, message):
    with pytest.raises(rest_api.BadRequest, match=message):
        rest_api.parse_predict_request(body)


def test_signature_name_defaults_to_serving_default():
    request = rest_api.parse_predict_request(b'{"instances": [1]}')
    assert request.signature_name == "serving_default" and request.rows == [1]


def test_row_format_answers_a_list_or_one_object_per_instance():
    one = rest_api.predict_response({"y": np.array([[1.0], [2.0]])}, columnar=False)
    assert one == {"predictions": [[1.0], [2.0]]}
    many = rest_api.predict_response({"y": np.array([1, 2]), "label": np.array([b"a", b"b"])}, columnar=False)
    assert many == {"predictions": [{"y": 1, "label": "a"}, {"y": 2, "label": "b"}]}


def test_string_outputs_named_bytes_are_base64():
    answer = rest_api.predict_response({"raw_bytes": np.array([b"\xff\x00"], dtype=object)}, columnar=False)
    assert answer == {"predictions": [{"b64": base64.b64encode(b"\xff\x00").decode()}]}


def test_row_format_needs_one_batch_size():
    with pytest.raises(ValueError, match="same batch size"):
        rest_api.predict_response({"a": np.array([1, 2]), "b": np.array([1])}, columnar=False)
    assert rest_api.predict_response({"a": np.array([1, 2]), "b": np.array([1])}, columnar=True) == {
        "outputs": {"a": [1, 2], "b": [1]}}


def test_feature_dicts_become_examples_with_the_declared_types():
    from tensorflow.core.example import example_pb2

    serialized = rest_api.example_from_features(
        {"x": 3, "n": 4.0, "s": ["a", "b"], "guessed": 1.5, "absent": None},
        {"x": "float", "n": "int64", "s": "string"})
    features = example_pb2.Example.FromString(serialized).features.feature
    assert list(features["x"].float_list.value) == [3.0]
    assert list(features["n"].int64_list.value) == [4]
    assert list(features["s"].bytes_list.value) == [b"a", b"b"]
    assert list(features["guessed"].float_list.value) == [1.5]
    assert "absent" not in features
    with pytest.raises(rest_api.BadRequest, match="feature 'x'"):
        rest_api.example_from_features({"x": "three"}, {"x": "float"})


@pytest.mark.parametrize("body", [b'{"signature_name": [1], "instances": [1]}',
                                  b'{"signature_name": {}, "instances": [1]}',
                                  b'{"signature_name": 5, "instances": [1]}'])
def test_a_signature_name_that_is_not_a_string_is_refused_by_name(body):
    # A list was a 400 "TypeError: unhashable type: 'list'"; {} silently served the default.
    with pytest.raises(rest_api.BadRequest, match='"signature_name" must be a string'):
        rest_api.parse_predict_request(body)


def test_a_number_beyond_float_is_a_bad_request_even_without_a_schema():
    # float(10**400) raised OverflowError: a 500 for a version served without its schema.
    with pytest.raises(rest_api.BadRequest, match="'x'"):
        rest_api.example_from_features({"x": 10 ** 400}, {"x": "float"})
    with pytest.raises(rest_api.BadRequest, match="'x'"):
        rest_api.example_from_features({"x": 10 ** 30}, {"x": "int64"})


@pytest.mark.parametrize("inputs", [[], {}, None, {"x": [], "n": []}])
def test_an_empty_columnar_batch_is_a_bad_request(inputs):
    with pytest.raises(rest_api.BadRequest, match='"inputs" must hold at least one value'):
        rest_api.parse_predict_request(json.dumps({"inputs": inputs}).encode())
    assert rest_api.parse_predict_request(json.dumps({"inputs": {"x": [1.0]}}).encode()).columns == {"x": [1.0]}
