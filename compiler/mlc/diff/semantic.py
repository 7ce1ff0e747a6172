"""Spec against spec, at the level of the language: a change is a path whose value differs once both specs are
validated and their defaults filled in (so writing a default out, reordering keys or editing comments is not a
change), with an impact class and one sentence in domain words.

Lists whose items have an identity are compared by it (candidates by name, gates by metric, checks by kind and
column, feature groups by their columns), so inserting a candidate is one change, not a shift of every index.

The classification is one table, ``RULES``, keyed by path patterns (dotted, ``*`` for any one key, list items
written without their identity). The most specific matching pattern wins. A path no row names falls back to the
row of its nearest ancestor, so fields added to the language later (``deployment.online.rollout.*``) are
classified without code changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CLASSES = ("retrain", "redeploy", "traffic", "alerting", "schedule", "resources", "data", "cosmetic")
_MISSING = object()

# list path (identity segments stripped) -> the item fields that identify an item
IDENTITY: dict[str, tuple[str, ...]] = {
    "data.sources": ("name",),
    "data.checks": ("check", "column"),
    "features": ("columns",),
    "training.candidates": ("name",),
    "gates.metrics": ("metric",),
    "gates.champion": ("metric",),
    "gates.slices": ("column", "metric"),
    "environments.*.secrets": ("secret", "key"),
    "deployment.online.rollout.steps": (),  # ordered: compared by position
    "deployment.online.rollout.analysis.metrics": ("name",),
}


@dataclass
class Change:
    path: str  # gates.metrics[roc_auc].min
    old: Any  # _MISSING-free: None when the path did not exist (see ``status``)
    new: Any
    status: str  # added | removed | changed
    impact: str = ""
    sentence: str = ""
    context: str | None = None  # what the registry or the last run says about it; None: not asked
    facts: dict[str, Any] = field(default_factory=dict)  # for json output: what the sentence used

    def to_json(self) -> dict[str, Any]:
        d = {"path": self.path, "status": self.status, "old": self.old, "new": self.new, "impact": self.impact,
             "sentence": self.sentence}
        if self.context is not None:
            d["context"] = self.context
        return d


# --------------------------------------------------------------------------- comparing
def normalise(spec: Any) -> dict[str, Any]:
    """The validated spec as plain JSON data, defaults filled in, keys as written in YAML (aliases)."""
    return spec.model_dump(mode="json", by_alias=True)


def _ident(item: Any, keys: tuple[str, ...]) -> str | None:
    if not keys or not isinstance(item, dict):
        return None
    parts = []
    for k in keys:
        v = item.get(k)
        if v is None:
            continue
        parts.append(",".join(map(str, v)) if isinstance(v, list) else str(v))
    return "/".join(parts) or None


def _pattern_of(path: str) -> str:
    """``training.candidates[logreg].params.C`` -> ``training.candidates.params.C``."""
    return re.sub(r"\[[^\]]*\]", "", path)


def _identity_keys(path: str) -> tuple[str, ...] | None:
    pat = _pattern_of(path).split(".")
    for key, fields in IDENTITY.items():
        k = key.split(".")
        if len(k) == len(pat) and all(a == "*" or a == b for a, b in zip(k, pat)):
            return fields
    return None


def compare(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every leaf (or whole added/removed subtree) that differs, in a stable order."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        keys = list(old) + [k for k in new if k not in old]
        for k in keys:
            p = f"{path}.{k}" if path else str(k)
            a, b = old.get(k, _MISSING), new.get(k, _MISSING)
            if a is _MISSING:
                out.append(Change(p, None, b, "added"))
            elif b is _MISSING:
                out.append(Change(p, a, None, "removed"))
            else:
                out.extend(compare(a, b, p))
        return out
    if isinstance(old, list) and isinstance(new, list):
        keys = _identity_keys(path)
        if keys is not None and keys:
            ia = [_ident(x, keys) for x in old]
            ib = [_ident(x, keys) for x in new]
            if None not in ia and None not in ib and len(set(ia)) == len(ia) and len(set(ib)) == len(ib):
                da, db = dict(zip(ia, old)), dict(zip(ib, new))
                out = []
                for k in ia + [k for k in ib if k not in da]:
                    p = f"{path}[{k}]"
                    if k not in db:
                        out.append(Change(p, da[k], None, "removed"))
                    elif k not in da:
                        out.append(Change(p, None, db[k], "added"))
                    else:
                        out.extend(compare(da[k], db[k], p))
                return out
        if keys is not None and len(old) == len(new):  # ordered items of one shape: by position
            return [c for i, (a, b) in enumerate(zip(old, new)) for c in compare(a, b, f"{path}[{i}]")]
    return [Change(path, old, new, "changed")]


# --------------------------------------------------------------------------- words
SHOWN = 120  # longest value written into a sentence or a table cell; the unified diffs have the rest


def show(v: Any) -> str:
    s = _show(v)
    return s if len(s) <= SHOWN else s[:SHOWN - 1] + "…"


def _show(v: Any) -> str:
    if isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v):  # a sha256: its first 12 digits tell it apart
        return v[:12] + "…"
    if v is None:
        return "(unset)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, separators=(", ", ": "), sort_keys=False)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _arrow(c: Change) -> str:
    if c.status == "added" or (c.old is None and c.new is not None):
        return f"set to {show(c.new)}"
    if c.status == "removed":
        return f"removed (was {show(c.old)})"
    if c.new is None:
        return f"unset (was {show(c.old)})"
    return f"{show(c.old)} → {show(c.new)}"


def _item(path: str) -> str:
    """The identity of the innermost list item in a path (``gates.metrics[roc_auc].min`` -> ``roc_auc``)."""
    found = re.findall(r"\[([^\]]*)\]", path)
    return found[-1] if found else ""


def _tail(path: str, n: int = 1) -> str:
    return ".".join(re.sub(r"\[[^\]]*\]", "", path).split(".")[-n:])


def _env(path: str) -> str:
    return path.split(".")[1] if path.startswith("environments.") else ""


def _up(c: Change) -> bool | None:
    """True when a number went up, False when down, None when either side is not a number."""
    a, b = _num(c.old), _num(c.new)
    return None if a is None or b is None or a == b else b > a


Sentence = Callable[[Change], str]


def _generic(what: str, effect: str = "") -> Sentence:
    def s(c: Change) -> str:
        subject = what.format(item=_item(c.path), tail=_tail(c.path), env=_env(c.path), path=c.path)
        return f"{subject} {_arrow(c)}" + (f": {effect}" if effect else "")
    return s


def _gate_metric(c: Change) -> str:
    field_ = _tail(c.path)
    metric = _item(c.path)
    if field_ not in ("min", "max"):
        return f"gate {metric or show(c.new or c.old)} {_arrow(c)}: the promotion rule changes"
    up = _up(c)
    if c.status == "added" or (c.status == "changed" and up is not None and (up == (field_ == "min"))):
        verdict = "stricter, so the next retrain may not promote"
    elif c.status == "removed" or up is not None:
        verdict = "looser, so a weaker model can promote"
    else:
        verdict = "the promotion rule changes"
    return f"gate {metric} {field_} {_arrow(c)}: {verdict}"


def _gate_item(c: Change) -> str:
    kind = _pattern_of(c.path).split(".")[1]  # metrics | champion | slices
    what = {"metrics": "gate", "champion": "champion gate", "slices": "slice gate"}[kind]
    if c.status == "added":
        return f"{what} {_item(c.path)} added: stricter, so the next retrain may not promote"
    if c.status == "removed":
        return f"{what} {_item(c.path)} removed: looser, so a weaker model can promote"
    field_ = _tail(c.path)
    up = _up(c)
    if kind == "champion" and field_ in ("max_drop", "max_relative_drop") and up is not None:
        return f"{what} {_item(c.path)} {field_} {_arrow(c)}: " + (
            "looser, a challenger may now be further below the champion" if up else
            "stricter, the challenger must stay closer to the champion")
    if kind == "slices" and field_ == "max_gap" and up is not None:
        return f"{what} {_item(c.path)} max_gap {_arrow(c)}: " + (
            "looser, a wider gap between slices is allowed" if up else "stricter, slices must be closer")
    return f"{what} {_item(c.path)} {field_} {_arrow(c)}: the promotion rule changes"


def _canary(c: Change) -> str:
    old, new = c.old or [], c.new or []
    if not isinstance(old, list) or not isinstance(new, list):
        return f"canary steps {_arrow(c)}: the traffic a new version gets changes"
    if not new:
        return f"canary steps {show(old)} → none: a new version takes all traffic at once"
    if not old:
        return f"canary steps set to {show(new)}: a new version starts on {new[0]}% of traffic"
    if old[0] != new[0]:
        more = new[0] > old[0]
        return (f"canary first step {old[0]}% → {new[0]}%: " +
                ("more traffic at risk" if more else "less traffic at risk") +
                (f" (steps {show(old)} → {show(new)})" if old[1:] != new[1:] else ""))
    if len(new) != len(old):
        return (f"canary steps {show(old)} → {show(new)}: " +
                ("more steps, a slower rollout" if len(new) > len(old) else "fewer steps, a faster rollout"))
    return f"canary steps {show(old)} → {show(new)}: the traffic at each step changes"


def _rollout(c: Change) -> str:
    """Sentences for deployment.online.rollout (docs/rollout.md): weights, holds, the analysis and its checks."""
    rest = c.path.removeprefix("deployment.online.rollout").lstrip(".") or "rollout"
    up = _up(c)
    if rest == "steps" and all(isinstance(v, list) or v is None for v in (c.old, c.new)):
        weights = [[s.get("weight") for s in v if isinstance(s, dict)] if v else [] for v in (c.old, c.new)]
        if weights[0] != weights[1]:  # the weights say what changes; the holds are in the generated diff
            return _canary(Change(c.path, weights[0], weights[1], c.status))
    m = re.fullmatch(r"steps\[(\d+)\](?:\.(weight|pause))?", rest)
    if m:
        n = int(m.group(1)) + 1
        if m.group(2) is None:
            return (f"canary step {n} {_arrow(c)}: " +
                    ("one more step, a slower rollout" if c.status == "added" else
                     "one step fewer, a faster rollout" if c.status == "removed" else "the step changes"))
        if m.group(2) == "weight" and up is not None:
            return (f"canary step {n} weight {c.old}% → {c.new}%: " +
                    ("more traffic at risk at that step" if up else "less traffic at risk at that step"))
        if m.group(2) == "pause":
            return f"canary step {n} hold {_arrow(c)}: how long the weight soaks before the next step"
    m = re.fullmatch(r"analysis\.metrics\[([^\]]+)\](?:\.(min|max|margin))?", rest)
    if m:
        name, bound = m.groups()
        if bound is None:
            return (f"canary check {name} {'added: stricter' if c.status == 'added' else 'removed: looser'}"
                    if c.status in ("added", "removed") else f"canary check {name} {_arrow(c)}")
        if up is not None:
            stricter = up == (bound == "min")
            return (f"canary check {name} {bound} {_arrow(c)}: " +
                    ("stricter, a canary is rolled back sooner" if stricter else
                     "looser, a worse canary can be promoted"))
    if rest in ("analysis.failure_limit", "analysis.inconclusive_limit") and up is not None:
        what = "failed" if rest.endswith("failure_limit") else "inconclusive"
        return (f"canary {rest.split('.')[1]} {_arrow(c)}: " +
                (f"more {what} measurements tolerated per step" if up else f"fewer {what} measurements tolerated"))
    if rest in ("analysis.count", "analysis.interval"):
        return f"canary analysis {rest.split('.')[1]} {_arrow(c)}: each step measures for a different time"
    if rest == "on_failure":
        return (f"on a failed canary check: {_arrow(c)}: " +
                ("traffic goes back to the champion at once" if c.new == "rollback" else
                 "the weight is held until someone decides"))
    return f"canary rollout changed: {rest} {_arrow(c)}"


def _threshold(noun: str, up_means: str, down_means: str) -> Sentence:
    def s(c: Change) -> str:
        subject = noun.format(tail=_tail(c.path))
        up = _up(c)
        effect = up_means if up else down_means if up is not None else ""
        if c.status == "added":
            effect = "a new alert"
        elif c.status == "removed":
            effect = "that alert is gone"
        return f"{subject} {_arrow(c)}" + (f": {effect}" if effect else "")
    return s


def _schedule(noun: str) -> Sentence:
    def s(c: Change) -> str:
        return f"{noun} {_arrow(c)}" + (": runs at a different time" if c.status == "changed" else "")
    return s


def _suspend(c: Change) -> str:
    env = _env(c.path)
    if c.new is False:
        return f"environment {env}: schedules true → false: its CronWorkflows are suspended"
    return f"environment {env}: schedules {_arrow(c)}: its CronWorkflows run"


def _candidate(c: Change) -> str:
    name = _item(c.path)
    if c.status == "added" and _pattern_of(c.path) == "training.candidates":
        return f"candidate {name} added: one more model trains on every retrain"
    if c.status == "removed" and _pattern_of(c.path) == "training.candidates":
        return f"candidate {name} removed: it no longer competes"
    rest = c.path.split("]", 1)[1].lstrip(".")
    return f"candidate {name}: {rest} {_arrow(c)}: the next retrain trains it differently"


def _feature(c: Change) -> str:
    cols = _item(c.path)
    if _pattern_of(c.path) == "features":
        return f"feature group [{cols}] {c.status}: the model sees different inputs on the next retrain"
    return f"feature group [{cols}]: {_tail(c.path)} {_arrow(c)}: the next retrain builds different features"


def _resources(noun: str) -> Sentence:
    def s(c: Change) -> str:
        env = _env(c.path)
        where = f"environment {env}: " if env else ""
        plain = _pattern_of(c.path)
        rest = plain.split(".resources", 1)[1].lstrip(".").replace(".", " ") if ".resources" in plain else ""
        subject = noun.format(item=_item(c.path), rest=rest)
        return f"{where}{subject} {_arrow(c)}"
    return s


def _environment(c: Change) -> str:
    env = _env(c.path)
    rest = c.path.split(".", 2)[2] if c.path.count(".") >= 2 else ""
    if not rest:
        return (f"environment {env} added: `mlc compile` writes a new set of objects for it" if c.status == "added"
                else f"environment {env} removed: its generated objects go (`mlc delete` cleans the cluster)")
    return f"environment {env}: {rest} {_arrow(c)}"


def _column(c: Change) -> str:
    parts = _pattern_of(c.path).split(".")
    if len(parts) == 3:
        return f"column {parts[2]} {c.status}: the data checks and the serving input schema change"
    return (f"column {parts[2]}: {'.'.join(parts[3:])} {_arrow(c)}: the data checks and the serving input "
            "schema change")


@dataclass(frozen=True)
class Rule:
    pattern: str
    impact: str
    sentence: Sentence


R = Rule
RULES: tuple[Rule, ...] = (
    R("apiVersion", "cosmetic", _generic("apiVersion")),
    R("kind", "cosmetic", _generic("kind")),
    R("metadata", "cosmetic", _generic("metadata.{tail}")),
    R("metadata.description", "cosmetic", lambda c: "description changed: read by people only (the model card)"),
    R("metadata.name", "redeploy", _generic("project name", "every generated name changes; the old objects stay "
                                                           "until `mlc apply --prune`")),
    R("metadata.team", "alerting", _generic("team", "the default team label of every alert changes")),
    R("metadata.labels", "redeploy", _generic("label {tail}", "every object is relabelled")),
    R("environments", "redeploy", _environment),
    R("environments.*.image", "redeploy", _generic("environment {env}: image",
                                                   "every step and the predictor roll to it")),
    R("environments.*.namespace", "redeploy", _generic("environment {env}: namespace",
                                                       "everything moves to another namespace")),
    R("environments.*.resources", "resources", _resources("{rest}")),
    R("environments.*.schedules", "schedule", _suspend),
    R("environments.*.argocd", "redeploy", _generic("environment {env}: Argo CD {tail}",
                                                    "how Argo CD syncs this environment changes")),
    R("data", "data", _generic("data {tail}", "the next run reads other data")),
    R("data.sources", "data", _generic("data source {item}: {tail}", "the next retrain reads other data")),
    R("data.schema", "data", lambda c: _column(c)),
    R("data.checks", "data", _generic("data check {item}: {tail}", "a run may now fail, or pass, its data checks")),
    R("data.label", "retrain", _generic("label {tail}", "the model predicts something else")),
    R("data.split", "retrain", _generic("split {tail}", "the test set changes, so scores are not comparable")),
    R("data.entity", "retrain", _generic("entity column")),
    R("features", "retrain", _feature),
    R("training", "retrain", _generic("training {tail}", "the next retrain changes")),
    R("training.select_by", "retrain", _generic("winner chosen by", "another candidate may win")),
    R("training.metrics", "retrain", _generic("metrics computed", "the run reports other metrics")),
    R("training.candidates", "retrain", _candidate),
    R("training.resources", "resources", _resources("train steps {rest}")),
    R("training.candidates.resources", "resources", _resources("candidate {item} {rest}")),
    R("gates", "retrain", _generic("gates {tail}", "the promotion rule changes")),
    R("gates.metrics", "retrain", _gate_item),
    R("gates.metrics.min", "retrain", _gate_metric),
    R("gates.metrics.max", "retrain", _gate_metric),
    R("gates.champion", "retrain", _gate_item),
    R("gates.slices", "retrain", _gate_item),
    R("gates.manual_approval", "retrain", _generic("manual approval",
                                                   "whether promotion waits for a human changes")),
    R("registry", "redeploy", _generic("registry {tail}", "serving and the gates look up another model")),
    R("deployment", "redeploy", _generic("deployment {tail}")),
    R("deployment.online", "redeploy", _generic("online {tail}", "the InferenceService is replaced or updated")),
    R("deployment.online.canary", "traffic", _canary),
    R("deployment.online.rollout", "traffic", _rollout),
    R("deployment.online.replicas", "resources", _generic("replicas {tail}", "capacity changes")),
    R("deployment.online.autoscaling", "resources", _generic("autoscaling {tail}", "capacity changes")),
    R("deployment.online.resources", "resources", _generic("predictor {tail}")),
    R("deployment.batch", "data", _generic("batch {tail}", "batch scoring reads or writes elsewhere")),
    R("deployment.batch.schedule", "schedule", _schedule("batch scoring schedule")),
    R("monitoring", "alerting", _generic("monitoring {tail}", "alerts change")),
    R("monitoring.drift.threshold", "alerting", _threshold("drift alert threshold", "fewer alerts", "more alerts")),
    R("monitoring.drift.schedule", "schedule", _schedule("drift check schedule")),
    R("monitoring.drift.features", "alerting", _generic("drift watched on", "alerts cover other columns")),
    R("monitoring.slo.latency", "alerting",
      _threshold("latency SLO {tail}", "looser, fewer pages", "stricter, more pages")),
    R("monitoring.slo.error_rate", "alerting",
      _threshold("error-rate SLO", "looser, fewer pages", "stricter, more pages")),
    R("monitoring.slo.availability", "alerting",
      _threshold("availability SLO", "stricter, a smaller error budget, more pages",
                 "looser, a larger error budget, fewer pages")),
    R("monitoring.quality.min", "alerting", _threshold("live quality floor", "more alerts", "fewer alerts")),
    R("monitoring.quality.min_ratio", "alerting",
      _threshold("live quality floor (share of baseline)", "more alerts", "fewer alerts")),
    R("monitoring.alerts", "alerting", _generic("alert routing {tail}", "alerts go to other receivers")),
    R("monitoring.retraining", "schedule", _generic("retraining {tail}")),
    R("monitoring.retraining.schedule", "schedule", _schedule("retraining schedule")),
)
assert all(r.impact in CLASSES for r in RULES)


def _matches(pattern: str, path: str) -> bool:
    p, q = pattern.split("."), path.split(".")
    return len(p) <= len(q) and all(a == "*" or a == b for a, b in zip(p, q))


def rule_for(path: str) -> Rule:
    """The most specific row whose pattern is a prefix of the path (list identities removed)."""
    plain = _pattern_of(path)
    best = max((r for r in RULES if _matches(r.pattern, plain)), key=lambda r: len(r.pattern.split(".")),
               default=None)
    if best is None:
        return Rule("", "redeploy", _generic("{path}"))
    return best


def classify(changes: list[Change]) -> list[Change]:
    for c in changes:
        r = rule_for(c.path)
        c.impact = r.impact
        c.sentence = r.sentence(c)
    return changes


def spec_changes(old_spec: Any, new_spec: Any, env: str | None = None) -> list[Change]:
    """The classified changes between two validated specs; with ``env``, other environments' overlays are
    left out (they cannot change what this environment gets)."""
    changes = compare(normalise(old_spec), normalise(new_spec))
    if env is not None:
        changes = [c for c in changes if not c.path.startswith("environments.")
                   or c.path.split(".")[1].split("[")[0] == env]
    return classify(changes)
