"""The report's figures as SVG text, drawn with matplotlib (Agg; no display needed).

Each function returns one self-contained ``<svg>`` document: fonts as paths would be large, so text stays text
(``svg.fonttype: none``) in the page's own font. Output is deterministic for the same inputs (no date, fixed
hash salt), so two reports of one run are identical.
"""

from __future__ import annotations

import io
from typing import Any

STATUS_COLOR = {"ok": "#2e7d32", "cached": "#1565c0", "failed": "#c62828", "skipped": "#9e9e9e",
                "pending": "#bdbdbd", "running": "#00838f"}
WINNER_COLOR = "#d84315"
OTHER_COLOR = "#90a4ae"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "mlc-report", "font.size": 9,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(fig: Any) -> str:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "mlc report"})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined into HTML


def dag(steps: list[dict[str, Any]], depends: dict[str, list[str]]) -> str:
    """The pipeline as columns by depth (a step sits one column right of its deepest dependency), each box
    coloured by status and labelled with the step's time."""
    plt = _plt()
    depth: dict[str, int] = {}
    for s in steps:  # steps come in topological order
        depth[s["name"]] = 1 + max((depth[d] for d in depends.get(s["name"], []) if d in depth), default=-1)
    cols: dict[int, list[str]] = {}
    for s in steps:
        cols.setdefault(depth[s["name"]], []).append(s["name"])
    rows = max(len(v) for v in cols.values())
    pos = {n: (c, (len(names) - 1) / 2 - i) for c, names in cols.items() for i, n in enumerate(names)}
    by_name = {s["name"]: s for s in steps}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(cols)), max(1.6, 0.75 * rows + 0.4)))
    for n, ds in depends.items():
        for d in ds:
            if d in pos and n in pos:
                (x0, y0), (x1, y1) = pos[d], pos[n]
                ax.annotate("", xy=(x1 - 0.42, y1), xytext=(x0 + 0.42, y0),
                            arrowprops={"arrowstyle": "->", "color": "#607d8b", "lw": 0.8})
    for n, (x, y) in pos.items():
        s = by_name[n]
        color = STATUS_COLOR.get(s["status"], "#bdbdbd")
        ax.add_patch(plt.Rectangle((x - 0.42, y - 0.28), 0.84, 0.56, facecolor=color, alpha=0.15,
                                   edgecolor=color, lw=1.2))
        when = f"{s['seconds']:.2f}s" if s["status"] in ("ok", "failed") else s["status"]
        ax.text(x, y + 0.07, n, ha="center", va="center", fontsize=8, fontweight="bold")
        ax.text(x, y - 0.14, f"{s['status']} · {when}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xlim(-0.5, max(cols) + 0.5)
    ax.set_ylim(-rows / 2 - 0.1, rows / 2 + 0.1)
    ax.axis("off")
    return _svg(fig)


def roc(curves: dict[str, Any], winner: str) -> str:
    """ROC of every candidate on the test split; the winner drawn bold."""
    from sklearn.metrics import auc, roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for name, (y, s) in _winner_last(curves, winner):
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, **_style(name, winner), label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="#bdbdbd", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return _svg(fig)


def pr(curves: dict[str, Any], winner: str) -> str:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    base = None
    for name, (y, s) in _winner_last(curves, winner):
        p, r, _ = precision_recall_curve(y, s)
        ax.plot(r, p, **_style(name, winner), label=f"{name} (AP {average_precision_score(y, s):.3f})")
        base = float(y.mean())
    if base is not None:
        ax.axhline(base, ls=":", color="#bdbdbd", lw=0.8)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test split)", ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    return _svg(fig)


def calibration(y: Any, s: Any, winner: str, bins: int = 10) -> str:
    """Reliability diagram of the winner: mean predicted probability against the observed positive share per
    bin (quantile bins, so every point stands on as many rows), with the rows' score histogram below."""
    from sklearn.calibration import calibration_curve

    plt = _plt()
    fig, (ax, hx) = plt.subplots(2, 1, figsize=(4.2, 4.2), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    frac, mean = calibration_curve(y, s, n_bins=bins, strategy="quantile")
    ax.plot([0, 1], [0, 1], ls=":", color="#bdbdbd", lw=0.8, label="perfectly calibrated")
    ax.plot(mean, frac, marker="o", ms=3, color=WINNER_COLOR, lw=1.6, label=winner)
    ax.set(ylabel="observed positive share", title=f"Calibration of {winner} (test split)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    hx.hist(s, bins=20, range=(0, 1), color=WINNER_COLOR, alpha=0.6)
    hx.set(xlabel="predicted probability", ylabel="rows")
    return _svg(fig)


def predicted_vs_actual(y: Any, s: Any, winner: str) -> str:
    """Regression: the winner's predictions against the truth, and the identity line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.scatter(y, s, s=4, alpha=0.4, color=WINNER_COLOR, linewidths=0)
    lo, hi = float(min(y.min(), s.min())), float(max(y.max(), s.max()))
    ax.plot([lo, hi], [lo, hi], ls=":", color="#607d8b", lw=0.8)
    ax.set(xlabel="actual", ylabel="predicted", title=f"{winner}: predicted vs actual (test split)")
    return _svg(fig)


def residuals(y: Any, s: Any, winner: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.hist(s - y, bins=40, color=WINNER_COLOR, alpha=0.7)
    ax.axvline(0, color="#607d8b", lw=0.8)
    ax.set(xlabel="predicted - actual", ylabel="rows", title=f"{winner}: residuals (test split)")
    return _svg(fig)


def drift(features: list[dict[str, Any]], threshold: float, method: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * len(features) + 1.0))
    names = [f["feature"] for f in features]
    scores = [f["score"] for f in features]
    colors = [STATUS_COLOR["failed"] if f["drifted"] else STATUS_COLOR["ok"] for f in features]
    ax.barh(names, scores, color=colors, alpha=0.8)
    ax.axvline(threshold, color="#c62828", ls="--", lw=1, label=f"threshold {threshold}")
    ax.invert_yaxis()
    ax.set(xlabel=f"{method} score", title="Feature drift against the training reference")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return _svg(fig)


def _winner_last(curves: dict[str, Any], winner: str) -> list[tuple[str, Any]]:
    return [(n, v) for n, v in curves.items() if n != winner] + [(winner, curves[winner])]


def _style(name: str, winner: str) -> dict[str, Any]:
    return {"color": WINNER_COLOR, "lw": 2.0} if name == winner else {"color": OTHER_COLOR, "lw": 1.0,
                                                                       "alpha": 0.8}
