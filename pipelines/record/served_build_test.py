"""The build key: the same config and unchanged data give the same key, anything else another."""
from __future__ import annotations

import os

from kubetfx.pipelines.record import served_build
from kubetfx.pipelines.config import PipelineConfig


def test_the_key_follows_the_config_as_given_and_the_data_files(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,label\n1,x\n")
    config = PipelineConfig(data=str(data), label="label", home=str(tmp_path / "home")).validate()
    key = served_build.build_key(config)
    assert served_build.build_key(PipelineConfig(data=str(data), label="label", home=str(tmp_path / "home"))) == key
    assert served_build.build_key(config.replace(learning_rate=0.5)) != key
    stat = os.stat(data)
    data.write_text("a,label\n2,x\n")  # same size; ExampleGen's fingerprint sees the new time
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert served_build.build_key(config) != key


def test_the_served_version_is_the_highest_version_holding_a_saved_model(tmp_path):
    assert served_build.served_version(tmp_path / "none") == ""
    for version, files in (("9", ["saved_model.pb"]), ("10", ["saved_model.pb"]), ("11", []), ("tmp-12", [])):
        (tmp_path / version).mkdir()
        for name in files:
            (tmp_path / version / name).write_bytes(b"")
    assert served_build.served_version(tmp_path) == "10"
