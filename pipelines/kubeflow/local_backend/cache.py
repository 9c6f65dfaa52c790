"""KFP's cache: the key of a task execution, its fingerprint, and the record of finished
executions by fingerprint (the apiserver's task table; here a SQLite file in the home).

The key and the fingerprint are computed exactly as the Go code does, on the real protos:
`ml_pipelines.CacheKey` (api/v2alpha1/cache_key.proto, built here from its descriptor over
the kfp-pipeline-spec package's `pipeline_spec.proto`), serialised with protojson, then
re-encoded by Go's encoding/json (sorted keys, compact, Go's number and HTML escaping),
then sha256 (KFP 2.5.0 backend/src/v2/cacheutils/cache.go GenerateCacheKey,
GenerateFingerPrint; unchanged since 2.4.0).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from decimal import Decimal

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from kubetfx.pipelines.kubeflow.local_backend.metadata import SqliteTable


def _cache_key_classes():
    """The messages of api/v2alpha1/cache_key.proto (KFP 2.5.0), field for field."""
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName("ml_pipelines.CacheKey")
    except KeyError:
        F = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(
            name="kubetfx_cache_key.proto", package="ml_pipelines", syntax="proto3",
            dependency=["google/protobuf/struct.proto", pipeline_spec_pb2.DESCRIPTOR.name])

        def message(name, fields, maps=()):
            m = proto.message_type.add(name=name)
            for entry_name, value_type, value_type_name in maps:
                entry = m.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, json_name="key")
                value = entry.field.add(name="value", number=2, type=value_type, label=F.LABEL_OPTIONAL,
                                        json_name="value")
                if value_type_name:
                    value.type_name = value_type_name
            for field_name, number, label, kind, type_name, json_name in fields:
                f = m.field.add(name=field_name, number=number, label=label, type=kind, json_name=json_name)
                if type_name:
                    f.type_name = type_name
            return m

        R, O, MSG, STR = F.LABEL_REPEATED, F.LABEL_OPTIONAL, F.TYPE_MESSAGE, F.TYPE_STRING
        message("ContainerSpec", [("image", 1, O, STR, None, "image"),
                                  ("cmdArgs", 2, R, STR, None, "cmdArgs")])
        message("ArtifactNameList", [("artifactNames", 1, R, STR, None, "artifactNames")])
        message("CacheKey", [
            ("inputArtifactNames", 1, R, MSG, ".ml_pipelines.CacheKey.InputArtifactNamesEntry", "inputArtifactNames"),
            ("inputParameters", 2, R, MSG, ".ml_pipelines.CacheKey.InputParametersEntry", "inputParameters"),
            ("outputArtifactsSpec", 3, R, MSG, ".ml_pipelines.CacheKey.OutputArtifactsSpecEntry", "outputArtifactsSpec"),
            ("outputParametersSpec", 4, R, MSG, ".ml_pipelines.CacheKey.OutputParametersSpecEntry", "outputParametersSpec"),
            ("containerSpec", 5, O, MSG, ".ml_pipelines.ContainerSpec", "containerSpec"),
            ("input_parameter_values", 6, R, MSG, ".ml_pipelines.CacheKey.InputParameterValuesEntry", "inputParameterValues"),
        ], maps=[
            ("InputArtifactNamesEntry", MSG, ".ml_pipelines.ArtifactNameList"),
            ("InputParametersEntry", MSG, ".ml_pipelines.Value"),
            ("OutputArtifactsSpecEntry", MSG, ".ml_pipelines.RuntimeArtifact"),
            ("OutputParametersSpecEntry", STR, None),
            ("InputParameterValuesEntry", MSG, ".google.protobuf.Value"),
        ])
        pool.Add(proto)
    struct_pb2.Value  # noqa: B018 — struct.proto is in the pool before the lookup below
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ml_pipelines.CacheKey"))


CacheKey = _cache_key_classes()


def generate_cache_key(inputs: dict, outputs: dict, output_parameter_types: dict,
                       cmd_args: list, image: str):
    """The CacheKey of an executor input's `inputs` and `outputs` (JSON as the driver builds
    them). KFP 2.5.0 backend/src/v2/cacheutils/cache.go GenerateCacheKey: input artifact
    names (MLMD ids), parameter values, the first artifact of each output with its URI wiped,
    output parameter types, command + args as written in the spec (placeholders unresolved),
    and the image."""
    key = CacheKey()
    for name, artifact_list in inputs.get("artifacts", {}).items():
        names = key.inputArtifactNames[name]
        names.artifactNames.extend(a.get("name", "") for a in artifact_list.get("artifacts", []))
    for name, value in inputs.get("parameterValues", {}).items():
        json_format.ParseDict(value, key.input_parameter_values[name])
    for name, artifact_list in outputs.get("artifacts", {}).items():
        artifacts = artifact_list.get("artifacts", [])
        if not artifacts:
            continue
        first = artifacts[0]
        wiped = {k: first[k] for k in ("name", "type", "metadata") if k in first}
        json_format.ParseDict(wiped, key.outputArtifactsSpec[name])
    for name in outputs.get("parameters", {}):
        if name not in output_parameter_types:
            raise ValueError(f"unknown parameter {name!r} found in ExecutorInput_Outputs")
        key.outputParametersSpec[name] = output_parameter_types[name]
    key.containerSpec.image = image
    key.containerSpec.cmdArgs.extend(cmd_args)
    return key


def go_json(value) -> str:
    """`json.Marshal` of Go's encoding/json on a decoded `interface{}`: map keys sorted, no
    spaces, float64 in Go's shortest form ('f', or 'e' beyond [1e-6, 1e21)), and <, >, &,
    U+2028, U+2029 escaped."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    text = json.dumps(value, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _go_float(number: float) -> str:
    """Go's floatEncoder (encoding/json encode.go): strconv 'f' with the shortest digits, or
    'e' below 1e-6 / from 1e21 on, with e-07 cleaned to e-7."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"json: unsupported value: {number}")
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        power = exponent + len(digits) - 1
        text = f"{'-' if sign else ''}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
        return re.sub(r"e-0(\d)$", r"e-\1", text)
    if number.is_integer():
        return str(int(number))
    return format(Decimal(repr(number)), "f")


def fingerprint(cache_key) -> str:
    """KFP 2.5.0 backend/src/v2/cacheutils/cache.go GenerateFingerPrint: protojson, re-encoded
    by encoding/json, sha256 hex."""
    protojson = json_format.MessageToJson(cache_key, preserving_proto_field_name=False)
    return hashlib.sha256(go_json(json.loads(protojson)).encode()).hexdigest()


class CacheDB(SqliteTable):
    """Finished executions by fingerprint, per pipeline: what the KFP apiserver's task table
    answers to the driver (`GetExecutionCache(fingerprint, "pipeline/<name>", namespace)`,
    KFP 2.5.0 backend/src/v2/driver/driver.go getFingerPrintsAndID) and what the launcher
    writes after a successful execution (launcher_v2.go Execute, CreateExecutionCache)."""

    TABLE = "tasks (fingerprint TEXT, pipeline TEXT, run_id TEXT, task TEXT, outputs TEXT, finished REAL)"

    def lookup(self, fingerprint_: str, pipeline: str):
        """The outputs of the latest finished execution with this fingerprint, or None."""
        with self._connect() as db:
            row = db.execute("SELECT outputs FROM tasks WHERE fingerprint = ? AND pipeline = ?"
                             " ORDER BY finished DESC LIMIT 1", (fingerprint_, "pipeline/" + pipeline)).fetchone()
        return json.loads(row[0]) if row else None

    def record(self, fingerprint_: str, pipeline: str, run_id: str, task: str, outputs: dict) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
                       (fingerprint_, "pipeline/" + pipeline, run_id, task, json.dumps(outputs), time.time()))
