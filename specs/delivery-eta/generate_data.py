"""Seeded generator for the delivery-eta regression example. Run: python specs/delivery-eta/generate_data.py

Delivery time in minutes depends on distance, items, courier vehicle, hour of day and weather, with noise
and some missing values.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

VEHICLES = {"bike": 1.0, "scooter": 0.75, "car": 0.65}
WEATHER = {"clear": 0.0, "rain": 6.0, "snow": 14.0}
ZONES = ["center", "inner", "outer", "suburb"]


def make_rows(n: int, seed: int, start_id: int = 1) -> list[dict]:
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1)
    rows = []
    for i in range(n):
        ts = t0 + timedelta(minutes=37 * i + rng.randrange(0, 30))
        vehicle = rng.choices(list(VEHICLES), weights=[0.5, 0.3, 0.2])[0]
        weather = rng.choices(list(WEATHER), weights=[0.75, 0.2, 0.05])[0]
        zone = rng.choice(ZONES)
        distance = round(max(0.2, rng.lognormvariate(1.0, 0.55)), 2)
        items = max(1, int(rng.expovariate(1 / 3)) + 1)
        prep = max(2.0, rng.gauss(12, 4))
        rush = 1.0 if ts.hour in (12, 13, 18, 19, 20) else 0.0
        minutes = (prep + distance * 4.2 * VEHICLES[vehicle] + 0.6 * items + 7 * rush + WEATHER[weather]
                   + {"center": 3, "inner": 1, "outer": 0, "suburb": 2}[zone] + rng.gauss(0, 3.5))
        row = {
            "order_id": f"O{start_id + i:07d}",
            "ordered_at": ts.isoformat(timespec="minutes"),
            "hour": ts.hour,
            "distance_km": distance,
            "items": items,
            "prep_minutes": round(prep, 1),
            "vehicle": vehicle,
            "weather": weather,
            "zone": zone,
            "delivery_minutes": round(max(5.0, minutes), 1),
        }
        for col, p in (("prep_minutes", 0.05), ("weather", 0.03)):
            if rng.random() < p:
                row[col] = ""
        rows.append(row)
    return rows


def main(out: Path = Path(__file__).parent / "data") -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = make_rows(4000, seed=11)
    with (out / "orders.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    recent = make_rows(800, seed=12, start_id=900001)
    with (out / "recent.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(recent[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(recent)


if __name__ == "__main__":
    main()
