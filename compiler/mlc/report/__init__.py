"""`mlc report`: one self-contained HTML page per local run, read from what `mlc run` recorded.

Sources, all under the run's artifact directory (``<root>/runs/<run-id>/``, see mlc.runtime.context):
``run.json`` (the executor's manifest: every step's status, time and outputs), ``evaluate/metrics.json`` (the
candidates' test metrics and per-slice metrics), the winner's ``predictions.parquet`` with ``features/test.parquet``
(the curves), ``gate/report.json`` (the gate table) and the drift step's ``report.json``, from this run or
from the latest monitor run. The page is ``.mlc/reports/<run-id>.html``: inline SVG from matplotlib, inline CSS,
no script and nothing fetched, so it opens offline and can be mailed. The same figures are logged to the
run's MLflow pipeline run under ``report/``, so the MLflow UI shows them too.

A report is a pure function of the recorded run: two reports of one run are byte-identical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.errors import RunError

REPORTS_DIR = "reports"
SECTIONS = ("summary", "dag", "candidates", "curves", "gates", "slices", "drift")


@dataclass
class RunRecord:
    """Everything the page shows, read once; absent parts stay None and their section says why."""

    project: str
    model: str
    run_id: str
    pipeline: str
    env: str
    task: str
    steps: list[dict[str, Any]]
    depends: dict[str, list[str]]
    evaluation: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    registered: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    drift_run: str | None = None
    curves: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # candidate -> (y, score) on the test split


def report_command(path: str, env: str = "local", run_id: str | None = None, mlflow: bool = True) -> Path:
    """Write the report of ``run_id`` (default: the latest train run) and return its path."""
    from mlc.plan import lower
    from mlc.runtime.context import make_context
    from mlc.spec.validate import load_spec

    sf = load_spec(path)
    plan = lower(sf.spec, sf.text, env)
    probe = make_context(sf, plan, run_id or "-", local=True)
    rid = run_id or _latest(probe.state_dir, "train")
    if rid is None:
        raise RunError(f"{sf.path}: no recorded run to report on; run `mlc run {path}` first")
    ctx = make_context(sf, plan, rid, local=True)
    record = read_run(ctx)
    from mlc.report import page, plots

    figures = figures_of(record, plots)
    html = page.render(record, figures)
    out = ctx.state_dir / REPORTS_DIR / f"{rid}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    if mlflow:
        log_to_mlflow(ctx, record, figures, out)
    return out


def _latest(state_dir: Path, purpose: str) -> str | None:
    f = state_dir / "cache" / f"latest-{purpose}"
    return f.read_text().strip() if f.is_file() else None


def read_run(ctx: Any) -> RunRecord:
    from mlc.runtime import artifacts as A
    from mlc.runtime.evaluate import METRICS

    opts = ctx.storage_options
    manifest = f"{ctx.run_dir()}/run.json"
    if not A.exists(manifest, opts):
        raise RunError(f"run {ctx.run_id}: no run.json under {ctx.run_dir()}; is the run id right? "
                       f"(runs are under {ctx.storage_root}/runs/)")
    run = A.read_json(manifest, opts)
    pipe = next((p for p in ctx.plan.pipelines if p.name == run["pipeline"]), None)
    depends = {s.name: list(s.depends) for s in pipe.steps} if pipe else {}
    rec = RunRecord(ctx.plan.project, ctx.plan.model_name, ctx.run_id, run["pipeline"], run["env"], ctx.plan.task,
                    run["steps"], depends)
    done = {s["name"] for s in run["steps"] if s["status"] in ("ok", "cached")}

    def read(step: str, name: str) -> Any:
        uri = f"{ctx.step_dir(step)}/{name}"
        return A.read_json(uri, opts) if step in done and A.exists(uri, opts) else None

    rec.evaluation = read("evaluate", METRICS)
    rec.gate = read("gate", "report.json")
    rec.registered = read("register", "registered.json")
    rec.drift, rec.drift_run = read("drift", "report.json"), ctx.run_id
    if rec.drift is None:  # a train run: the drift check of the latest monitor run, if one ran
        mon = _latest(ctx.state_dir, "monitor")
        uri = f"{ctx.step_dir('drift', mon)}/report.json" if mon else None
        if uri and A.exists(uri, opts):
            rec.drift, rec.drift_run = A.read_json(uri, opts), mon
        else:
            rec.drift_run = None
    if rec.evaluation is not None and "features" in done:
        from mlc.runtime.features import TEST, Y
        from mlc.runtime.train import PREDICTIONS

        y = A.read_parquet(f"{ctx.step_dir('features')}/{TEST}", opts)[Y].to_numpy()
        for cand, info in rec.evaluation["candidates"].items():
            uri = f"{ctx.step_dir(info['step'])}/{PREDICTIONS}"
            if A.exists(uri, opts):
                rec.curves[cand] = (y, A.read_parquet(uri, opts)["score"].to_numpy())
    return rec


def figures_of(rec: RunRecord, plots: Any) -> dict[str, str]:
    """Figure name (its file name in MLflow, without .svg) -> SVG text."""
    figs = {"dag": plots.dag(rec.steps, rec.depends)}
    winner = rec.evaluation["winner"] if rec.evaluation else None
    if winner and winner in rec.curves:
        y, s = rec.curves[winner]
        if rec.task == "classification" and len(set(y.tolist())) == 2:
            figs["roc"] = plots.roc(rec.curves, winner)
            figs["pr"] = plots.pr(rec.curves, winner)
            figs["calibration"] = plots.calibration(y, s, winner)
        elif rec.task == "regression":
            figs["predicted_vs_actual"] = plots.predicted_vs_actual(y, s, winner)
            figs["residuals"] = plots.residuals(y, s, winner)
    if rec.drift:
        figs["drift"] = plots.drift(rec.drift["features"], rec.drift["threshold"], rec.drift["method"])
    return figs


def log_to_mlflow(ctx: Any, rec: RunRecord, figures: dict[str, str], html: Path) -> str | None:
    """The figures and the page, as artifacts of the run's MLflow pipeline run (``report/``), and the curves
    also on the winner's candidate run; returns the pipeline run's id, or None when the run made none."""
    import tempfile

    from mlc.runtime import tracking

    exp = tracking.experiment_id(ctx)
    parent = tracking._find(ctx, exp, {tracking.RUN_TAG: ctx.run_id, tracking.ROLE_TAG: "pipeline"})
    if parent is None:
        return None
    c = tracking.client(ctx)
    with tempfile.TemporaryDirectory(prefix="mlc-report-") as tmp:
        d = Path(tmp) / "report"
        d.mkdir()
        for name, svg in figures.items():
            (d / f"{name}.svg").write_text(svg, encoding="utf-8")
        (d / "report.html").write_text(html.read_text(encoding="utf-8"), encoding="utf-8")
        c.log_artifacts(parent, str(d), "report")
        winner_run = rec.gate.get("winner_run_id") if rec.gate else None
        if winner_run:
            for name in ("roc", "pr", "calibration", "predicted_vs_actual", "residuals"):
                if name in figures:
                    c.log_artifact(winner_run, str(d / f"{name}.svg"), "report")
    return parent


def as_json(rec: RunRecord) -> str:
    """The record without the arrays (for debugging a report)."""
    d = {k: v for k, v in rec.__dict__.items() if k != "curves"}
    return json.dumps(d, indent=2, default=str)
