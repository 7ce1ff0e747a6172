"""Stage 3 backend: Plan.rules -> an Alertmanager routing snippet (``alertmanager/routes.yaml``).

The alerts of the PrometheusRule carry the spec's routing labels (``team``, ``severity`` and
``monitoring.alerts.labels``) and ``model``. The snippet routes them: one route for the project, matched on the
model and the routing labels every alert carries, and below it one route per severity the alerts use, each to
the receiver ``<team>-<severity>``. Receivers appear by name only: their integrations (Slack, PagerDuty, a
webhook) and the secrets those need live in the platform's Alertmanager configuration, never in generated
files. To install: append ``route`` to the root route's ``routes:`` and define each receiver listed under
``receivers`` (the names are all the snippet declares).

Pages are grouped faster and repeated more often than tickets, the usual split: a page wants a human within
minutes, a ticket once a working day.
"""

from __future__ import annotations

from typing import Any

from mlc.backends import Output
from mlc.plan import Plan
from mlc.plan import metrics as M
from mlc.plan.rules import quote

ROUTES_FILE = "alertmanager/routes.yaml"
SEVERITIES = ("page", "ticket", "info")  # most urgent first: the route order
# severity -> (group_wait, group_interval, repeat_interval)
TIMING = {"page": ("30s", "5m", "1h"), "ticket": ("5m", "30m", "12h"), "info": ("10m", "1h", "24h")}
GROUP_BY = ["alertname", "namespace", M.MODEL_LABEL]


def build(plan: Plan) -> list[Output]:
    snippet = routes(plan)
    return [Output(ROUTES_FILE, snippet, resource=False)] if snippet else []


def receiver(plan: Plan, severity: str) -> str:
    """``<team>-<severity>``; a project without a team gets ``<project>-<severity>``."""
    return f"{_common(plan).get('team', plan.project)}-{severity}"


def routes(plan: Plan) -> dict[str, Any] | None:
    alerts = [r for g in plan.rules for r in g.rules if r.alert]
    if not alerts:
        return None
    used = {dict(r.labels)["severity"] for r in alerts}
    severities = [s for s in SEVERITIES if s in used]
    common = _common(plan)
    default = severities[0]  # the project route's own receiver: the most urgent severity in use
    matchers = [f"{M.MODEL_LABEL}={quote(plan.model_name)}"] + [f"{k}={quote(v)}" for k, v in common.items()]
    children = []
    for s in severities:
        wait, interval, repeat = TIMING[s]
        children.append({"receiver": receiver(plan, s), "matchers": [f"severity={quote(s)}"],
                         "group_wait": wait, "group_interval": interval, "repeat_interval": repeat})
    route = {"receiver": receiver(plan, default), "matchers": matchers, "group_by": GROUP_BY,
             "continue": False, "routes": children}
    return {"route": route, "receivers": [{"name": receiver(plan, s)} for s in severities]}


def _common(plan: Plan) -> dict[str, str]:
    """The routing labels every alert carries (all but severity, which slower alerts lower)."""
    alerts = [dict(r.labels) for g in plan.rules for r in g.rules if r.alert]
    if not alerts:
        return {}
    first = {k: v for k, v in alerts[0].items() if k != "severity"}
    return {k: v for k, v in sorted(first.items()) if all(a.get(k) == v for a in alerts)}

