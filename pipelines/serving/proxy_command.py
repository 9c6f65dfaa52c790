"""`kubetfx inference-logger --upstream URL --log-dir DIR|URI`: the inference-logging proxy
(logging_proxy.py) in front of a TF Serving REST endpoint, its log shipped to the object
store (log_shipper.py) or kept in a local folder. In the cluster it runs in front of TF
Serving (manifests/base/inference-logger-deployment.yaml). The log keeps the request
features that the served version's schema names, read from --serving-dir (the volume TF
Serving serves, each version with its training summary); without it, no request feature is
logged (version, time, request id and prediction only).

With --candidate-upstream it is also the traffic splitter of a staged rollout on the
cluster (manifests/overlays/rollout): two TF Serving tracks behind it, each request routed
by the rollout state (`rollout.json` in --rollout-dir, default --serving-dir, re-read every
--rollout-poll-seconds), and, with --track-configs, each track's TF Serving model config
written there whenever the state changes (logging_proxy.TrackConfigs)."""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import ConfigError


EXAMPLES = """examples:
  kubetfx inference-logger --upstream http://localhost:8501 --log-dir logs/ --port 8502
  KUBETFX_OBJECT_STORE_ENDPOINT=http://minio-service.kubeflow:9000 kubetfx inference-logger \\
    --upstream http://kubetfx-serving:8501 --log-dir minio://mlpipeline/kubetfx/inference-logs/kubetfx-penguin --host 0.0.0.0
  kubetfx monitor --serving-dir /kubetfx/serving/kubetfx-penguin --logs minio://mlpipeline/kubetfx/inference-logs/kubetfx-penguin
  kubetfx inference-logger --upstream http://kubetfx-serving:8501 --candidate-upstream http://kubetfx-serving-candidate:8501 \
    --serving-dir /kubetfx/serving/kubetfx-penguin --track-configs /kubetfx/serving/kubetfx-penguin.tracks --log-dir logs/
"""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inference-logger", help="proxy to a TF Serving REST endpoint that logs every prediction (for monitor --logs)",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="the model server's REST address, e.g. http://localhost:8501")
    parser.add_argument("--log-dir", required=True,
                        help="where the log goes: a folder, or a minio://, s3:// prefix (endpoint: "
                             "$KUBETFX_OBJECT_STORE_ENDPOINT) that `monitor --logs URI` reads")
    parser.add_argument("--spool-dir", help="local folder of the shards not shipped yet (default: a temporary one)")
    parser.add_argument("--port", type=int, default=8501, help="port to answer on (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    parser.add_argument("--port-file", help="write the bound port here once answering")
    parser.add_argument("--upstream-timeout", type=float, default=30, help="seconds to wait for each upstream answer")
    parser.add_argument("--log-shard-mb", type=float, default=8, help="close a log shard at this size")
    parser.add_argument("--log-shard-minutes", type=float, default=10, help="close (and ship) a log shard at this age")
    parser.add_argument("--log-shards", type=int, default=16, help="keep at most this many closed shards locally")
    parser.add_argument("--log-max-mb", type=float, default=1024,
                        help="bound the local log folder's total size (oldest closed shards deleted first)")
    parser.add_argument("--serving-dir", help="the served model's base directory (its versions' schemas name the "
                                              "features logged; without it none are)")
    parser.add_argument("--store-shards", type=int, default=1000, help="keep at most this many shards in the store")
    parser.add_argument("--ship-seconds", type=float, default=30, help="how often closed shards are shipped")
    rollout = parser.add_argument_group("staged rollout (two TF Serving tracks behind the proxy)")
    rollout.add_argument("--candidate-upstream",
                         help="the candidate track's REST address; requests are split by the rollout state")
    rollout.add_argument("--rollout-dir", help="the folder of rollout.json (default: --serving-dir; a mounted "
                                               "ConfigMap folder works too)")
    rollout.add_argument("--rollout-poll-seconds", type=float, default=1.0,
                         help="how often rollout.json is re-read (an abort reaches every request within it)")
    rollout.add_argument("--track-configs", help="write each track's TF Serving model config here (stable.config, "
                                                 "candidate.config) when the rollout state changes")
    rollout.add_argument("--model-name", help="the model's name in those configs (default: --serving-dir's folder name)")
    parser.set_defaults(func=main)


def _rollout_watch(args, logging_proxy):
    """The RolloutWatch the flags ask for, None without --candidate-upstream; ConfigError
    (one line, exit 2) for flags that do not go together."""
    rollout_flags = [f for f, v in (("--rollout-dir", args.rollout_dir), ("--track-configs", args.track_configs),
                                    ("--model-name", args.model_name)) if v]
    if not args.candidate_upstream:
        if rollout_flags:
            raise ConfigError(f"{', '.join(rollout_flags)} need(s) --candidate-upstream (the candidate track)")
        return None
    if not args.candidate_upstream.startswith(("http://", "https://")):
        raise ConfigError(f"--candidate-upstream {args.candidate_upstream!r} must be an http:// or https:// address")
    if args.candidate_upstream.rstrip("/") == args.upstream.rstrip("/"):
        raise ConfigError("--candidate-upstream is --upstream: the two tracks must be two servers")
    state_dir = args.rollout_dir or args.serving_dir
    if not state_dir:
        raise ConfigError("--candidate-upstream needs --rollout-dir or --serving-dir (where rollout.json is)")
    if not (math.isfinite(args.rollout_poll_seconds) and args.rollout_poll_seconds > 0):
        raise ConfigError("--rollout-poll-seconds must be a positive finite number")
    configs = None
    if args.track_configs:
        if not args.serving_dir:
            raise ConfigError("--track-configs needs --serving-dir (the base path the tracks' TF Serving loads)")
        name = args.model_name or os.path.basename(os.path.normpath(args.serving_dir))
        try:
            configs = logging_proxy.TrackConfigs(args.track_configs, name, os.path.normpath(args.serving_dir))
        except ValueError as err:
            raise ConfigError(f"--track-configs: {err}") from None
    return logging_proxy.RolloutWatch(state_dir, args.rollout_poll_seconds, configs)


def _write_port(path: str, port: int) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(path + ".tmp", path)


def main(args) -> int:
    from kubetfx.pipelines.kubeflow import remote_source
    from kubetfx.pipelines.serving import inference_log, log_shipper, logging_proxy, serve_command

    bounds = serve_command.log_bounds(args)
    if not all(math.isfinite(v) and v > 0 for v in (args.store_shards, args.ship_seconds, args.upstream_timeout)):
        raise ConfigError("--store-shards, --ship-seconds and --upstream-timeout must be positive finite numbers")
    serve_command.check_port(args.port)
    if not args.upstream.startswith(("http://", "https://")):
        raise ConfigError(f"--upstream {args.upstream!r} must be an http:// or https:// address")
    watch = _rollout_watch(args, logging_proxy)
    remote = remote_source.is_remote(args.log_dir)
    if remote:
        remote_source.check_uri(args.log_dir)
        s3 = remote_source.client(args.log_dir)
    spool = (args.spool_dir or tempfile.mkdtemp(prefix="kubetfx-inference-log-")) if remote else args.log_dir
    if not args.serving_dir:
        print("kubetfx: warning: no --serving-dir: requests are logged without their features", file=sys.stderr)
    log = inference_log.InferenceLog(
        spool, features=inference_log.ServingSchemas(args.serving_dir) if args.serving_dir else None, **bounds)
    shipper = None
    if remote:
        shipper = log_shipper.ShardShipper(log, args.log_dir, s3, interval_seconds=args.ship_seconds,
                                           max_shard_seconds=args.log_shard_minutes * 60,
                                           store_shards=args.store_shards)
    candidate = logging_proxy.Upstream(args.candidate_upstream, args.upstream_timeout) if watch else None
    proxy = logging_proxy.LoggingProxy(logging_proxy.Upstream(args.upstream, args.upstream_timeout), log,
                                       candidate=candidate, rollout=watch)
    if watch is not None:
        watch.start()  # the tracks' configs are written before the first request is taken
    try:
        port = proxy.start(args.port, args.host)
    except OSError as err:
        if watch is not None:
            watch.stop()
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {err}") from None
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if shipper is not None:
            shipper.start()
        if args.port_file:
            _write_port(args.port_file, port)
        print(f"kubetfx: logging requests to {args.upstream}"
              + (f" and candidate {args.candidate_upstream} (rollout state {watch.state_dir})" if watch else "")
              + f" on http://{args.host}:{port}; inference log {args.log_dir}" + (f" (spool {spool})" if remote else ""),
              flush=True)
        stop.wait()
    finally:
        proxy.shutdown()
        if watch is not None:
            watch.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shipped = shipper.stop() if shipper is not None else 0
        log.close()
    print(f"kubetfx: inference logger stopped; {proxy.logged} predictions logged"
          + (f", {proxy.fallbacks} candidate request(s) answered by stable" if watch else "")
          + (f", last {shipped} shard(s) shipped" if remote else ""), flush=True)
    left = inference_log.shards(spool) if remote else []
    if left:  # the store did not take them (its error is logged above)
        print(f"kubetfx: error: {len(left)} shard(s) not shipped to {args.log_dir}, left in {spool}", file=sys.stderr)
        return exit_codes.CRASH
    return exit_codes.OK
