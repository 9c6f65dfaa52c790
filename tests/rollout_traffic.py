"""Real inference-log records and label files for the feedback and rollout tests: shards
written by InferenceLog itself, as the model server writes them."""
import dataclasses

import numpy as np

from kubetfx.components.serving.model_server import InferenceRecord
from kubetfx.pipelines.serving import inference_log


def example(customer: int) -> bytes:
    from tensorflow.core.example import example_pb2

    e = example_pb2.Example()
    e.features.feature["customer_id"].int64_list.value.append(customer)
    return e.SerializeToString()


def write_log(directory, rows, features=("customer_id",)):
    """rows: (request_id, version, track, predicted class, customer id, timestamp)."""
    log = inference_log.InferenceLog(directory, features=lambda version: frozenset(features))
    track_field = "track" in {f.name for f in dataclasses.fields(InferenceRecord)}
    for request_id, version, track, predicted, customer, stamp in rows:
        extra = {"track": track} if track_field else {}
        log(InferenceRecord("m", version, stamp, "serving_default", [example(customer)],
                            {"classes": np.array([predicted.encode()]), "probabilities": np.array([[0.2, 0.8]])},
                            request_id, **extra))
    log.close()


def labels(path, lines, header="request_id,label"):
    path.write_text("\n".join([header, *lines]) + "\n")
    return path
