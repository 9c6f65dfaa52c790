"""The cache key and fingerprint against the values KFP's own Go tests expect
(KFP 2.5.0 backend/src/v2/cacheutils/cache_test.go TestGenerateCacheKey, TestGenerateFingerPrint)."""
from __future__ import annotations

from kubetfx.pipelines.kubeflow.local_backend import cache

MODEL_SCHEMA = ("title: kfp.Model\ntype: object\nproperties:\n  framework:\n    type: string\n"
                "  framework_version:\n    type: string\n")
DATASET_SCHEMA = ("title: kfp.Dataset\ntype: object\nproperties:\n  payload_format:\n    type: string\n"
                  "  container_format:\n    type: string\n")


def _go_test_key():
    """TestGenerateCacheKey's inputs, as the executor input JSON the driver builds."""
    inputs = {
        "parameterValues": {"message": "Some string value", "num_steps": 5},
        "artifacts": {
            "dataset_one": {"artifacts": [{"name": "1", "type": {"instanceSchema": DATASET_SCHEMA},
                                           "uri": "gs://some-bucket/dataset-one", "metadata": {}}]},
            "dataset_two": {"artifacts": [{"name": "2", "type": {"schemaTitle": "kfp.Model"},
                                           "uri": "gs://some-bucket/dataset-two", "metadata": {}}]},
        },
    }
    outputs = {
        "parameters": {"output_parameter_one": {"outputFile": "/tmp/outputs/output_parameter_one/data"},
                       "output_parameter_two": {"outputFile": "/tmp/outputs/output_parameter_two/data"}},
        "artifacts": {
            "model": {"artifacts": [{"name": "model", "type": {"instanceSchema": MODEL_SCHEMA},
                                     "uri": "gs://my-bucket/some-prefix/pipeline/task/model",
                                     "metadata": {"name": "model"}}]},
            "metrics": {"artifacts": [{"name": "metrics", "type": {"schemaTitle": "kfp.Metrics"},
                                       "uri": "gs://my-bucket/some-prefix/pipeline/task/metrics",
                                       "metadata": {"name": "metrics"}}]},
        },
        "outputFile": "/tmp/kfp_outputs/output_metadata.json",
    }
    return cache.generate_cache_key(inputs, outputs, {"output_parameter_one": "STRING", "output_parameter_two": "INT"},
                                    ["sh", "ec", "test"], "python:3.9")


def test_the_fingerprint_of_the_go_test_key_is_the_one_go_computes():
    key = _go_test_key()
    assert cache.fingerprint(key) == "4e8a5d7d70997b0a35429fcd481af8fcd5b9f58ef4391bdb6ad900fd1c63622b"


def test_output_uris_are_wiped_from_the_key():
    key = _go_test_key()
    assert key.outputArtifactsSpec["model"].uri == ""
    assert key.outputArtifactsSpec["model"].metadata.fields["name"].string_value == "model"
    assert list(key.inputArtifactNames["dataset_one"].artifactNames) == ["1"]


def test_a_smaller_key_gives_go_s_second_fingerprint():
    key = cache.generate_cache_key({"artifacts": {"dataset": {"artifacts": [{"name": "10"}]}}},
                                   {"parameters": {"output_parameter": {}}}, {"output_parameter": "DOUBLE"},
                                   ["sh", "ec", "run"], "python:3.9")
    assert cache.fingerprint(key) == "0a4cc1f15cdfad5170e1358518f7128c5278500a670db1b9a3f3d83b93db396e"


def test_a_changed_parameter_image_or_input_id_changes_the_fingerprint():
    base = dict(inputs={"parameterValues": {"fp": "a"}, "artifacts": {"x": {"artifacts": [{"name": "7"}]}}},
                outputs={}, output_parameter_types={}, cmd_args=["python", "{{$}}"], image="img:1")
    first = cache.fingerprint(cache.generate_cache_key(**base))
    assert cache.fingerprint(cache.generate_cache_key(**base)) == first
    assert cache.fingerprint(cache.generate_cache_key(**{**base, "image": "img:2"})) != first
    other_param = {**base, "inputs": {**base["inputs"], "parameterValues": {"fp": "b"}}}
    assert cache.fingerprint(cache.generate_cache_key(**other_param)) != first
    other_id = {**base, "inputs": {**base["inputs"], "artifacts": {"x": {"artifacts": [{"name": "8"}]}}}}
    assert cache.fingerprint(cache.generate_cache_key(**other_id)) != first


def test_go_json_encodes_numbers_and_html_characters_as_go_does():
    assert cache.go_json({"b": 5.0, "a": [0.5, 1e-7, 1e21, True, None], "c": "<&>"}) == \
        '{"a":[0.5,1e-7,1e+21,true,null],"b":5,"c":"\\u003c\\u0026\\u003e"}'


def test_the_cache_db_answers_per_pipeline_with_the_latest_entry(tmp_path):
    db = cache.CacheDB(tmp_path / "cache.sqlite")
    assert db.lookup("f1", "p") is None
    db.record("f1", "p", "run1", "T", {"out": [{"name": "1"}]})
    db.record("f1", "p", "run2", "T", {"out": [{"name": "2"}]})
    assert db.lookup("f1", "p") == {"out": [{"name": "2"}]}
    assert db.lookup("f1", "other") is None
