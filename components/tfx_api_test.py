"""tfx_api gives exactly the objects tfx.v1 does, and starts without Google Cloud's SDK."""
import subprocess
import sys

from tfx import v1

from kubetfx.components import tfx_api


def test_every_name_is_the_tfx_v1_object():
    for space in ("components", "dsl", "proto", "types"):
        for name, value in vars(getattr(tfx_api, space)).items():
            if name == "standard_artifacts":  # a namespace: checked below
                continue
            assert value is getattr(getattr(v1, space), name), f"{space}.{name}"
    for name in ("Model", "ModelBlessing"):
        assert getattr(tfx_api.types.standard_artifacts, name) is getattr(v1.types.standard_artifacts, name)


def test_building_the_pipeline_does_not_import_google_cloud_aiplatform():
    code = ("import sys; from kubetfx.pipelines import config, pipeline; "
            "print('google.cloud.aiplatform' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
