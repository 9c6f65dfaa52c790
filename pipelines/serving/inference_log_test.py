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


def _ids(directory) -> list:
    return [tf.train.Example.FromString(r).features.feature["request_id"].bytes_list.value[0].decode()
            for r in inference_log.read_examples(directory)]


def test_a_log_folder_removed_under_the_writer_is_made_again_and_later_requests_are_kept(tmp_path):
    """`rm -rf .kubetfx/inference-logs` while `kubetfx serve` runs: before, every later
    record went into the unlinked open shard (lost without a word) and close() raised
    FileNotFoundError; now the next request opens a new shard in a new folder."""
    import dataclasses
    import shutil

    directory = tmp_path / "logs"
    log = inference_log.InferenceLog(directory, features=lambda version: FEATURES)
    log(dataclasses.replace(_request(n=1), request_id="before"))
    shutil.rmtree(directory)
    for name in ("after-1", "after-2"):
        log(dataclasses.replace(_request(n=1), request_id=name))
    log.close()
    assert _ids(directory) == ["after-1", "after-2"] and log.lost == 0
    assert not inference_log.open_shards(directory)


_FAILING_WRITES = """
import resource, signal, sys, time
import numpy as np
import tensorflow as tf  # imported before the bound: only the log's writes meet it
from kubetfx.components.serving.model_server import InferenceRecord
from kubetfx.pipelines.serving import inference_log

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the bound fails (EFBIG) instead of killing
log = inference_log.InferenceLog(sys.argv[1], features=None)
raised = 0
def send(first, last):
    global raised
    for i in range(first, last):
        try:
            log(InferenceRecord("m", 1, 1.7e9, "serving_default", [b""], {"p": np.array([[i]], np.float32)}, f"r{i}"))
        except Exception:
            raised += 1
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), hard))
send(0, 40)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
time.sleep(1.1)  # past the writer's pause before it tries a new shard
send(40, 60)
log.close()
print(raised, getattr(log, "lost", 0))  # "lost" is counted since the fix
"""


def test_writes_that_fail_never_fail_the_request_and_records_after_them_stay_readable(tmp_path):
    """Writes refused by the file system (here a file-size bound, RLIMIT_FSIZE, in a child
    process: write() fails as on a full disk, with EFBIG for ENOSPC). Before, the hook raised
    on every such request (the model server logged a traceback each time) and went on
    writing after the torn record, where readers stop; now the shard is let go of, the loss
    counted, and every record written once there is space again is read back."""
    import subprocess
    import sys

    directory = tmp_path / "logs"
    done = subprocess.run([sys.executable, "-c", _FAILING_WRITES, str(directory), "1500"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    raised, lost = map(int, done.stdout.split()[-2:])
    ids = _ids(directory)
    assert raised == 0 and lost >= 1, done.stderr[-2000:]
    assert [f"r{i}" for i in range(40, 60)] == [i for i in ids if int(i[1:]) >= 40]
    assert len(ids) + lost >= 60 and len(set(ids)) == len(ids)
    assert 1 <= done.stderr.count("cannot be written") <= lost.bit_length()  # said at the 1st, 2nd, 4th, ... loss
