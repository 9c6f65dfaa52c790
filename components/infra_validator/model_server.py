"""A TensorFlow SavedModel behind KServe's Python ModelServer, speaking TF Serving's REST
predict API (`GET /v1/models/<name>`, `POST /v1/models/<name>:predict` with
`{"instances": [{"b64": ...}]}`), so the canary code that checks it also checks real TF
Serving in a cluster.

Runs in its own environment (.venv-serving: kserve + tensorflow-cpu, protobuf 6), never
imported by kubetfx: `python model_server.py --model_dir DIR --model_name NAME --http_port P`.
"""
from __future__ import annotations

import argparse
import base64
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kserve  # noqa: E402
import tensorflow as tf  # noqa: E402


def _decode(instance):
    """TF Serving's JSON encoding of binary strings is {"b64": "..."}."""
    if isinstance(instance, dict) and set(instance) == {"b64"}:
        return base64.b64decode(instance["b64"])
    if isinstance(instance, str):
        return instance.encode()
    raise kserve.errors.InvalidInput("each instance must be a serialized tf.Example as {\"b64\": ...}")


def _jsonable(value):
    value = value.numpy() if hasattr(value, "numpy") else value
    if value.dtype.kind in "SO":
        return [_jsonable_bytes(v) for v in value.tolist()]
    return value.tolist()


def _jsonable_bytes(v):
    if isinstance(v, list):
        return [_jsonable_bytes(x) for x in v]
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


class SavedModel(kserve.Model):
    def __init__(self, name: str, model_dir: str, signature: str):
        super().__init__(name)
        self.model_dir, self.signature_name = model_dir, signature
        self.signature = None

    def load(self) -> bool:
        loaded = tf.saved_model.load(self.model_dir)
        self.signature = loaded.signatures[self.signature_name]
        self._loaded = loaded  # keep the resources the signature needs alive
        self.ready = True
        return self.ready

    async def predict(self, payload, headers=None, response_headers=None):
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not isinstance(instances, list) or not instances:
            raise kserve.errors.InvalidInput('expected {"instances": [...]} with at least one instance')
        serialized = tf.constant([_decode(i) for i in instances])
        (input_name,) = self.signature.structured_input_signature[1].keys()
        outputs = self.signature(**{input_name: serialized})
        columns = {k: _jsonable(v) for k, v in outputs.items()}
        # TF Serving's row format: one prediction per instance, a dict when many outputs.
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        if len(columns) == 1:
            rows = next(iter(columns.values()))
        return {"predictions": rows}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--signature", default="serving_default")
    args, _ = parser.parse_known_args()
    model = SavedModel(args.model_name, args.model_dir, args.signature)
    model.load()
    kserve.ModelServer(http_port=args.http_port, workers=1, enable_grpc=False).start([model])


if __name__ == "__main__":
    main()
