"""A predict request's instances checked against the schema the served version was trained
on, before the model runs: without it, a misspelled feature name, `{}`, NaN, Infinity,
1e300, a list for a one-value feature or a number for a string feature all get a 200 with a
meaningless prediction (the all-missing one, or Infinity), and the caller never learns.

The schema is the tensorflow_metadata Schema the Pusher puts beside each version
(`<version>/assets.extra/kubetfx/schema.pbtxt`, components/pusher/training_summary.py);
the label comes from `training.json` beside it. A version without them (the InfraValidator's
candidate, a model pushed by another tool) is served unchecked, as before.

What an instance must satisfy (each failure is a BadRequest, HTTP 400, naming the instance
index and the feature):
- Every feature it names is in the schema. The label is known but never required (requests
  normally leave it out), nor is a feature the schema keeps out of the SERVING environment
  or a deprecated one.
- A feature left out, `null` or `[]` is missing: accepted where training data had gaps
  (presence.min_fraction < 1), refused where every training example had it (min_fraction 1).
  An instance with none of the features is refused.
- Types as the schema says: INT a JSON integer (3900.0 is taken, 3.5 is not), FLOAT a
  number, BYTES a string or {"b64": ...}; true/false is never a number.
- Numbers are finite (a missing value is null or left out, never NaN), FLOAT values fit
  float32 (1e300 would reach the model as Infinity), INT values fit int64, and both lie in
  the schema's int_domain/float_domain when it has one. String domains are not enforced:
  a new category goes to the model's out-of-vocabulary bucket, as in training.
- The number of values fits value_count (min/max) or shape; one value may come bare or as a
  one-item list.
- A {"b64": ...} serialized tf.Example must parse as one (no field a tf.Example lacks), and
  its features are checked by the same rules (float_list for FLOAT, int64_list for INT,
  bytes_list for BYTES).
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass

from kubetfx.components.serving.rest_api import BadRequest

# Where the Pusher keeps them (components/pusher/training_summary.py DIRECTORY, SCHEMA_FILE,
# RECORD_FILE); spelled out so the model server does not import the Pusher's TensorFlow code.
SUMMARY_DIRECTORY = ("assets.extra", "kubetfx")
SCHEMA_FILE = "schema.pbtxt"
RECORD_FILE = "training.json"
SERVING_ENVIRONMENT = "SERVING"


def summary_schema(version_dir: str):
    """The tensorflow_metadata Schema kept beside a pushed version (the model server's
    request check and the inference log's feature filter read it here); None when the
    version has none; ValueError when it does not read."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    where = os.path.join(version_dir, *SUMMARY_DIRECTORY)
    path = os.path.join(where, SCHEMA_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return text_format.Parse(f.read(), schema_pb2.Schema())
    except (OSError, ValueError, text_format.ParseError) as err:
        raise ValueError(f"schema beside the model unreadable ({where}): {err}") from None


FLOAT32_MAX = 3.4028234663852886e38
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# tensorflow_metadata LifecycleStage: stages TFDV leaves out of validation.
_UNCHECKED_STAGES = {"PLANNED", "ALPHA", "DEBUG_ONLY", "DEPRECATED", "DISABLED"}
_LISTED_NAMES = 30     # the error body stays one readable line for wide tables
_SHOWN_CHARS = 40      # of a client's value echoed in an error
_JSON_TYPE = {"INT": "an integer", "FLOAT": "a number", "BYTES": 'a string or {"b64": ...}'}
_LIST_KIND = {"INT": "int64_list", "FLOAT": "float_list", "BYTES": "bytes_list"}


class SchemaViolation(BadRequest):
    """An instance the served version's schema does not allow (HTTP 400)."""


@dataclass(frozen=True)
class FeatureRule:
    name: str
    kind: str                   # "INT", "FLOAT" or "BYTES"
    required: bool              # presence.min_fraction == 1 and expected at serving
    min_count: int = 0          # values when present
    max_count: int | None = None
    low: float | None = None    # int_domain / float_domain bounds
    high: float | None = None


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else _shown(value)


def _in_serving(feature, default_environments) -> bool:
    """tensorflow_metadata's environment rule (Feature.in_environment / not_in_environment,
    Schema.default_environment), for the SERVING environment."""
    if SERVING_ENVIRONMENT in feature.in_environment:
        return True
    if SERVING_ENVIRONMENT in feature.not_in_environment:
        return False
    if feature.in_environment:
        return False
    return not default_environments or SERVING_ENVIRONMENT in default_environments


def _counts(feature) -> tuple[int, int | None]:
    if feature.HasField("shape"):
        size = math.prod(d.size for d in feature.shape.dim)
        return size, size
    if feature.HasField("value_count"):
        count = feature.value_count
        return count.min, (count.max if count.HasField("max") else None)
    return 0, None  # value_counts (nested lists) or no constraint


def _bounds(feature, schema, is_int: bool) -> tuple[float | None, float | None]:
    domain = None
    if feature.HasField("int_domain"):
        domain = feature.int_domain
    elif feature.HasField("float_domain"):
        domain = feature.float_domain
    elif feature.HasField("domain"):  # a named domain at the schema's top level
        named = schema.int_domain if is_int else schema.float_domain
        domain = next((d for d in named if d.name == feature.domain), None)
    if domain is None:
        return None, None
    return (domain.min if domain.HasField("min") else None), (domain.max if domain.HasField("max") else None)


class RequestSchema:
    """The rules of one schema; check_features()/check_example() raise SchemaViolation."""

    def __init__(self, schema, label: str | None = None):
        from tensorflow_metadata.proto.v0 import schema_pb2

        kinds = {schema_pb2.INT: "INT", schema_pb2.FLOAT: "FLOAT", schema_pb2.BYTES: "BYTES"}
        self.label = label
        self.rules: dict[str, FeatureRule] = {}
        for feature in schema.feature:
            if feature.type not in kinds:  # STRUCT and unset types: nothing to check per value
                continue
            stage = schema_pb2.LifecycleStage.Name(feature.lifecycle_stage)
            expected = (feature.name != label and not feature.deprecated and stage not in _UNCHECKED_STAGES
                        and _in_serving(feature, schema.default_environment))
            low, high = _bounds(feature, schema, feature.type == schema_pb2.INT)
            min_count, max_count = _counts(feature)
            self.rules[feature.name] = FeatureRule(
                feature.name, kinds[feature.type], expected and feature.presence.min_fraction >= 1.0,
                min_count, max_count, low, high)
        self._required = sorted(name for name, rule in self.rules.items() if rule.required)
        self._known_text = self._describe_known()

    @classmethod
    def from_version_dir(cls, version_dir: str) -> RequestSchema | None:
        """The schema kept beside a pushed version; None when the version has none. A schema
        or record that does not read raises ValueError (the version is not served)."""
        import json

        schema = summary_schema(version_dir)
        if schema is None:
            return None
        where = os.path.join(version_dir, *SUMMARY_DIRECTORY)
        record_path = os.path.join(where, RECORD_FILE)
        try:
            label = None
            if os.path.isfile(record_path):
                with open(record_path) as f:
                    label = (json.load(f) or {}).get("label")
        except (OSError, ValueError) as err:
            raise ValueError(f"schema beside the model unreadable ({where}): {err}") from None
        return cls(schema, label)

    def _describe_known(self) -> str:
        names = sorted(n for n in self.rules if n != self.label)
        listed = ", ".join(names[:_LISTED_NAMES]) + (f", ... ({len(names) - _LISTED_NAMES} more)"
                                                      if len(names) > _LISTED_NAMES else "")
        label = f"; label {self.label!r} optional" if self.label in self.rules else ""
        return f"the model's features: {listed}{label}"

    # -- checks -------------------------------------------------------------------------
    def check_features(self, index: int, features: dict) -> None:
        """A JSON feature dict ({"island": "Dream", "body_mass_g": 3900, ...})."""
        present = set()
        for name, value in features.items():
            rule = self._rule(index, name)
            values = value if isinstance(value, list) else [value]
            if value is None or not values:
                continue  # missing
            present.add(name)
            self._check_count(index, rule, len(values))
            for item in values:
                self._check_json_value(index, rule, item)
        self._check_presence(index, present)

    def check_example(self, index: int, serialized: bytes) -> None:
        """A serialized tf.Example, as sent in {"b64": ...}."""
        from google.protobuf.message import DecodeError
        from tensorflow.core.example import example_pb2

        example = example_pb2.Example()
        try:
            example.ParseFromString(serialized)
        except DecodeError as err:
            raise SchemaViolation(f"instance {index}: not a serialized tf.Example ({err})") from None
        size = example.ByteSize()
        example.DiscardUnknownFields()
        if example.ByteSize() != size:
            raise SchemaViolation(f"instance {index}: not a serialized tf.Example (fields a tf.Example does not have)")
        present = set()
        for name, feature in example.features.feature.items():
            rule = self._rule(index, name)
            kind = feature.WhichOneof("kind")
            values = getattr(feature, kind).value if kind else []
            if not values:
                continue  # missing
            present.add(name)
            if kind != _LIST_KIND[rule.kind]:
                raise SchemaViolation(f"instance {index}: feature {name!r} is a {kind}; the schema says "
                                      f"{rule.kind} ({_LIST_KIND[rule.kind]})")
            self._check_count(index, rule, len(values))
            if rule.kind != "BYTES":
                for item in values:
                    self._check_number(index, rule, item)
        self._check_presence(index, present)

    def _rule(self, index: int, name: str) -> FeatureRule:
        rule = self.rules.get(name)
        if rule is None:
            close = difflib.get_close_matches(name, list(self.rules), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SchemaViolation(f"instance {index}: unknown feature {_shown(name)}{hint}; {self._known_text}")
        return rule

    def _check_presence(self, index: int, present: set) -> None:
        if not present:
            raise SchemaViolation(f"instance {index} has none of the model's features; {self._known_text}")
        missing = [name for name in self._required if name not in present]
        if missing:
            raise SchemaViolation(
                f"instance {index}: feature {missing[0]!r} is missing" +
                (f" (and {len(missing) - 1} more required)" if len(missing) > 1 else "") +
                "; every training example had it (schema presence.min_fraction 1), so the model needs a value")

    @staticmethod
    def _check_count(index: int, rule: FeatureRule, count: int) -> None:
        if rule.max_count is not None and count > rule.max_count:
            allowed = "one value" if rule.max_count == 1 else f"at most {rule.max_count} values"
            raise SchemaViolation(f"instance {index}: feature {rule.name!r} has {count} values; "
                                  f"the schema allows {allowed}")
        if count < rule.min_count:
            raise SchemaViolation(f"instance {index}: feature {rule.name!r} has {count} values; "
                                  f"the schema needs at least {rule.min_count}")

    def _check_json_value(self, index: int, rule: FeatureRule, value) -> None:
        if rule.kind == "BYTES":
            if not (isinstance(value, str) or (isinstance(value, dict) and set(value) == {"b64"})):
                raise SchemaViolation(f"instance {index}: feature {rule.name!r} must be {_JSON_TYPE['BYTES']} "
                                      f"(schema type BYTES), got {_shown(value)}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaViolation(f"instance {index}: feature {rule.name!r} must be {_JSON_TYPE[rule.kind]} "
                                  f"(schema type {rule.kind}), got {_shown(value)}")
        self._check_number(index, rule, value)

    @staticmethod
    def _check_number(index: int, rule: FeatureRule, value) -> None:
        where = f"instance {index}: feature {rule.name!r}"
        if isinstance(value, float):  # JSON integers are exact and have no NaN (math.isnan(10**400) overflows)
            if math.isnan(value):
                raise SchemaViolation(f"{where} is NaN; send null or leave the feature out for a missing value")
            if math.isinf(value):
                raise SchemaViolation(f"{where} is {'-' if value < 0 else ''}Infinity; the model needs a finite number")
        if rule.kind == "FLOAT" and abs(value) > FLOAT32_MAX:
            raise SchemaViolation(f"{where} is {_number(value)}, beyond float32 (+-3.4e38): the model would see Infinity")
        if rule.kind == "INT":
            if isinstance(value, float) and not value.is_integer():
                raise SchemaViolation(f"{where} must be an integer (schema type INT), got {value!r}")
            if not INT64_MIN <= value <= INT64_MAX:
                raise SchemaViolation(f"{where} is {_number(value)}, outside int64")
        if (rule.low is not None and value < rule.low) or (rule.high is not None and value > rule.high):
            low = "-inf" if rule.low is None else f"{rule.low:g}"
            high = "inf" if rule.high is None else f"{rule.high:g}"
            raise SchemaViolation(f"{where} is {_number(value)}, outside the schema's domain [{low}, {high}]")
