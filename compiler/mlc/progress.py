"""What `mlc run` shows: a live table of steps on a terminal, plain lines elsewhere (CI logs, pipes), and a
final summary of steps, candidates' metrics, gates and the registered version.

Kept apart from the executor so that local.py reads as scheduling and caching only. Results are rendered
from StepResult dicts as the runtime wrote them; anything unexpected is shown as key=value rather than
dropped, so the summary never hides what a step reported.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from mlc.plan import Pipeline
    from mlc.runstate import StepState
    from mlc.runtime.context import StepContext

STYLE = {"pending": "dim", "running": "cyan", "ok": "green", "cached": "blue", "failed": "bold red",
         "skipped": "yellow"}
ICON = {"pending": "·", "running": "…", "ok": "✓", "cached": "↺", "failed": "✗", "skipped": "-"}


class Progress:
    def __init__(self, ctx: StepContext, pipe: Pipeline, states: list[StepState]) -> None:
        import sys

        from rich.console import Console

        self.ctx, self.pipe, self.states = ctx, pipe, states
        self.verbose = ctx.verbosity > 0
        # Bound to the stdout of now: while a step runs, sys.stdout is the library-output capture (chatter.py)
        self.console = Console(file=sys.stdout, highlight=False)
        self.live_mode = self.console.is_terminal
        self.live: Any = None
        self.t0 = time.perf_counter()

    def __enter__(self) -> Self:
        self.console.print(f"[bold]mlc run[/] {self.ctx.plan.project} · pipeline {self.pipe.name} · "
                           f"run {self.ctx.run_id}")
        if self.live_mode:
            from rich.live import Live

            self.live = Live(get_renderable=self._table, console=self.console, refresh_per_second=8)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def update(self, st: StepState) -> None:
        if self.live is not None:
            self.live.refresh()
            return
        if st.status == "pending":
            return
        i = self.states.index(st) + 1
        when = f"{st.seconds:6.2f}s" if st.status in ("ok", "failed") else ""
        note = f"  (from {st.source_run})" if st.status == "cached" else (f"  {_first(st.error)}" if st.error else "")
        print(f"[{i:>2}/{len(self.states)}] {st.step.name:<28} {st.status:<8}{when}{note}", flush=True)

    def _table(self) -> Any:
        from rich.table import Table

        t = Table(box=None, show_header=False, pad_edge=False)
        for st in self.states:
            secs = time.perf_counter() - st.started if st.status == "running" else st.seconds
            shown = f"{secs:.1f}s" if st.status in ("running", "ok", "failed") else ""
            t.add_row(f"[{STYLE[st.status]}]{ICON[st.status]}[/]", st.step.name,
                      f"[{STYLE[st.status]}]{st.status}[/]", shown)
        return t

    # ------------------------------------------------------------------------- summary
    def summary(self) -> None:
        from rich.markup import escape
        from rich.table import Table

        c = self.console
        steps = Table(title="steps", title_justify="left")
        width = max(len(st.step.name) for st in self.states)
        steps.add_column("step", no_wrap=True, min_width=width)
        steps.add_column("status", no_wrap=True, min_width=7)
        steps.add_column("time", justify="right", no_wrap=True, min_width=6)
        steps.add_column("cache", no_wrap=True, min_width=5)
        room = max(20, c.width - width - 7 - 6 - 5 - 16)  # what the other columns and borders leave
        steps.add_column("note", no_wrap=not self.verbose, overflow="fold")
        cut = False
        for st in self.states:
            cache = {"cached": "hit", "ok": "miss", "failed": "miss"}.get(st.status, "")
            if self.verbose:  # -v: the whole note, wrapped
                note = (st.error or st.result.message).strip()
            else:
                note = _first(st.error or st.result.message)
                if len(note) > room:
                    note, cut = note[: room - 1] + "…", True
            steps.add_row(st.step.name, f"[{STYLE[st.status]}]{st.status}[/]",
                          f"{st.seconds:.2f}s" if st.status in ("ok", "failed") else "", cache, escape(note))
        c.print(steps)
        record = f"{self.ctx.run_dir()}/<step>/result.json"
        if self.verbose:
            c.print(f"each step's full record: {record}", soft_wrap=True)
        elif cut:
            c.print(f"[dim]notes are cut to fit; `mlc run -v` shows them in full, and each step's full record is "
                    f"{record}[/]", soft_wrap=True)
        results = {st.step.kind: st.result for st in self.states if st.status in ("ok", "cached")}
        cands = candidate_metrics(self.states)
        if cands:
            winner = results["evaluate"].outputs.get("winner") if "evaluate" in results else None
            metrics = sorted({m for v in cands.values() for m in v})
            t = Table(title="candidates (test split)", title_justify="left")
            t.add_column("candidate")
            for m in metrics:
                t.add_column(m, justify="right")
            for name, vals in cands.items():
                label = f"[bold]{name}[/] ★" if name == winner else name
                t.add_row(label, *(_fmt(vals.get(m)) for m in metrics))
            c.print(t)
        if any(st.step.kind == "gate" and st.status in ("ok", "cached", "failed") for st in self.states):
            _print_gates(c, self.ctx)
        if "register" in results:
            r = results["register"]
            version = r.outputs.get("version") or r.metrics.get("version")
            aliases = r.metrics.get("aliases")
            line = f"[bold]registered[/] {self.ctx.plan.model_name} version {version}"
            if aliases:
                line += f" · aliases: {', '.join(aliases) if isinstance(aliases, list) else aliases}"
            c.print(line + (f" · {r.message}" if r.message else ""))
        hits = sum(st.status == "cached" for st in self.states)
        ran = sum(st.status in ("ok", "failed") for st in self.states)
        c.print(f"run {self.ctx.run_id}: {ran} ran, {hits} cached, "
                f"{time.perf_counter() - self.t0:.1f}s · artifacts {self.ctx.run_dir()}")


def candidate_metrics(states: list[StepState]) -> dict[str, dict[str, float]]:
    """Per-candidate test metrics from evaluate's result, or from the train steps when evaluate did not run."""
    for st in states:
        if st.step.kind == "evaluate" and st.status in ("ok", "cached"):
            m = st.result.metrics
            table = m.get("candidates") if isinstance(m.get("candidates"), dict) else m
            found = {k: _numbers(v) for k, v in table.items() if isinstance(v, dict) and _numbers(v)}
            if found:
                return found
    out = {}
    for st in states:
        if st.step.kind == "train" and st.status in ("ok", "cached") and _numbers(st.result.metrics):
            out[st.step.candidate or st.step.name] = _numbers(st.result.metrics)
    return out


def _numbers(d: Any) -> dict[str, float]:
    if not isinstance(d, dict):
        return {}
    return {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _first(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _print_gates(c: Any, ctx: StepContext) -> None:
    """From the gate report, which the gate step publishes even when it fails."""
    import json
    from pathlib import Path

    from rich.table import Table

    try:
        report = json.loads((Path(ctx.step_dir("gate")) / "report.json").read_text())
    except (OSError, ValueError):
        return
    t = Table(title=f"gates: {'passed' if report.get('passed') else 'FAILED'} "
                    f"(candidate {report.get('winner')})", title_justify="left")
    for col in ("gate", "metric", "observed", "expected", "result"):
        t.add_column(col, justify="right" if col == "observed" else "left")
    for g in report.get("gates", []):
        result = ("[yellow]skipped[/]" if g.get("skipped") else "[green]pass[/]" if g.get("passed")
                  else "[bold red]FAIL[/]")
        what = g.get("metric", "")
        if g.get("column"):
            what += f" by {g['column']}" + (f" (worst {g['worst']})" if g.get("worst") else "")
        t.add_row(str(g.get("gate", "")), what, _fmt(g.get("observed")), str(g.get("expected", "")), result)
    c.print(t)
