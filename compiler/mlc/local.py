"""The local executor: `mlc run` runs one pipeline of the Plan in this process with a step cache; `mlc step` runs
one step the way a container on a cluster does. Both call the same runtime (`mlc.runtime.steps.execute`) with
the same artifact layout (``<root>/runs/<run-id>/<step>/``) and the same run-id contract.

The step cache (``<project>/.mlc/cache/``) is keyed by what a step reads: the spec sections in SPEC_INPUTS, the
source files' content, the keys of its upstream steps, the tracking store, the storage root and the mlc code
version. Nothing in a key is an absolute path inside the project (``StepCache.where``): a copied or moved
project, ``.mlc`` included, keeps every hit, and its MLflow store follows it (``runtime/localstore.py``). A hit
hard-links the step's published directory from the earlier run into the new one, so ``ctx.step_dir(upstream)``
keeps working and the earlier result feeds the summary. Only a published step (``_SUCCESS``) is ever a hit.
The all-hit path imports nothing heavy: the runtime, and with it pandas, sklearn, torch and mlflow, is imported
only when a step really runs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlc.errors import MlcError, RunError, UsageError
from mlc.plan import Pipeline, Plan, Step
from mlc.runstate import StepState
from mlc.runtime.context import SUCCESS, StepContext, StepResult, make_context

# What each step kind reads from the spec. Upstream keys are chained into every key, so a step lists only the
# sections it reads itself; "candidate" is the step's own entry of training.candidates. A kind missing here
# reads the whole spec (safe, never stale). Monitoring and batch steps read live data and the registry: they
# always run.
SPEC_INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": ("data.sources", "data.schema"),
    "validate-data": ("data.schema", "data.checks", "data.label", "data.entity"),
    "features": ("data", "features"),
    "train": ("data.label", "features", "candidate", "training.seed", "training.metrics", "training.select_by",
              "training.cv_folds", "training.experiment"),
    "evaluate": ("data.label", "training.metrics", "training.select_by", "gates.slices"),
    "gate": ("gates", "registry", "training.select_by"),
    "register": ("registry", "metadata", "gates.manual_approval"),
    "deploy": ("deployment", "registry"),
}
CODE_PARTS = ("runtime", "spec", "plan", "errors.py", "__init__.py")  # what a step's result depends on
ALWAYS_RUN = frozenset({"drift", "quality", "batch-score"})
LIGHTNING_MODULES = ("torch", "pytorch_lightning")  # what the runtime imports for a Lightning candidate


# ----------------------------------------------------------------------------- graph
def topo_order(steps: Iterable[Step]) -> list[Step]:
    """Dependency order; among ready steps the plan's own order wins, so the order is stable."""
    pending = list(steps)
    names = {s.name for s in pending}
    done: set[str] = set()
    out: list[Step] = []
    while pending:
        ready = next((s for s in pending if all(d in done or d not in names for d in s.depends)), None)
        if ready is None:
            raise RunError("the pipeline has a dependency cycle: " + ", ".join(s.name for s in pending))
        pending.remove(ready)
        done.add(ready.name)
        out.append(ready)
    return out


def upstream(steps: Iterable[Step], name: str) -> set[str]:
    by = {s.name: s for s in steps}
    seen: set[str] = set()
    todo = list(by[name].depends)
    while todo:
        n = todo.pop()
        if n in by and n not in seen:
            seen.add(n)
            todo.extend(by[n].depends)
    return seen


def downstream(steps: Iterable[Step], name: str) -> set[str]:
    steps = list(steps)
    return {s.name for s in steps if name in upstream(steps, s.name)}


# ----------------------------------------------------------------------------- cache keys
def spec_inputs(spec_tree: dict[str, Any], step: Step) -> dict[str, Any]:
    """The spec sections ``step`` reads, by dotted path (the whole spec for a kind not in SPEC_INPUTS)."""
    paths = SPEC_INPUTS.get(step.kind)
    if paths is None:
        return {"": spec_tree}
    out: dict[str, Any] = {}
    for p in paths:
        if p == "candidate":
            out[p] = next((c for c in spec_tree["training"]["candidates"] if c["name"] == step.candidate), None)
            continue
        node: Any = spec_tree
        for part in p.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[p] = node
    return out


def step_key(step: Step, spec_tree: dict[str, Any], upstream_keys: dict[str, str], extra: dict[str, Any]) -> str:
    material = {"step": step.name, "kind": step.kind, "spec": spec_inputs(spec_tree, step),
                "upstream": upstream_keys, **extra}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _stat_sig(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def code_version(cache_dir: Path | None = None) -> str:
    """sha256 of the mlc code a step result can depend on (runtime, spec, plan, templates) plus the versions of
    the libraries that train; recomputed only when a file's mtime or size (or site-packages) changes. Backends,
    the CLI and serving are left out: editing them never changes what a step produces."""
    import mlc

    pkg = Path(mlc.__file__).resolve().parent
    from mlc.resources import template_dirs

    roots = [*(pkg / d for d in CODE_PARTS), *template_dirs()[:1]]
    # (name relative to its root, path): a wheel keeps templates outside the package, so no common parent
    named = sorted((f"{r.name}/{p.relative_to(r)}" if r.is_dir() else r.name, p) for r in roots
                   for p in ([r] if r.is_file() else r.rglob("*") if r.is_dir() else [])
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    files = [p for _, p in named]
    import sysconfig

    sig = _stat_sig([*files, Path(sysconfig.get_paths()["purelib"])])
    memo = cache_dir / "code-version.json" if cache_dir else None
    if memo and memo.exists():
        try:
            saved = json.loads(memo.read_text())
            if saved.get("sig") == sig:
                return str(saved["version"])
        except (OSError, ValueError, KeyError):
            pass
    from importlib import metadata

    h = hashlib.sha256(sys.version.encode())
    for name, p in named:
        h.update(name.encode() + b"\0" + p.read_bytes())
    for dist in ("scikit-learn", "pandas", "numpy", "mlflow", "torch", "pytorch-lightning"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none".encode())
    version = h.hexdigest()
    if memo:
        _write_atomic(memo, json.dumps({"sig": sig, "version": version}))
    return version


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class StepCache:
    """Cache entries are ``cache/steps/<key>.json`` -> the run that published the step under that key."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.dir = ctx.state_dir / "cache"
        self.enabled = "://" not in ctx.storage_root  # links need a local filesystem; s3 roots always run
        self._code: str | None = None
        self._fp_memo: dict[str, Any] | None = None
        self._tree: dict[str, Any] | None = None

    @property
    def spec_tree(self) -> dict[str, Any]:
        if self._tree is None:
            self._tree = self.ctx.plan.spec.model_dump(mode="json", by_alias=True)
        return self._tree

    def key(self, step: Step, upstream_keys: dict[str, str]) -> str:
        if self._code is None:
            self._code = code_version(self.dir)
        extra: dict[str, Any] = {"code": self._code, "tracking": self.where(self.ctx.tracking_uri),
                                 "root": self.where(self.ctx.storage_root), "env": self.ctx.plan.env}
        if step.kind == "ingest":
            extra["files"] = self.source_fingerprints()
        return step_key(step, self.spec_tree, upstream_keys, extra)

    def where(self, uri: str) -> str:
        """``uri`` as a key sees it: a place inside the project directory by its path relative to the project, so
        that a copied or moved project (``.mlc`` included) keeps its cache; anywhere else as it is."""
        scheme = next((p for p in ("sqlite:///", "file://") if uri.startswith(p)), "")
        path = uri[len(scheme):]
        if "://" in path or not os.path.isabs(path):  # s3://, http://, a relative sqlite path
            return uri
        try:
            rel = Path(path).resolve().relative_to(self.ctx.project_dir.resolve())
        except ValueError:
            return uri
        return f"{scheme}<project>/{rel.as_posix()}"

    def source_fingerprints(self) -> dict[str, str]:
        """Content hashes of the data sources (and DVC pointers), memoised by path, size and mtime."""
        out: dict[str, str] = {}
        data = self.ctx.plan.spec.data
        uris = [(s.name, s.uri) for s in data.sources]
        uris += [(f"{s.name}.dvc", s.pin.dvc) for s in data.sources if s.pin and s.pin.dvc]
        for name, uri in uris:
            out[name] = self._fingerprint(self.ctx.data_uri(uri))
        if self._fp_memo is not None:
            _write_atomic(self.dir / "fingerprints.json", json.dumps(self._fp_memo, sort_keys=True))
        return out

    def _fingerprint(self, uri: str) -> str:
        if "://" in uri and not uri.startswith("file://"):
            try:  # a remote object's identity (ETag, size, mtime) without downloading it
                from mlc.runtime.artifacts import filesystem

                fs, p = filesystem(uri, self.ctx.storage_options)
                info = fs.info(p)
                return json.dumps({k: info.get(k) for k in ("ETag", "etag", "size", "LastModified", "mtime")},
                                  sort_keys=True, default=str)
            except Exception:  # noqa: BLE001 - unknown identity: never a hit
                return secrets.token_hex(16)
        path = Path(uri.removeprefix("file://"))
        try:
            st = path.stat()
        except OSError:
            return "missing"
        if self._fp_memo is None:
            try:
                self._fp_memo = json.loads((self.dir / "fingerprints.json").read_text())
            except (OSError, ValueError):
                self._fp_memo = {}
        sig = f"{st.st_size}:{st.st_mtime_ns}"
        hit = self._fp_memo.get(str(path))
        if hit and hit[0] == sig:
            return str(hit[1])
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        self._fp_memo[str(path)] = [sig, h.hexdigest()]
        return h.hexdigest()

    def lookup(self, key: str, step: str) -> str | None:
        """The run holding a published copy of ``step`` under ``key``, if any."""
        if not self.enabled:
            return None
        try:
            entry = json.loads((self.dir / "steps" / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        run_id = entry.get("run_id")
        if entry.get("step") != step or not run_id:
            return None
        return run_id if (Path(self.ctx.step_dir(step, run_id)) / SUCCESS).exists() else None

    def record(self, key: str, step: str, run_id: str) -> None:
        if self.enabled:
            _write_atomic(self.dir / "steps" / f"{key}.json", json.dumps({"step": step, "run_id": run_id}))


def link_step(ctx: StepContext, step: str, from_run: str) -> None:
    """Make ``step`` of ``from_run`` part of this run: hard links (a copy across devices), renamed into place."""
    src = Path(ctx.step_dir(step, from_run)).resolve()
    dst = Path(ctx.step_dir(step))
    if dst.exists():
        return
    tmp = dst.with_name(f".{dst.name}.link-{secrets.token_hex(4)}")
    dst.parent.mkdir(parents=True, exist_ok=True)

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, tmp, symlinks=True, copy_function=link)
    os.replace(tmp, dst)


def read_result(ctx: StepContext, step: str, run_id: str | None = None) -> StepResult:
    try:
        raw = json.loads((Path(ctx.step_dir(step, run_id)) / "result.json").read_text())
    except (OSError, ValueError):
        return StepResult()
    return StepResult(outputs=dict(raw.get("outputs") or {}), metrics=dict(raw.get("metrics") or {}),
                      message=str(raw.get("message") or ""))


# ----------------------------------------------------------------------------- run
def new_run_id(project: str) -> str:
    """Sortable and unique: the one place where the clock and randomness belong."""
    return f"{project}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def _pick(name: str, choices: list[str], what: str) -> None:
    if name not in choices:
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UsageError(f"no {what} '{name}'{hint}; the pipeline has: {', '.join(choices)}")


def _latest_file(ctx: StepContext, pipeline: str) -> Path:
    return ctx.state_dir / "cache" / f"latest-{pipeline}"


def _check_lightning(states: Iterable[StepState], candidates: Iterable[Any]) -> None:
    """Fail before anything runs, not after the other candidates trained, when Lightning is missing."""
    lightning = {c.name for c in candidates if c.framework == "lightning"}
    for st in states:
        if (st.status == "pending" and st.step.kind == "train" and st.step.candidate in lightning
                and not all(_importable(m) for m in LIGHTNING_MODULES)):
            raise RunError(f"candidate '{st.step.candidate}' is a Lightning model, but Lightning is not "
                           "installed\nhint: pip install 'mlc[lightning]'")


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def run_command(path: str, env: str, *, only: str | None = None, from_: str | None = None, no_cache: bool = False,
                pipeline: str = "train", verbosity: int = 0) -> int:
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    if only and from_:
        raise UsageError("--only and --from cannot be combined")
    sf = load_spec(path)
    plan = lower(sf.spec, sf.text, env)
    pipe = plan.pipeline(pipeline)
    if pipe is None:
        raise UsageError(f"{sf.path}: the spec defines no {pipeline} pipeline (the plan has: "
                         f"{', '.join(p.purpose for p in plan.pipelines)})")
    names = [s.name for s in pipe.steps]
    for opt, value in (("--only", only), ("--from", from_)):
        if value:
            _pick(value, names, f"step for {opt}")
    if env != "local":
        from mlc.push import preflight

        preflight(sf, plan)  # a cluster env's steps read the data from <storage root>/project/: pushed yet?
    run_id = new_run_id(plan.project)
    ctx = make_context(sf, plan, run_id, local=True, verbosity=verbosity)
    return Executor(ctx, pipe).run(only=only, from_=from_, no_cache=no_cache)


class Executor:
    def __init__(self, ctx: StepContext, pipe: Pipeline) -> None:
        self.ctx = ctx
        self.pipe = pipe
        self.order = topo_order(pipe.steps)
        self.states = {s.name: StepState(s) for s in self.order}
        self.cache = StepCache(ctx)

    def run(self, *, only: str | None = None, from_: str | None = None, no_cache: bool = False) -> int:
        ctx = self.ctx
        forced = {from_, *downstream(self.order, from_)} if from_ else set()
        if only:
            self._prepare_only(only)
        else:
            self._plan_cache(forced, no_cache)
        _check_lightning(self.states.values(), ctx.plan.spec.training.candidates)
        local_root = "://" not in ctx.storage_root
        if local_root:
            Path(ctx.run_dir()).mkdir(parents=True, exist_ok=True)
            _write_atomic(_latest_file(ctx, self.pipe.purpose), ctx.run_id)
        from mlc.progress import Progress

        failure: BaseException | None = None  # the first failure; a RunError lets independent branches go on
        with Progress(ctx, self.pipe, list(self.states.values())) as progress:
            for st in self.states.values():
                if st.status == "cached":
                    link_step(ctx, st.step.name, st.source_run or "")
                    st.result = read_result(ctx, st.step.name)
                    progress.update(st)
                elif st.status == "pending":
                    blocked = [d for d in st.step.depends if self.states[d].status in ("failed", "skipped")]
                    if blocked or (failure is not None and not isinstance(failure, MlcError)):
                        st.status, st.error = "skipped", f"{blocked[0]} did not finish" if blocked else ""
                        progress.update(st)
                        continue
                    failure = self._execute(st, progress, record=not only) or failure
        if local_root:
            self._write_manifest()
        progress.summary()
        if isinstance(failure, MlcError):
            print(failure.render(), file=sys.stderr)
            return 1
        if failure is not None:
            raise failure
        return 0

    def _plan_cache(self, forced: set[str], no_cache: bool) -> None:
        for st in self.states.values():
            st.key = self.cache.key(st.step, {d: self.states[d].key for d in st.step.depends if d in self.states})
            if no_cache or st.step.name in forced or st.step.kind in ALWAYS_RUN:
                continue
            hit = self.cache.lookup(st.key, st.step.name)
            if hit:
                st.status, st.source_run = "cached", hit

    def _prepare_only(self, only: str) -> None:
        """--only: every upstream step comes from the latest run of this pipeline, which must have it."""
        ctx = self.ctx
        need = upstream(self.order, only)
        latest = None
        try:
            latest = _latest_file(ctx, self.pipe.purpose).read_text().strip()
        except OSError:
            pass
        missing = sorted(n for n in need
                         if not latest or not (Path(ctx.step_dir(n, latest)) / SUCCESS).exists())
        if missing:
            where = f"the latest run ({latest})" if latest else "any earlier run"
            raise RunError(f"--only {only} needs the outputs of {', '.join(missing)}, which {where} does not have\n"
                           f"hint: run the pipeline first, or use --from {only}")
        for st in self.states.values():
            if st.step.name == only:
                continue
            if st.step.name in need:
                st.status, st.source_run = "cached", latest
            else:
                st.status = "skipped"
                st.error = "not selected"

    def _execute(self, st: StepState, progress: Any, *, record: bool) -> BaseException | None:
        from mlc.runtime.steps import execute

        st.status, st.started = "running", time.perf_counter()
        progress.update(st)
        failure: BaseException | None = None
        try:
            st.result = execute(self.ctx, st.step)
            st.status = "ok"
        except MlcError as e:
            st.status, st.error, failure = "failed", str(e), e
        except BaseException as e:  # noqa: BLE001 - a bug or Ctrl-C: show the summary, then re-raise
            st.status, st.error, failure = "failed", f"{type(e).__name__}: {e}", e
        st.seconds = time.perf_counter() - st.started
        if st.status == "ok" and record and st.step.kind not in ALWAYS_RUN:
            self.cache.record(st.key, st.step.name, self.ctx.run_id)
        progress.update(st)
        return failure

    def _write_manifest(self) -> None:
        steps = [{"name": s.step.name, "status": s.status, "seconds": round(s.seconds, 3), "key": s.key,
                  "source_run": s.source_run, "outputs": s.result.outputs, "error": s.error}
                 for s in self.states.values()]
        doc = {"run_id": self.ctx.run_id, "pipeline": self.pipe.name, "env": self.ctx.plan.env, "steps": steps}
        _write_atomic(Path(self.ctx.run_dir()) / "run.json", json.dumps(doc, indent=2, default=str) + "\n")


# ----------------------------------------------------------------------------- mlc step
def step_command(step: str, spec_path: str, run_id: str, env: str, verbosity: int = 0) -> int:
    """The container entrypoint: the same runtime as `mlc run`, no cache (Argo and KFP own caching there)."""
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(spec_path)
    plan: Plan = lower(sf.spec, sf.text, env)
    try:
        _, st = plan.find_step(step)
    except KeyError:
        _pick(step, [s.name for p in plan.pipelines for s in p.steps], "step")
        raise
    ctx = make_context(sf, plan, run_id, local=env == "local", verbosity=verbosity)
    from mlc.runtime.steps import execute

    result = execute(ctx, st)  # publishes the step and writes its output parameters
    print(f"{step}: ok" + (f" - {result.message}" if result.message else ""))
    return 0
