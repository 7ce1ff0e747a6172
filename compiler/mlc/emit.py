"""Stage 4: Plan -> files. Canonical YAML, file layout, kustomization, atomic write, the lock file, --check, diff.

Layout: ``<out>/<project>/<env>/{core,argo,kfp,kserve,prometheus}/<kind>-<name>.yaml`` plus
``kustomization.yaml``; ``<out>/mlc.lock.json`` records, per project and environment, the sha256 of the spec text,
the options and every file written. ``--check`` first verifies the lock against the specs and the files on disk
(hashing only; hera and kfp are not imported) and compiles only when something differs, to show the diff.

Key order (part of the output's API, like kustomize's): at the top ``apiVersion, kind, metadata, spec``, then the
other keys sorted; in every nested mapping ``name`` first (then ``namespace``; ``record``/``alert`` in rules), then
the rest sorted. Mappings inside a list keep that rule; lists keep their order, which the plan defines.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlc import __version__
from mlc.backends import Output
from mlc.errors import CompileError, SpecError, UsageError
from mlc.image.refs import lock_bytes as images_lock_bytes

BACKENDS = ("mlc.backends.core", "mlc.backends.argo", "mlc.backends.argo_rollout", "mlc.backends.kfp",
            "mlc.backends.kserve", "mlc.backends.prometheus", "mlc.backends.image", "mlc.backends.airflow",
            "mlc.backends.argocd", "mlc.backends.alertmanager",
            "mlc.backends.grafana")
# The workflow-engine backends run only for the environments whose `targets` name them (Plan.targets).
TARGET_OF = {"mlc.backends.argo": "argo", "mlc.backends.argo_rollout": "argo", "mlc.backends.kfp": "kfp",
             "mlc.backends.airflow": "airflow"}
LOCK = "mlc.lock.json"
KUSTOMIZATION = "kustomization.yaml"
TOP_KEYS = ("apiVersion", "kind", "metadata", "spec")
LEAD_KEYS = ("name", "namespace", "record", "alert")
_TMP_PREFIX = ".mlc-tmp-"


# --------------------------------------------------------------------------- building
def build(plan: Any) -> list[Output]:
    """Every object of every backend for one plan, in a fixed order. Used by compile and by `mlc apply`."""
    outs: list[Output] = []
    for name in BACKENDS:
        if TARGET_OF.get(name, "") not in (*plan.targets, ""):
            continue
        outs.extend(importlib.import_module(name).build(plan))
    seen: set[str] = set()
    for o in outs:
        if o.path in seen:
            raise CompileError(f"two backends produced {o.path}; this is a bug in mlc")
        seen.add(o.path)
    return outs


def _ordered(obj: Any, top: bool = False) -> Any:
    if isinstance(obj, dict):
        lead = TOP_KEYS if top else LEAD_KEYS
        keys = [k for k in lead if k in obj] + sorted(k for k in obj if k not in lead)
        return {k: _ordered(obj[k]) for k in keys}
    if isinstance(obj, list):
        return [_ordered(v) for v in obj]
    return obj


def _node(obj: Any, sort_keys: bool) -> Any:
    """The node tree PyYAML's SafeRepresenter would build, minus its per-node dispatch and alias tracking
    (several times faster; never writes anchors). Multi-line strings become literal blocks."""
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    if isinstance(obj, str):
        block = "\n" in obj and not any(c in obj for c in "\r\t") and obj == obj.rstrip(" ")
        return ScalarNode("tag:yaml.org,2002:str", obj, style="|" if block else None)
    if isinstance(obj, dict):
        items = sorted(obj.items()) if sort_keys else obj.items()
        return MappingNode("tag:yaml.org,2002:map", [(_node(k, sort_keys), _node(v, sort_keys)) for k, v in items],
                           flow_style=False)
    if isinstance(obj, (list, tuple)):
        return SequenceNode("tag:yaml.org,2002:seq", [_node(v, sort_keys) for v in obj], flow_style=False)
    if obj is None:
        return ScalarNode("tag:yaml.org,2002:null", "null")
    if isinstance(obj, bool):
        return ScalarNode("tag:yaml.org,2002:bool", "true" if obj else "false")
    if isinstance(obj, int):
        return ScalarNode("tag:yaml.org,2002:int", str(obj))
    if isinstance(obj, float):
        if math.isnan(obj):
            value = ".nan"
        elif obj in (float("inf"), float("-inf")):
            value = ".inf" if obj > 0 else "-.inf"
        else:
            value = repr(obj).lower()
            if "." not in value and "e" in value:
                value = value.replace("e", ".0e", 1)
        return ScalarNode("tag:yaml.org,2002:float", value)
    raise TypeError(f"cannot write {type(obj).__name__} as YAML")


def _canonical_keys(obj: dict, depth: int) -> list:
    lead = TOP_KEYS if depth == 0 else LEAD_KEYS
    return [k for k in lead if k in obj] + sorted(k for k in obj if k not in lead)


def _sorted_keys(obj: dict, depth: int) -> list:
    return sorted(obj)


def _given_keys(obj: dict, depth: int) -> list:
    return list(obj)


def yaml_documents(docs: list[Any], sort_keys: bool = False, width: int | None = None,
                   allow_unicode: bool = True) -> str:
    """Block-style YAML for plain data: the bytes libyaml writes (and the Python emitter, the same ones).

    mlc.yamlemit writes them directly; a document it does not cover goes through PyYAML."""
    from mlc import yamlemit

    try:
        return yamlemit.dump(docs, _sorted_keys if sort_keys else _given_keys, width)
    except yamlemit.Unsupported:
        return _pyyaml_documents(docs, sort_keys, width, allow_unicode)


def _pyyaml_documents(docs: list[Any], sort_keys: bool, width: int | None, allow_unicode: bool) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.serialize_all([_node(d, sort_keys) for d in docs], Dumper=dumper, width=width,
                              allow_unicode=allow_unicode)


def dump_yaml(obj: Any) -> str:
    """One document in the canonical key order (see the module docstring)."""
    from mlc import yamlemit

    try:
        return yamlemit.dump([obj], _canonical_keys, 100)
    except yamlemit.Unsupported:
        return _pyyaml_documents([_ordered(obj, top=True)], False, 100, True)


def header(source: str) -> str:
    return f"# Generated by mlc {__version__} from {source}; do not edit.\n"


def spec_source(path: Path) -> str:
    """The spec as the header names it: relative to the directory that holds its project
    (``churn/mlproject.yaml``), so ``.``, ``specs/churn``, an absolute or a ``../`` path all give the same
    bytes (``abspath``: the cwd fills in the directory name that ``.`` leaves out)."""
    p = Path(os.path.abspath(path))
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def kustomization(plan: Any, outs: list[Output]) -> dict[str, Any]:
    from mlc.plan import MANAGED_BY, PROJECT_LABEL

    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": plan.namespace,
        "labels": [{"pairs": {**MANAGED_BY, PROJECT_LABEL: plan.project}, "includeSelectors": False}],
        "resources": sorted(o.path for o in outs if o.resource and o.obj is not None),
    }


def render(plan: Any, source: str) -> dict[str, bytes]:
    """Relative path (inside <project>/<env>/) -> file bytes, for one plan."""
    outs = build(plan)
    head = header(source)
    files = {o.path: ((head if not o.path.endswith(".json") else "")  # JSON has no comments
                      + (dump_yaml(o.obj) if o.obj is not None else (o.text or ""))).encode() for o in outs}
    files[KUSTOMIZATION] = (head + dump_yaml(kustomization(plan, outs))).encode()
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------- compiling specs
@dataclass
class Unit:
    """One compiled project: its files per environment, and what the lock records about it."""

    project: str
    spec_sha256: str
    env_names: list[str]  # every environment of the spec
    envs: dict[str, dict[str, bytes]]  # the environments compiled this time


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compile_specs(paths: list[str], envs: tuple[str, ...], argo_version: str | None) -> list[Unit]:
    """Validate and lower everything first; raise (writing nothing) if any spec is wrong."""
    from mlc.image.refs import check as check_images
    from mlc.spec.validate import load_spec

    loaded, errors = [], []
    for p in paths:
        try:
            sf = load_spec(p)
        except SpecError as e:
            errors.append(e)
            continue
        loaded.append(sf)
        wanted = [e for e in sorted(envs) if e in sf.spec.environments] if envs else sorted(sf.spec.environments)
        _, image_error, image_warnings = check_images(sf, wanted)
        if image_error is not None:  # an environment with no image anybody built (see mlc/image/refs.py)
            errors.append(image_error)
        for w in image_warnings:
            print(w.render(sf.text.splitlines(), str(sf.path)), file=sys.stderr)
    if errors:
        raise _SpecErrors(errors)
    units: dict[str, Unit] = {}
    jobs: list[tuple[int, str]] = []
    for i, sf in enumerate(loaded):
        project = sf.spec.metadata.name
        if project in units:
            raise UsageError(f"{sf.path}: project '{project}' is also defined by another spec given")
        names = sorted(sf.spec.environments)
        for e in envs:
            if e not in names:
                raise UsageError(f"{sf.path}: environment '{e}' is not defined; the spec has: {', '.join(names)}")
        units[project] = Unit(project, _sha(sf.text.encode() + images_lock_bytes(sf.path)), names, {})
        jobs += [(i, env) for env in (sorted(envs) or names)]
    for (i, env), files in zip(jobs, _render_all(loaded, jobs, argo_version)):
        units[loaded[i].spec.metadata.name].envs[env] = files
    return list(units.values())


_JOBS: tuple[list[Any], list[tuple[int, str]], str | None] | None = None  # inherited by forked workers
PARALLEL_MIN_JOBS = 2  # forking after the imports pays off from two (spec, env) pairs on two cores


def _render_job(k: int) -> dict[str, bytes]:
    from mlc.image.refs import resolve
    from mlc.plan import lower

    assert _JOBS is not None
    loaded, jobs, argo_version = _JOBS
    i, env = jobs[k]
    sf = loaded[i]
    image = resolve(sf.spec, env, sf.path)[0]  # compile_specs refused the environments without one
    return render(lower(sf.spec, sf.text, env, argo_version, image=image), spec_source(sf.path))


def _render_all(loaded: list[Any], jobs: list[tuple[int, str]], argo_version: str | None) -> list[dict[str, bytes]]:
    """Render every (spec, env). Many jobs run in forked workers (Linux), after hera and kfp are imported once
    here; each job is a pure function of its inputs, so the result does not depend on how they are spread."""
    global _JOBS
    _JOBS = (loaded, jobs, argo_version)
    try:
        workers = min(len(os.sched_getaffinity(0)), 8) if hasattr(os, "sched_getaffinity") else 1
        if len(jobs) < PARALLEL_MIN_JOBS or workers < 2 or sys.platform != "linux" or os.environ.get(
                "MLC_JOBS") == "1":
            return [_render_job(k) for k in range(len(jobs))]
        import multiprocessing

        for name in BACKENDS:  # import once, before forking
            importlib.import_module(name)
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_render_job, range(len(jobs)), chunksize=max(1, len(jobs) // (workers * 4)))
    finally:
        _JOBS = None


class _SpecErrors(Exception):
    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors


# --------------------------------------------------------------------------- the lock
def _read_lock(out: Path) -> dict[str, Any]:
    try:
        lock = json.loads((out / LOCK).read_text(encoding="utf-8"))
        return lock if isinstance(lock, dict) and isinstance(lock.get("projects"), dict) else {}
    except (OSError, ValueError):
        return {}


_COMPILER_SOURCES = ("__init__.py", "emit.py", "yamlemit.py", "backends", "plan", "spec", "image")
_LIBRARIES = ("hera", "kfp", "kfp-kubernetes", "kfp-pipeline-spec", "protobuf", "pyyaml")


def compiler_fingerprint() -> str:
    """sha256 of what shapes the output besides the spec: mlc's compile-path source and the versions of the
    libraries it serialises through. A lock written by another compiler is not trusted by the fast --check."""
    from importlib.metadata import PackageNotFoundError, version

    root = Path(__file__).parent
    h = hashlib.sha256(__version__.encode())
    for entry in _COMPILER_SOURCES:
        p = root / entry
        for f in sorted(q for q in p.rglob("*") if q.suffix in (".py", ".lock")) if p.is_dir() else [p]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    for lib in _LIBRARIES:
        try:
            h.update(f"{lib}=={version(lib)}\0".encode())
        except PackageNotFoundError:
            h.update(f"{lib}: none\0".encode())
    return h.hexdigest()


def _new_lock(old: dict[str, Any], units: list[Unit], full: bool, argo_version: str | None) -> bytes:
    projects = dict(old.get("projects", {})) if old.get("compiler") == compiler_fingerprint() else {}
    for u in units:
        prev = projects.get(u.project, {}) if not full else {}
        env_entries = {e: v for e, v in prev.get("envs", {}).items() if e in u.env_names}
        for env, files in u.envs.items():
            env_entries[env] = {"spec_sha256": u.spec_sha256, "argo_version": argo_version,
                                "files": {p: _sha(b) for p, b in files.items()}}
        projects[u.project] = {"spec_sha256": u.spec_sha256, "env_names": u.env_names,
                               "envs": dict(sorted(env_entries.items()))}
    lock = {"mlc": __version__, "compiler": compiler_fingerprint(), "projects": dict(sorted(projects.items()))}
    return (json.dumps(lock, indent=2, sort_keys=True) + "\n").encode()


def _files_under(d: Path) -> set[str]:
    if not d.is_dir():
        return set()
    # __pycache__: what Airflow (or any Python) leaves beside the DAG files it imported from generated/
    return {p.relative_to(d).as_posix() for p in d.rglob("*")
            if (p.is_file() or p.is_symlink()) and "__pycache__" not in p.relative_to(d).parts}


def lock_is_fresh(paths: list[str], out: Path, envs: tuple[str, ...], argo_version: str | None) -> bool:
    """True when the lock proves `out` is what compiling ``paths`` would write. Hashes only: no YAML, no hera."""
    lock = _read_lock(out)
    if lock.get("mlc") != __version__ or lock.get("compiler") != compiler_fingerprint():
        return False
    by_hash = {v.get("spec_sha256"): (k, v) for k, v in lock["projects"].items() if isinstance(v, dict)}
    for p in paths:
        try:
            path = Path(p)
            text = (path / "mlproject.yaml" if path.is_dir() else path).read_bytes()
        except OSError:
            return False
        found = by_hash.get(_sha(text + images_lock_bytes(path if not path.is_dir() else path / "mlproject.yaml")))
        if found is None:
            return False
        project, entry = found
        names = entry.get("env_names", [])
        wanted = list(envs) or names
        if not envs and _subdirs(out / project) != set(names):
            return False
        for env in wanted:
            e = entry.get("envs", {}).get(env)
            if not e or e.get("spec_sha256") != entry["spec_sha256"] or e.get("argo_version") != argo_version:
                return False
            d = out / project / env
            files = e.get("files", {})
            if _files_under(d) != set(files):
                return False
            for rel, digest in files.items():
                try:
                    if _sha((d / rel).read_bytes()) != digest:
                        return False
                except OSError:
                    return False
    return True


def _subdirs(d: Path) -> set[str]:
    return {c.name for c in d.iterdir() if c.is_dir()} if d.is_dir() else set()


# --------------------------------------------------------------------------- writing
def _expected_tree(units: list[Unit], out: Path, full: bool) -> dict[str, dict[str, bytes]]:
    """project -> {path inside the project dir: bytes}: what each project dir must hold afterwards."""
    trees: dict[str, dict[str, bytes]] = {}
    for u in units:
        tree: dict[str, bytes] = {}
        if not full:  # keep the environments not compiled this time as they are
            base = out / u.project
            for env in _subdirs(base):
                if env not in u.envs and env in u.env_names:
                    for rel in _files_under(base / env):
                        tree[f"{env}/{rel}"] = (base / env / rel).read_bytes()
        for env, files in u.envs.items():
            tree.update({f"{env}/{rel}": data for rel, data in files.items()})
        trees[u.project] = dict(sorted(tree.items()))
    return trees


def write_atomically(out: Path, trees: dict[str, dict[str, bytes]], lock: bytes) -> None:
    """Write every project into a temporary directory inside `out`, then swap each project dir in with renames.

    Nothing in `out` changes until every file is written; directories of projects not compiled are untouched.
    """
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=out))
    try:
        made: set[Path] = set()  # one mkdir per directory, not per file (7,000 files for 100 projects)
        for project, tree in trees.items():
            for rel, data in tree.items():
                dest = staging / project / rel
                if dest.parent not in made:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    made.add(dest.parent)
                dest.write_bytes(data)
        (staging / LOCK).write_bytes(lock)
        for project in trees:
            target, old = out / project, staging / f"{project}.old"
            if target.exists():
                os.replace(target, old)
            os.replace(staging / project, target)
        os.replace(staging / LOCK, out / LOCK)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- commands
def compile_command(paths: list[str], out: str, envs: tuple[str, ...], argo_version: str | None,
                    check: bool) -> int:
    out_dir = Path(out)
    if check and lock_is_fresh(paths, out_dir, envs, argo_version):
        print(f"{out}: up to date", file=sys.stderr)
        return 0
    try:
        units = compile_specs(paths, envs, argo_version)
    except _SpecErrors as e:
        for err in e.errors:
            print(err.render(), file=sys.stderr)
        return 1
    full = not envs
    trees = _expected_tree(units, out_dir, full)
    lock = _new_lock(_read_lock(out_dir), units, full, argo_version)
    if check:
        changes = _compare(out_dir, trees, None)
        if not changes:
            stale_lock = _compare(out_dir, {}, lock)
            note = f" ({LOCK} is out of date: run `mlc compile` to refresh it and make --check fast)" \
                if stale_lock else ""
            print(f"{out}: up to date{note}", file=sys.stderr)
            return 0
        sys.stdout.write(_unified(changes))
        print(f"{out} is stale ({_summary_counts(changes)}); run: mlc compile {' '.join(paths)} -o {out}",
              file=sys.stderr)
        return 1
    write_atomically(out_dir, trees, lock)
    n = sum(len(t) for t in trees.values())
    print(f"wrote {n} files for {len(trees)} project(s) to {out}", file=sys.stderr)
    return 0


Change = tuple[str, str, bytes | None, bytes | None]  # (status, path relative to out, old, new)


def _compare(out: Path, trees: dict[str, dict[str, bytes]], lock: bytes | None,
             envs_only: dict[str, set[str]] | None = None) -> list[Change]:
    changes: list[Change] = []
    for project, tree in trees.items():
        base = out / project
        on_disk = _files_under(base)
        if envs_only is not None:
            on_disk = {p for p in on_disk if p.split("/", 1)[0] in envs_only[project]}
        for rel in sorted(on_disk | set(tree)):
            new = tree.get(rel)
            try:
                old = (base / rel).read_bytes() if rel in on_disk else None
            except OSError:
                old = None
            if old != new:
                status = "added" if old is None else "removed" if new is None else "changed"
                changes.append((status, f"{project}/{rel}", old, new))
    if lock is not None:
        try:
            old_lock: bytes | None = (out / LOCK).read_bytes()
        except OSError:
            old_lock = None
        if old_lock != lock:
            changes.append(("added" if old_lock is None else "changed", LOCK, old_lock, lock))
    return changes


def _unified(changes: list[Change]) -> str:
    chunks = []
    for _status, path, old, new in changes:
        a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
        b = (new or b"").decode("utf-8", "replace").splitlines(keepends=True)
        chunks.extend(difflib.unified_diff(a, b, f"a/{path}" if old is not None else "/dev/null",
                                           f"b/{path}" if new is not None else "/dev/null"))
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n\\ No newline at end of file\n"
    return "".join(chunks)


def _summary_counts(changes: list[Change]) -> str:
    counts = {s: sum(1 for c in changes if c[0] == s) for s in ("added", "changed", "removed")}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


__all__ = ["CompileError", "build", "compile_command", "dump_yaml", "lock_is_fresh", "render"]
