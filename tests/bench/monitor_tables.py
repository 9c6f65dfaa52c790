"""Tables for the monitor's false-alarm bench (monitor_false_alarms.py), as production data
looks: ~3% empty cells, an integer id distinct per row, a date, a label. Deterministic: the
same bytes for the same arguments."""
from __future__ import annotations

import csv
import datetime
import random
from pathlib import Path

import taxi_like  # tests/, put on sys.path by the script that imports this module

GAP = 0.03


def customers(path: Path, rows: int = 1500, seed: int = 11) -> Path:
    """Customer churn: int id, signup date, numeric and categorical columns, a yes/no label."""
    rng = random.Random(seed)
    ids = rng.sample(range(100_000, 999_999), rows)
    start = datetime.date(2024, 1, 1)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "signup_date", "age", "monthly_spend", "region", "plan", "support_calls",
                      "churned"])
        for i in range(rows):
            age = rng.randint(18, 80)
            spend = round(rng.lognormvariate(3.5, 0.6), 2)
            region = rng.choice(["north", "south", "east", "west"])
            plan = rng.choices(["basic", "plus", "pro"], [5, 3, 1])[0]
            calls = min(int(rng.expovariate(0.7)), 12)
            churned = "yes" if calls + (plan == "basic") * 2 + rng.gauss(0, 1.5) > 3.5 else "no"
            date = (start + datetime.timedelta(days=rng.randrange(700))).isoformat()
            cells = [date, age, spend, region, plan, calls]
            cells = ["" if rng.random() < GAP else c for c in cells]
            out.writerow([ids[i], *cells, churned])
    return path


def trips(path: Path, rows: int = 1500, seed: int = 7) -> Path:
    """tests/taxi_like.py's trips with a trip id, a pickup date and ~3% gaps in every feature."""
    raw = path.with_suffix(".raw.csv")
    taxi_like.write(raw, rows=rows, seed=seed)
    rng = random.Random(seed + 1)
    start = datetime.date(2025, 3, 1)
    with open(raw, newline="") as f, open(path, "w", newline="") as out_file:
        out = csv.writer(out_file)
        reader = csv.reader(f)
        header = next(reader)
        out.writerow(["trip_id", "pickup_date", *header])
        for i, row in enumerate(reader):
            features, fare = row[:-1], row[-1]
            features = ["" if rng.random() < GAP else c for c in features]
            date = (start + datetime.timedelta(days=rng.randrange(90))).isoformat()
            out.writerow([5_000_000 + i, "" if rng.random() < GAP else date, *features, fare])
    raw.unlink()
    return path
