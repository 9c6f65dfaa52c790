"""TF Serving's REST API bodies: a predict request's JSON to the tensors a SavedModel
signature takes, and the signature's outputs back to TF Serving's JSON.

The encoding follows TF Serving 2.16 (tensorflow_serving/util/json_tensor.cc,
FillPredictRequestFromJson and MakeJsonFromTensors): "instances" (row format) answers
"predictions", "inputs" (columnar format) answers "outputs"; binary strings travel as
{"b64": "..."}; a string output whose name ends in "_bytes" is sent as {"b64": ...}, any
other as UTF-8 text. One addition: for a signature that parses serialized tf.Examples,
an instance may also be a plain feature dict ({"island": "Dream", "body_mass_g": 3900}),
turned into a tf.Example with the feature types the signature's own parse op declares, and
in columnar format an object of feature columns ({"island": ["Dream", "Biscoe"], ...}).
Such instances, feature dicts or {"b64": ...}, can be checked against the served version's
schema before they are fed (signature_feed's `checker`, request_schema.py).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import numpy as np


class BadRequest(ValueError):
    """The request body cannot be fed to the signature (HTTP 400)."""


@dataclass(frozen=True)
class PredictRequest:
    signature_name: str
    rows: list | None        # "instances": one item per example
    columns: object = None   # "inputs": a value, or {input name: value}


def parse_predict_request(body: bytes) -> PredictRequest:
    try:
        payload = json.loads(body or b"null")
    except ValueError as err:
        raise BadRequest(f"request body is not JSON: {err}") from None
    if not isinstance(payload, dict) or ("instances" in payload) == ("inputs" in payload):
        raise BadRequest('JSON object with exactly one of "instances" (row format) or "inputs" '
                         '(columnar format) expected')
    signature = payload.get("signature_name")
    if signature is not None and not isinstance(signature, str):
        raise BadRequest(f'"signature_name" must be a string, got {type(signature).__name__}')
    signature = signature or "serving_default"
    if "instances" in payload:
        rows = payload["instances"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest('"instances" must be a non-empty list')
        return PredictRequest(signature, rows)
    columns = payload["inputs"]
    # A batch of nothing ran the model on zero rows and answered 200 with no predictions:
    # refused as the empty "instances" is, so a client bug is not a silent success.
    if columns in ([], {}, None) or (isinstance(columns, dict) and all(v == [] for v in columns.values())):
        raise BadRequest('"inputs" must hold at least one value (a non-empty list, or an object of them)')
    return PredictRequest(signature, None, columns)


def _binary(value):
    """{"b64": ...} to bytes, recursively; other values unchanged."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as err:
            raise BadRequest(f"invalid base64 value: {err}") from None
    if isinstance(value, list):
        return [_binary(v) for v in value]
    return value


def _is_feature_dict(value) -> bool:
    return isinstance(value, dict) and set(value) != {"b64"}


def _feature_values(name: str, value, dtype) -> tuple[str, list]:
    values = value if isinstance(value, list) else [value]
    if dtype is None:  # the signature declares no type for it: guess from JSON
        kinds = {type(v) for v in values}
        dtype = "string" if kinds & {str, dict} else "float" if float in kinds else "int64"
    try:
        if dtype == "string":
            return dtype, [v if isinstance(v, bytes) else str(v).encode() for v in map(_binary, values)]
        if dtype == "float":
            return dtype, [float(v) for v in values]
        ints = [int(v) for v in values]
        if any(not -(1 << 63) <= v < (1 << 63) for v in ints):
            raise ValueError("outside int64")
        return dtype, ints
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond float (10**400)
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:40] + "..."
        raise BadRequest(f"feature {name!r}: {shown} is not a list of {dtype} values") from None


def example_from_features(features: dict, feature_types: dict) -> bytes:
    """A serialized tf.Example of a JSON feature dict; None (JSON null) leaves a feature out.
    `feature_types`: {name: "float" | "int64" | "string"} as the model parses them."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for name, value in features.items():
        if value is None or value == []:
            continue
        dtype, values = _feature_values(name, value, feature_types.get(name))
        feature = example.features.feature[name]
        {"float": feature.float_list, "int64": feature.int64_list, "string": feature.bytes_list}[dtype].value.extend(values)
    return example.SerializeToString()


def _examples_input(specs: dict) -> str | None:
    """The input name when the signature takes one string tensor (serialized tf.Examples)."""
    if len(specs) == 1:
        (name, spec), = specs.items()
        if spec.dtype.name == "string":
            return name
    return None


def _to_array(name: str, value, spec) -> np.ndarray:
    try:
        if spec.dtype.name == "string":
            return np.asarray(_binary(value), dtype=object)
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (TypeError, ValueError) as err:
        raise BadRequest(f"input {name!r}: cannot convert to {spec.dtype.name}: {err}") from None


def signature_feed(request: PredictRequest, specs: dict, feature_types, checker=None) -> tuple[dict, list]:
    """({input name: array}, instances as the model saw them). For a signature taking
    serialized tf.Examples the instances are those bytes; otherwise {input name: value}.
    `feature_types()` gives the parsed feature types, asked only for a feature dict.
    `checker` (request_schema.RequestSchema): each instance of a signature taking
    tf.Examples is checked against the schema before it is fed, in whichever form it came."""
    examples_input = _examples_input(specs)
    rows = request.rows
    if rows is None:  # columnar: {input name: batch}, or the batch itself for one input
        columns = request.columns
        if len(specs) == 1:
            (name,) = specs
            if examples_input and _is_feature_dict(columns) and set(columns) != {name}:
                columns = {name: _feature_rows(columns)}
            elif not (isinstance(columns, dict) and set(columns) == {name}):
                columns = {name: columns}
        if not examples_input:
            return _columnar_feed(columns, specs)
        rows = columns[examples_input]
        if not isinstance(rows, list):
            raise BadRequest(f'"inputs" for {examples_input!r} must be a list of serialized tf.Examples '
                             "or of feature dicts, or an object of feature columns")
    if examples_input:
        serialized = []
        for index, row in enumerate(rows):
            if isinstance(row, dict) and set(row) == {examples_input}:
                row = row[examples_input]
            if _is_feature_dict(row):
                if checker is not None:
                    checker.check_features(index, row)
                try:
                    serialized.append(example_from_features(row, feature_types()))
                except BadRequest as err:  # what the schema check cannot see: "\ud800", bad base64
                    raise BadRequest(f"instance {index}: {err}") from None
            elif isinstance(row, (str, bytes, dict)):
                try:
                    value = _binary(row)
                except BadRequest as err:
                    raise BadRequest(f"instance {index}: {err}") from None
                serialized.append(value if isinstance(value, bytes) else value.encode())
                if checker is not None:
                    checker.check_example(index, serialized[-1])
            else:
                raise BadRequest(f'instance {index}: each instance must be a serialized tf.Example as '
                                 '{"b64": "..."} or a feature dict')
        return {examples_input: np.asarray(serialized, dtype=object)}, serialized
    if len(specs) == 1:
        (name,) = specs
        rows = [row[name] if isinstance(row, dict) and set(row) == {name} else row for row in rows]
        return {name: _to_array(name, rows, specs[name])}, [{name: row} for row in rows]
    for row in rows:
        if not isinstance(row, dict) or set(row) != set(specs):
            raise BadRequest(f"each instance must be an object with the inputs {sorted(specs)}")
    feed = {name: _to_array(name, [row[name] for row in rows], spec) for name, spec in specs.items()}
    return feed, rows


def _feature_rows(columns: dict) -> list:
    """Columnar feature dicts ({"island": ["Dream", "Biscoe"], "body_mass_g": [3900, 4100]})
    to one feature dict per instance, for a signature taking tf.Examples."""
    sizes = {name: len(values) if isinstance(values, list) else None for name, values in columns.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise BadRequest('"inputs" as feature columns needs one list per feature, all of one length '
                         f"(one item per instance); got {sorted({str(size) for size in sizes.values()})}")
    batch = next(iter(sizes.values()))
    return [{name: values[i] for name, values in columns.items()} for i in range(batch)]


def _columnar_feed(columns, specs: dict) -> tuple[dict, list]:
    if not isinstance(columns, dict) or set(columns) != set(specs):
        raise BadRequest(f'"inputs" must be an object with the inputs {sorted(specs)}')
    feed = {name: _to_array(name, columns[name], spec) for name, spec in specs.items()}
    sizes = {len(v) for v in feed.values() if v.ndim}
    batch = sizes.pop() if len(sizes) == 1 else 0
    rows = [{name: _jsonable(name, value[i]) for name, value in feed.items()} for i in range(batch)]
    return feed, rows


def _jsonable(name: str, value):
    value = value.tolist() if isinstance(value, np.ndarray) else value.item() if isinstance(value, np.generic) else value
    if isinstance(value, list):
        return [_jsonable(name, v) for v in value]
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode()}
        return value.decode("utf-8", "replace")
    return value


def predict_response(outputs: dict, columnar: bool) -> dict:
    """TF Serving's JSON of a signature's outputs ({name: array, batch first})."""
    arrays = {name: np.asarray(value) for name, value in outputs.items()}
    if columnar:
        values = {name: _jsonable(name, array) for name, array in arrays.items()}
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    sizes = {array.shape[0] if array.ndim else None for array in arrays.values()}
    if len(sizes) != 1 or None in sizes:
        raise ValueError("in row format every output needs the same batch size; use \"inputs\" (columnar)")
    columns = {name: _jsonable(name, array) for name, array in arrays.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [dict(zip(columns, row)) for row in zip(*columns.values())]}
