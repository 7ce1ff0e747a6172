"""The steps that run against the production model after training: drift, quality and batch-score.

drift compares a current data window with the training split of the run that produced the production model;
drift and quality export gauges under the names in ``mlc.plan.metrics`` (the generated PrometheusRule's), to a
textfile in the step dir and to a Pushgateway when ``MLC_PUSHGATEWAY`` is set.
"""

from __future__ import annotations

import html
import os
import time
from typing import TYPE_CHECKING, Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.plan import metrics as M
from mlc.runtime import artifacts as A
from mlc.runtime import tracking
from mlc.runtime.context import StepContext, StepResult
from mlc.runtime.data import read_source

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PSI_BINS = 10
EPSILON = 1e-4


# ----------------------------------------------------------------------------- scores
def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over quantile bins of the reference, epsilon-smoothed so an empty bin
    gives a large but finite score."""
    import numpy as np

    ref = reference[~np.isnan(reference)]
    cur = current[~np.isnan(current)]
    if len(ref) == 0 or len(cur) == 0:
        return 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1) / len(cur)
    return _psi_from_shares(r, c)


def _psi_from_shares(r: np.ndarray, c: np.ndarray) -> float:
    import numpy as np

    r = np.clip(r, EPSILON, None)
    c = np.clip(c, EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    import numpy as np

    cats = sorted(set(reference.dropna().astype("str")) | set(current.dropna().astype("str")))
    r = reference.dropna().astype("str").value_counts(normalize=True).reindex(cats, fill_value=0).to_numpy()
    c = current.dropna().astype("str").value_counts(normalize=True).reindex(cats, fill_value=0).to_numpy()
    return _psi_from_shares(np.asarray(r, float), np.asarray(c, float)) if cats else 0.0


def ks(reference: np.ndarray, current: np.ndarray) -> float:
    import numpy as np
    from scipy.stats import ks_2samp

    ref = reference[~np.isnan(reference)]
    cur = current[~np.isnan(current)]
    if len(ref) == 0 or len(cur) == 0:
        return 0.0
    return float(ks_2samp(ref, cur).statistic)


def drift_score(method: str, ref: pd.Series, cur: pd.Series) -> float:
    """PSI or the KS statistic for numeric columns; for categorical ones PSI over categories (method psi) or
    the largest difference in category share, the categorical analogue of KS (method ks)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
        r = ref.to_numpy(dtype="float64", na_value=np.nan)
        c = pd.to_numeric(cur, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return psi(r, c) if method == "psi" else ks(r, c)
    if method == "psi":
        return psi_categorical(ref, cur)
    cats = sorted(set(ref.dropna().astype("str")) | set(cur.dropna().astype("str")))
    r = ref.dropna().astype("str").value_counts(normalize=True).reindex(cats, fill_value=0)
    c = cur.dropna().astype("str").value_counts(normalize=True).reindex(cats, fill_value=0)
    return float((r - c).abs().max()) if cats else 0.0


# ----------------------------------------------------------------------------- reference and export
def production(ctx: StepContext) -> Any:
    mv = tracking.champion(ctx)
    if mv is None:
        reg = ctx.plan.spec.registry
        raise RunError(f"no version of model '{reg.model}' holds the alias '{reg.production_alias}'\n"
                       f"hint: run `mlc run {ctx.project_dir}` first to train and register one")
    return mv


def training_reference(ctx: StepContext) -> tuple[pd.DataFrame, str]:
    """The train split behind the production model: by its version's mlc.run_id tag, else the pointer that
    register writes when it moves the production alias."""
    from mlc.runtime.register import reference_dir

    tried = []
    mv = tracking.champion(ctx)
    if mv is not None and mv.tags.get(tracking.RUN_TAG):
        uri = f"{ctx.step_dir('features', mv.tags[tracking.RUN_TAG])}/train.parquet"
        tried.append(uri)
        if A.exists(uri, ctx.storage_options):
            return A.read_parquet(uri, ctx.storage_options), uri
    pointer = f"{reference_dir(ctx)}/latest.json"
    tried.append(pointer)
    if A.exists(pointer, ctx.storage_options):
        uri = A.read_json(pointer, ctx.storage_options)["train"]
        if "://" not in uri and not uri.startswith("/"):  # relative to the storage root (older pointers: absolute)
            uri = f"{ctx.storage_root.rstrip('/')}/{uri}"
        if A.exists(uri, ctx.storage_options):
            return A.read_parquet(uri, ctx.storage_options), uri
    raise RunError("no training reference to compare with; looked at:\n" + "\n".join(f"  - {t}" for t in tried)
                   + f"\nhint: run `mlc run {ctx.project_dir}` to train and register a production model first")


def export_gauges(ctx: StepContext, out: str, job: str, fill: Any) -> str:
    """Write the gauges ``fill(registry)`` defines to <out>/<job>.prom and push them when MLC_PUSHGATEWAY is set."""
    import tempfile

    from prometheus_client import CollectorRegistry, push_to_gateway, write_to_textfile

    registry = CollectorRegistry()
    fill(registry)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{job}.prom")
        write_to_textfile(path, registry)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    A.write_text(f"{out}/{job}.prom", text, ctx.storage_options)
    gateway = os.environ.get("MLC_PUSHGATEWAY")
    if gateway:
        push_to_gateway(gateway, job=f"mlc-{job}-{ctx.plan.project}", registry=registry)
    return text


# ----------------------------------------------------------------------------- drift
def _html(report: dict) -> str:
    rows = []
    for f in report["features"]:
        width = min(100.0, 100.0 * f["score"] / (2 * report["threshold"])) if report["threshold"] else 0
        color = "#c0392b" if f["drifted"] else "#27ae60"
        rows.append(f"<tr><td>{html.escape(f['feature'])}</td><td>{f['score']:.4f}</td>"
                    f"<td><div style='background:{color};width:{width:.0f}%;height:10px'></div></td>"
                    f"<td>{'DRIFTED' if f['drifted'] else 'ok'}</td><td>{f['reference_mean']}</td>"
                    f"<td>{f['current_mean']}</td></tr>")
    verdict = "Drift detected" if report["drifted"] else "No drift"
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Drift report: "
            f"{html.escape(report['model'])}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
            f"<h1>{verdict}: {html.escape(report['model'])} v{html.escape(str(report['model_version']))}</h1>"
            f"<p>Method {report['method']}, threshold {report['threshold']}. Reference: {report['reference_rows']} "
            f"training rows; current: {report['current_rows']} rows from {html.escape(report['current'])}.</p>"
            "<table><tr><th>feature</th><th>score</th><th></th><th>status</th><th>reference mean</th>"
            f"<th>current mean</th></tr>{''.join(rows)}</table></body></html>\n")


def _mean(s: pd.Series) -> Any:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.mean()
        return None if pd.isna(v) else round(float(v), 4)
    return None


def drift(ctx: StepContext, step: Step) -> StepResult:
    spec = ctx.plan.spec
    cfg = spec.monitoring.drift
    if cfg is None:
        return StepResult(outputs={"drifted": "false"}, message="no drift monitoring in the spec")
    mv = production(ctx)
    ref, ref_uri = training_reference(ctx)
    cur = read_source(ctx, cfg.current.uri, cfg.current.format)
    missing = [f for f in cfg.features if f not in cur.columns or f not in ref.columns]
    if missing:
        raise RunError(f"drift features missing from the data: {', '.join(missing)}")
    feats = []
    for f in cfg.features:
        s = drift_score(cfg.method, ref[f], cur[f])
        feats.append({"feature": f, "score": s, "drifted": s > cfg.threshold,
                      "reference_mean": _mean(ref[f]), "current_mean": _mean(cur[f])})
    drifted = [f["feature"] for f in feats if f["drifted"]]
    retrain = bool(drifted) and bool(spec.monitoring.retraining and spec.monitoring.retraining.on_drift)
    report = {"model": ctx.plan.model_name, "model_version": str(mv.version), "method": cfg.method,
              "threshold": cfg.threshold, "reference": ref_uri, "reference_rows": len(ref),
              "current": cfg.current.uri, "current_rows": len(cur), "features": feats, "drifted": bool(drifted),
              "drifted_features": drifted, "retrain": retrain}
    out = ctx.out_dir(step.name)
    A.write_json(f"{out}/report.json", report, ctx.storage_options)
    A.write_text(f"{out}/report.html", _html(report), ctx.storage_options)

    def fill(registry: Any) -> None:
        from prometheus_client import Gauge

        g = Gauge(M.DRIFT_SCORE, "Feature drift score against the training reference", [M.MODEL_LABEL,
                  "feature", "method"], registry=registry)
        for f in feats:
            g.labels(ctx.plan.model_name, f["feature"], cfg.method).set(f["score"])
        Gauge(M.DRIFT_LAST_RUN, "Unix time of the last drift check", [M.MODEL_LABEL],
              registry=registry).labels(ctx.plan.model_name).set(time.time())

    export_gauges(ctx, out, "drift", fill)
    worst = max(feats, key=lambda f: f["score"])
    if drifted and not retrain:
        lines = "\n".join(f"  - {f['feature']}: {cfg.method} {f['score']:.4f} > {cfg.threshold}"
                          for f in feats if f["drifted"])
        raise RunError(f"drift detected in {len(drifted)} of {len(feats)} features\n{lines}\n"
                       f"report: {ctx.step_dir(step.name)}/report.html")
    msg = (f"drift in {', '.join(drifted)}: retrain trigger emitted (drifted=true)" if drifted
           else f"no drift (max {cfg.method} {worst['score']:.4f} on {worst['feature']}, threshold {cfg.threshold})")
    return StepResult(outputs={"drifted": str(bool(drifted)).lower()},
                      metrics={f["feature"]: f["score"] for f in feats}, message=msg)


# ----------------------------------------------------------------------------- quality
def quality_floor(name: str, value: float | None, minimum: float | None, ratio: float | None,
                  baseline: float | None) -> tuple[float | None, bool]:
    """The binding limit and whether ``value`` respects it, as the generated quality alert reads it: for error
    metrics (lower is better) ``min`` is a ceiling and the ratio divides the baseline."""
    from mlc.spec.models import LOWER_IS_BETTER

    lower = name in LOWER_IS_BETTER
    limits = [] if minimum is None else [minimum]
    if ratio is not None and baseline is not None:
        limits.append(baseline / ratio if lower else baseline * ratio)
    if not limits:
        return None, value is not None
    limit = min(limits) if lower else max(limits)
    return limit, value is not None and (value <= limit if lower else value >= limit)


def quality(ctx: StepContext, step: Step) -> StepResult:
    from mlc.runtime.evaluate import metric, score
    from mlc.runtime.features import input_names, map_label

    spec = ctx.plan.spec
    cfg = spec.monitoring.quality
    if cfg is None or cfg.feedback is None:
        return StepResult(message="no quality feedback in the spec")
    mv = production(ctx)
    model = tracking.load_model(ctx, f"models:/{ctx.plan.model_name}/{mv.version}")
    fb = read_source(ctx, cfg.feedback.uri, cfg.feedback.format)
    fb = fb[fb[ctx.plan.label].notna()]
    y, _ = map_label(spec, fb[ctx.plan.label])
    s, pred = score(ctx.plan.task, model, fb[input_names(ctx)])
    value = metric(cfg.metric, y.to_numpy(), s, pred)
    run = tracking.client(ctx).get_run(mv.run_id)
    baseline = run.data.metrics.get(f"test_{cfg.metric}")
    floor, ok = quality_floor(cfg.metric, value, cfg.min, cfg.min_ratio, baseline)
    out = ctx.out_dir(step.name)
    report = {"model": ctx.plan.model_name, "model_version": str(mv.version), "metric": cfg.metric, "value": value,
              "baseline": baseline, "floor": floor, "rows": len(fb), "passed": ok}
    A.write_json(f"{out}/report.json", report, ctx.storage_options)

    def fill(registry: Any) -> None:
        from prometheus_client import Gauge

        labels = [M.MODEL_LABEL, "metric"]
        if value is not None:
            Gauge(M.QUALITY, "Model quality on labelled feedback", labels, registry=registry).labels(
                ctx.plan.model_name, cfg.metric).set(value)
        if baseline is not None:
            Gauge(M.QUALITY_BASELINE, "Model quality on the training test split", labels,
                  registry=registry).labels(ctx.plan.model_name, cfg.metric).set(baseline)

    export_gauges(ctx, out, "quality", fill)
    shown = "undefined" if value is None else f"{value:.4f}"
    if not ok:
        raise RunError(f"live quality below the floor: {cfg.metric} {shown} on {len(fb)} feedback rows, "
                       f"floor {floor} (baseline {baseline})")
    return StepResult(metrics={cfg.metric: value}, message=f"{cfg.metric} {shown} (floor {floor})")


# ----------------------------------------------------------------------------- batch-score
def batch_score(ctx: StepContext, step: Step) -> StepResult:
    import pandas as pd

    from mlc.runtime.evaluate import score
    from mlc.runtime.features import input_names

    spec = ctx.plan.spec
    batch = spec.deployment.batch
    if batch is None:
        return StepResult(message="no batch scoring in the spec")
    mv = production(ctx)
    model = tracking.load_model(ctx, f"models:/{ctx.plan.model_name}/{mv.version}")
    rows = read_source(ctx, batch.input.uri, batch.input.format)
    names = input_names(ctx)
    absent = [n for n in names if n not in rows.columns]
    if absent:
        raise RunError(f"{batch.input.uri}: missing input column(s) {', '.join(absent)}")
    s, pred = score(ctx.plan.task, model, rows[names])
    out = pd.DataFrame(index=rows.index)
    entity = spec.data.entity
    if entity and entity in rows.columns:
        out[entity] = rows[entity]
    if ctx.plan.task == "classification":
        pos, neg = mv.tags.get(tracking.POSITIVE_TAG), mv.tags.get(tracking.NEGATIVE_TAG)
        out["score"] = s
        out["prediction"] = [pos if p == 1 else neg for p in pred] if pos and neg else pred
    else:
        out["prediction"] = s
    out["model_version"] = str(mv.version)
    dest = ctx.data_uri(batch.output.uri)
    A.write_table(dest, out.reset_index(drop=True), batch.output.format, ctx.storage_options)
    A.write_json(f"{ctx.out_dir(step.name)}/summary.json",
                 {"rows": len(out), "output": dest, "model_version": str(mv.version)}, ctx.storage_options)
    return StepResult(outputs={"rows": str(len(out))}, metrics={"rows": len(out)},
                      message=f"scored {len(out)} rows with v{mv.version} -> {dest}")
