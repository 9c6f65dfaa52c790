"""`kubetfx models` (the model record) and `kubetfx rollback VERSION`."""
from __future__ import annotations

import argparse
import json
import sys

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import PipelineConfig, resolve_home


def _config(args) -> PipelineConfig:
    from kubetfx.pipelines.record import home_pipelines

    home = resolve_home(args.home)
    name = home_pipelines.default_name(home, args.name, PipelineConfig.name)
    return PipelineConfig(home=home, name=name).validate()


def _short(text, width: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _data(record) -> str:
    data = record.data
    if record.summary and not record.recorded:  # a serving volume without its metadata store
        return f"span {data.span}, label {data.label} (from the summary beside the model)"
    if data.input_base is None:
        return "(no record)" if not record.recorded else "?"
    where = data.input_base.rstrip("/") + ("/" + data.pattern if data.pattern and data.pattern != "*.csv" else "/")
    fingerprint = ""
    if data.fingerprint:
        parts = dict(p.split(":", 1) for p in data.fingerprint.split(",") if ":" in p)
        fingerprint = f" {parts.get('num_files', '?')} file(s) {parts.get('total_bytes', '?')} B"
    return f"{_short(where, 48)} span {data.span}{fingerprint}"


def _blessing(record) -> str:
    if record.blessed is None and record.infra_blessed is None:
        return "?"
    return "+".join(name for name, ok in (("eval", record.blessed), ("infra", record.infra_blessed)) if ok) or "no"


def _held_out(record) -> str:
    """The acceptance test's value (same metric as the eval column), on the held-out test split."""
    value = (record.acceptance or {}).get("value")
    return "-" if value is None else f"{value:.3f}"


def table(records: list, pipeline: str, rollouts: dict | None = None) -> str:
    """rollouts: {version: its staged-rollout history in one line} (rollout_history.by_candidate)."""
    if not records:
        return f"no pushed model for pipeline {pipeline}"
    lines = [f"{'':2}{'version':<11} {'pushed (UTC)':<25} {'blessed':<11} {'metrics (eval)':<36} "
             f"{'test split':<10} trained on"]
    for r in records:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in r.metrics.items()) or "-"
        pushed = r.pushed_at or "?"
        lines.append(f"{'*' if r.serving else ' '} {r.version:<11} {_short(pushed, 25):<25} {_blessing(r):<11} "
                     f"{_short(metrics, 36):<36} {_held_out(r):<10} {_data(r)}")
        if r.rollback_of:
            lines[-1] += f"  (rollback of {r.rollback_of})"
        if (rollouts or {}).get(r.version):
            lines.append(f"{'':14}rollout: {rollouts[r.version]}")
    served = next(r.version for r in records if r.serving)
    lines.append(f"* serving: version {served} (the highest version, as TF Serving serves)")
    return "\n".join(lines)


def _cmd_models(args) -> int:
    from kubetfx.pipelines.record import pushed_models

    config = _config(args)
    serving_dir = args.serving_dir or config.serving_dir
    records = pushed_models.pushed_versions(config.metadata_path, config.name, serving_dir)
    if not records and not args.json:
        from kubetfx.pipelines.record import home_pipelines

        gone = [] if args.serving_dir else pushed_models.recorded_versions(config.metadata_path, config.name)
        if gone:  # the serving directory was cleaned, moved or not mounted: say so, not "none"
            shown = ", ".join(gone[-5:]) + (f" and {len(gone) - 5} earlier" if len(gone) > 5 else "")
            print(f"no pushed model for pipeline {config.name} in {serving_dir}, but {config.metadata_path} "
                  f"records {len(gone)} pushed version(s) ({shown}) whose directories are gone from it: "
                  "was it cleaned or moved? (--serving-dir DIR reads another)")
            return exit_codes.OK
        print(f"no pushed model for pipeline {config.name} in {serving_dir}; "
              f"{home_pipelines.listing(config.home_path)}")
        return exit_codes.OK
    from kubetfx.pipelines.record import rollout_history

    entries = rollout_history.from_file(serving_dir) if args.serving_dir else \
        rollout_history.history(config.metadata_path, config.name, serving_dir)
    if args.json:
        print(json.dumps({"pipeline": config.name, "serving_dir": str(serving_dir),
                          "versions": [{**r.to_dict(), "rollout": [e for e in entries if str(e.get("candidate")) == r.version]}
                                       for r in records]}, indent=2))
    else:
        print(table(records, config.name, rollout_history.by_candidate(entries)))
        state = rollout_history.state_line(serving_dir)
        if state and records:
            print(state)
    return exit_codes.OK


def _cmd_rollback(args) -> int:
    from kubetfx.pipelines.record.home_lock import RunLockedError
    from kubetfx.pipelines.record import rollback

    config = _config(args)
    try:
        result = rollback.rollback(config, args.version)
    except RunLockedError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return exit_codes.BUSY
    if result.already_served:
        print(f"kubetfx: version {args.version} is already what {config.name} serves ({result.path})")
    else:
        print(f"kubetfx: rollback of {config.name} to version {result.rolled_back_to}: now served as version "
              f"{result.new_version} ({result.path}); was {result.previous_served}")
    return exit_codes.OK


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="pipeline name (default: the pipeline of the latest run in the home)")
    parser.add_argument("--home", help="where runs write (default: $KUBETFX_HOME or ./.kubetfx)")


def add_parser(subparsers) -> None:
    models = subparsers.add_parser("models", help="pushed model versions: training data, metrics, blessings, which one serves")
    _common(models)
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--serving-dir", metavar="DIR",
                        help="the versions in DIR (e.g. the cluster's serving volume, copied out) instead of the "
                             "home's; where the home has no record of them, the summary the Pusher keeps beside "
                             "each version says label, span and blessings")
    models.set_defaults(func=_cmd_models)

    back = subparsers.add_parser("rollback", help="serve an earlier blessed version again (atomically, recorded)")
    back.add_argument("version", help="the version to serve (see `kubetfx models`)")
    _common(back)
    back.set_defaults(func=_cmd_rollback)
