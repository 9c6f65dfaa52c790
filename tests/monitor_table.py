"""Reading `kubetfx monitor`'s table in tests: one parser for every test that checks a verdict."""
from __future__ import annotations


def verdicts(stdout: str) -> dict:
    """{feature: verdict word} of the monitor's table (the column under 'verdict')."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("feature "))
    at = lines[header].index("verdict")
    return {line.split()[0]: line[at:].split()[0] for line in lines[header + 1:]
            if line.startswith("  ") and len(line) > at and not line.startswith("  the label")}
