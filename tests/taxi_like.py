"""A deterministic taxi-trips-like table: numeric and string columns, missing values, and a
continuous label (fare) that depends on the features, so a model can learn it."""
from __future__ import annotations

import csv
import random
from pathlib import Path

COMPANIES = ["Flash Cab", "Sun Taxi", "City Service", "Blue Ribbon"]
PAYMENTS = ["Cash", "Credit Card", "Mobile"]


def write(path: Path, rows: int = 600, seed: int = 7) -> Path:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["trip_miles", "trip_seconds", "pickup_hour", "company", "payment_type", "fare"])
        for _ in range(rows):
            miles = round(rng.uniform(0.2, 20.0), 2)
            seconds = int(miles * rng.uniform(120, 240))
            hour = rng.randrange(24)
            company = rng.choice(COMPANIES)
            fare = round(3.25 + 2.25 * miles + 0.002 * seconds + (1.5 if company == "Flash Cab" else 0), 2)
            row = [miles, seconds, hour, company, rng.choice(PAYMENTS), fare]
            # Missing values: ~5% of the hours and companies, written as empty fields and NA.
            if rng.random() < 0.05:
                row[2] = ""
            if rng.random() < 0.05:
                row[3] = "NA"
            out.writerow(row)
    return path
