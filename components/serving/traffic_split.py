"""Which track, stable or candidate, answers a request during a rollout: one rule shared
by the model server (model_server.py) and the logging proxy in front of two TF Serving
tracks, so a caller lands on the same track whichever of them routes it.

Sticky: a request with a key goes to the candidate when the hash of (salt, key), mapped
into [0, 100), is below candidate_percent. The salt is the candidate version, so each new
rollout draws a new group of callers, while within one rollout raising the percentage only
adds callers (those whose bucket lies between the old and the new threshold): nobody who
met the candidate goes back to stable before an abort. A request without a key is a fresh
random draw.

The key (request_key()): the X-Request-Key header, or, when the rollout's key is
"feature:<name>", that feature's value in the request's first instance (the header when
the instance lacks it). Feature values are written one canonical way (integers without
".0", floats as float32, as a tf.Example stores them), so a JSON feature dict and the same
example sent as a b64 tf.Example reach the same track.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import random

STABLE, CANDIDATE = "stable", "candidate"
KEY_HEADER = "X-Request-Key"
MAX_KEY_CHARS = 1024   # a key is hashed whole; longer ones are cut (the header is bounded anyway)

_draw = random.Random()


def bucket(key: str, salt) -> float:
    """The key's place in [0, 100) for this salt (the same on every host and process)."""
    digest = hashlib.sha256(f"{salt}\x00{key[:MAX_KEY_CHARS]}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 * 100


def track_for(key: str | None, candidate_percent: float, salt) -> str:
    """"stable" or "candidate": sticky by key (see the module docstring), random without."""
    if candidate_percent <= 0:
        return STABLE
    if candidate_percent >= 100:
        return CANDIDATE
    place = _draw.random() * 100 if key is None or key == "" else bucket(key, salt)
    return CANDIDATE if place < candidate_percent else STABLE


def request_key(key_spec: str, header: str | None, first_instance=None) -> str | None:
    """The routing key of a request: for key_spec "feature:<name>", that feature of the
    first instance (a JSON feature dict, {"b64": <tf.Example>}, or serialized tf.Example
    bytes), falling back to the header; for "header", the header; None without either."""
    if key_spec.startswith("feature:") and first_instance is not None:
        value = _feature_value(first_instance, key_spec[len("feature:"):])
        if value is not None:
            return value
    return header or None


def _feature_value(instance, name: str) -> str | None:
    if isinstance(instance, dict) and set(instance) == {"b64"}:
        try:
            instance = base64.b64decode(instance["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            return None
    if isinstance(instance, dict):
        value = instance.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        return None if value is None or isinstance(value, (dict, list)) else _canonical(value)
    if isinstance(instance, (bytes, bytearray)):
        return _example_feature(bytes(instance), name)
    return None


def _example_feature(serialized: bytes, name: str) -> str | None:
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        feature = example_pb2.Example.FromString(serialized).features.feature.get(name)
    except DecodeError:
        return None
    if feature is None:
        return None
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    return _canonical(values[0]) if values else None


def _canonical(value) -> str:
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        as_float32 = np.float32(value)
        if np.isfinite(as_float32) and float(as_float32).is_integer():
            return str(int(as_float32))
        return str(as_float32)
    return str(value)
