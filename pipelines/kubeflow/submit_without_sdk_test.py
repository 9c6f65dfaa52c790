"""`kubetfx submit` where the kfp SDK cannot be installed (the Python 3.10 lock)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

from kubetfx.pipelines import cli
from kubetfx.pipelines.kubeflow import submit

GOLDEN = Path(__file__).parent.parent / "testdata" / "kubetfx-penguin.golden.yaml"


def test_kfp_pipeline_spec_alone_is_not_taken_for_the_sdk(monkeypatch, capsys):
    # The 3.10 lock has kfp-pipeline-spec, whose kfp/pipeline_spec/ makes `kfp` an importable
    # namespace package without kfp.Client: `import kfp` succeeded and submit failed later.
    namespace = types.ModuleType("kfp")
    namespace.__path__ = []
    monkeypatch.setitem(sys.modules, "kfp", namespace)
    monkeypatch.delitem(sys.modules, "kfp.client", raising=False)
    assert cli.main(["submit", "--host", "http://127.0.0.1:1", "--spec", str(GOLDEN)]) == submit.USAGE
    assert "Python 3.11" in capsys.readouterr().err
