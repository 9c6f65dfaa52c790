"""`make bench-serve`: `kubetfx serve` under load from a second process on loopback, beside
the same SavedModel's serving signature called in process (the limit on this machine).

Method (the README's "Serving benchmark" paragraph says the same):
- the server: `kubetfx serve --no-log` on the default penguin model of a home (trained
  with `kubetfx run` into --home first when it has no pushed model), its own process;
- the load: Debian's `wrk` (a C load generator, one or two threads) with 1, 16 and 64
  connections, each request one instance or 100 instances (rows of the penguin CSV as
  feature dicts, TF Serving's row format), --seconds per run, wrk's 2 s request timeout;
- in process: the version's serving_default signature called on the same rows as
  serialized tf.Examples, one call after another, for the same time;
- a discarded warm-up of each side first, then --reps repetitions with the sides
  alternated (server first in odd repetitions, in process first in even ones); medians.
Reports requests/s, p50/p99 latency and errors (connect, read (resets), write, timeout,
non-2xx) per case; goals on 2 cores: no error at 64 connections, p99 <= 50 ms for one
instance, requests/s >= half the in-process call rate. Writes build/bench/serve.json."""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # testing_models, shared with the tests
OUT = REPO / "build" / "bench"
PENGUINS = REPO / "pipelines" / "data" / "penguins" / "penguins.csv"
LABEL = "species"
NAME = "kubetfx-penguin"
CONNECTIONS = (1, 16, 64)
INSTANCES = (1, 100)
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "non_2xx": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status))
end
"""


def rows(n: int) -> list[dict]:
    """The first n penguin rows without the label, gaps left out; a column is int64 when all
    its values are integers, as the schema has it (JSON keeps 18 and 18.0 apart)."""
    with open(PENGUINS, newline="") as f:
        table = list(csv.DictReader(f))
    if len(table) < n:
        raise SystemExit(f"{PENGUINS} has fewer than {n} rows")
    kinds = {}
    for column in table[0]:
        values = [row[column] for row in table if row[column] not in ("", "NA")]
        kinds[column] = int if all(v.lstrip("-").isdigit() for v in values) else float if all(
            _is_number(v) for v in values) else str
    return [{k: kinds[k](v) for k, v in row.items() if k != LABEL and v not in ("", "NA")} for row in table[:n]]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def ensure_model(home: Path) -> None:
    if (home / "serving" / NAME).is_dir() and any(p.name.isdigit() for p in (home / "serving" / NAME).iterdir()):
        return
    print(f"==> no pushed model in {home}: kubetfx run (once)", flush=True)
    # warn: the bench measures the server, not the data gates
    subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--home", str(home), "--on-anomalies", "warn"],
                   check=True)


class Server:
    """`kubetfx serve` in its own process, answering once the model is loaded."""

    def __init__(self, home: Path, workdir: Path, model_server_flags: list[str] | None = None):
        port_file = workdir / "port"
        port_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "kubetfx.pipelines.cli", "serve", "--home", str(home), "--port", "0",
                   "--port-file", str(port_file), "--no-log"]
        if model_server_flags is not None:  # the model server's own command, to compare its flags
            command = [sys.executable, "-m", "kubetfx.components.serving.model_server", "--model_base_path",
                       str(home / "serving" / NAME), "--model_name", NAME, "--port", "0", "--port_file", str(port_file),
                       *model_server_flags]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(workdir / "serve.log", "wb"))
        deadline = time.monotonic() + 300
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"kubetfx serve did not start: see {workdir / 'serve.log'}")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}/v1/models/{NAME}:predict"

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wrk(url: str, body_file: Path, script: Path, connections: int, seconds: float) -> dict:
    threads = min(connections, 2)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "2s",
               "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          env={**os.environ, "BENCH_BODY": str(body_file)})
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no result: {done.stdout}\n{done.stderr}")
    raw = json.loads(line[len("BENCH "):])
    return {"requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "errors": {k: raw[k] for k in ("connect", "read", "write", "timeout", "non_2xx")}}


class InProcess:
    """The serving signature of the served version, called in this process."""

    def __init__(self, home: Path):
        import tensorflow as tf

        base = home / "serving" / NAME
        version = max((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        self.signature = tf.saved_model.load(str(version)).signatures["serving_default"]
        self.input_name = next(iter(self.signature.structured_input_signature[1]))
        self.tf = tf

    def batch(self, instances: list[dict]):
        from testing_models import serialized_example  # tests/, put on sys.path above

        serialized = [serialized_example(instance) for instance in instances]
        return self.tf.constant(serialized)

    def run(self, batch, seconds: float) -> dict:
        times = []
        end = time.perf_counter() + seconds
        while (start := time.perf_counter()) < end:
            self.signature(**{self.input_name: batch})
            times.append(time.perf_counter() - start)
        times.sort()
        return {"requests_per_s": len(times) / sum(times), "p50_ms": 1000 * times[len(times) // 2],
                "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))], "errors": {}}


def median_case(runs: list[dict]) -> dict:
    return {"requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": {k: max(r["errors"][k] for r in runs) for k in runs[0]["errors"]}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(OUT / "serve-home"), help="a kubetfx home with a pushed model "
                        "(trained there with `kubetfx run` when it has none)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--model-server-flags", help="run the model server module with these flags instead of "
                        "`kubetfx serve` (to compare, e.g. '--max_batch_rows 1' for no batching)")
    parser.add_argument("--output", default=str(OUT / "serve.json"))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench-serve: wrk not found: apt-get install wrk (make bench-serve installs it when root)", file=sys.stderr)
        return 2
    if args.reps < 1 or args.seconds <= 0:
        print("bench-serve: --reps and --seconds must be positive", file=sys.stderr)
        return 2
    home = Path(args.home).resolve()
    ensure_model(home)
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kubetfx-bench-serve-"))
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    bodies = {}
    for n in INSTANCES:
        bodies[n] = work / f"body-{n}.json"
        bodies[n].write_text(json.dumps({"instances": rows(n)}))
    local = InProcess(home)
    batches = {n: local.batch(rows(n)) for n in INSTANCES}
    server = Server(home, work, None if args.model_server_flags is None else args.model_server_flags.split())
    cases = [(c, n) for n in INSTANCES for c in CONNECTIONS]
    raw: dict = {"server": {f"{c}x{n}": [] for c, n in cases}, "in_process": {str(n): [] for n in INSTANCES}}
    try:
        def server_side(record: bool):
            for c, n in cases:
                result = wrk(server.url, bodies[n], script, c, args.seconds)
                if record:
                    raw["server"][f"{c}x{n}"].append(result)
                print(f"  server   {c:>2} conn x {n:>3} instances: {result['requests_per_s']:8.0f} req/s "
                      f"p50 {result['p50_ms']:6.1f} ms p99 {result['p99_ms']:6.1f} ms errors {result['errors']}"
                      + ("" if record else " (warm-up)"), flush=True)

        def local_side(record: bool):
            for n in INSTANCES:
                result = local.run(batches[n], args.seconds)
                if record:
                    raw["in_process"][str(n)].append(result)
                print(f"  in process      x {n:>3} instances: {result['requests_per_s']:8.0f} calls/s "
                      f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:6.2f} ms"
                      + ("" if record else " (warm-up)"), flush=True)

        print("==> warm-up (discarded)", flush=True)
        server_side(False)
        local_side(False)
        for rep in range(1, args.reps + 1):
            print(f"==> repetition {rep} of {args.reps}", flush=True)
            sides = (server_side, local_side) if rep % 2 else (local_side, server_side)
            for side in sides:
                side(True)
        server_rss = server.rss_mb()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    medians = {"server": {k: median_case(v) for k, v in raw["server"].items()},
               "in_process": {k: median_case(v) for k, v in raw["in_process"].items()}}
    goals = goals_of(medians)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "loadavg_at_end": os.getloadavg()},
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) or "serve.py",
              "method": {"reps": args.reps, "seconds": args.seconds, "connections": CONNECTIONS,
                         "instances": INSTANCES, "wrk_timeout_s": 2, "inference_log": "off (--no-log)",
                         "model_server_flags": args.model_server_flags},
              "server_rss_mb_at_end": round(server_rss, 1), "medians": medians, "goals": goals, "raw": raw}
    Path(args.output).write_text(json.dumps(result, indent=1))
    print_table(medians, goals, server_rss)
    print(f"wrote {args.output}")
    return 0


def goals_of(medians: dict) -> dict:
    one = medians["server"]["64x1"]
    local = medians["in_process"]["1"]["requests_per_s"]
    return {"no_errors_at_64": not any(one["errors"].values()) and not any(medians["server"]["64x100"]["errors"].values()),
            "p99_one_instance_le_50ms": all(medians["server"][f"{c}x1"]["p99_ms"] <= 50 for c in CONNECTIONS),
            "throughput_ratio_64x1": round(one["requests_per_s"] / local, 3),
            "throughput_ge_half_in_process": one["requests_per_s"] >= local / 2}


def print_table(medians: dict, goals: dict, server_rss: float) -> None:
    print("\n| side | connections | instances/request | requests/s | p50 ms | p99 ms | errors (connect/read/write/timeout/non-2xx) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, m in medians["server"].items():
        c, n = key.split("x")
        errors = "/".join(str(v) for v in m["errors"].values())
        print(f"| kubetfx serve | {c} | {n} | {m['requests_per_s']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {errors} |")
    for n, m in medians["in_process"].items():
        print(f"| in process (signature) | - | {n} | {m['requests_per_s']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | - |")
    print(f"\ngoals: {goals}; server RSS at the end {server_rss:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
