"""`mlc init DIR`: a new project that validates, lowers and runs as it is.

`mlc init DIR --from-csv FILE --target COLUMN` writes the spec for the user's own data instead: the schema,
checks, features, candidates, gates and registry inferred by mlc.infer, each with its reason as a comment.

The spec comes from templates/init/mlproject.yaml.j2 so that its comments read as prose; the sample data
is generated here with the standard library only (seeded, so two inits give the same files), with real
signal in it and some missing values, so the first `mlc run` produces metrics that mean something.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import math
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mlc.errors import MlcError, UsageError
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


# ----------------------------------------------------------------------------- mlc init --from-csv
@dataclass(frozen=True)
class FromCsv:
    """What `mlc init --from-csv` wrote, for the CLI to report."""

    spec: Path
    data: Path
    how: str  # copied | in place | rewritten
    summary: str


def init_from_csv(directory: str | Path, source: str | Path, target: str, task: str | None = None,
                  name: str | None = None) -> FromCsv:
    """DIR/mlproject.yaml inferred from SOURCE, with SOURCE copied to DIR/data/ (or used where it is, when it
    is inside DIR). Everything is written into a temporary directory first and moved into place only when
    the spec has validated, so a failure leaves nothing behind."""
    from mlc import infer

    root, src = Path(directory), Path(source)
    if not src.exists():
        close = _near(src)
        raise MlcError(f"{src}: no such file" + (f"; did you mean '{close}'?" if close else ""))
    if not src.is_file():
        raise MlcError(f"{src}: not a file; --from-csv reads one CSV file")
    if root.exists() and not root.is_dir():
        raise MlcError(f"{root} exists and is not a directory")
    inside = root.is_dir() and _is_inside(src, root)
    if (root / "mlproject.yaml").exists():
        raise MlcError(f"{root / 'mlproject.yaml'} already exists; mlc init never overwrites a spec")
    if root.is_dir() and not inside and any(root.iterdir()):
        raise MlcError(f"{root} exists and is not empty; choose a new directory (mlc init creates it), or put the "
                       "CSV inside it to use the file where it is")
    project = _project_name(root, name)

    sample = infer.read_sample(src)
    prop = infer.propose(sample, target, task)

    if inside and sample.dialect.readable_as_is:
        rel, how = Path(os.path.relpath(src.resolve(), root.resolve())), "in place"
    elif sample.dialect.readable_as_is:
        rel, how = Path("data") / src.name, "copied"
    else:  # the runtime reads comma-separated UTF-8: write that, beside the original when it is inside DIR
        rel, how = Path("data") / f"{src.stem}.csv", "rewritten"
        if inside and (root / rel).exists():
            rel = rel.with_name(f"{src.stem}.mlc.csv")

    anchor = root if root.is_dir() else _existing_parent(root)
    tmp = Path(tempfile.mkdtemp(prefix=".mlc-init-", dir=anchor))
    try:
        stage = tmp / "project"
        stage.mkdir()
        if how == "in place":
            digest = _sha256(src, check_utf8=True)
        else:
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            if how == "copied":
                digest = _copy(src, stage / rel)
            else:
                digest = _rewrite(src, stage / rel, sample.dialect)
        text = render_csv_spec(prop, project, root, rel.as_posix(), digest, str(src), how)
        (stage / "mlproject.yaml").write_text(text, encoding="utf-8")
        _self_check(stage)
        _move_into_place(stage, root)
    except OSError as e:  # a full disk, a read-only directory: the user's to fix, and nothing is left behind
        raise MlcError(f"cannot write {root}: {e.strerror or e}; nothing was written") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    feats = sum(1 for c in prop.columns if c.role not in ("drop", "time", "label", "entity"))
    dropped = sum(1 for c in prop.columns if c.role in ("drop", "time"))
    rows = f"{prop.rows:,} rows" if sample.complete else f"the first {prop.rows:,} rows (a sample)"
    task_text = prop.task + (f", positive class {prop.positive!r}" if prop.positive is not None else "")
    summary = (f"{len(prop.columns)} columns from {rows}: label '{prop.label}' ({task_text}), "
               + (f"entity '{prop.entity}', " if prop.entity else "")
               + f"{feats} feature{'s' if feats != 1 else ''}, {dropped} dropped, split: {prop.split}")
    return FromCsv(root / "mlproject.yaml", root / rel, how, summary)


def render_csv_spec(prop: Any, name: str, root: Path, uri: str, sha256: str, source: str, how: str) -> str:
    from mlc import infer

    ctx = infer.context(prop)
    ctx["header_notes"].insert(0, {
        "copied": f"{uri} is a copy of it.", "in place": f"It is used where it is, as {uri}.",
        "rewritten": f"{uri} is a comma-separated UTF-8 copy of it (the values unchanged): mlc reads only that.",
    }[how])
    description = infer.positive_yaml(
        f"Predicts {prop.label} ({prop.task}) from the columns of {Path(source).name}.")
    return _jinja().get_template("from_csv.yaml.j2").render(
        name=name, directory=str(root), schema_url=_schema_url(root), source=source,
        dialect=prop.sample.dialect.describe(), uri=infer.yaml_str(uri), sha256=sha256,
        description=description, **ctx)


def _jinja() -> Any:
    import jinja2

    from mlc.infer import comment
    from mlc.resources import template_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir("init"))), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["comment"] = comment
    return env


def _schema_url(root: Path) -> str:
    if SCHEMA_FILE.exists():
        return os.path.relpath(SCHEMA_FILE, root.resolve())
    from mlc.spec.schema import SCHEMA_ID

    return SCHEMA_ID


def _project_name(root: Path, name: str | None) -> str:
    project = name if name is not None else dns_label(root.resolve().name)[:40].strip("-") or "my-project"
    if not is_dns_label(project) or len(project) > 40:
        raise UsageError(
            f"project name {project!r} is not valid: use lower-case letters, digits and '-', "
            "at most 40 characters (it becomes part of Kubernetes names)"
        )
    return project


def _near(path: Path) -> str | None:
    import difflib

    parent = path.parent
    try:
        names = [p.name for p in parent.iterdir() if p.is_file()]
    except OSError:
        return None
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    return str(parent / close[0]) if close else None


def _is_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _existing_parent(path: Path) -> Path:
    p = path.resolve().parent
    while not p.exists():
        p = p.parent
    return p


_CHUNK = 1 << 20


def _decode(dec: Any, chunk: bytes, offset: int, path: Path, final: bool = False) -> None:
    try:
        dec.decode(chunk, final=final)
    except UnicodeDecodeError as e:
        raise MlcError(f"{path}: byte {offset + e.start} is not UTF-8 although the start of the file is; "
                       "re-export the file as UTF-8") from e


def _sha256(src: Path, check_utf8: bool, dst: Path | None = None) -> str:
    """sha256 in chunks (bounded memory for any size), checking UTF-8 and copying to ``dst`` on the way."""
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")() if check_utf8 else None
    offset = 0
    with src.open("rb") as fi, (dst.open("wb") if dst is not None else open(os.devnull, "wb")) as fo:
        while chunk := fi.read(_CHUNK):
            h.update(chunk)
            if dec is not None:
                _decode(dec, chunk, offset, src)
            fo.write(chunk)
            offset += len(chunk)
    if dec is not None:
        _decode(dec, b"", offset, src, final=True)
    return h.hexdigest()


def _copy(src: Path, dst: Path) -> str:
    return _sha256(src, check_utf8=True, dst=dst)


def _rewrite(src: Path, dst: Path, dialect: Any) -> str:
    """A comma-separated UTF-8 copy, record by record (quoted newlines stay inside their field), because that is
    what the runtime's reader reads. Values are copied as text, unchanged."""
    csv.field_size_limit(1 << 30)
    try:
        with src.open("r", encoding="utf-8-sig" if dialect.encoding == "utf-8" else dialect.encoding,
                      newline="") as fi, dst.open("w", encoding="utf-8", newline="") as fo:
            w = csv.writer(fo, lineterminator="\n")
            for row in csv.reader(fi, delimiter=dialect.delimiter):
                if row:
                    w.writerow(row)
    except UnicodeDecodeError as e:
        raise MlcError(f"{src}: not {dialect.encoding} throughout: {e}; re-export the file as UTF-8") from e
    except csv.Error as e:
        raise MlcError(f"{src}: cannot read it as CSV: {e}") from e
    return _sha256(dst, check_utf8=False)


def _self_check(stage: Path) -> None:
    """The spec just written must validate; if it does not, that is a bug in mlc, not in the user's data."""
    from mlc.errors import SpecError
    from mlc.spec.validate import load_spec

    try:
        load_spec(stage)
    except SpecError as e:
        raise AssertionError(f"mlc init wrote a spec that does not validate:\n{e.render()}") from e


def _move_into_place(stage: Path, root: Path) -> None:
    """Rename the staged project to DIR, or, when DIR exists (empty, or holding the CSV), each staged file into
    it, never over an existing file."""
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage, root)
        return
    staged = sorted(p for p in stage.rglob("*") if p.is_file())
    for p in staged:
        if (root / p.relative_to(stage)).exists():
            raise MlcError(f"{root / p.relative_to(stage)} appeared while mlc init was working; nothing was written")
    for p in staged:
        dst = root / p.relative_to(stage)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, dst)
