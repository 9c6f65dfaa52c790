"""The inference log: what one request becomes, rotation that bounds the disk, torn tails."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from kubetfx.components.serving.model_server import InferenceRecord
from kubetfx.pipelines.serving import inference_log

FEATURES = {"island", "body_mass_g"}  # the schema's


def _request(n: int = 2, version: int = 7) -> InferenceRecord:
    examples = []
    for i in range(n):
        example = tf.train.Example()
        example.features.feature["island"].bytes_list.value.append(b"Dream")
        example.features.feature["body_mass_g"].int64_list.value.append(3000 + i)
        examples.append(example.SerializeToString())
    outputs = {"probabilities": np.full((n, 3), 1 / 3, np.float32), "classes": np.array([b"Adelie"] * n, object)}
    return InferenceRecord("m", version, 1700000000.5, "serving_default", examples, outputs)


def test_each_instance_is_its_features_plus_prediction_version_and_time(tmp_path):
    log = inference_log.InferenceLog(tmp_path, features=lambda version: FEATURES)
    log(_request(n=2))
    log.close()
    records = [tf.train.Example.FromString(r).features.feature for r in inference_log.read_examples(tmp_path)]
    assert len(records) == 2
    assert records[1]["body_mass_g"].int64_list.value == [3001]
    assert records[0]["model_version"].int64_list.value == [7]
    assert records[0]["timestamp_ms"].int64_list.value == [1700000000500]
    assert len(records[0]["prediction_probabilities"].float_list.value) == 3
    assert records[0]["prediction_classes"].bytes_list.value == [b"Adelie"]


def test_rotation_keeps_a_bounded_number_of_shards(tmp_path):
    one = len(inference_log.to_examples(_request(n=1), FEATURES)[0]) + inference_log.FRAMING_BYTES
    log = inference_log.InferenceLog(tmp_path, features=lambda version: FEATURES, max_shard_bytes=one,
                                     max_shards=3)  # one request per shard
    for version in range(10):
        log(_request(n=1, version=version))
    log.close()
    assert len(inference_log.shards(tmp_path)) == 3
    kept = [tf.train.Example.FromString(r).features.feature["model_version"].int64_list.value[0]
            for r in inference_log.read_examples(tmp_path)]
    assert kept == [7, 8, 9]  # the newest requests, oldest first


def test_a_shard_cut_short_is_read_up_to_its_last_complete_record(tmp_path):
    log = inference_log.InferenceLog(tmp_path, features=lambda version: FEATURES)
    log(_request(n=3))
    log.close()
    (shard,) = inference_log.shards(tmp_path)
    shard.write_bytes(shard.read_bytes()[:-5])  # a crash in the middle of the last record
    assert len(list(inference_log.read_examples(tmp_path))) == 2


def test_each_instance_carries_its_track_and_records_without_one_have_none(tmp_path):
    import dataclasses

    log = inference_log.InferenceLog(tmp_path, features=lambda version: FEATURES)
    log(dataclasses.replace(_request(n=2), request_id="r-1", track="candidate"))
    log(_request(n=1))  # a writer without tracks (an older proxy): no track field, as before
    log.close()
    records = [tf.train.Example.FromString(r).features.feature for r in inference_log.read_examples(tmp_path)]
    assert [list(r["track"].bytes_list.value) for r in records[:2]] == [[b"candidate"], [b"candidate"]]
    assert records[0]["request_id"].bytes_list.value == [b"r-1"]
    assert "track" not in records[2]
