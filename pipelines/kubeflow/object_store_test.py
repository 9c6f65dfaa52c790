"""The object-store helpers against a real S3-protocol server (moto, server mode) on loopback."""
from __future__ import annotations

import pytest

from kubetfx.pipelines.kubeflow import object_store, object_store_server


@pytest.fixture(scope="module")
def s3():
    with object_store_server.running() as store:
        client = object_store.client(store.endpoint, store.access_key, store.secret_key)
        client.create_bucket(Bucket="mlpipeline")
        yield client


def test_a_tree_round_trips_and_a_single_key_downloads_as_a_file(s3, tmp_path):
    source = tmp_path / "data"
    (source / "part").mkdir(parents=True)
    (source / "a.csv").write_text("x,y\n1,2\n")
    (source / "part" / "b.csv").write_text("x,y\n3,4\n")
    assert object_store.upload_tree(s3, source, "minio://mlpipeline/t1/data") == 2
    assert object_store.download_tree(s3, "minio://mlpipeline/t1/data", tmp_path / "back") == 2
    assert (tmp_path / "back" / "part" / "b.csv").read_text() == "x,y\n3,4\n"
    assert object_store.download_tree(s3, "s3://mlpipeline/t1/data/a.csv", tmp_path / "one.csv") == 1
    assert (tmp_path / "one.csv").read_text() == "x,y\n1,2\n"


def test_the_fingerprint_changes_with_the_data_and_only_with_it(s3, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    object_store.upload_tree(s3, tmp_path / "a.csv", "minio://mlpipeline/t2")
    first = object_store.data_fingerprint(s3, "minio://mlpipeline/t2")
    object_store.upload_tree(s3, tmp_path / "a.csv", "minio://mlpipeline/t2")  # same bytes again
    assert object_store.data_fingerprint(s3, "minio://mlpipeline/t2") == first
    (tmp_path / "b.csv").write_text("x\n2\n")
    object_store.upload_tree(s3, tmp_path / "b.csv", "minio://mlpipeline/t2")  # a new file
    assert object_store.data_fingerprint(s3, "minio://mlpipeline/t2") != first


def test_uris_outside_the_s3_protocol_are_refused_with_the_reason():
    with pytest.raises(object_store.ObjectStoreError, match="not an S3-protocol URI"):
        object_store.parse_uri("gs://bucket/data")
    with pytest.raises(object_store.ObjectStoreError, match="names no bucket"):
        object_store.parse_uri("minio:///data")
