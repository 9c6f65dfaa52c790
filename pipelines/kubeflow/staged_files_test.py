"""`compile --module-file` and `--schema-file` give a spec that runs: the user's files staged
in the object store (no host path in the spec), read by the tasks that need them through
importer artifacts, uploaded by `kubetfx submit` (real kfp.Client, the KFP API stand-in, a
real S3 server on loopback), and handed to TFX by the entrypoint as local paths."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import kfp_api_standin
from kubetfx.components.container import entrypoint
from kubetfx.pipelines import cli, exit_codes
from kubetfx.pipelines.kubeflow import backend_rules, compiler, object_store, object_store_server, staged_files

MODULE = Path(__file__).resolve().parents[2] / "tests" / "module_file_example.py"
CURATED = Path(__file__).resolve().parent.parent / "schemas" / "penguins.schema.pbtxt"


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    module, schema = folder / "my_module.py", folder / "my.schema.pbtxt"
    shutil.copy(MODULE, module)
    # the user's own schema: the curated one plus a comment, so not the file in the image
    schema.write_text(CURATED.read_text() + "\n# curated by the user\n")
    return module, schema


@pytest.fixture(scope="module")
def compiled(user_files, tmp_path_factory):
    module, schema = user_files
    out = tmp_path_factory.mktemp("spec") / "staged.yaml"
    home = tmp_path_factory.mktemp("home")
    assert cli.main(["compile", "--home", str(home), "--module-file", str(module), "--schema-file", str(schema),
                     "--output", str(out)]) == exit_codes.OK
    spec, platform = yaml.safe_load_all(out.read_text().split("\n", 1)[1])
    return out, spec, platform


def _parameter(spec, task, name):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def test_the_compiled_spec_reads_the_staged_files_and_names_no_host_path(compiled, user_files):
    path, spec, platform = compiled
    module, schema = user_files
    text = path.read_text()
    assert str(module.parent) not in text and str(Path.cwd()) not in text  # no host path at all
    module_uri, schema_uri = staged_files.uri_for("kubetfx-penguin", module), staged_files.uri_for("kubetfx-penguin", schema)
    assert staged_files.staged_uris(spec) == {"module_file": module_uri, "schema_file": schema_uri}
    assert module_uri.startswith("minio://mlpipeline/kubetfx/files/kubetfx-penguin/")
    for task in ("Transform", "Trainer"):
        assert _parameter(spec, task, "module_file") == module_uri
        assert spec["root"]["dag"]["tasks"][task]["inputs"]["artifacts"]["kubetfx_file_module_file"] == {
            "taskOutputArtifact": {"producerTask": "kubetfx-file-module-file", "outputArtifactKey": "artifact"}}
    # the user's schema, not the curated one the image carries (compiled in silently before)
    assert _parameter(spec, "ImportSchemaGen", "schema_file") == schema_uri
    assert compiler.IMAGE_SCHEMA not in text
    parsed, parsed_platform = backend_rules.check_upload(text)  # the apiserver's upload and run checks
    backend_rules.check_run(parsed, parsed_platform, {})


def test_a_changed_module_file_is_another_uri_the_same_file_the_same(tmp_path, user_files):
    module, _ = user_files
    copy = tmp_path / module.name
    shutil.copy(module, copy)
    assert staged_files.uri_for("p", copy) == staged_files.uri_for("p", module)
    copy.write_text(copy.read_text() + "\n# tuned\n")
    assert staged_files.uri_for("p", copy) != staged_files.uri_for("p", module)


def test_the_entrypoint_hands_tfx_the_launchers_local_copy():
    uri = "minio://mlpipeline/kubetfx/files/p/0123456789abcdef/my_module.py"
    executor_input = {"inputs": {"parameterValues": {"module_file": uri},
                                 "artifacts": {"kubetfx_file_module_file": {"artifacts": [{"uri": uri}]},
                                               "examples": {"artifacts": [{"uri": "minio://b/x"}]}}}}
    entrypoint.apply_staged_files(executor_input, "/")
    assert executor_input["inputs"]["parameterValues"]["module_file"] == \
        "/minio/mlpipeline/kubetfx/files/p/0123456789abcdef/my_module.py"
    assert list(executor_input["inputs"]["artifacts"]) == ["examples"]  # TFX's executor never sees it


@pytest.mark.kfp_sdk
def test_submit_stages_the_files_the_spec_reads_and_only_those(compiled, user_files, tmp_path, monkeypatch, capsys):
    path, spec, _ = compiled
    module, schema = user_files
    with object_store_server.running_with_bucket() as (store, s3), kfp_api_standin.running() as api:
        monkeypatch.setenv("KUBETFX_OBJECT_STORE_ENDPOINT", store.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", store.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", store.secret_key)
        monkeypatch.delenv("KUBETFX_KFP_TOKEN", raising=False)
        submit = ["submit", "--host", api.host, "--spec", str(path)]
        assert cli.main(submit) == exit_codes.USAGE  # the store has not got them yet
        assert "pass --module-file FILE --schema-file FILE, the file(s) it was compiled with" in capsys.readouterr().err
        other = tmp_path / "other.py"
        other.write_text(module.read_text() + "\n# not the compiled one\n")
        assert cli.main([*submit, "--module-file", str(other), "--schema-file", str(schema)]) == exit_codes.USAGE
        assert "is not the file compiled into the spec" in capsys.readouterr().err
        assert not api.runs
        assert cli.main([*submit, "--module-file", str(module), "--schema-file", str(schema)]) == exit_codes.OK
        for parameter, local in (("module_file", module), ("schema_file", schema)):
            where = object_store.parse_uri(staged_files.staged_uris(spec)[parameter])
            assert s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read() == local.read_bytes()
        assert cli.main(submit) == exit_codes.OK  # staged once: a later submit finds them there
    assert len(api.runs) == 2
