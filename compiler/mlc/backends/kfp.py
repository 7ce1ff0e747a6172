"""Stage 3 backend: Plan -> Kubeflow Pipelines v2 IR, via the kfp SDK (and kfp-kubernetes).

Each step becomes a container component built from data: a generated function with the step's signature,
passed through ``dsl.container_component``, called inside a generated ``@dsl.pipeline`` function, so the SDK's
own DSL checks the graph. The pods follow the same contract as Argo and ``mlc run``: the spec ConfigMap mounted
at /etc/mlc, storage credentials as Secret references, artifacts under the storage root; the run id is the KFP
pipeline job's uuid, so every step of one run shares a directory.

Differences from Argo, because KFP v2 has no field for them: the ServiceAccount is chosen when a run is
submitted; there is no manual-approval suspend (the register step still waits for `mlc step gate`); Secrets
listed without a key are mounted as files under /var/run/secrets/mlc/<secret> (KFP has no envFrom).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import shlex
from collections.abc import Iterator
from typing import Any

from mlc.backends import Output
from mlc.plan import OUTPUTS_DIR, SPEC_MOUNT_DIR, Pipeline, Plan, Step

SECRETS_DIR = "/var/run/secrets/mlc"
RUN_INPUT = "run"  # not "run_id": train steps have an output parameter of that name


def build(plan: Plan) -> list[Output]:
    return [Output(f"kfp/pipeline-{p.name}.yaml", text=compile_pipeline(plan, p), resource=False)
            for p in plan.pipelines]


def _pod_config(plan: Plan, task: Any) -> dict[str, Any]:
    """The kfp-kubernetes settings every step of the plan shares, built once on ``task`` through the public
    kfp.kubernetes API; further tasks get a copy (each call of that API re-parses the whole config)."""
    from kfp import kubernetes

    by_secret: dict[str, dict[str, str]] = {}
    for v in plan.pod_env:
        if v.secret and v.secret_key:
            by_secret.setdefault(v.secret, {})[v.secret_key] = v.name
    for secret, keys in by_secret.items():
        kubernetes.use_secret_as_env(task, secret, keys)
    for secret in plan.pod_env_secrets:  # KFP v2 has no envFrom: whole Secrets are mounted as files
        kubernetes.use_secret_as_volume(task, secret, f"{SECRETS_DIR}/{secret}")
    kubernetes.use_config_map_as_volume(task, plan.spec_configmap, SPEC_MOUNT_DIR)
    if not plan.storage.is_s3 and plan.storage.volume_claim:
        kubernetes.mount_pvc(task, plan.storage.volume_claim, plan.storage.root)
    for k, v in plan.labels.items():
        kubernetes.add_pod_label(task, k, v)
    return task.platform_config


def _copied(obj: Any) -> Any:
    """A deep copy of JSON-like data (what kfp-kubernetes keeps in ``platform_config``), without deepcopy's
    memo and dispatch."""
    if isinstance(obj, dict):
        return {k: _copied(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copied(v) for v in obj]
    return obj


def _command(env: str, step: Step, run: Any, paths: list[Any]) -> list[Any]:
    """`mlc step ...`; with output parameters, wrapped in sh to copy $MLC_OUTPUTS_DIR/<name> to KFP's paths.

    Runtime values are passed as positional arguments ("$1", "$2", ...), never spliced into the script."""
    cmd: list[Any] = step.command(env, "\0")
    if not paths:
        return [run if c == "\0" else c for c in cmd]
    script = " ".join('"$1"' if c == "\0" else shlex.quote(c) for c in cmd)
    copies = [f'cp "$MLC_OUTPUTS_DIR/{o}" "${i + 2}"' for i, o in enumerate(step.outputs)]
    return ["sh", "-ec", "; ".join([script, *copies]), "sh", run, *paths]


def component(plan: Plan, step: Step) -> Any:
    """The step's container component. Built once per (image, environment, step) in a process: the component
    reads nothing else of the plan, and many projects compiled together share their steps' components."""
    return _component(plan.image, plan.env, step)


@functools.lru_cache(maxsize=1024)
def _component(image: str, env: str, step: Step) -> Any:
    from kfp import dsl

    p = inspect.Parameter
    params = [p(RUN_INPUT, p.POSITIONAL_OR_KEYWORD, annotation=str)]
    params += [p(o, p.POSITIONAL_OR_KEYWORD, annotation=dsl.OutputPath(str)) for o in step.outputs]

    def fn(run: Any, *paths: Any) -> Any:
        return dsl.ContainerSpec(image=image, command=_command(env, step, run, list(paths)))

    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__name__ = fn.__qualname__ = step.name.replace("-", "_")
    fn.__doc__ = None
    return dsl.container_component(fn)


def _configure(task: Any, plan: Plan, step: Step) -> None:
    task.set_display_name(step.name)
    r = step.resources
    if r.cpu:
        task.set_cpu_request(r.cpu)
    if r.memory:
        task.set_memory_request(r.memory)
        task.set_memory_limit(r.memory)
    if r.gpu:
        task.set_accelerator_type("nvidia.com/gpu")
        task.set_accelerator_limit(r.gpu)
    if step.retries:
        task.set_retry(num_retries=step.retries, backoff_duration="30s", backoff_factor=2,
                       backoff_max_duration="600s")
    task.set_caching_options(step.cacheable)
    task.set_env_variable("MLC_OUTPUTS_DIR", OUTPUTS_DIR)
    for v in plan.pod_env:
        if v.value is not None:
            task.set_env_variable(v.name, v.value)


def pipeline_func(plan: Plan, pipeline: Pipeline) -> Any:
    """The generated ``@dsl.pipeline`` function (a kfp GraphComponent)."""
    from kfp import dsl

    comps = {s.name: component(plan, s) for s in pipeline.steps}

    @dsl.pipeline(name=pipeline.name, description=pipeline.description or None)
    def generated():  # type: ignore[no-untyped-def]  # kfp reads a return annotation as outputs
        tasks: dict[str, Any] = {}
        shared: dict[str, Any] | None = None
        for s in pipeline.steps:  # the plan's order is topological
            t = comps[s.name](run=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            _configure(t, plan, s)
            if shared is None:
                shared = _copied(_pod_config(plan, t))
            else:
                t.platform_config = _copied(shared)
            for d in s.depends:
                t.after(tasks[d])
            tasks[s.name] = t

    return generated


def compile_pipeline(plan: Plan, pipeline: Pipeline) -> str:
    """The text `kfp.compiler.Compiler().compile()` writes for this pipeline, byte for byte (a test holds us to
    it), serialised here with libyaml instead of through a file and the pure-Python emitter."""
    from google.protobuf import json_format
    from kfp.compiler import pipeline_spec_builder as builder

    from mlc.emit import yaml_documents

    with _cheap_container_check():
        func = pipeline_func(plan, pipeline)
    spec = json_format.MessageToDict(func.pipeline_spec)
    docs = [spec]
    if len(func.platform_spec.platforms) > 0:
        docs.append(json_format.MessageToDict(func.platform_spec))
    comments = builder.extract_comments_from_pipeline_spec(spec, func.description)
    return comments + yaml_documents(docs, sort_keys=True, allow_unicode=False)


def compile_with_kfp(plan: Plan, pipeline: Pipeline) -> str:
    """The reference route, through kfp's Compiler and a file; used by tests to check compile_pipeline."""
    import os
    import tempfile

    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="mlc-kfp-") as tmp:
        path = os.path.join(tmp, "pipeline.yaml")
        compiler.Compiler().compile(pipeline_func(plan, pipeline), path)
        with open(path, encoding="utf-8") as f:
            return f.read()


@contextlib.contextmanager
def _cheap_container_check() -> Iterator[None]:
    """kfp's PipelineTask checks that a task has a container with ``inspect.stack()`` (only to name the caller
    in its error message) on every set_*_request/set_env_variable call, which is most of the build time. Swap in
    the same check without the stack walk while we build, and put kfp's back afterwards."""
    from kfp.dsl import pipeline_task

    cls = pipeline_task.PipelineTask
    original = cls.__dict__.get("_ensure_container_spec_exists")
    if original is None:  # a kfp without the hook: nothing to speed up
        yield
        return

    def check(self: Any) -> None:
        if self.container_spec is None:
            original(self)

    cls._ensure_container_spec_exists = check  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls._ensure_container_spec_exists = original  # type: ignore[method-assign]
