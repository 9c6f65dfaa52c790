"""What each command imports before it does anything (issue 27's import cut): the commands that
read files answer without TensorFlow; building the pipeline and `monitor`'s statistics do not
load the stock components kubetfx never runs (components/deferred_imports.py), and those
components still import when something reads them. Each case runs in a fresh interpreter:
sys.modules of this test process has everything already."""
import json
import subprocess
import sys

HEAVY = ("tensorflow", "apache_beam", "tfx.components.bulk_inferrer.component", "keras_tuner",
         "tensorflow_model_analysis.evaluators")


def _loaded(code: str, extra: tuple = ()) -> dict:
    """{snapshot name: {module: loaded}}; `code` calls snap(name) where it wants one."""
    script = ("import json, sys\nsnaps = {}\n"
              f"def snap(name): snaps[name] = {{m: m in sys.modules for m in {HEAVY + extra!r}}}\n"
              + code + "\nsnap('end')\nprint(json.dumps(snaps))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_models_and_report_start_without_tensorflow(tmp_path):
    loaded = _loaded(
        "import contextlib, io\n"
        "from kubetfx.pipelines import cli\n"
        "for argv in (['--help'], ['run', '--help'], ['monitor', '--help'], "
        f"['models', '--home', {str(tmp_path)!r}], ['report', '--home', {str(tmp_path)!r}]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            cli.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n")["end"]
    assert not any(loaded.values()), loaded


def test_monitor_and_the_pipeline_skip_the_stock_components_kubetfx_never_runs():
    snaps = _loaded(
        "from kubetfx.pipelines.monitor import drift, new_statistics\n"
        "snap('monitor')\n"
        "import tensorflow_model_analysis\n"  # a dunder read first runs the real __init__ too
        "assert tensorflow_model_analysis.__version__\n"
        "from kubetfx.pipelines import pipeline\n"
        "snap('pipeline')\n"
        # Read later, the deferred packages are whole: tfx.v1's names and TFMA's top level.
        "import tensorflow_model_analysis as tfma\n"
        "from tfx.components import BulkInferrer, ImportExampleGen\n"
        "from tfx.components.bulk_inferrer.component import BulkInferrer as defined\n"
        "assert BulkInferrer is defined and tfma.EvalConfig is tfma.sdk.EvalConfig\n"
        "assert tfma.run_model_analysis is not None\n"
        "from kubetfx.components import tfx_api\n"
        "assert tfx_api.components.Tuner.__name__ == 'Tuner'\n")
    assert snaps["monitor"]["tensorflow"] and snaps["monitor"]["apache_beam"], "TFDV's statistics need them"
    unused = ("tfx.components.bulk_inferrer.component", "keras_tuner")
    assert not any(snaps["monitor"][m] for m in unused + ("tensorflow_model_analysis.evaluators",)), snaps
    assert not any(snaps["pipeline"][m] for m in unused), snaps
    assert snaps["end"]["tfx.components.bulk_inferrer.component"] and snaps["end"]["keras_tuner"]


def test_building_the_pipeline_skips_the_kubernetes_client(tmp_path):
    # TFX's InfraValidator executor imports its Kubernetes runner for a serving spec kubetfx
    # never writes (deferred_imports.MODULES); the runner still loads when something reads it.
    snaps = _loaded(
        "from kubetfx.pipelines.config import PipelineConfig\n"
        "from kubetfx.pipelines import pipeline\n"
        "from kubetfx.pipelines.run import parallel_runner, recovery\n"
        f"pipeline.create_pipeline(PipelineConfig(home={str(tmp_path)!r}, task='classification'))\n"
        "snap('built')\n"
        "from tfx.components.infra_validator.model_server_runners import kubernetes_runner\n"
        "assert kubernetes_runner.KubernetesRunner.__name__ == 'KubernetesRunner'\n",
        extra=("kubernetes",))
    assert snaps["built"]["tensorflow"], "the stages' classes need TensorFlow"
    assert not snaps["built"]["kubernetes"], snaps
    assert snaps["end"]["kubernetes"]
