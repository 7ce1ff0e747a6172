"""gate: decide whether the winner may become production.

Absolute thresholds; thresholds relative to the live champion (the version holding the production alias, scored
again on this run's test split so both models are measured on the same rows); slice gaps; manual approval.
A "drop" is getting worse in the metric's own direction (lower roc_auc, higher rmse).
"""

from __future__ import annotations

import os
from typing import Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime import tracking
from mlc.runtime.context import StepContext, StepResult
from mlc.runtime.evaluate import METRICS, metric, score
from mlc.runtime.features import TEST, Y, input_names
from mlc.spec.models import LOWER_IS_BETTER, Gates

REPORT = "report.json"


def drop(metric_name: str, new: float, champ: float) -> float:
    """How much worse ``new`` is than ``champ`` (negative when it is better)."""
    return new - champ if metric_name in LOWER_IS_BETTER else champ - new


def absolute_gates(gates: Gates, metrics: dict[str, float | None]) -> list[dict]:
    out = []
    for g in gates.metrics:
        v = metrics.get(g.metric)
        for bound, limit in (("min", g.min), ("max", g.max)):
            if limit is None:
                continue
            ok = v is not None and (v >= limit if bound == "min" else v <= limit)
            out.append({"gate": "metric", "metric": g.metric, "observed": v, "expected": f"{bound} {limit}",
                        "passed": ok})
    return out


def champion_gates(gates: Gates, metrics: dict[str, float | None], champ: dict[str, float | None] | None,
                   version: str | None) -> list[dict]:
    out = []
    for g in gates.champion:
        base = {"gate": "champion", "metric": g.metric, "observed": metrics.get(g.metric)}
        if champ is None:
            out.append({**base, "skipped": True, "passed": True, "expected": "no champion yet",
                        "reason": "no model holds the production alias yet; relative gates skipped"})
            continue
        c, v = champ.get(g.metric), metrics.get(g.metric)
        if c is None or v is None:
            out.append({**base, "passed": False, "expected": "a defined metric",
                        "reason": f"{g.metric} is undefined for the {'champion' if c is None else 'winner'}"})
            continue
        d = drop(g.metric, v, c)
        checks = []
        if g.max_drop is not None:
            checks.append((d <= g.max_drop + 1e-12, f"drop <= {g.max_drop}"))
        if g.max_relative_drop is not None:
            rel = d / abs(c) if c else (0.0 if d <= 0 else float("inf"))
            checks.append((rel <= g.max_relative_drop + 1e-12, f"relative drop <= {g.max_relative_drop}"))
        out.append({**base, "champion": c, "champion_version": version, "drop": d,
                    "relative_drop": d / abs(c) if c else None, "expected": " and ".join(x[1] for x in checks),
                    "passed": all(x[0] for x in checks)})
    return out


def slice_gates(gates: Gates, slices: dict[str, dict]) -> list[dict]:
    out = []
    for g in gates.slices:
        per = slices.get(g.column, {})
        gated = {k: v[g.metric] for k, v in per.items() if v["rows"] >= g.min_rows and v.get(g.metric) is not None}
        small = sorted(k for k, v in per.items() if v["rows"] < g.min_rows)
        gap = max(gated.values()) - min(gated.values()) if len(gated) >= 2 else 0.0
        entry = {"gate": "slice", "column": g.column, "metric": g.metric, "observed": gap,
                 "expected": f"gap <= {g.max_gap}", "passed": gap <= g.max_gap + 1e-12, "slices": gated,
                 "not_gated": {k: per[k]["rows"] for k in small}}
        if gated:
            entry["worst"] = min(gated, key=lambda k: gated[k]) if g.metric not in LOWER_IS_BETTER \
                else max(gated, key=lambda k: gated[k])
        out.append(entry)
    return out


def approval_state(ctx: StepContext) -> str:
    """Locally, approval is pending until given (MLC_APPROVED=1); on a cluster the pipeline's suspend step in
    front of register is the approval, so reaching register means approved."""
    if not ctx.plan.spec.gates.manual_approval:
        return "not required"
    if not ctx.local or os.environ.get("MLC_APPROVED") == "1":
        return "approved"
    return "pending"


def champion_metrics(ctx: StepContext, names: list[str]) -> tuple[dict | None, dict | None]:
    """The champion's metrics on this run's test split (falling back to those logged with it when it cannot
    score these rows, e.g. after a schema change), and a description of it for the report."""
    mv = tracking.champion(ctx)
    if mv is None:
        return None, None
    reg = ctx.plan.spec.registry
    desc: dict[str, Any] = {"version": str(mv.version), "mlflow_run_id": mv.run_id, "alias": reg.production_alias}
    test = A.read_parquet(f"{ctx.step_dir('features')}/{TEST}", ctx.storage_options)
    try:
        model = tracking.load_model(ctx, f"models:/{reg.model}/{mv.version}")
        s, pred = score(ctx.plan.task, model, test[input_names(ctx)])
        y = test[Y].to_numpy()
        desc["measured_on"] = "this run's test split"
        return {n: metric(n, y, s, pred) for n in names}, desc
    except Exception as e:  # noqa: BLE001 - any failure to rescore falls back to the logged metrics
        run = tracking.client(ctx).get_run(mv.run_id)
        desc["measured_on"] = f"its own training run (cannot score this test split: {str(e)[:200]})"
        return {n: run.data.metrics.get(f"test_{n}") for n in names}, desc


def markdown(report: dict) -> str:
    lines = [f"# Gates: {'passed' if report['passed'] else 'FAILED'}", "",
             f"Winner: **{report['winner']}**. Approval: {report['approval']}.", ""]
    ch = report.get("champion")
    lines.append(f"Champion: version {ch['version']} (measured on {ch['measured_on']})." if ch else
                 "Champion: none yet, so the relative (champion) gates were skipped.")
    lines += ["", "| result | gate | metric | observed | expected | note |", "|---|---|---|---|---|---|"]
    for g in report["gates"]:
        mark = "skipped" if g.get("skipped") else ("pass" if g["passed"] else "FAIL")
        subject = g["metric"] + (f" by {g['column']}" if g.get("column") else "")
        obs = g["observed"]
        obs_s = f"{obs:.4f}" if isinstance(obs, float) else str(obs)
        note = g.get("reason", "")
        if g["gate"] == "champion" and "champion" in g:
            note = f"champion {g['champion']:.4f}, drop {g['drop']:.4f}"
        if g.get("not_gated"):
            note = "not gated (too few rows): " + ", ".join(f"{k} ({n})" for k, n in g["not_gated"].items())
        lines.append(f"| {mark} | {g['gate']} | {subject} | {obs_s} | {g['expected']} | {note} |")
    return "\n".join(lines) + "\n"


def describe(g: dict) -> str:
    subject = g["metric"] + (f" gap across {g['column']}" if g.get("column") else "")
    extra = ""
    if g["gate"] == "champion" and "champion" in g:
        extra = f" (champion v{g['champion_version']}: {g['champion']:.4f}, drop {g['drop']:.4f})"
    if g.get("reason"):
        extra = f" ({g['reason']})"
    obs = g["observed"]
    obs_s = f"{obs:.4f}" if isinstance(obs, float) else str(obs)
    return f"  - {g['gate']} gate {subject}: observed {obs_s}, expected {g['expected']}{extra}"


def gate(ctx: StepContext, step: Step) -> StepResult:
    gates = ctx.plan.spec.gates
    ev = A.read_json(f"{ctx.step_dir('evaluate')}/{METRICS}", ctx.storage_options)
    winner = ev["winner"]
    w = ev["candidates"][winner]
    champ, desc = (champion_metrics(ctx, list(w["metrics"])) if gates.champion else (None, None))
    results = (absolute_gates(gates, w["metrics"]) + champion_gates(gates, w["metrics"], champ,
                                                                    desc["version"] if desc else None)
               + slice_gates(gates, w["slices"]))
    failed = [g for g in results if not g["passed"]]
    report = {"passed": not failed, "winner": winner, "winner_run_id": w["mlflow_run_id"], "gates": results,
              "champion": desc, "approval": approval_state(ctx),
              "skipped": [g["metric"] for g in results if g.get("skipped")]}
    out = ctx.out_dir(step.name)
    A.write_json(f"{out}/{REPORT}", report, ctx.storage_options)
    A.write_text(f"{out}/report.md", markdown(report), ctx.storage_options)
    _export(ctx, out, results)
    if failed:
        body = "\n".join(describe(g) for g in failed)
        import contextlib

        with contextlib.suppress(Exception):  # the gate verdict matters more than the bookkeeping
            tracking.end_run(ctx, tracking.parent_run(ctx), "FAILED")
        raise RunError(f"gates failed for candidate '{winner}': {len(failed)} of {len(results)} gates failed; "
                       f"nothing was registered as production\n{body}\n"
                       f"report: {ctx.step_dir(step.name)}/report.md")
    note = f", {len(report['skipped'])} skipped (no champion)" if report["skipped"] else ""
    return StepResult(outputs={"passed": "true", "approval": report["approval"]},
                      metrics={"gates": len(results), "failed": 0},
                      message=f"{len(results)} gates passed{note}; approval {report['approval']}")


def _export(ctx: StepContext, out: str, results: list[dict]) -> None:
    """The gate outcomes as gauges, for the dashboard's pipeline row; skipped gates have no outcome."""
    from mlc.plan import metrics as M
    from mlc.runtime.monitor import export_gauges

    def fill(registry: Any) -> None:
        from prometheus_client import Gauge

        g = Gauge(M.GATE_PASSED, "1 when the promotion gate passed, 0 when it failed",
                  [M.MODEL_LABEL, "gate", "metric"], registry=registry)
        for r in results:
            if not r.get("skipped"):
                subject = r["metric"] + (f" by {r['column']}" if r.get("column") else "")
                g.labels(ctx.plan.model_name, r["gate"], subject).set(1 if r["passed"] else 0)

    export_gauges(ctx, out, "gates", fill)
