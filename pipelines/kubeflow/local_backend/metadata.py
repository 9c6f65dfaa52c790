"""The artifacts a run records, where KFP records them in ML Metadata: an id per artifact
(what downstream tasks receive as the artifact's `name` and what the cache key is made
of), its URI, schema and metadata, in the pipeline's context. A SQLite file in the home.

What is kept follows KFP 2.5.0 backend/src/v2/metadata/client.go RecordArtifact (custom
properties = the artifact's metadata, plus `display_name` = the output key and
`store_session_info`) and converter.go toRuntimeArtifact (what a consumer is handed).
Values are kept with the types MLMD gives them (converter.go StructValueToMLMDValue): every
number a double (a stage's `"rows": 2` comes back 2.0), a bool an int (true -> 1), a list
`{"list": [...]}`, an object `{"struct": {...}}`, null refused; so a consumer that relied on
an int, a bool or a bare list fails here as in the cluster.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Optional


def schema_title(schema: str) -> str:
    """MLMD type name of a schema (client.go SchemaToArtifactType: its `title:` line)."""
    for line in schema.splitlines():
        if line.startswith("title:"):
            return line.split(":", 1)[1].strip()
    return ""


# KFP 2.5.0 backend/src/v2/config/env.go getDefaultMinioSessionInfo: a minio:// root without
# a kfp-launcher ConfigMap (KFP's default install); the endpoint is objectstore/config.go
# MinioDefaultEndpoint's fallback (in a pod of the kubeflow namespace it is the service's
# MINIO_SERVICE_SERVICE_HOST:PORT instead, an address only the cluster knows).
DEFAULT_MINIO_SESSION = {"region": "minio", "endpoint": "minio-service.kubeflow:9000", "disableSSL": "true",
                         "fromEnv": "false", "secretName": "mlpipeline-minio-artifact",
                         "accessKeyKey": "accesskey", "secretKeyKey": "secretkey"}


def session_info(uri: str) -> str:
    """`store_session_info` JSON as Go marshals objectstore.SessionInfo (no json tags, map
    keys sorted): the default bucket's session for minio://, else credentials from the env."""
    provider = uri.split("://", 1)[0] if "://" in uri else ""
    params = DEFAULT_MINIO_SESSION if provider == "minio" else {"fromEnv": "true"}
    return json.dumps({"Provider": provider, "Params": dict(sorted(params.items()))}, separators=(",", ":"))


def imported_session_info(uri: str) -> str:
    """An importer's artifact: always the execution environment's credentials (KFP 2.5.0
    backend/src/v2/component/importer_launcher.go ImportSpecToMLMDArtifact)."""
    provider = uri.split("://", 1)[0] if "://" in uri else ""
    return json.dumps({"Provider": provider, "Params": {"fromEnv": "true"}}, separators=(",", ":"))


def mlmd_value(key: str, value):
    """converter.go StructValueToMLMDValue: what MLMD keeps of a metadata value."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    raise ValueError(f"metadata {key!r}: unknown/unsupported value type {type(value).__name__} (KFP refuses it)")


def _struct_number(value):
    """A number as protojson writes a structpb number: integral doubles without a fraction."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53 else value


class SqliteTable:
    """One table in a SQLite file of the home, created on first use; every call bounded
    (30 s for a lock held by a concurrent writer)."""
    TABLE = ""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE}")

    def _connect(self):
        return sqlite3.connect(self.path, timeout=30)


class MetadataStore(SqliteTable):
    TABLE = ("artifacts (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT, uri TEXT, schema TEXT, type TEXT,"
             " custom_properties TEXT)")

    def record(self, pipeline: str, uri: str, schema: str, custom_properties: dict) -> dict:
        custom_properties = {k: mlmd_value(k, v) for k, v in custom_properties.items()}
        with self._connect() as db:
            cursor = db.execute("INSERT INTO artifacts (pipeline, uri, schema, type, custom_properties)"
                                " VALUES (?, ?, ?, ?, ?)", (pipeline, uri, schema, schema_title(schema),
                                                            json.dumps(custom_properties)))
            artifact_id = cursor.lastrowid
        return self.get(artifact_id)

    def get(self, artifact_id: int) -> dict:
        with self._connect() as db:
            row = db.execute("SELECT id, uri, schema, type, custom_properties FROM artifacts WHERE id = ?",
                             (artifact_id,)).fetchone()
        return {"id": row[0], "uri": row[1], "schema": row[2], "type": row[3], "custom_properties": json.loads(row[4])}

    def find_matched(self, pipeline: str, uri: str, type_title: str, custom_properties: dict) -> Optional[dict]:
        """KFP 2.5.0 backend/src/v2/metadata/client.go FindMatchedArtifact: same URI and type,
        every custom property of the target equal in the candidate, in the pipeline's context."""
        custom_properties = {k: mlmd_value(k, v) for k, v in custom_properties.items()}
        with self._connect() as db:
            rows = db.execute("SELECT id FROM artifacts WHERE pipeline = ? AND uri = ? AND type = ? ORDER BY id",
                              (pipeline, uri, type_title)).fetchall()
        for (artifact_id,) in rows:
            candidate = self.get(artifact_id)
            if all(candidate["custom_properties"].get(k) == v for k, v in custom_properties.items()):
                return candidate
        return None


def to_runtime_artifact(artifact: dict) -> dict:
    """What a consumer task is handed (converter.go toRuntimeArtifact + client.go
    OutputArtifact.ToRuntimeArtifact): the MLMD id as name, the URI, the custom properties
    as metadata, and an empty `instanceSchema` (GetOutputArtifactsByExecutionId leaves the
    schema empty, client.go "TODO(Bobgy): figure out how to get schema")."""
    metadata = {k: _struct_number(v) for k, v in artifact["custom_properties"].items()}
    return {"name": str(artifact["id"]), "uri": artifact["uri"], "metadata": metadata, "type": {"instanceSchema": ""}}
