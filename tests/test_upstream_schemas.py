"""The vendored upstream schemas (schemas/upstream/): each is what its README row says (size, sha256, version),
is the real kind of schema it is named for, and the refresh script reproduces it byte for byte and refuses a
file of the wrong kind. Nothing in the project reads a folder outside the repository for them."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from crdschema import ARGO_SCHEMAS, REPO, UPSTREAM, argo_schema, upstream

from mlc.cluster.objects import ARGO_RELEASES


def _refresh_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("upstream_refresh", UPSTREAM / "refresh.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


R = _refresh_module()
ROWS = R.read_rows((UPSTREAM / "README.md").read_text(encoding="utf-8"))
FILES = sorted(p.name for p in UPSTREAM.glob("*.json"))
KIND_OF = {k.file: name for name, k in R.KINDS.items()}


def test_every_vendored_file_has_a_row_and_every_row_a_file() -> None:
    assert FILES and set(ROWS) == set(FILES) == set(KIND_OF)


@pytest.mark.parametrize("name", FILES)
def test_readme_sha256_and_size_match_the_file(name: str) -> None:
    data = (UPSTREAM / name).read_bytes()
    _what, _version, _source, license_, size, sha = ROWS[name]
    assert sha == hashlib.sha256(data).hexdigest(), f"{name} changed without its README row (run refresh.py)"
    assert int(size) == len(data)
    assert license_ == R.KINDS[KIND_OF[name]].license


@pytest.mark.parametrize("name", FILES)
def test_each_file_is_the_kind_of_schema_it_is_named_for_and_canonical(name: str) -> None:
    kind = R.KINDS[KIND_OF[name]]
    data = (UPSTREAM / name).read_bytes()
    doc = json.loads(data)
    kind.check(doc)  # raises Refused for the wrong kind
    assert R.canonical(doc) == data, "not in refresh.py's canonical form"
    version = ROWS[name][1]
    assert re.fullmatch(kind.versions, version)
    assert ROWS[name][2] == kind.source(version)


def test_argo_schemas_are_the_releases_mlc_apply_installs() -> None:
    assert {line: ROWS[file][1] for line, file in ARGO_SCHEMAS.items()} == ARGO_RELEASES
    assert argo_schema("3.7") == argo_schema(ARGO_RELEASES["3.7"]) == UPSTREAM / ARGO_SCHEMAS["3.7"]
    assert argo_schema("4") == argo_schema(ARGO_RELEASES["4"]) == UPSTREAM / ARGO_SCHEMAS["4"]
    with pytest.raises(KeyError, match="no vendored Argo Workflows schema"):
        argo_schema("3.6")
    with pytest.raises(FileNotFoundError, match="no such vendored schema"):
        upstream("argo-workflows-v3.7.18.schema.json")


def test_the_prometheusrule_version_is_the_one_the_crd_declares() -> None:
    name = R.KINDS["prometheusrule"].file
    doc = json.loads(upstream(name).read_bytes())
    assert ROWS[name][1] == doc["metadata"]["annotations"]["operator.prometheus.io/version"]


# --------------------------------------------------------------------------- refresh.py, run as a user would
@pytest.fixture
def copy_dir(tmp_path: Path) -> Path:
    """A copy of schemas/upstream/: the script writes next to itself, so the copy is what it changes."""
    d = tmp_path / "upstream"
    shutil.copytree(UPSTREAM, d)
    return d


def _run(d: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(d / "refresh.py"), *map(str, args)], capture_output=True,
                          text=True, check=False)


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_refresh_from_an_indented_copy_of_the_same_file_changes_nothing(copy_dir: Path, tmp_path: Path) -> None:
    name = R.KINDS["prometheusrule"].file
    before = _snapshot(copy_dir)
    src = tmp_path / "monitoring.coreos.com_prometheusrules.json"
    src.write_text(json.dumps(json.loads(before[name]), indent=4))  # key order as upstream, not sorted
    res = _run(copy_dir, "prometheusrule", src)
    assert res.returncode == 0, res.stderr
    assert "0 JSON path(s) changed" in res.stdout
    assert _snapshot(copy_dir) == before


def test_refresh_from_yaml_updates_the_row_and_reports_what_changed(copy_dir: Path, tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    name = R.KINDS["prometheusrule"].file
    doc = json.loads((copy_dir / name).read_bytes())
    doc["metadata"]["annotations"]["operator.prometheus.io/version"] = "0.94.0"
    doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["newField"] = {
        "type": "string"}
    src = tmp_path / "monitoring.coreos.com_prometheusrules.yaml"
    src.write_text("---\n" + yaml.safe_dump(doc))
    res = _run(copy_dir, "prometheusrule", src)
    assert res.returncode == 0, res.stderr
    assert "0.93.0 -> 0.94.0" in res.stdout
    assert "2 JSON path(s) changed:" in res.stdout
    assert "~ /metadata/annotations/operator.prometheus.io/version" in res.stdout
    assert "+ /spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/newField" in res.stdout
    data = (copy_dir / name).read_bytes()
    assert json.loads(data) == doc
    row = R.read_rows((copy_dir / "README.md").read_text())[name]
    assert row[1:] == ["0.94.0", R.KINDS["prometheusrule"].source("0.94.0"), "Apache-2.0", str(len(data)),
                       hashlib.sha256(data).hexdigest()]
    assert "/blob/v0.94.0/" in row[2]
    rest = {k: v for k, v in R.read_rows((copy_dir / "README.md").read_text()).items() if k != name}
    assert rest == {k: v for k, v in ROWS.items() if k != name}


@pytest.mark.parametrize(("kind", "source", "message"), [
    ("argo-4", "argo-workflows-3.7.schema.json", "this is Argo Workflows 3.x's schema"),
    ("argo-3.7", "argo-workflows-4.schema.json", "this is Argo Workflows 4.x's schema"),
    ("argo-3.7", "kserve-inferenceservices.crd.json", "not a JSON Schema document"),
    ("kserve-inferenceservice", "prometheus-operator-prometheusrules.crd.json",
     "the CRD of PrometheusRule (monitoring.coreos.com), not of InferenceService (serving.kserve.io)"),
    ("prometheusrule", "argo-workflows-4.schema.json", "not an apiextensions.k8s.io/v1 CustomResourceDefinition"),
])
def test_refresh_refuses_the_wrong_kind_of_schema(copy_dir: Path, kind: str, source: str, message: str) -> None:
    before = _snapshot(copy_dir)
    res = _run(copy_dir, kind, copy_dir / source)
    assert res.returncode == 1
    assert message in res.stderr and f"refused as {kind}, nothing written" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert _snapshot(copy_dir) == before


def test_refresh_refuses_broken_input_with_its_position(copy_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "schema.json"
    bad.write_text('{\n  "definitions": {,\n}')
    res = _run(copy_dir, "argo-4", bad)
    assert res.returncode == 1 and res.stderr.startswith(f"{bad}:2:19: error: not valid JSON")
    res = _run(copy_dir, "argo-4", tmp_path / "missing.json")
    assert res.returncode == 1 and "cannot read it" in res.stderr and "Traceback" not in res.stderr
    # the Argo schema names no version: without --version or a vX.Y.Z file name it cannot be recorded
    plain = tmp_path / "schema.json"
    shutil.copy(copy_dir / ARGO_SCHEMAS["4"], plain)
    res = _run(copy_dir, "argo-4", plain)
    assert res.returncode == 1 and "pass --version" in res.stderr
    res = _run(copy_dir, "argo-4", plain, "--version", "3.7.19")
    assert res.returncode == 1 and "version 3.7.19 is not one this kind holds" in res.stderr
    res = _run(copy_dir, "argo-4", plain, "--version", "v4.1.2")
    assert res.returncode == 0 and "4.1.2 -> 4.1.2" in res.stdout
    res = _run(copy_dir, "nonsense", plain)
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_nothing_reads_the_schemas_from_outside_the_repository() -> None:
    """The schemas once came from ``<repo>/../shared/crds``, which a user's clone does not have."""
    needles = ("shared/crds", '"shared" / "crds"', "'shared' / 'crds'")
    files = [REPO / "Makefile", *REPO.glob(".ci/*")]
    for top in ("compiler", "tests", "benchmarks"):
        files += (REPO / top).rglob("*.py")
    files = [f for f in files if f.is_file() and f != Path(__file__).resolve()]
    hits = [f"{f.relative_to(REPO)}: {n}" for f in files
            for n in needles if n in f.read_text(encoding="utf-8", errors="replace")]
    assert hits == []
