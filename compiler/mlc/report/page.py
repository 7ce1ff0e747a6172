"""The report's HTML: one page, inline CSS and SVG, no script, nothing fetched. Every section has an id
(``mlc.report.SECTIONS``) and says plainly when the run has nothing for it."""

from __future__ import annotations

import html
from typing import Any

from mlc import __version__

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#263238;background:#fafafa}
header{background:#263238;color:#fff;padding:18px 32px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cfd8dc}main{padding:8px 32px 40px;max-width:1280px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:16px 0;padding:12px 18px}
h2{font-size:16px;margin:4px 0 10px}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #eceff1;padding:4px 10px;text-align:left}th{background:#f5f5f5}
td.num{text-align:right}.win{background:#fff3e0;font-weight:600}.best{font-weight:700}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:700}.skip{color:#757575}
.figs{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.figs svg{max-width:100%;height:auto}
.muted{color:#78909c}.kv td:first-child{color:#607d8b}
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4f}"
    return "—" if x is None else esc(x)


def render(rec: Any, figures: dict[str, str]) -> str:
    parts = [_summary(rec), _dag(rec, figures), _candidates(rec), _curves(rec, figures), _gates(rec),
             _slices(rec), _drift(rec, figures)]
    title = f"mlc report · {rec.project} · {rec.run_id}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(rec.project)}: run {esc(rec.run_id)}</h1>"
            f"<p>pipeline {esc(rec.pipeline)} · environment {esc(rec.env)} · model {esc(rec.model)} · "
            f"written by mlc {esc(__version__)}</p></header><main>" + "".join(parts) + "</main></body></html>\n")


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "".join(f"<tr class=\"{classes[i] if classes else ''}\">" + "".join(r) + "</tr>"
                  for i, r in enumerate(rows))
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _summary(rec: Any) -> str:
    counts: dict[str, int] = {}
    for s in rec.steps:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    total = sum(s["seconds"] for s in rec.steps)
    rows = [("steps", ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))),
            ("step time", f"{total:.1f}s (sum of the steps' own times)")]
    if rec.evaluation:
        ev = rec.evaluation
        rows.append(("winner", f"{ev['winner']} ({ev['select_by']} {ev['score']:.4f} on {ev['test_rows']} test rows)"))
    if rec.gate:
        rows.append(("gates", "passed" if rec.gate["passed"] else "FAILED"))
    if rec.registered:
        r = rec.registered
        rows.append(("registered", f"{r['model']} v{r['version']} · aliases {', '.join(r['aliases'])}"))
    body = "<table class=\"kv\">" + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return _section("summary", "Summary", body + "</table>")


def _dag(rec: Any, figures: dict[str, str]) -> str:
    rows = []
    for s in rec.steps:
        when = f"{s['seconds']:.2f}s" if s["status"] in ("ok", "failed") else ""
        note = s.get("error") or (f"from run {s['source_run']}" if s.get("source_run") else "")
        rows.append([f"<td>{esc(s['name'])}</td>", f"<td class=\"{_status_class(s['status'])}\">{esc(s['status'])}</td>",
                     f"<td class=\"num\">{when}</td>", f"<td>{esc(note)}</td>"])
    return _section("dag", "Pipeline", f"<div class=\"figs\">{figures['dag']}</div>"
                    + _table(["step", "status", "time", "note"], rows))


def _status_class(status: str) -> str:
    return {"ok": "pass", "cached": "pass", "failed": "fail"}.get(status, "skip")


def _candidates(rec: Any) -> str:
    ev = rec.evaluation
    if not ev:
        return _section("candidates", "Candidates", "<p class=\"muted\">no evaluation in this run</p>")
    names = sorted({m for c in ev["candidates"].values() for m in c["metrics"]})
    from mlc.spec.models import LOWER_IS_BETTER

    best: dict[str, float] = {}
    for m in names:
        vals = [c["metrics"][m] for c in ev["candidates"].values() if c["metrics"].get(m) is not None]
        if vals:
            best[m] = min(vals) if m in LOWER_IS_BETTER else max(vals)
    rows, classes = [], []
    for cand, c in ev["candidates"].items():
        cells = [f"<td>{esc(cand)}{' ★' if cand == ev['winner'] else ''}</td>"]
        for m in names:
            v = c["metrics"].get(m)
            cls = "num best" if v is not None and v == best.get(m) else "num"
            cells.append(f"<td class=\"{cls}\">{fmt(v)}</td>")
        rows.append(cells)
        classes.append("win" if cand == ev["winner"] else "")
    note = (f"<p class=\"muted\">test split, {ev['test_rows']} rows; selected by {esc(ev['select_by'])} "
            f"({'higher' if ev['higher_is_better'] else 'lower'} is better); bold: the best value</p>")
    return _section("candidates", "Candidates", _table(["candidate", *names], rows, classes) + note)


def _curves(rec: Any, figures: dict[str, str]) -> str:
    names = ("roc", "pr", "calibration", "predicted_vs_actual", "residuals")
    shown = [figures[n] for n in names if n in figures]
    if not shown:
        return _section("curves", "Winner's curves", "<p class=\"muted\">no test predictions in this run</p>")
    return _section("curves", "Winner's curves", f"<div class=\"figs\">{''.join(shown)}</div>")


def _gates(rec: Any) -> str:
    g = rec.gate
    if not g:
        return _section("gates", "Gates", "<p class=\"muted\">no gate step in this run</p>")
    rows, classes = [], []
    for r in g["gates"]:
        mark, cls = ("skipped", "skip") if r.get("skipped") else (("pass", "pass") if r["passed"] else ("FAIL", "fail"))
        subject = r["metric"] + (f" by {r['column']}" if r.get("column") else "")
        note = r.get("reason", "")
        if r.get("worst"):
            note = f"worst slice {r['worst']}"
        rows.append([f"<td class=\"{cls}\">{mark}</td>", f"<td>{esc(r['gate'])}</td>", f"<td>{esc(subject)}</td>",
                     f"<td class=\"num\">{fmt(r['observed'])}</td>", f"<td>{esc(r['expected'])}</td>",
                     f"<td>{esc(note)}</td>"])
        classes.append("")
    head = f"<p>candidate <b>{esc(g['winner'])}</b>: {'passed' if g['passed'] else 'FAILED'} · approval {esc(g['approval'])}</p>"
    return _section("gates", "Gates", head + _table(["result", "gate", "metric", "observed", "expected", "note"],
                                                    rows, classes))


def _slices(rec: Any) -> str:
    ev = rec.evaluation
    w = ev["candidates"][ev["winner"]] if ev else None
    if not w or not w.get("slices"):
        return _section("slices", "Per-slice metrics", "<p class=\"muted\">no slice gates in the spec</p>")
    out = []
    for col, slices in w["slices"].items():
        names = sorted({m for v in slices.values() for m in v if m != "rows"})
        rows = [[f"<td>{esc(k)}</td>", f"<td class=\"num\">{v.get('rows', '')}</td>",
                 *(f"<td class=\"num\">{fmt(v.get(m))}</td>" for m in names)] for k, v in slices.items()]
        out.append(f"<h3>{esc(ev['winner'])} by {esc(col)}</h3>" + _table([col, "rows", *names], rows))
    return _section("slices", "Per-slice metrics", "".join(out))


def _drift(rec: Any, figures: dict[str, str]) -> str:
    d = rec.drift
    if not d:
        return _section("drift", "Drift", "<p class=\"muted\">no drift check has run for this project yet "
                        "(<code>mlc run --pipeline monitor</code>)</p>")
    rows = [[f"<td>{esc(f['feature'])}</td>", f"<td class=\"num\">{fmt(f['score'])}</td>",
             f"<td class=\"{'fail' if f['drifted'] else 'pass'}\">{'drifted' if f['drifted'] else 'ok'}</td>",
             f"<td class=\"num\">{fmt(f.get('reference_mean'))}</td>", f"<td class=\"num\">{fmt(f.get('current_mean'))}</td>"]
            for f in d["features"]]
    verdict = '<b class="fail">drift detected</b>' if d["drifted"] else "no drift"
    head = (f"<p>run {esc(rec.drift_run)} · model v{esc(d['model_version'])} · {esc(d['method'])}, threshold "
            f"{esc(d['threshold'])} · {verdict}</p>")
    return _section("drift", "Drift", head + f"<div class=\"figs\">{figures.get('drift', '')}</div>"
                    + _table(["feature", "score", "verdict", "reference mean", "current mean"], rows))
