"""`kubetfx run` output and `kubetfx report` pages, on real runs: the default data (trained,
blessed, pushed) and data the curated schema rejects (halted at ExampleValidator). The
pages are rendered by headless Chromium and checked as drawn."""
from __future__ import annotations

import json
import re

import pytest

from conftest import REPO
from report_checks import Dom, chromium, painted

from kubetfx.pipelines.report import browser, charts

pytestmark = [pytest.mark.slow, pytest.mark.serving]

STAGES = ("CsvExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer", "Evaluator",
          "InfraValidator", "Pusher")
SECTIONS = ["stages", "statistics", "schema", "anomalies", "evaluation", "blessings", "model"]
# What TensorFlow, Beam, absl and Python warnings look like when they reach a terminal.
NOISE = re.compile(r"WARNING|Warning|warnings\.warn|^[IWEF]\d{4} |^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |"
                   r"cuda|oneDNN|absl|tf\.compat|deprecated|Instructions for updating", re.M)


def _hex(colour: str) -> tuple:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, run_kubetfx):
    home = tmp_path_factory.mktemp("home")
    result = run_kubetfx("run", "--home", home, env={"TF_CPP_MIN_LOG_LEVEL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    return home, result


@pytest.fixture(scope="module")
def halted_run(tmp_path_factory, run_kubetfx):
    tmp = tmp_path_factory.mktemp("halted")
    data = tmp / "penguins.csv"
    data.write_text((REPO / "pipelines/data/penguins/penguins.csv").read_text()
                    .replace("\nAdelie,Torgersen,", "\nEmperor,Torgersen,"))
    result = run_kubetfx("run", "--home", tmp / "home", "--data", data, "--label", "species", "--json",
                         "--schema-file", REPO / "pipelines/schemas/penguins.schema.pbtxt")
    assert result.returncode == 3, result.stdout + result.stderr
    return tmp / "home", result


def _run_id(result) -> str:
    return re.search(r"^Run (\S+) of ", result.stdout, re.M).group(1)


@pytest.fixture(scope="module")
def not_blessed_run(default_run, run_kubetfx):
    """A second run on the default run's home with an unreachable bound: the Evaluator
    compares with the model the first run pushed (ServedBaseline), and blesses nothing."""
    home, _ = default_run
    result = run_kubetfx("run", "--home", home, "--eval-threshold", "1.01")
    assert result.returncode == 4, result.stdout + result.stderr
    return home, result


def _report(run_kubetfx, home, name, out, *run):
    result = run_kubetfx("report", *run, "--home", home, "--name", name, "--output", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"wrote {out}" and result.stderr == ""
    return out


def test_default_run_shows_progress_and_no_library_noise(default_run):
    home, result = default_run
    for stage in STAGES:
        assert re.search(rf"^\[ *\d+\.\ds\] {stage} +started$", result.stdout, re.M), stage
        assert re.search(rf"^\[ *\d+\.\ds\] {stage} +complete in \d+\.\ds$", result.stdout, re.M), stage
    assert result.stderr == ""
    assert not NOISE.search(result.stdout), NOISE.search(result.stdout).group(0)
    # The noise is not lost: it is in the run's log, named in the output.
    log = re.search(r"log (\S+\.log)$", result.stdout, re.M).group(1)
    text = open(log).read()
    assert "cuda" in text or "oneDNN" in text or "tensorflow" in text
    assert "Component Trainer is running." in text


def test_report_of_a_pushed_run_has_every_section_and_drawn_charts(default_run, run_kubetfx, tmp_path):
    chromium()
    home, result = default_run
    page = _report(run_kubetfx, home, "kubetfx-penguin", tmp_path / "report.html", _run_id(result))
    assert "http://" not in page.read_text() and "https://" not in page.read_text()  # nothing fetched
    dom = Dom(browser.dump_dom(page))
    assert dom.sections == SECTIONS
    assert dom.banner.startswith("Model trained, blessed and pushed")
    assert dom.charts == 9  # the timeline, 5 numeric and 3 categorical features
    assert dom.shapes > 60
    for text in ("bill_length_mm", "Biscoe", "sparse_categorical_accuracy", "serving_default", "No anomalies"):
        assert text in dom.all_text, text
    png = browser.screenshot(page, tmp_path / "report.png", height=4200)
    assert painted(png, _hex(charts.SPLIT_COLOURS[0]), 12) > 1000  # categorical bars, first split
    assert painted(png, _hex(charts.STATE_COLOURS["complete"]), 12) > 1000  # banner, pills, timeline


def test_report_of_a_halted_run_says_where_and_why_it_stopped(halted_run, run_kubetfx, tmp_path):
    chromium()
    home, _ = halted_run
    page = _report(run_kubetfx, home, "kubetfx-penguins", tmp_path / "halted.html")
    dom = Dom(browser.dump_dom(page))
    assert dom.sections == SECTIONS
    assert dom.banner.startswith("Stopped at ExampleValidator: DataRejectedError: 3 error anomalies")
    text = dom.all_text
    assert "Unexpected string values" in text and "Emperor" in text  # the anomalies table
    assert "Evaluator did not run in this run (the run stopped at ExampleValidator)" in text
    assert dom.charts == 9 and dom.shapes > 60  # the statistics of the rejected data are drawn
    png = browser.screenshot(page, tmp_path / "halted.png")
    assert painted(png, _hex(charts.STATE_COLOURS["failed"]), 12) > 1000  # the red banner


def test_json_output_of_a_halted_run(halted_run):
    _, result = halted_run
    doc = json.loads(result.stdout)  # stdout is the JSON document alone
    assert doc["exit_code"] == 3 and doc["pipeline"] == "kubetfx-penguins"
    assert doc["failure"]["stage"] == "ExampleValidator"
    assert doc["failure"]["error"].startswith("DataRejectedError: 3 error anomalies")
    states = {s["stage"]: s["state"] for s in doc["stages"]}
    assert states["StatisticsGen"] == "complete" and states["ExampleValidator"] == "failed"
    assert "ExampleValidator                 FAILED after" in result.stderr.replace("  FAILED", "FAILED", 0) or \
        re.search(r"ExampleValidator +FAILED after", result.stderr)


def test_kfp_markdown_views_of_each_stage(default_run):
    from kubetfx.components.container import views as kfp_views
    from kubetfx.pipelines.report import run_record

    home, result = default_run
    record = run_record.read(str(home / "metadata" / "kubetfx-penguin.sqlite"), "kubetfx-penguin", _run_id(result))
    views = {s.node_id: kfp_views.markdown_for(s.node_id, s.outputs) for s in record.stages}
    # A CSV gap is a missing value (an absent feature), counted: 237 of the 239 training rows have one.
    assert re.search(r"^\| bill_length_mm \| FLOAT \| 237 \| 0\.8% \|", views["StatisticsGen"], re.M), \
        views["StatisticsGen"]
    assert re.search(r"^\| island \| STRING \| 239 \| 0\.0% \| 3 \| Biscoe \(121\)", views["StatisticsGen"], re.M)
    assert "| species | BYTES | required |" in views["ImportSchemaGen"]
    assert "**No anomalies**" in views["ExampleValidator"]
    assert re.search(r"^\| sparse_categorical_accuracy \| (1|0\.9\d+) \| – \| – \| >= 0\.6 \| passed \|$",
                     views["Evaluator"], re.M)
    assert "**ModelBlessing: blessed**" in views["Evaluator"]
    assert "**InfraBlessing: blessed**" in views["InfraValidator"]
    assert "| input | examples | string | (None) |" in views["Trainer"]
    assert "| output | probabilities | float | (None, 3) |" in views["Trainer"]
    assert views["Transform"] == "" and views["CsvExampleGen"] == ""


def test_report_of_a_run_not_blessed_shows_the_baseline_and_the_failed_gate(not_blessed_run, run_kubetfx, tmp_path):
    chromium()
    home, result = not_blessed_run
    page = _report(run_kubetfx, home, "kubetfx-penguin", tmp_path / "not-blessed.html")  # the latest run
    dom = Dom(browser.dump_dom(page))
    assert dom.sections == SECTIONS
    assert dom.banner.startswith("Model NOT pushed") and "the Evaluator did not bless the model" in dom.banner
    text = dom.all_text
    assert ">= 1.01" in text and "NOT blessed" in text and "Not pushed." in text
    # The evaluation says whether a baseline was compared, as ServedBaseline recorded it.
    if "baseline: nothing served yet" in result.stdout:
        assert "no baseline: no model of this pipeline was served yet" in text
    else:
        assert "compared with the baseline, the model served when the run started" in text
        # The change bound is the tolerance the Evaluator applied (never finer than one eval row).
        bound = re.search(r">= 1\.01; change >= -(0\.\d+)", text)
        applied = re.search(r"change tolerance (0\.\d+)", result.stdout)
        assert bound and applied and abs(float(bound.group(1)) - float(applied.group(1))) < 1e-4, text
    assert "serving_default" in text  # the trained model's signature, though not served


def test_report_of_a_killed_run_says_interrupted_not_running(default_run, run_kubetfx, tmp_path):
    """A run killed mid-stage (SIGKILL, out of memory, a reboot) leaves that stage RUNNING
    in ML Metadata and nothing after it: the page said "running" and "Run incomplete", as if
    it went on. Made here as a kill leaves it: a copy of a finished run's home with its last
    Pusher execution set back to RUNNING (TFX records RUNNING at a stage's start; a killed
    process records nothing more). While a run holds the home, running is running."""
    import shutil

    from ml_metadata.proto import metadata_store_pb2

    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.record import home_lock, mlmd

    home = tmp_path / "home"
    shutil.copytree(default_run[0], home)
    store = mlmd.open_store(home / "metadata" / "kubetfx-penguin.sqlite", writable=True)
    pushers = {t.id for t in store.get_execution_types() if t.name.endswith("Pusher")}
    pusher = max((e for e in store.get_executions() if e.type_id in pushers), key=lambda e: e.id)
    pusher.last_known_state = metadata_store_pb2.Execution.RUNNING
    store.put_execution(pusher, [], [])
    del store

    text = _report(run_kubetfx, home, "kubetfx-penguin", tmp_path / "killed.html").read_text()
    assert "Interrupted at Pusher: the run ended while it ran" in text, text[:2000]
    assert 'class="pill interrupted">interrupted<' in text and 'class="pill running"' not in text
    # `kubetfx run`'s table and --json read the same store through the same rule.
    from kubetfx.pipelines.record import summary

    config = PipelineConfig(home=str(home), name="kubetfx-penguin")
    killed = summary.summarize(str(config.metadata_path), config.name, live=home_lock.held(config))
    assert (killed.stages[-1].stage, killed.stages[-1].state) == ("Pusher", "interrupted"), killed.table()
    with home_lock.exclusive_run(config):
        text = _report(run_kubetfx, home, "kubetfx-penguin", tmp_path / "live.html").read_text()
        live = summary.summarize(str(config.metadata_path), config.name, live=home_lock.held(config))
    assert 'class="pill running">running<' in text and "Interrupted at" not in text
    assert live.stages[-1].state == "running"
