"""Seeded generator for the churn example's data. Run: python specs/churn/generate_data.py

Writes data/customers.csv (training), data/current.csv (a recent window from the same process, for drift)
and data/to_score.csv (unlabelled rows for batch scoring). The churn probability is a logistic function of
the features, so models have real signal to find, and some values are missing.
"""

from __future__ import annotations

import csv
import math
import random
from datetime import date, timedelta
from pathlib import Path

REGIONS = ["north", "south", "east", "west"]
AGE_GROUPS = ["18-24", "25-34", "35-44", "45-54", "55+"]
PLANS = {"basic": 9.99, "standard": 19.99, "premium": 34.99}
# z = INTERCEPT + STRENGTH * signal: strong enough that a good model reaches ROC AUC ~0.85, never 1.0.
INTERCEPT = -0.9
STRENGTH = 1.6


def make_rows(n: int, seed: int, start_id: int = 1, shift: float = 0.0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        plan = rng.choices(list(PLANS), weights=[0.5, 0.35, 0.15])[0]
        region = rng.choice(REGIONS)
        age = rng.choices(AGE_GROUPS, weights=[0.15, 0.3, 0.25, 0.18, 0.12])[0]
        tenure = max(0, min(120, int(rng.expovariate(1 / 24))))
        usage = max(0.0, rng.gauss(22 - 6 * shift, 9))
        contact = min(365, int(rng.expovariate(1 / (40 + 30 * shift))))
        tickets = min(20, int(rng.expovariate(1 / 1.2)))
        price = PLANS[plan] * (1 + rng.uniform(-0.05, 0.05))
        signal = (-0.045 * tenure - 0.06 * usage + 0.012 * contact + 0.35 * tickets + 0.03 * price
                  + {"north": 0.0, "south": 0.25, "east": -0.15, "west": 0.1}[region]
                  + {"18-24": 0.5, "25-34": 0.2, "35-44": 0.0, "45-54": -0.1, "55+": -0.2}[age])
        z = INTERCEPT + STRENGTH * signal
        churned = rng.random() < 1 / (1 + math.exp(-z))
        signup = date(2021, 1, 1) + timedelta(days=rng.randrange(0, 1400))
        row = {
            "customer_id": f"C{start_id + i:06d}",
            "signup_date": signup.isoformat(),
            "tenure_months": tenure,
            "monthly_usage_hours": round(usage, 2),
            "last_contact_days": contact,
            "plan": plan,
            "plan_price": round(price, 2),
            "support_tickets": tickets,
            "region": region,
            "age_group": age,
            "churned": "yes" if churned else "no",
        }
        for col, p in (("monthly_usage_hours", 0.04), ("last_contact_days", 0.03), ("age_group", 0.02)):
            if rng.random() < p:
                row[col] = ""
        rows.append(row)
    return rows


def write(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> None:
    cols = [c for c in rows[0] if c not in drop]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def main(out: Path = Path(__file__).parent / "data") -> None:
    out.mkdir(parents=True, exist_ok=True)
    write(out / "customers.csv", make_rows(6000, seed=7))
    write(out / "current.csv", make_rows(1500, seed=8, start_id=100001))
    write(out / "to_score.csv", make_rows(1000, seed=9, start_id=200001), drop=("churned",))


if __name__ == "__main__":
    main()
