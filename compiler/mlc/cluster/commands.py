"""`mlc plan`, `mlc apply`, `mlc delete`, `mlc submit`: the compiled objects against a live cluster.

Every change is computed by the server itself: each desired object is sent as a server-side apply with
``dryRun=All`` and the answer is diffed against the live object. That one mechanism gives the plan, validates
every object (``fieldValidation=Strict``), finds field-manager conflicts and RBAC refusals, all before the first
write. Only then does apply write, in dependency order.

One case a server cannot dry-run: objects in a namespace that does not exist yet (it answers
``namespaces "x" not found``). Then the Namespace is dry-run, the namespaced objects are listed as creations that
the server has not validated yet, and the real apply creates the Namespace first and dry-runs every other object
before writing any of them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import click

from mlc.cluster import diff as fdiff
from mlc.cluster.kube import (
    ClusterError,
    Conflict,
    ConflictError,
    ForbiddenError,
    Kube,
    ResourceType,
    describe,
)
from mlc.cluster.objects import (
    ARGO,
    KINDS,
    apply_order,
    delete_order,
    ident,
    install_hint,
    kind_of,
    ownership,
    selector,
    stamp,
)
from mlc.errors import ApplyError
from mlc.plan import ENV_LABEL, PROJECT_LABEL, Plan

NO_CHANGES, CHANGES = 0, 2
TERMINAL_PHASES = {"Succeeded": 0, "Failed": 1, "Error": 1}
PRUNE_TIMEOUT_S = 120.0


@dataclass
class Change:
    action: str  # create | update | unchanged | delete | skip (a Namespace somebody else made)
    obj: dict[str, Any]  # desired object (create/update/unchanged) or the live one (delete)
    rt: ResourceType
    diff: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    validated: bool = True  # the server dry-ran it


@dataclass
class Target:
    """A compiled project for one environment, and the cluster it goes to."""

    plan: Plan
    desired: list[dict[str, Any]]
    kube: Kube
    namespace_exists: bool = True
    namespace_readable: bool = True  # False: the credentials may not get the Namespace (a namespaced Role)
    notes: list[str] = field(default_factory=list)


# -- loading ----------------------------------------------------------------------------------------------
def load(path: str, env: str, kubeconfig: str | None, context: str | None, *, compile_: bool = True,
         extra_api_versions: frozenset[str] = frozenset(), argo_for: str | None = None) -> Target:
    """Compile in memory, connect, discover; fail before any write when a needed CRD is missing.

    ``argo_for``: the command needs the environment to target Argo (checked before connecting)."""
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(path)
    image = None
    if compile_:
        from mlc.image.refs import check

        images, error, _ = check(sf, [env])  # compile printed the warnings; apply only refuses a missing image
        if error is not None:
            raise error
        image = images[env]
    plan = lower(sf.spec, sf.text, env, image=image)
    if argo_for and (why := plan.argo_target(argo_for)):
        raise ApplyError(why)
    objs: list[dict[str, Any]] = []
    if compile_:
        from mlc.emit import build

        objs = [o.obj for o in build(plan) if o.resource and o.obj is not None
                and not str(o.obj.get("apiVersion", "")).startswith("kustomize.config.k8s.io")]
    kube = Kube(kubeconfig, context)
    needed = {o["apiVersion"] for o in objs} | set(extra_api_versions)
    missing = kube.discover(needed | {k.api_version for k in KINDS})
    missing |= {o["apiVersion"] for o in objs if (o["apiVersion"], o["kind"]) not in kube.types}
    missing &= needed
    if missing:
        lines = [install_hint(gv, plan.argo_version) for gv in sorted(missing)]
        raise ApplyError("the cluster lacks resources this project needs; nothing was changed:\n  "
                         + "\n  ".join(lines))
    stamped = [stamp(o, plan, kube.type_of(o["apiVersion"], o["kind"]).namespaced) for o in objs]
    from mlc.cluster import crds

    found = crds.check(kube, plan, stamped)
    if found.errors:
        kube.close()
        raise ApplyError(found.errors[0] if len(found.errors) == 1 else
                         "the cluster's CRDs do not fit this project; nothing was sent:\n  " + "\n  ".join(found.errors))
    t = Target(plan, apply_order(stamped), kube, notes=found.notes)
    ns_rt = kube.type_of("v1", "Namespace")
    try:
        t.namespace_exists = kube.get(ns_rt, None, plan.namespace) is not None
    except ForbiddenError:  # rights only inside the namespace: it exists, and it is somebody else's
        t.namespace_readable = False
    return t


# -- computing the plan -----------------------------------------------------------------------------------
def compute(t: Target, force: bool = False) -> list[Change]:
    out: list[Change] = []
    for obj in t.desired:
        rt = t.kube.type_of(obj["apiVersion"], obj["kind"])
        if rt.namespaced and not t.namespace_exists:
            out.append(Change("create", obj, rt, validated=False))
            continue
        md = obj["metadata"]
        if obj["kind"] == "Namespace" and not t.namespace_readable:
            out.append(Change("skip", obj, rt, notes=[
                "these credentials may not read it: assumed to exist, left alone (never adopted, never deleted)"]))
            continue
        live = t.kube.get(rt, md.get("namespace"), md["name"])
        if live is not None and obj["kind"] == "InferenceService":
            from mlc.rollout.cluster import keep_live_fields

            obj = keep_live_fields(obj, live)  # the rollout's fields stay as the rollout left them
        if obj["kind"] == "Namespace" and live is not None and not _owned(live, t.plan):
            out.append(Change("skip", obj, rt, notes=[
                "exists and is not managed by this project: left alone (never adopted, never deleted)"]))
            continue
        conflicts: list[Conflict] = []
        try:
            result = t.kube.apply(rt, obj, dry_run=True, force=force)
        except ConflictError as e:
            conflicts = e.conflicts
            result = t.kube.apply(rt, obj, dry_run=True, force=True)
        notes = []
        if live is not None and not _owned(live, t.plan):
            notes.append("exists without this project's ownership labels: apply adopts it")
        if live is None:
            out.append(Change("create", obj, rt, notes=notes, conflicts=conflicts))
        else:
            d = fdiff.changes(live, result)
            out.append(Change("update" if d else "unchanged", obj, rt, d, notes, conflicts))
    out.extend(orphans(t))
    return out


def orphans(t: Target, terminating: list[dict[str, Any]] | None = None) -> list[Change]:
    """Objects this project and env own in its namespace that the compile no longer produces; those already
    being deleted go to ``terminating`` instead, when given.

    Namespaces are not listed cluster-wide (that needs cluster-wide RBAC most users lack); the project's own
    Namespace is always produced, so it is never an orphan."""
    if not t.namespace_exists:
        return []
    wanted = {ident(o) for o in t.desired}
    out = []
    for k in KINDS:
        rt = t.kube.types.get((k.api_version, k.kind))
        if rt is None or not rt.namespaced:
            continue
        for live in t.kube.list(rt, t.plan.namespace, selector(t.plan)):
            if not _owned(live, t.plan):
                continue
            if live.get("metadata", {}).get("deletionTimestamp"):
                if terminating is not None:
                    terminating.append(live)
                continue
            if ident(live) not in wanted:
                out.append(Change("delete", live, rt))
    return out


def _owned(obj: dict[str, Any], plan: Plan) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in ownership(plan).items())


def show(t: Target, changes: list[Change], prune: bool = True) -> tuple[int, int, int]:
    """Print the plan; return (add, change, delete)."""
    add = chg = rm = 0
    for c in changes:
        if c.action == "skip":
            click.echo(f"= keep {describe(c.obj)}: {c.notes[0]}")
            continue
        if c.action == "unchanged" and not c.conflicts:
            continue
        if c.action == "delete":
            protected = " (protected: needs --allow-delete-endpoints)" if kind_of(c.obj).protected else ""
            tail = "" if prune else " (apply removes it only with --prune)"
            click.echo(f"- delete {describe(c.obj)}{protected}{tail}")
            rm += prune
            continue
        sign = {"create": "+", "update": "~", "unchanged": "="}[c.action]
        click.echo(f"{sign} {c.action} {describe(c.obj)}")
        for line in fdiff.render(c.diff):
            click.echo(line)
        for n in c.notes:
            click.echo(f"      note: {n}")
        for cf in c.conflicts:
            click.echo(f"      ! conflict {cf.field}: {cf.manager}")
        add += c.action == "create"
        chg += c.action == "update"
    unvalidated = sum(not c.validated for c in changes)
    if unvalidated:
        click.echo(f"note: namespace {t.plan.namespace} does not exist yet, so the server cannot validate the "
                   f"{unvalidated} objects inside it before it is created; apply creates it first, then validates "
                   "them all before writing any")
    click.echo(f"Plan: {add} to add, {chg} to change, {rm} to delete.")
    return add, chg, rm


def _header(verb: str, t: Target) -> None:
    click.echo(f"mlc {verb}: {t.plan.project}/{t.plan.env} -> {t.kube.host} (namespace {t.plan.namespace})")
    for n in t.notes:
        click.echo(f"note: {n}")


# -- commands ---------------------------------------------------------------------------------------------
def plan_command(path: str, env: str, kubeconfig: str | None, context: str | None) -> int:
    t = load(path, env, kubeconfig, context)
    try:
        _header("plan", t)
        add, chg, rm = show(t, compute(t))
    finally:
        t.kube.close()
    return CHANGES if add or chg or rm else NO_CHANGES


def apply_command(path: str, env: str, kubeconfig: str | None, context: str | None, *, dry_run: bool = False,
                  prune: bool = False, yes: bool = False, force_conflicts: bool = False,
                  allow_delete_endpoints: bool = False) -> int:
    t = load(path, env, kubeconfig, context)
    try:
        return _apply(t, dry_run, prune, yes, force_conflicts, allow_delete_endpoints)
    finally:
        t.kube.close()


def _apply(t: Target, dry_run: bool, prune: bool, yes: bool, force: bool, allow: bool) -> int:
    _header("apply --dry-run" if dry_run else "apply", t)
    changes = compute(t, force=force)
    add, chg, _ = show(t, changes, prune)
    deletes = [c for c in changes if c.action == "delete"] if prune else []
    writes = [c for c in changes if c.action in ("create", "update")]
    if not writes and not deletes:
        click.echo("No changes.")
        return 0
    conflicted = [c for c in changes if c.conflicts and c.action != "unchanged"] if not force else []
    if conflicted:
        raise ApplyError(_conflict_message(conflicted))
    protected = [c for c in deletes if kind_of(c.obj).protected]
    if protected and not allow:
        raise ApplyError("refusing to delete protected objects (" + ", ".join(describe(c.obj) for c in protected)
                         + "); pass --allow-delete-endpoints to delete them; nothing was changed")
    if dry_run:
        click.echo("Dry run: nothing was changed.")
        return 0
    confirm(yes, f"Apply these changes to {t.kube.host}?")
    if not t.namespace_exists:
        _create_namespace_then_validate(t, writes, force)
    done = 0
    try:
        for c in writes:
            t.kube.apply(c.rt, c.obj, force=force)
            click.echo(f"applied {describe(c.obj)}")
            done += 1
        pending = []
        for o in delete_order([c.obj for c in deletes]):
            rt = t.kube.type_of(o["apiVersion"], o["kind"])
            if t.kube.delete(rt, o["metadata"].get("namespace"), o["metadata"]["name"]):
                click.echo(f"deleting {describe(o)}")
                pending.append((rt, o))
            done += 1
        stuck = _wait_gone(t.kube, pending, PRUNE_TIMEOUT_S, 0.5)  # report a prune only once it is true
    except ClusterError as e:  # e.g. the connection dropped: say exactly how far it got
        total = len(writes) + len(deletes)
        raise ApplyError(f"{e}; {done} of {total} changes were made before this, the rest were not; "
                         "`mlc apply` again finishes the job (applying is idempotent)") from None
    if stuck:
        raise ApplyError(_terminating_message(stuck, PRUNE_TIMEOUT_S))
    click.echo(f"Apply complete: {add} added, {chg} changed, {len(deletes)} deleted.")
    return 0


def _create_namespace_then_validate(t: Target, writes: list[Change], force: bool) -> None:
    """Write the Namespace (the server cannot validate anything inside it before), then dry-run the rest."""
    first = [c for c in writes if not c.rt.namespaced]
    if not any(c.obj["kind"] == "Namespace" for c in first):
        raise ApplyError(f"namespace {t.plan.namespace} does not exist and this project does not create it; "
                         "create it first")
    for c in first:
        t.kube.apply(c.rt, c.obj, force=force)
        click.echo(f"applied {describe(c.obj)}")
        writes.remove(c)
    t.namespace_exists = True
    try:
        for c in writes:
            t.kube.apply(c.rt, c.obj, dry_run=True, force=force)
    except ApplyError as e:
        raise ApplyError(f"{e} (namespace {t.plan.namespace} was created; nothing else was written)") from None


def _conflict_message(conflicted: list[Change]) -> str:
    lines = ["fields are owned by another field manager with different values; nothing was changed:"]
    for c in conflicted:
        for cf in c.conflicts:
            lines.append(f"  {describe(c.obj)}: {cf.field} ({cf.manager})")
    lines.append("pass --force-conflicts to take these fields over, or change the spec to agree with the live values")
    return "\n".join(lines)


def confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ApplyError("refusing to change the cluster without confirmation: stdin is not a terminal; "
                         "pass --yes")
    if not click.confirm(question, default=False):
        raise ApplyError("cancelled; nothing was changed")


def delete_command(path: str, env: str, kubeconfig: str | None, context: str | None, *, yes: bool = False,
                   allow_delete_endpoints: bool = False, wait: bool = True, timeout: float = 120.0,
                   poll: float = 0.5) -> int:
    """Delete (foreground propagation) and, like ``kubectl delete``, wait until each object is gone.

    With ``wait`` (the default) it returns 0 only when every object is really gone; after ``timeout`` seconds
    it names each object still terminating, with its finalizers and how long it has been terminating, and
    returns 1. Without ``wait`` it returns 0 once the server accepted every deletion."""
    t = load(path, env, kubeconfig, context, compile_=False)
    try:
        _header("delete", t)
        terminating: list[dict[str, Any]] = []  # deleted before: not again, but waited for (as kubectl does)
        found = [c.obj for c in orphans(t, terminating)]  # nothing is desired, so everything owned is listed
        ns_rt = t.kube.type_of("v1", "Namespace")
        ns = t.kube.get(ns_rt, None, t.plan.namespace) if t.namespace_readable else None
        if ns is not None and _owned(ns, t.plan):
            ns = {**ns, "apiVersion": "v1", "kind": "Namespace"}
            (terminating if ns["metadata"].get("deletionTimestamp") else found).append(ns)
        if not found and not terminating:
            click.echo("Nothing to delete.")
            return 0
        kept = [o for o in found if kind_of(o).protected and not allow_delete_endpoints]
        doomed = [o for o in found if o not in kept]
        for o in delete_order(doomed):
            click.echo(f"- delete {describe(o)}")
        for o in kept:
            click.echo(f"  keep {describe(o)} (protected: pass --allow-delete-endpoints to delete it)")
        if doomed:
            confirm(yes, f"Delete {len(doomed)} object(s) from {t.kube.host}?")
        pending = []
        for o in terminating:
            click.echo(f"  already terminating {describe(o)}")
            pending.append((t.kube.type_of(o["apiVersion"], o["kind"]), o))
        for o in delete_order(doomed):
            rt = t.kube.type_of(o["apiVersion"], o["kind"])
            if t.kube.delete(rt, o["metadata"].get("namespace"), o["metadata"]["name"]):
                click.echo(f"deleting {describe(o)}")
                pending.append((rt, o))
            else:
                click.echo(f"deleted {describe(o)} (it was already gone)")
        if not wait:
            click.echo(f"Deletion requested for {len(pending)}, kept {len(kept)} protected; not waiting "
                       "(--wait=false).")
            return 0
        stuck = _wait_gone(t.kube, pending, timeout, poll)
        if stuck:
            raise ApplyError(_terminating_message(stuck, timeout))
        click.echo(f"Deleted {len(doomed)}, kept {len(kept)} protected.")
        return 0
    finally:
        t.kube.close()


def _wait_gone(kube: Kube, pending: list[tuple[ResourceType, dict[str, Any]]], timeout: float,
               poll: float) -> list[dict[str, Any]]:
    """Poll until every object is gone (404, or replaced by a new object with another uid); return the live
    state of those still there when ``timeout`` runs out."""
    if pending:
        click.echo(f"waiting up to {_duration(timeout)} for {len(pending)} object(s) to be gone")
    deadline = time.monotonic() + timeout
    left = list(pending)
    live: dict[int, dict[str, Any]] = {}
    while True:
        still = []
        for rt, o in left:
            md = o["metadata"]
            now = kube.get(rt, md.get("namespace"), md["name"])
            if now is None or (md.get("uid") and now["metadata"].get("uid") != md.get("uid")):
                click.echo(f"deleted {describe(o)}")
            else:
                live[id(o)] = {**now, "apiVersion": o["apiVersion"], "kind": o["kind"]}
                still.append((rt, o))
        left = still
        if not left or time.monotonic() >= deadline:
            return [live[id(o)] for _, o in left]
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def _terminating_message(stuck: list[dict[str, Any]], timeout: float) -> str:
    lines = [(f"timed out after {_duration(timeout)} waiting for {len(stuck)} object(s) to be deleted; "
              "they are still terminating:")]
    for o in stuck:
        md = o["metadata"]
        why = [f"deletionTimestamp {md['deletionTimestamp']}" if md.get("deletionTimestamp")
               else "no deletionTimestamp yet"]
        fin = md.get("finalizers") or []
        if o["kind"] == "Namespace":
            fin = fin + [f"spec.finalizers {f}" for f in (o.get("spec") or {}).get("finalizers") or []]
            why += [f"{c['type']}: {c.get('message', '')}" for c in (o.get("status") or {}).get("conditions") or []
                    if c.get("status") == "True"]
        if fin:
            why.insert(1, "finalizers " + ", ".join(fin))
        lines.append(f"  {describe(o)}: " + "; ".join(why))
    if any("foregroundDeletion" in (o["metadata"].get("finalizers") or []) for o in stuck):
        lines.append("foregroundDeletion is removed by the garbage collector once the object's dependents are "
                     "gone: check that kube-controller-manager runs; or wait longer (--timeout)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s}s" if m else f"{s}s"


def submit_command(path: str, env: str, kubeconfig: str | None, context: str | None, *, pipeline: str = "train",
                   watch: bool = False, interval: float = 5.0) -> int:
    t = load(path, env, kubeconfig, context, compile_=False, extra_api_versions=frozenset({ARGO}),
             argo_for="mlc submit")
    try:
        p = t.plan.pipeline(pipeline)
        if p is None:
            raise ApplyError(f"{t.plan.project}/{t.plan.env} has no {pipeline} pipeline")
        tmpl_rt = t.kube.type_of(ARGO, "WorkflowTemplate")
        if not t.namespace_exists or t.kube.get(tmpl_rt, t.plan.namespace, p.name) is None:
            raise ApplyError(f"WorkflowTemplate {t.plan.namespace}/{p.name} is not on the cluster; "
                             f"run `mlc apply {path} --env {env}` first")
        wf_rt = t.kube.type_of(ARGO, "Workflow")
        wf = {"apiVersion": ARGO, "kind": "Workflow",
              "metadata": {"generateName": f"{p.name}-", "namespace": t.plan.namespace,
                           "labels": {PROJECT_LABEL: t.plan.project, ENV_LABEL: t.plan.env}},
              "spec": {"workflowTemplateRef": {"name": p.name}}}
        created = t.kube.create(wf_rt, t.plan.namespace, wf)
        name = created["metadata"]["name"]
        click.echo(name)
        if not watch:
            return 0
        return _watch(t.kube, wf_rt, t.plan.namespace, name, interval)
    finally:
        t.kube.close()


def _watch(kube: Kube, rt: ResourceType, namespace: str, name: str, interval: float) -> int:
    last = None
    while True:
        wf = kube.get(rt, namespace, name)
        if wf is None:
            raise ApplyError(f"Workflow {namespace}/{name} disappeared while watching it")
        status = wf.get("status") or {}
        phase = status.get("phase") or "Pending"
        if phase != last:
            msg = f": {status['message']}" if status.get("message") and phase in TERMINAL_PHASES else ""
            click.echo(f"{name}: {phase}{msg}")
            last = phase
        if phase in TERMINAL_PHASES:
            return TERMINAL_PHASES[phase]
        time.sleep(interval)


def parse_duration(text: str) -> float:
    """kubectl's durations: ``90s``, ``5m``, ``1m30s``, ``1h``, or plain seconds."""
    import re

    from mlc.errors import UsageError

    t = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", t)
    if not parts or "".join(n + u for n, u in parts) != t:
        raise UsageError(f"--timeout: invalid duration {text!r} (use e.g. 90s, 5m, 1m30s)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)
