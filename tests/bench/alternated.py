"""The command line and the run order of the benchmarks that compare two sides, each run in
a fresh process of the same script (read_ahead.py, transform_alone.py): on a shared
machine the sides take turns, the first side first on even repetitions and last on odd
ones, so a load that comes and goes falls on both."""
import argparse


def parser(doc: str, sides: tuple, reps: int) -> argparse.ArgumentParser:
    """The script's docstring as its help, --reps, --timeout (seconds per run) and --side,
    which the script passes to the process it spawns for one run of one side."""
    parsed = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parsed.add_argument("--reps", type=int, default=reps)
    parsed.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parsed.add_argument("--side", choices=list(sides), help="one run in this process (internal)")
    return parsed


def order(sides: tuple, reps: int):
    """The sides in run order over `reps` repetitions."""
    for rep in range(reps):
        yield from (sides if rep % 2 == 0 else sides[::-1])
