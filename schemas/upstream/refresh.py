#!/usr/bin/env python3
"""Refresh one vendored upstream schema from a file taken from its project, and its row in README.md.

    python schemas/upstream/refresh.py KIND FILE [--version VERSION]

KIND names the vendored file (see ``KINDS``); FILE is the upstream file as downloaded (JSON, or YAML for a
CRD). The file is checked to be that kind of schema, written back as canonical JSON (sorted keys, no
whitespace, UTF-8: the same input always gives the same bytes, whatever tool converted it), and the README row
gets the new version, source URL, size and sha256. The script prints which JSON paths changed, since a
one-line file's ``git diff`` says little. A file that is not the right kind of schema is refused (exit 1) and
nothing is written. Standard library only, except PyYAML for a YAML input.

The version is ``--version``, or read from the file (the operator version annotation of prometheus-operator's
CRDs) or from its name (``argo-workflows-v3.7.18.schema.json``). A snapshot of a branch is ``master@YYYY-MM-DD``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BEGIN = "<!-- vendored: refresh.py rewrites the rows of this table -->"
END = "<!-- /vendored -->"
HEAD = ("| file | what | upstream version | source | license | bytes | sha256 |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n")
SEMVER = r"\d+\.\d+\.\d+"
SNAPSHOT = r"master@\d{4}-\d{2}-\d{2}"


class Refused(Exception):
    """FILE is not what KIND needs (or cannot be read); the message says why, ``where`` is ``line:col``."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where


def _get(doc: Any, *keys: str) -> Any:
    for k in keys:
        doc = doc.get(k) if isinstance(doc, dict) else None
    return doc


def _argo_check(major: int) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        if not isinstance(doc, dict) or "json-schema.org" not in str(doc.get("$schema", "")):
            raise Refused("not a JSON Schema document (no json-schema.org `$schema`); expected Argo Workflows' "
                          "api/jsonschema/schema.json")
        defs = doc.get("definitions") or {}
        missing = [k for k in ("Workflow", "WorkflowTemplate", "CronWorkflow", "CronWorkflowSpec")
                   if f"io.argoproj.workflow.v1alpha1.{k}" not in defs]
        if missing:
            raise Refused(f"not Argo Workflows' JSON schema: no definitions for {', '.join(missing)}")
        cron = _get(defs, "io.argoproj.workflow.v1alpha1.CronWorkflowSpec", "properties") or {}
        found = 3 if "schedule" in cron else 4  # Argo 4 removed CronWorkflowSpec.schedule (only `schedules`)
        if found != major:
            raise Refused(f"this is Argo Workflows {found}.x's schema (CronWorkflowSpec "
                          f"{'has' if found == 3 else 'lacks'} `schedule`), not Argo {major}'s")
    return check


def _crd_check(group: str, kind: str, version: str) -> Callable[[Any], None]:
    def check(doc: Any) -> None:
        if _get(doc, "kind") != "CustomResourceDefinition" or _get(doc, "apiVersion") != "apiextensions.k8s.io/v1":
            raise Refused("not an apiextensions.k8s.io/v1 CustomResourceDefinition")
        got = (_get(doc, "spec", "group"), _get(doc, "spec", "names", "kind"))
        if got != (group, kind):
            raise Refused(f"the CRD of {got[1]} ({got[0]}), not of {kind} ({group})")
        versions = _get(doc, "spec", "versions") or []
        v = next((v for v in versions if isinstance(v, dict) and v.get("name") == version), None)
        if not isinstance(_get(v, "schema", "openAPIV3Schema", "properties", "spec"), dict):
            raise Refused(f"the CRD has no {version} version with an openAPIV3Schema for spec")
    return check


def _sarif_check(doc: Any) -> None:
    if not isinstance(doc, dict) or "json-schema.org" not in str(doc.get("$schema", "")):
        raise Refused("not a JSON Schema document (no json-schema.org `$schema`)")
    if "SARIF" not in str(doc.get("title", "")) or "2.1.0" not in str(doc.get("title", "")):
        raise Refused(f"not the SARIF 2.1.0 schema (title {doc.get('title')!r})")
    defs = doc.get("definitions") or {}
    missing = [k for k in ("run", "result", "location", "physicalLocation", "region") if k not in defs]
    if missing:
        raise Refused(f"not the SARIF schema: no definitions for {', '.join(missing)}")


COMMIT = r"[0-9a-f]{10,40}"


@dataclass(frozen=True)
class Kind:
    file: str  # the vendored file's name, stable across refreshes
    what: str
    repo: str  # GitHub owner/name
    path: str  # the file in that repository
    license: str
    versions: str  # the versions this kind accepts (a regex)
    check: Callable[[Any], None]
    annotation: str | None = None  # a metadata annotation holding the upstream version

    def source(self, version: str) -> str:
        ref = f"v{version}" if re.fullmatch(SEMVER, version) else version.split("@")[0]
        return f"https://github.com/{self.repo}/blob/{ref}/{self.path}"


KINDS = {
    "argo-3.7": Kind("argo-workflows-3.7.schema.json", "Argo Workflows 3.7 JSON Schema (draft 2020-12), all kinds",
                     "argoproj/argo-workflows", "api/jsonschema/schema.json", "Apache-2.0",
                     r"3\.7\.\d+", _argo_check(3)),
    "argo-4": Kind("argo-workflows-4.schema.json", "Argo Workflows 4 JSON Schema (draft 2020-12), all kinds",
                   "argoproj/argo-workflows", "api/jsonschema/schema.json", "Apache-2.0",
                   r"4\.\d+\.\d+", _argo_check(4)),
    "kserve-inferenceservice": Kind(
        "kserve-inferenceservices.crd.json", "KServe InferenceService CRD (serving.kserve.io/v1beta1), as JSON",
        "kserve/kserve", "config/crd/full/serving.kserve.io_inferenceservices.yaml", "Apache-2.0",
        f"{SEMVER}|{SNAPSHOT}", _crd_check("serving.kserve.io", "InferenceService", "v1beta1")),
    "prometheusrule": Kind(
        "prometheus-operator-prometheusrules.crd.json",
        "prometheus-operator PrometheusRule CRD (monitoring.coreos.com/v1), as JSON",
        "prometheus-operator/prometheus-operator",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml", "Apache-2.0",
        SEMVER, _crd_check("monitoring.coreos.com", "PrometheusRule", "v1"), "operator.prometheus.io/version"),
    "argocd-application": Kind(
        "argo-cd-applications.crd.json", "Argo CD Application CRD (argoproj.io/v1alpha1), as JSON",
        "argoproj/argo-cd", "manifests/crds/application-crd.yaml", "Apache-2.0",
        f"{SEMVER}|{COMMIT}", _crd_check("argoproj.io", "Application", "v1alpha1")),
    "sarif": Kind(
        "sarif-schema-2.1.0.json", "SARIF 2.1.0 JSON Schema (draft-04), what code scanning reads",
        "oasis-tcs/sarif-spec", "sarif-2.1/schema/sarif-schema-2.1.0.json", "OASIS-IPR-RF-on-RAND",
        COMMIT, _sarif_check),
}


def load(file: Path) -> Any:
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise Refused(f"cannot read it: {e}") from None
    if file.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise Refused("reading YAML needs PyYAML (pip install pyyaml), or give the file as JSON") from None
        try:
            docs = [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
                    if d is not None]
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise Refused(f"not valid YAML: {getattr(e, 'problem', None) or e}", where) from None
        if len(docs) != 1:
            raise Refused(f"holds {len(docs)} YAML documents; give the one schema alone")
        return docs[0]
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise Refused(f"not valid JSON: {e.msg}", f"{e.lineno}:{e.colno}") from None


def canonical(doc: Any) -> bytes:
    try:
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:  # a YAML date or NaN: not JSON, so not a schema a tool can use as is
        raise Refused(f"holds a value JSON cannot represent: {e}") from None
    return text.encode() + b"\n"


def version_of(kind: Kind, doc: Any, file: Path, given: str | None) -> str:
    declared = _get(doc, "metadata", "annotations", kind.annotation) if kind.annotation else None
    if given and declared and given.removeprefix("v") != str(declared).removeprefix("v"):
        raise Refused(f"--version {given}, but the file says {kind.annotation}: {declared}")
    named = re.search(rf"v({SEMVER})", file.name)
    version = (given or (str(declared) if declared else None) or (named.group(1) if named else None))
    if version is None:
        raise Refused("cannot tell its upstream version; pass --version (a release X.Y.Z, or master@YYYY-MM-DD)")
    version = version.removeprefix("v")
    if not re.fullmatch(kind.versions, version):
        raise Refused(f"version {version} is not one this kind holds (expected /{kind.versions}/)")
    return version


def changed_paths(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ: `+`/`-` for added/removed keys, `~` for a changed value (a list whose
    length changed counts as one value)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            p = f"{path}/{k}"
            if k not in old:
                out.append(f"+ {p}")
            elif k not in new:
                out.append(f"- {p}")
            else:
                out += changed_paths(old[k], new[k], p)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):  # e.g. a CRD's one version
        return [c for i, (o, n) in enumerate(zip(old, new)) for c in changed_paths(o, n, f"{path}/{i}")]
    return [] if old == new else [f"~ {path or '/'}"]


# --------------------------------------------------------------------------- README table
def read_rows(readme: str) -> dict[str, list[str]]:
    """file -> [what, version, source, license, bytes, sha256] from the README's vendored table."""
    start, end = readme.index(BEGIN), readme.index(END)
    rows = {}
    for line in readme[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = [c.strip("`") for c in cells[1:]]
    return rows


def write_rows(readme: str, rows: dict[str, list[str]]) -> str:
    order = [k.file for k in KINDS.values()] + sorted(set(rows) - {k.file for k in KINDS.values()})
    body = "".join(f"| `{f}` | {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | `{r[5]}` |\n"
                   for f in order if (r := rows.get(f)))
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + HEAD + body + readme[end:]


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def refresh(kind_name: str, file: Path, given_version: str | None) -> list[str]:
    """Vendor FILE as KIND; returns the report lines. Raises Refused, having written nothing."""
    kind = KINDS[kind_name]
    doc = load(file)
    kind.check(doc)
    version = version_of(kind, doc, file, given_version)
    data = canonical(doc)
    dest = HERE / kind.file
    readme = README.read_text(encoding="utf-8")
    rows = read_rows(readme)
    old_version = rows.get(kind.file, ["", "(none)"])[1]
    rows[kind.file] = [kind.what, version, kind.source(version), kind.license, str(len(data)),
                       hashlib.sha256(data).hexdigest()]
    try:
        old = json.loads(dest.read_bytes())
    except (OSError, ValueError):  # none yet, or a broken one: everything counts as changed
        old = {}
    changes = changed_paths(old, doc)
    _write(dest, data)
    _write(README, write_rows(readme, rows).encode())
    shown = changes[:40] + ([f"... and {len(changes) - 40} more"] if len(changes) > 40 else [])
    return [f"{kind.file}: {old_version} -> {version}, {len(data)} bytes, sha256 {rows[kind.file][5]}",
            f"{len(changes)} JSON path(s) changed" + (":" if changes else ""), *(f"  {c}" for c in shown)] \
        if old else [f"{kind.file}: new, {version}, {len(data)} bytes, sha256 {rows[kind.file][5]}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="refresh.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", metavar="KIND", choices=sorted(KINDS), help="one of: " + ", ".join(sorted(KINDS)))
    ap.add_argument("file", metavar="FILE", type=Path, help="the upstream file (JSON, or YAML for a CRD)")
    ap.add_argument("--version", help="its upstream version (X.Y.Z or master@YYYY-MM-DD) if the file lacks it")
    args = ap.parse_args(argv)
    try:
        lines = refresh(args.kind, args.file, args.version)
    except Refused as e:
        where = f"{args.file}:{e.where}" if e.where else str(args.file)
        print(f"{where}: error: {e}; refused as {args.kind}, nothing written", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
