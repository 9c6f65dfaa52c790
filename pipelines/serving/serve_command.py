"""`kubetfx serve`: the pipeline's serving directory answering on TF Serving's REST API
(kubetfx's model server, components/serving/model_server.py), following the
directory as TF Serving does — a push or a rollback is served without a restart — with
every answered request written to the inference log (inference_log.py): the served
version's schema features only, bounded per shard and in total, safe to share between
several `serve` processes on one home. During a staged rollout (`rollout.json` in the
serving directory) it serves the stable and the candidate version side by side, each
request routed to one track (components/serving/tracks.py), re-read every --poll-seconds."""
from __future__ import annotations

import math
import os
import sys

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import ConfigError, PipelineConfig, resolve_home


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve the pushed model locally on TF Serving's REST API, logging requests")
    parser.add_argument("--name", help="pipeline name (default: the pipeline of the latest run in the home)")
    parser.add_argument("--home", help="where runs write (default: $KUBETFX_HOME or ./.kubetfx)")
    parser.add_argument("--port", type=int, default=8501, help="REST port (TF Serving's 8501; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    parser.add_argument("--port-file", help="write the bound port here once answering (with --port 0)")
    parser.add_argument("--max-body-bytes", type=int, default=16 << 20,
                        help="a larger request body is a 413, answered before it is read (default 16 MiB)")
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="how often the serving directory and its rollout.json are re-read (default 1)")
    parser.add_argument("--no-log", action="store_true", help="do not write the inference log")
    parser.add_argument("--log-shard-mb", type=float, default=8, help="close a log shard at this size")
    parser.add_argument("--log-shard-minutes", type=float, default=60, help="close a log shard at this age")
    parser.add_argument("--log-shards", type=int, default=16, help="keep at most this many closed log shards")
    parser.add_argument("--log-max-mb", type=float, default=1024,
                        help="bound the log folder's total size (oldest closed shards deleted first; default 1024)")
    parser.set_defaults(func=main)


def log_bounds(args) -> dict:
    """InferenceLog's bounds from the --log-* flags; ConfigError naming a bad one (shared
    by `serve` and `inference-logger`)."""
    values = (args.log_shard_mb, args.log_shard_minutes, args.log_shards, args.log_max_mb)
    if not all(math.isfinite(v) and v > 0 for v in values):  # min() let NaN through: a traceback later
        raise ConfigError("--log-shard-mb, --log-shard-minutes, --log-shards and --log-max-mb must be positive "
                          "finite numbers")
    if args.log_max_mb < args.log_shard_mb:
        raise ConfigError(f"--log-max-mb {args.log_max_mb:g} is below one shard (--log-shard-mb {args.log_shard_mb:g})")
    return {"max_shard_bytes": int(args.log_shard_mb * (1 << 20)), "max_shard_seconds": args.log_shard_minutes * 60,
            "max_shards": args.log_shards, "max_total_bytes": int(args.log_max_mb * (1 << 20))}


def check_port(port: int) -> None:
    """--port as a TCP port (shared by `serve` and `inference-logger`)."""
    if not 0 <= port <= 65535:  # bind() took 99999 as 99999 - 65536, silently
        raise ConfigError(f"--port {port} is not a TCP port (0-65535; 0: any free port)")


def main(args) -> int:
    from kubetfx.components.serving import model_server
    from kubetfx.pipelines.serving import inference_log
    from kubetfx.pipelines.record import pushed_models

    bounds = log_bounds(args)
    if args.max_body_bytes <= 0:
        raise ConfigError("--max-body-bytes must be positive")
    check_port(args.port)
    if not (math.isfinite(args.poll_seconds) and args.poll_seconds > 0):
        raise ConfigError(f"--poll-seconds {args.poll_seconds:g} must be a positive finite number of seconds")
    if args.port_file:  # refused now, not by a traceback once the model is loaded
        folder = os.path.dirname(os.path.abspath(args.port_file))
        if not os.path.isdir(folder):
            raise ConfigError(f"--port-file {args.port_file}: folder {folder} does not exist")
    from kubetfx.pipelines.record import home_pipelines

    home = resolve_home(args.home)
    config = PipelineConfig(home=home, name=home_pipelines.default_name(home, args.name, PipelineConfig.name)).validate()
    if pushed_models.served_version(config.serving_dir) is None:
        raise ConfigError(f"pipeline {config.name} has no pushed model in {config.serving_dir}: "
                          f"{home_pipelines.listing(config.home_path)}")
    log = None
    if not args.no_log:
        log = inference_log.InferenceLog(inference_log.log_dir(config),
                                         features=inference_log.ServingSchemas(config.serving_dir), **bounds)
    server = model_server.ModelServer(str(config.serving_dir), config.name, on_request=log,
                                      poll_seconds=args.poll_seconds,
                                      limits=model_server.default_limits(max_body_bytes=args.max_body_bytes))
    try:
        port = server.start(args.port, args.host)
    except OSError as err:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {err}") from None
    try:
        with model_server.stop_on_signals(server):
            server.wait_until_available(300)
            if args.port_file:  # after the model loaded: a reader of the file can send requests
                with open(args.port_file + ".tmp", "w") as f:
                    f.write(str(port))
                os.replace(args.port_file + ".tmp", args.port_file)
            print(f"kubetfx: serving {config.name} {server.describe()} on "
                  f"http://{args.host}:{port}/v1/models/{config.name} (following {config.serving_dir}); "
                  f"inference log {'off' if log is None else log.directory}", flush=True)
            server.wait_stopped()
    except TimeoutError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return exit_codes.CRASH
    finally:
        server.shutdown()
        if log is not None:
            log.close()
    print("kubetfx: server stopped", flush=True)
    return exit_codes.OK
