"""register and deploy: put the winner in the MLflow registry with its lineage and model card, move the
aliases, and (on a cluster) roll the InferenceService so it loads the new production version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlc.errors import RunError
from mlc.plan import Step
from mlc.runtime import artifacts as A
from mlc.runtime import tracking
from mlc.runtime.context import StepContext, StepResult
from mlc.runtime.evaluate import METRICS

CONTENT_TAG = "mlc.content_hash"


def reference_dir(ctx: StepContext) -> str:
    """Where register points drift at the training data of the current production model."""
    return f"{ctx.storage_root.rstrip('/')}/models/{ctx.plan.model_name}/reference"


def point_drift_at(ctx: StepContext, run_id: str, version: str) -> None:
    """Drift compares with the training data of the production version: register calls this when it promotes,
    the rollout when it does."""
    A.write_json(f"{reference_dir(ctx)}/latest.json",  # "train" relative to the root, which may move
                 {"run_id": run_id, "version": version, "train": f"runs/{run_id}/features/train.parquet"},
                 ctx.storage_options)


def _version_for_run(ctx: StepContext, run_id: str) -> Any:
    c = tracking.client(ctx)
    found = c.search_model_versions(f"name='{ctx.plan.model_name}' and run_id='{run_id}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def register_model(ctx: StepContext, run_id: str, model_uri: str, tags: dict[str, str]) -> tuple[Any, bool]:
    """The version of this MLflow run, registering it only if it is not one already (a retried register step
    must not create a second version)."""
    import mlflow

    existing = _version_for_run(ctx, run_id)
    if existing is not None:
        return existing, False
    tracking.client(ctx)
    mv = mlflow.register_model(model_uri, ctx.plan.model_name, tags=tags)
    return mv, True


def content_hash(ctx: StepContext, ev: dict, winner: str, manifest: dict) -> str:
    """What a registered version holds, whoever trained it and wherever: sha256 over the serialised fitted
    pipeline (the winner's model.pkl, byte-stable for a seeded fit with the same libraries), the training data's
    fingerprint, the candidate's definition (estimator, framework, params, grid) and the spec sections that
    shape the pipeline's input (features, label, input columns). Stored as the version's ``mlc.content_hash``
    tag; registering content that the current version already holds is a no-op."""
    import hashlib
    import json

    from mlc.runtime.train import MODEL

    spec = ctx.plan.spec
    cand = next((c for c in spec.training.candidates if c.name == winner), None)
    material = {
        "model": A.sha256(f"{ctx.step_dir(ev['candidates'][winner]['step'])}/{MODEL}", ctx.storage_options),
        "data": manifest["fingerprint"],
        "candidate": cand.model_dump(mode="json", by_alias=True) if cand else winner,
        "features": [f.model_dump(mode="json", by_alias=True) for f in spec.features],
        "label": spec.data.label.model_dump(mode="json", by_alias=True),
        "inputs": [c.name for c in ctx.plan.inputs],
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def current_version(ctx: StepContext) -> Any:
    """The version a new one would follow: the one holding the candidate alias, else the latest one."""
    from mlflow.exceptions import MlflowException

    reg = ctx.plan.spec.registry
    c = tracking.client(ctx)
    try:
        return c.get_model_version_by_alias(reg.model, reg.candidate_alias)
    except MlflowException:
        pass
    try:
        found = c.search_model_versions(f"name='{reg.model}'")
    except MlflowException:
        return None
    return max(found, key=lambda v: int(v.version)) if found else None


def render_card(context: dict) -> str:
    import jinja2

    from mlc.resources import template_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir("model_card.md.j2").parent)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["num"] = lambda v: "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    try:
        tmpl = env.get_template("model_card.md.j2")
    except jinja2.TemplateNotFound as e:
        raise RunError(f"model card template not found: {e}") from e
    return tmpl.render(**context)


def card_context(ctx: StepContext, version: str, ev: dict, gate: dict, lineage: dict, aliases: list[str]) -> dict:
    spec = ctx.plan.spec
    manifest = A.read_json(f"{ctx.step_dir('ingest')}/manifest.json", ctx.storage_options)
    split = A.read_json(f"{ctx.step_dir('features')}/split.json", ctx.storage_options)
    return {"spec": spec, "plan": ctx.plan, "version": version, "aliases": aliases, "evaluation": ev,
            "winner": ev["winner"], "metrics": ev["candidates"][ev["winner"]]["metrics"],
            "slices": ev["candidates"][ev["winner"]]["slices"], "gate": gate, "lineage": lineage,
            "manifest": manifest, "split": split, "run_id": ctx.run_id}


def register(ctx: StepContext, step: Step) -> StepResult:
    reg = ctx.plan.spec.registry
    ev = A.read_json(f"{ctx.step_dir('evaluate')}/{METRICS}", ctx.storage_options)
    gate = A.read_json(f"{ctx.step_dir('gate')}/report.json", ctx.storage_options)
    manifest = A.read_json(f"{ctx.step_dir('ingest')}/manifest.json", ctx.storage_options)
    winner = ev["winner"]
    run_id = ev["candidates"][winner]["mlflow_run_id"]
    lineage = {"mlc.data_fingerprint": manifest["fingerprint"], "mlc.spec_hash": ctx.plan.spec_hash,
               "mlc.run_id": ctx.run_id, "mlc.candidate": winner, "mlc.project": ctx.plan.project}
    commit = tracking.git_commit(ctx.project_dir) if ctx.local else tracking.git_commit(Path("."))
    if commit:
        lineage["mlc.git_commit"] = commit
    split = A.read_json(f"{ctx.step_dir('features')}/split.json", ctx.storage_options)
    if split.get("positive_class") is not None:
        lineage[tracking.POSITIVE_TAG] = str(split["positive_class"])
        lineage[tracking.NEGATIVE_TAG] = str(split["negative_class"])
    lineage[CONTENT_TAG] = content_hash(ctx, ev, winner, manifest)
    current = current_version(ctx)
    unchanged = current is not None and (current.tags or {}).get(CONTENT_TAG) == lineage[CONTENT_TAG]
    c = tracking.client(ctx)
    if unchanged:  # the same content again (a copied project, --no-cache, a rerun of identical training)
        mv, created = current, False
    else:
        mv, created = register_model(ctx, run_id, ev["candidates"][winner]["model_uri"], lineage)
        for k, v in lineage.items():
            c.set_model_version_tag(reg.model, str(mv.version), k, v)
    version = str(mv.version)
    c.set_registered_model_alias(reg.model, reg.candidate_alias, version)
    aliases = [reg.candidate_alias]
    from mlc.runtime.gates import approval_state

    # approval is read again: `MLC_APPROVED=1 mlc run --from register` approves what the gate left pending
    promote = gate["passed"] and (gate["approval"] != "pending" or approval_state(ctx) == "approved")
    stable = None
    if promote and ctx.plan.rollout is not None:  # after the first version, the rollout moves production
        current = tracking.champion(ctx)
        if current is not None and str(current.version) != version:
            promote, stable = False, str(current.version)
    if promote:
        c.set_registered_model_alias(reg.model, reg.production_alias, version)
        aliases.append(reg.production_alias)
        point_drift_at(ctx, ctx.run_id, version)
    card = render_card(card_context(ctx, version, ev, gate, lineage, aliases))
    out = ctx.out_dir(step.name)
    A.write_text(f"{out}/model_card.md", card, ctx.storage_options)
    A.write_json(f"{out}/registered.json", {"model": reg.model, "version": version, "created": created,
                                            "unchanged": unchanged, "aliases": aliases, "lineage": lineage,
                                            "rollout_from": stable},
                 ctx.storage_options)
    c.log_text(run_id, card, "model_card.md")
    parent = tracking.parent_run(ctx)
    c.log_text(parent, card, "model_card.md")
    c.set_tag(parent, "mlc.registered_version", version)
    tracking.end_run(ctx, parent)
    _export(ctx, out, version, aliases)
    if promote:
        state = f"{reg.production_alias} -> v{version}"
    elif stable is not None:
        state = f"{reg.production_alias} stays v{stable} until the rollout of v{version} promotes it"
    else:
        state = f"{reg.production_alias} not moved (approval pending: set MLC_APPROVED=1 and rerun --from register)"
    what = (f"model unchanged: {reg.model} v{version} already holds this content" if unchanged
            else f"{reg.model} v{version} ({'new' if created else 'existing'})")
    return StepResult(outputs={"version": version, "promoted": str(promote).lower()},
                      metrics={"version": version},
                      message=f"{what}; {reg.candidate_alias} -> v{version}; {state}")


def deploy(ctx: StepContext, step: Step) -> StepResult:
    """Put the version register chose on the endpoint: a new version with a rollout (and a production version
    to compare it with) starts the ``<project>-rollout`` workflow at the first step's weight; otherwise the
    production version is pinned and takes all traffic. Either way the revision serves one exact version."""
    endpoint = ctx.plan.endpoint
    if endpoint is None:
        return StepResult(message="no online deployment in the spec")
    registered = f"{ctx.step_dir('register')}/registered.json"
    # without this run's register (`mlc step deploy` alone): deploy what production holds, no rollout
    reg = A.read_json(registered, ctx.storage_options) if A.exists(registered, ctx.storage_options) else {}
    stable = reg.get("rollout_from")
    version = tracking.champion(ctx)
    target = reg["version"] if stable else (str(version.version) if version is not None else None)
    exported = ""
    if target is not None and endpoint.runtime != "mlc":
        exported = f"; model files exported to {export_model(ctx, target)}"
    if ctx.local:
        if stable:
            return StepResult(message=f"local: v{target} awaits its rollout: serve both with `mlc serve "
                                      f"{ctx.project_dir} --canary`, then `mlc rollout start {ctx.project_dir}`")
        v = f" (production v{target})" if target is not None else ""
        return StepResult(message=f"local: serve it with `mlc serve {ctx.project_dir}`{v}{exported}")
    if target is None:
        raise RunError(f"no version of {ctx.plan.model_name} holds the alias '{endpoint.alias}'; nothing to deploy")
    from mlc.rollout import cluster
    from mlc.runtime.rollout_steps import kube

    k = kube()
    where = f"InferenceService {ctx.plan.namespace}/{endpoint.name}"
    if stable:
        assert ctx.plan.rollout is not None
        wf = cluster.begin(k, ctx.plan, target, stable)
        return StepResult(outputs={"version": target},
                          message=f"{where}: v{target} takes {ctx.plan.rollout.steps[0].weight}% beside v{stable}; "
                                  f"rollout {wf} started{exported}")
    cluster.pin(k, ctx.plan, target)
    return StepResult(outputs={"version": target}, message=f"{where} serves v{target}{exported}")


def export_model(ctx: StepContext, version: str) -> str:
    """Copy a version's MLflow model files to ``<storage root>/models/<model>/v<version>`` (the storageUri the
    deploy step pins for KServe's built-in runtimes, mlflow and sklearn, which cannot read the MLflow registry
    themselves) and, for the production version, to ``.../<alias>`` (the compiled storageUri)."""
    import tempfile

    import mlflow

    endpoint = ctx.plan.endpoint
    assert endpoint is not None
    root = f"{ctx.storage_root.rstrip('/')}/models/{endpoint.model}"
    champion = tracking.champion(ctx)
    dsts = [f"{root}/v{version}"] + ([f"{root}/{endpoint.alias}"] if champion is not None
                                     and str(champion.version) == version else [])
    tracking.client(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(f"models:/{endpoint.model}/{version}", dst_path=tmp)
        for dst in dsts:
            fs, path = A.filesystem(dst, ctx.storage_options)
            if fs.exists(path):
                fs.rm(path, recursive=True)
            fs.put(local.rstrip("/") + "/", path, recursive=True)
            A.write_text(f"{dst}/MLC_VERSION", f"{version}\n", ctx.storage_options)
    return dsts[-1]


def _export(ctx: StepContext, out: str, version: str, aliases: list[str]) -> None:
    """The end of a successful train and where the aliases point, for the dashboard's pipeline row: the
    alias gauges over time are the alias history."""
    import time

    from mlc.plan import metrics as M
    from mlc.runtime.monitor import export_gauges

    def fill(registry: Any) -> None:
        from prometheus_client import Gauge

        Gauge(M.TRAIN_LAST_SUCCESS, "Unix time the last training run registered its model", [M.MODEL_LABEL],
              registry=registry).labels(ctx.plan.model_name).set(time.time())
        g = Gauge(M.MODEL_ALIAS_VERSION, "The registered model version an alias points to",
                  [M.MODEL_LABEL, "alias"], registry=registry)
        for a in aliases:
            g.labels(ctx.plan.model_name, a).set(int(version))

    export_gauges(ctx, out, "register", fill)
