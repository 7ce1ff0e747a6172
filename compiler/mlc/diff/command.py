"""`mlc diff PATH... [--base REV|PATH] [--against DIR] [--env E] [--format text|markdown|json]`.

The base of the comparison is, in this order of preference:
- ``--base PATH``: another copy of the project (its directory, its spec file, or the root of a checkout that
  holds the project at the same relative path);
- ``--base REV``: a git revision of the repository PATH is in, read with ``git show`` / ``git cat-file`` (the
  working tree is never touched);
- neither: ``--against DIR`` (default ``generated``), the committed output; the base spec is the text its spec
  ConfigMap carries, so the summary is semantic there too.

Both sides' generated files come from the lock when it proves them current (``mlc.lock.json``: the spec's
sha256 and the compiler's fingerprint), else from compiling. So `mlc diff --base HEAD~1` on a repository whose
``generated/`` is committed and fresh costs two spec loads and a few git reads, and no compile.

Exit codes like `kubectl diff`: 0 no change, 1 changes, 2 (or 3, a bug) an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.diff.semantic import Change, spec_changes
from mlc.errors import MlcError, SpecError, UsageError

KUSTOMIZATION = "kustomization.yaml"


@dataclass
class Resource:
    status: str  # added | changed | removed
    path: str  # <project>/<env>/<file>
    what: str  # "InferenceService churn"
    old: bytes | None
    new: bytes | None


@dataclass
class ProjectDiff:
    project: str
    spec: str  # the spec file as given
    base: str  # what the base was, in words: "origin/main (a1b2c3d)", "generated/", a path
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.resources)


class DiffError(MlcError):
    """A base that cannot be read (unknown revision, no such path, not a git repository)."""


# --------------------------------------------------------------------------- git
def _git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    try:
        r = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise DiffError("git is not installed; give --base a path to another copy of the project") from None
    if r.returncode:
        raise DiffError(f"git {' '.join(args[:2])}: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def _toplevel(p: Path) -> Path | None:
    try:
        r = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=p, capture_output=True, check=False)
    except FileNotFoundError:
        return None
    return Path(r.stdout.decode().strip()) if r.returncode == 0 else None


def _cat_files(top: Path, rev: str, paths: list[str]) -> dict[str, bytes | None]:
    """Many blobs at one revision with one `git cat-file --batch` (a `git show` each costs a process each)."""
    if not paths:
        return {}
    out = _git(top, "cat-file", "--batch", data="".join(f"{rev}:{p}\n" for p in paths).encode())
    found: dict[str, bytes | None] = {}
    i = 0
    for p in paths:
        nl = out.index(b"\n", i)
        head = out[i:nl].split()
        if len(head) == 2 and head[1] == b"missing" or len(head) < 3:
            found[p], i = None, nl + 1
            continue
        size = int(head[2])
        found[p] = out[nl + 1:nl + 1 + size]
        i = nl + 1 + size + 1
    return found


@dataclass
class Base:
    """The base spec materialised in a temporary project directory, so the loader and the compiler read it as
    they read any spec (the directory keeps the project's name: the generated headers name it)."""

    spec_file: Path
    label: str
    rev: str | None = None  # a git revision: its committed generated/ may be reused
    top: Path | None = None


def _materialise(tmp: Path, name: str, spec: bytes, images_lock: bytes | None) -> Path:
    d = tmp / name
    d.mkdir(parents=True)
    (d / "mlproject.yaml").write_bytes(spec)
    if images_lock is not None:
        from mlc.image.refs import IMAGES_LOCK

        (d / IMAGES_LOCK).write_bytes(images_lock)
    return d / "mlproject.yaml"


def resolve_base(spec_file: Path, base: str, tmp: Path) -> Base:
    from mlc.image.refs import IMAGES_LOCK

    b = Path(base)
    if b.exists():
        candidates = [b / "mlproject.yaml" if b.is_dir() else b]
        top = _toplevel(spec_file.parent)
        if b.is_dir() and top is not None:
            candidates.append(b / spec_file.resolve().relative_to(top))
        for c in candidates:
            if c.is_file():
                return Base(c, str(c))
        raise DiffError(f"--base {base}: no mlproject.yaml there (nor at the project's path inside it)")
    top = _toplevel(spec_file.parent)
    if top is None:
        raise DiffError(f"--base {base}: not a path, and {spec_file.parent} is not in a git repository")
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").decode().strip()
    except DiffError:
        raise DiffError(f"--base {base}: neither a path nor a git revision of {top}") from None
    rel = spec_file.resolve().relative_to(top.resolve()).as_posix()
    lock_rel = str(Path(rel).parent / IMAGES_LOCK)
    blobs = _cat_files(top, commit, [rel, lock_rel])
    label = f"{base} ({commit[:7]})" if not commit.startswith(base) else commit[:7]
    if blobs[rel] is None:  # the project is new in this change: everything is added
        return Base(Path(), f"{label}, where {rel} does not exist", commit, top)
    return Base(_materialise(tmp, spec_file.parent.resolve().name, blobs[rel] or b"", blobs[lock_rel]), label,
                commit, top)


# --------------------------------------------------------------------------- generated trees
Tree = dict[str, dict[str, bytes]]  # env -> {path inside <project>/<env>/: bytes}


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _lock_entry(lock: dict[str, Any], project: str, spec_sha: str, envs: list[str]) -> dict[str, dict] | None:
    """env -> {rel: sha256} when the lock proves those files are what this compiler makes of that spec."""
    from mlc import __version__
    from mlc.emit import compiler_fingerprint

    if lock.get("mlc") != __version__ or lock.get("compiler") != compiler_fingerprint():
        return None
    entry = (lock.get("projects") or {}).get(project) or {}
    if entry.get("spec_sha256") != spec_sha:
        return None
    out = {}
    for env in envs:
        e = (entry.get("envs") or {}).get(env)
        if not e or e.get("spec_sha256") != spec_sha or e.get("argo_version") is not None:
            return None
        out[env] = e.get("files") or {}
    return out


def _spec_sha(spec_file: Path) -> str:
    from mlc.image.refs import lock_bytes

    return _sha(spec_file.read_bytes() + lock_bytes(spec_file))


def compile_trees(items: list[tuple[Path, list[str]]]) -> list[Tree]:
    """Compile several specs (the base and the head: one project twice, which `compile_specs` refuses) in one
    batch of render jobs, so both sides share one pool of forked workers."""
    from mlc.emit import _render_all
    from mlc.image.refs import check as check_images
    from mlc.spec.validate import load_spec

    loaded, jobs = [], []
    for i, (spec_file, envs) in enumerate(items):
        sf = load_spec(spec_file)
        _, image_error, _ = check_images(sf, envs)
        if image_error is not None:
            raise image_error
        loaded.append(sf)
        jobs += [(i, env) for env in envs]
    trees: list[Tree] = [{} for _ in items]
    if jobs:
        with contextlib.redirect_stderr(io.StringIO()):
            results = _render_all(loaded, jobs, None)
        for (i, env), files in zip(jobs, results, strict=True):
            trees[i][env] = files
    return trees


def head_tree(spec_file: Path, project: str, envs: list[str], out: Path) -> Tree | None:
    """The working tree's generated files from ``out``, when its lock is current for this spec; None: compile."""
    lock = _read_json(out / "mlc.lock.json")
    files = _lock_entry(lock, project, _spec_sha(spec_file), envs) if lock else None
    if files is None:
        return None
    tree: Tree = {}
    for env, entries in files.items():
        d = out / project / env
        tree[env] = {}
        for rel, digest in entries.items():
            try:
                data = (d / rel).read_bytes()
            except OSError:
                return None
            if _sha(data) != digest:
                return None
            tree[env][rel] = data
    return tree


def base_tree(base: Base, project: str, envs: list[str], out: Path) -> Tree | None:
    """The base's generated files from its committed ``out`` at that revision, when its lock vouches for them;
    None: compile."""
    if base.rev is None or base.top is None:
        return None
    try:
        out_rel = out.resolve().relative_to(base.top.resolve()).as_posix()
    except ValueError:
        return None
    lock_path = f"{out_rel}/mlc.lock.json"
    lock = _loads(_cat_files(base.top, base.rev, [lock_path])[lock_path])
    files = _lock_entry(lock, project, _spec_sha(base.spec_file), envs) if lock else None
    if files is None:
        return None
    paths = [f"{out_rel}/{project}/{env}/{rel}" for env, e in files.items() for rel in e]
    blobs = _cat_files(base.top, base.rev, paths)
    tree: Tree = {env: {} for env in files}
    for env, entries in files.items():
        for rel, digest in entries.items():
            data = blobs.get(f"{out_rel}/{project}/{env}/{rel}")
            if data is None or _sha(data) != digest:
                return None
            tree[env][rel] = data
    return tree


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return _loads(p.read_bytes())
    except OSError:
        return {}


def _loads(b: bytes | None) -> dict[str, Any]:
    try:
        doc = json.loads(b) if b else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def generated_tree(out: Path, project: str, envs: list[str]) -> Tree:
    tree: Tree = {}
    for env in envs:
        d = out / project / env
        if d.is_dir():
            tree[env] = {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    return tree


_NOT_OBJECTS = {  # generated files that are not Kubernetes objects, by name
    "Dockerfile": "step image Dockerfile", "requirements.lock": "step image requirements lock",
    ".dockerignore": "step image .dockerignore", "rules.yaml": "Prometheus rule file (promtool)",
    "rules.test.yaml": "promtool rule tests", "rules.heartbeat.test.yaml": "promtool heartbeat rule tests",
}


def _describe(data: bytes | None, rel: str) -> str:
    """What a generated file is, for the per-resource summary: 'Kind name' of an object, the KFP pipeline, the
    Airflow DAG or the Grafana dashboard it holds, or what a file that is none of these is for."""
    import yaml

    name = rel.rsplit("/", 1)[-1]
    if name in _NOT_OBJECTS:
        return _NOT_OBJECTS[name]
    if not data:
        return ""
    if name.endswith(".py"):  # the Airflow backend writes one DAG per file, its dag_id a literal
        m = re.search(rb'\bdag_id="([^"\\]+)"', data)
        return f"Airflow DAG {m.group(1).decode()}" if m else ""
    try:
        doc = json.loads(data) if name.endswith(".json") else next(iter(yaml.safe_load_all(data)), None)
    except (ValueError, yaml.YAMLError):
        return ""
    if not isinstance(doc, dict):
        return ""
    if "kind" in doc:
        return f"{doc['kind']} {(doc.get('metadata') or {}).get('name', '')}".rstrip()
    if "pipelineInfo" in doc:
        return f"KFP pipeline {doc['pipelineInfo'].get('name', '')}"
    if "panels" in doc and "uid" in doc:
        return f"Grafana dashboard {doc['uid']}"
    return ""


def compare_trees(project: str, old: Tree, new: Tree) -> list[Resource]:
    out = []
    for env in sorted(set(old) | set(new)):
        a, b = old.get(env, {}), new.get(env, {})
        for rel in sorted(set(a) | set(b)):
            x, y = a.get(rel), b.get(rel)
            if x != y:
                status = "added" if x is None else "removed" if y is None else "changed"
                out.append(Resource(status, f"{project}/{env}/{rel}", _describe(y if y is not None else x, rel), x, y))
    return out


# --------------------------------------------------------------------------- one project
def _spec_from_generated(out: Path, project: str, envs: list[str]) -> str | None:
    """The spec text the committed output was compiled from: its spec ConfigMap carries it."""
    import yaml

    for env in envs:
        for cm in sorted((out / project / env / "core").glob("configmap-*-spec.yaml")):
            try:
                doc = yaml.safe_load(cm.read_text(encoding="utf-8"))
                text = (doc.get("data") or {}).get("mlproject.yaml")
            except (OSError, yaml.YAMLError, AttributeError):
                continue
            if isinstance(text, str):
                return text
    return None


def diff_project(path: str, base: str | None, against: str, envs: tuple[str, ...], tmp: Path,
                 kubeconfig: str | None = None, kube_context: str | None = None) -> ProjectDiff:
    from mlc.diff.context import annotate
    from mlc.spec.validate import load_spec, resolve_path

    spec_file = resolve_path(path)
    head = load_spec(spec_file)
    project = head.spec.metadata.name
    out = Path(against)
    if base is not None:
        b = resolve_base(spec_file, base, tmp)
        old = load_spec(b.spec_file) if b.spec_file != Path() else None
        label = b.label
    else:
        b, label = None, f"{against}/ (the committed output)"
        names = sorted(set(head.spec.environments) | set(_subdirs(out / project)))
        text = _spec_from_generated(out, project, names)
        old = None
        if text is not None:
            src = _materialise(tmp, spec_file.parent.resolve().name, text.encode(), None)
            try:
                old = load_spec(src)
            except SpecError:
                old = None  # compiled by another mlc whose language differed: the resources still tell
    all_envs = sorted(set(head.spec.environments) | (set(old.spec.environments) if old else set()))
    if b is None:
        all_envs = sorted(set(all_envs) | set(_subdirs(out / project)))
    for e in envs:
        if e not in all_envs:
            raise UsageError(f"{spec_file}: environment '{e}' is not defined; the spec has: {', '.join(all_envs)}")
    wanted = sorted(envs) or all_envs
    one_env = wanted[0] if len(wanted) == 1 else None
    d = ProjectDiff(project, str(spec_file), label)
    if old is not None:
        d.changes = spec_changes(old.spec, head.spec, one_env if envs else None)
        if not d.changes and old.text != head.text:
            d.changes = [Change("(spec text)", None, None, "changed", "cosmetic",
                                "comments or formatting only: the model, the pipeline and the cluster stay as "
                                "they are (the spec ConfigMap carries the new text)")]
        ctx_env = one_env or (envs[0] if envs else None)
        cluster = None
        if ctx_env is not None and (kubeconfig or kube_context):
            def cluster() -> tuple[str | None, str | None]:
                from mlc.diff.context import live_traffic
                from mlc.plan import lower

                return live_traffic(lower(head.spec, head.text, ctx_env), kubeconfig, kube_context)
        d.notes = annotate(d.changes, spec_file.parent, head.spec, ctx_env, cluster)
    elif b is not None:
        d.notes = ["the project is new: every generated file is added"]
    else:
        d.notes = [f"no spec text in {against}/ to compare with: only the generated files are compared"]
    head_envs = [e for e in wanted if e in head.spec.environments]
    new_tree = head_tree(spec_file, project, head_envs, out)
    old_tree: Tree | None
    todo: list[tuple[Path, list[str]]] = []
    if b is None:
        old_tree = generated_tree(out, project, wanted)
    elif old is None:
        old_tree = {}
    else:
        base_envs = [e for e in wanted if e in old.spec.environments]
        old_tree = base_tree(b, project, base_envs, out)
        if old_tree is None:
            todo.append((b.spec_file, base_envs))
    if new_tree is None:
        todo.append((spec_file, head_envs))
    compiled = iter(compile_trees(todo))
    if old_tree is None:
        old_tree = next(compiled)
    if new_tree is None:
        new_tree = next(compiled)
    d.resources = compare_trees(project, old_tree, new_tree)
    if d.resources and old is not None and not d.changes:
        d.notes.append("the generated files differ although the spec did not change: another mlc version "
                       "compiled the base")
    return d


def _subdirs(p: Path) -> list[str]:
    return sorted(c.name for c in p.iterdir() if c.is_dir()) if p.is_dir() else []


def diff_command(paths: list[str], base: str | None, against: str, envs: tuple[str, ...], fmt: str,
                 echo: Any, kubeconfig: str | None = None, kube_context: str | None = None) -> int:
    from mlc.diff import render

    tmp = Path(tempfile.mkdtemp(prefix="mlc-diff-"))
    try:
        diffs = [diff_project(p, base, against, envs, tmp, kubeconfig, kube_context) for p in paths]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = {"text": render.text, "markdown": render.markdown, "json": render.json_text}[fmt](diffs)
    echo(text)
    return 1 if any(d.changed for d in diffs) else 0


__all__ = ["DiffError", "ProjectDiff", "diff_command", "diff_project"]
