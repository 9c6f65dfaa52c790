"""`kubetfx report [RUN]`: the page of one run (default: the pipeline's latest), written to
`<home>/reports/<name>/<run>.html` or --output."""
from __future__ import annotations

import argparse
from pathlib import Path

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import ConfigError, PipelineConfig, resolve_home

EXAMPLES = """examples:
  kubetfx report                                  # latest run of kubetfx-penguin in ./.kubetfx
  kubetfx report --name kubetfx-trips --output trips.html
  kubetfx report 2026-11-23T15:18:49.123456 --home /data/kubetfx
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write one run's report: a self-contained HTML page (stages, data, model)",
        description="Writes one self-contained HTML page (no network needed to open it) of a local run, "
                    "read from ML Metadata and the run's artifacts: stages, statistics per split, schema, "
                    "anomalies, evaluation, blessings and the pushed model's signature.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="run id (default: the latest run of the pipeline)")
    parser.add_argument("--home", help="where runs write (default: $KUBETFX_HOME or ./.kubetfx)")
    parser.add_argument("--name", help="pipeline name (default: the pipeline of the latest run in the home)")
    parser.add_argument("--output", help="HTML file to write (default: <home>/reports/<name>/<run>.html)")
    parser.set_defaults(func=main)


def write_report(config: PipelineConfig, run_id=None, output=None) -> Path:
    from kubetfx.pipelines.record import home_lock
    from kubetfx.pipelines.report import page, run_record

    try:
        record = run_record.read(str(config.metadata_path), config.name, run_id, live=home_lock.held(config))
    except run_record.RunNotFound as err:
        raise ConfigError(str(err)) from None
    path = Path(output) if output else config.home_path / "reports" / config.name / f"{record.run_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page.render(record), encoding="utf-8")
    return path


def main(args) -> int:
    from kubetfx.pipelines.run import run_log

    from kubetfx.pipelines.record import home_pipelines

    home = resolve_home(args.home)
    config = PipelineConfig(name=home_pipelines.default_name(home, args.name, PipelineConfig.name),
                            home=home).validate()
    views = config.home_path / "object-store" / "mlpipeline" / "v2" / "artifacts" / config.name
    if not config.metadata_path.exists() and views.is_dir():
        # The local KFP backend records artifacts as KFP does, not TFX's ML Metadata run.
        raise ConfigError(f"pipeline {config.name!r} ran only with --engine containers in {config.home_path}, "
                          "which keeps no ML Metadata run to report on: each result stage's view is its "
                          f"kubetfx_view Markdown output, {views}/<run>/<stage>/<id>/kubetfx_view "
                          "(on Kubeflow Pipelines: the run page)")
    if not config.metadata_path.exists():
        raise ConfigError(f"no runs of pipeline {config.name!r} in {config.home_path} "
                          f"({config.metadata_path} does not exist); {home_pipelines.listing(config.home_path)}")
    from kubetfx.pipelines.record import mlmd

    mlmd.open_store(config.metadata_path)  # a damaged store is one line before the log is written
    # Reading the artifacts loads TFDV and TFMA, whose import noise goes to a log like a run's.
    with run_log.capture(config.logs_dir / "report.log", verbose=getattr(args, "verbose", False)):
        path = write_report(config, args.run, args.output)
    print(f"wrote {path}")
    return exit_codes.OK
