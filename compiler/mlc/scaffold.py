"""`mlc init DIR`: a new project that validates, lowers and runs as it is.

The spec comes from templates/init/mlproject.yaml.j2 so that its comments read as prose; the sample data
is generated here with the standard library only (seeded, so two inits give the same files), with real
signal in it and some missing values, so the first `mlc run` produces metrics that mean something.
"""

from __future__ import annotations

import csv
import math
import os
import random
from datetime import datetime, timedelta
from pathlib import Path

from mlc.errors import UsageError
from mlc.plan.names import dns_label, is_dns_label

_REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = _REPO / "schemas" / "mlproject.schema.json"
SOURCES = {"ads": -0.4, "organic": 0.2, "referral": 0.8, "email": 0.3}
SIZES = {"small": -0.3, "medium": 0.1, "large": 0.5}


def init_project(directory: str | Path, name: str | None = None) -> Path:
    """Write DIR/mlproject.yaml and DIR/data/{leads,current}.csv; refuse to overwrite a spec."""
    root = Path(directory)
    spec_path = root / "mlproject.yaml"
    if spec_path.exists():
        raise UsageError(
            f"{spec_path} already exists; mlc init never overwrites a spec "
            "(choose another directory or remove the file)"
        )
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a directory")
    project = name if name is not None else dns_label(root.resolve().name)[:40].strip("-") or "my-project"
    if not is_dns_label(project) or len(project) > 40:
        raise UsageError(
            f"project name {project!r} is not valid: use lower-case letters, digits and '-', "
            "at most 40 characters (it becomes part of Kubernetes names)"
        )
    text = render_spec(project, root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    write_csv(root / "data" / "leads.csv", make_leads(1000, seed=7))
    write_csv(root / "data" / "current.csv", make_leads(300, seed=8, start=100_000, shift=0.5))
    spec_path.write_text(text, encoding="utf-8")
    return spec_path


def render_spec(name: str, root: Path) -> str:
    import jinja2  # only `mlc init` needs it

    from mlc.resources import template_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir("init"))),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    if SCHEMA_FILE.exists():
        schema_url = os.path.relpath(SCHEMA_FILE, root.resolve())
    else:
        from mlc.spec.schema import SCHEMA_ID

        schema_url = SCHEMA_ID
    return env.get_template("mlproject.yaml.j2").render(name=name, directory=str(root), schema_url=schema_url)


def make_leads(n: int, seed: int, start: int = 1, shift: float = 0.0) -> list[dict]:
    """Sales leads; conversion is a logistic function of engagement, source and company size.

    ``shift`` moves engagement down, so data/current.csv drifts a little from the training data.
    """
    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1)
    rows = []
    for i in range(n):
        source = rng.choices(list(SOURCES), weights=[0.4, 0.3, 0.1, 0.2])[0]
        size = rng.choices(list(SIZES), weights=[0.55, 0.3, 0.15])[0]
        visits = int(rng.expovariate(1 / (4 - 1.5 * shift)))
        pages = max(0.0, rng.gauss(3.5 - shift, 1.8))
        last = min(365, int(rng.expovariate(1 / (12 + 10 * shift))))
        opened = int(rng.expovariate(1 / 2.5))
        z = (
            -2.2
            + 0.35 * min(visits, 12)
            + 0.25 * pages
            - 0.05 * last
            + 0.3 * min(opened, 6)
            + SOURCES[source]
            + SIZES[size]
            + rng.gauss(0, 0.6)
        )
        converted = rng.random() < 1 / (1 + math.exp(-z))
        rows.append(
            {
                "lead_id": f"L{start + i:06d}",
                "created_at": (t0 + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))).isoformat(
                    timespec="minutes"
                ),
                "source": source,
                "company_size": "" if rng.random() < 0.08 else size,
                "visits": visits,
                "pages_per_visit": "" if rng.random() < 0.05 else round(pages, 2),
                "days_since_last_visit": "" if rng.random() < 0.04 else last,
                "emails_opened": opened,
                "converted": "yes" if converted else "no",
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
