"""Airflow backend without Airflow: the generated files are what `ruff format` writes and lint-clean, import
nothing of mlc, are byte-stable, and appear only where an environment's `targets` ask for them. Airflow itself
loads and runs them in tests/airflow."""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from planhelpers import EXAMPLE_ENVS, example_plan, with_secrets

from mlc import emit
from mlc.backends import airflow
from mlc.backends.pysrc import lit, render
from mlc.plan import StepResources, Storage, lower
from mlc.spec.validate import load_spec

ALLOWED_IMPORTS = {"__future__", "hashlib", "importlib", "json", "logging", "re", "datetime", "pendulum",
                   "airflow", "kubernetes"}


def variants() -> dict[str, object]:
    """The examples, plus what they do not exercise: manual approval, whole Secrets, a volume, a GPU."""
    plans = {f"{s}-{e}": example_plan(s, e) for s, e in EXAMPLE_ENVS}
    prod = example_plan("churn", "prod")
    gpu = tuple(dataclasses.replace(s, resources=StepResources("2", "4Gi", 1)) if s.kind == "train" else s
                for s in prod.pipelines[0].steps)
    plans["churn-prod-variant"] = dataclasses.replace(
        with_secrets(prod, (("api-keys", None), ("db", "PASSWORD"))), manual_approval=True,
        storage=Storage("/mnt/artifacts", None, None, "churn-artifacts"),
        pipelines=(dataclasses.replace(prod.pipelines[0], steps=gpu), *prod.pipelines[1:]))
    plans["churn-local-approval"] = dataclasses.replace(example_plan("churn", "local"), manual_approval=True)
    return plans


def write_all(tmp_path: Path) -> list[Path]:
    files = []
    for name, plan in variants().items():
        for o in airflow.build(plan):
            f = tmp_path / name / Path(o.path).name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(o.text)
            files.append(f)
    return files


def ruff() -> str:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(exe).exists():
        pytest.skip("ruff is not installed (it is in the dev extra)")
    return exe


def test_generated_python_is_ruff_formatted_and_lint_clean(tmp_path: Path) -> None:
    files = write_all(tmp_path)
    assert len(files) >= 14
    fmt = subprocess.run([ruff(), "format", "--isolated", "--check", "--diff", *map(str, files)],
                         capture_output=True, text=True, check=False)
    assert fmt.returncode == 0, fmt.stdout[-4000:] + fmt.stderr[-2000:]
    lint = subprocess.run([ruff(), "check", "--isolated", "--select", "E,F,W,I,UP,B", "--ignore", "E501",
                           *map(str, files)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout[-4000:]
    for f in files:  # only a string literal that cannot be split may pass the line length, as ruff leaves it
        for line in f.read_text().splitlines():
            if len(line) > 88:
                assert re.fullmatch(r"\s*(\w+=)?('[^']*'|\"[^\"]*\"),?", line), (f.name, line)


def test_dag_files_import_nothing_of_mlc_and_compile(tmp_path: Path) -> None:
    for f in write_all(tmp_path):
        tree = ast.parse(f.read_text(), str(f))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert {m.split(".")[0] for m in mods if m} <= ALLOWED_IMPORTS, (f, mods)
        compile(f.read_text(), str(f), "exec")


def test_variant_carries_secrets_volume_gpu_and_approval() -> None:
    plan = variants()["churn-prod-variant"]
    src = next(o.text for o in airflow.build(plan) if o.path.endswith("_train.py"))
    assert 'k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="api-keys"))' in src
    assert 'secret_key_ref=k8s.V1SecretKeySelector(\n' in src and '"db"' in src
    assert 'claim_name="churn-artifacts"' in src and 'mount_path="/mnt/artifacts"' in src
    assert '"nvidia.com/gpu": "1"' in src
    assert "gate >> approve\n    approve >> register\n" in src
    assert "ApprovalOperator(" in src


def test_output_is_byte_stable_and_names_follow_the_plan() -> None:
    sf = load_spec(Path(__file__).resolve().parents[2] / "specs" / "churn")
    a = airflow.build(lower(sf.spec, sf.text, "staging", image="img:1"))
    b = airflow.build(lower(sf.spec, sf.text, "staging", image="img:1"))
    assert [(o.path, o.text) for o in a] == [(o.path, o.text) for o in b]
    assert [o.path for o in a] == ["airflow/dag_churn_train.py", "airflow/dag_churn_monitor.py",
                                   "airflow/dag_churn_batch.py"]
    assert all(not o.resource and o.obj is None for o in a)
    plan = example_plan("delivery-eta", "prod")
    assert airflow.dag_path(plan, plan.pipelines[0]) == "airflow/dag_delivery_eta_train.py"
    assert airflow.dag_id(plan, plan.pipelines[0]) == "delivery-eta-train-prod"
    assert airflow.spec_variable(plan) == "mlc_spec_delivery_eta"


def test_targets_choose_the_workflow_backends() -> None:
    plan = example_plan("churn", "staging")
    assert plan.targets == ("argo", "kfp", "airflow")
    tops = {o.path.split("/")[0] for o in emit.build(plan)}
    assert {"argo", "kfp", "airflow", "core", "kserve"} <= tops
    only = {o.path.split("/")[0] for o in emit.build(dataclasses.replace(plan, targets=("airflow",)))}
    assert "airflow" in only and not only & {"argo", "kfp"} and "core" in only
    default = {o.path.split("/")[0] for o in emit.build(dataclasses.replace(plan, targets=("argo", "kfp")))}
    assert "airflow" not in default and {"argo", "kfp"} <= default


def test_the_default_is_unchanged_without_targets() -> None:
    golden = Path(__file__).resolve().parents[1] / "golden" / "compile" / "churn"
    assert "targets" not in (golden / "mlproject.yaml").read_text()
    sf = load_spec(golden / "mlproject.yaml")
    plan = lower(sf.spec, sf.text, "staging", image="img:1")
    assert plan.targets == ("argo", "kfp")
    assert not list((golden / "expected").rglob("airflow"))


@pytest.mark.parametrize("s", ["plain", 'with "double" quotes', "it's", "both ' and \"", "back\\slash\n\t",
                               "caf\u00e9 \U0001f600", "{{ run_id | mlc_run_id }}"])
def test_string_literals_round_trip(s: str) -> None:
    text = lit(s)
    assert ast.literal_eval(text) == s and text.isascii()


def test_render_splits_only_what_does_not_fit() -> None:
    assert render({"a": 1}, prefix="X = ") == 'X = {"a": 1}'
    long = render({f"key{i}": "v" * 10 for i in range(6)}, prefix="X = ")
    assert long.splitlines()[0] == "X = {" and long.splitlines()[-1] == "}" and long.count(",\n") == 6


def test_check_ignores_the_bytecode_airflow_leaves_beside_the_dag_files(tmp_path: Path) -> None:
    """A DAG folder pointed at generated/ gets __pycache__/ from every import; --check must still pass."""
    spec = tmp_path / "specs" / "churn"
    shutil.copytree(Path(__file__).resolve().parents[2] / "specs" / "churn", spec,
                    ignore=shutil.ignore_patterns(".mlc", "data"))
    shutil.copytree(Path(__file__).resolve().parents[2] / "specs" / "churn" / "data", spec / "data")
    out = tmp_path / "out"
    assert emit.compile_command([str(spec)], str(out), ("staging",), None, False) == 0
    cache = out / "churn" / "staging" / "airflow" / "__pycache__"
    cache.mkdir()
    (cache / "dag_churn_train.cpython-311.pyc").write_bytes(b"\0")
    assert emit.compile_command([str(spec)], str(out), ("staging",), None, True) == 0
    (out / "churn" / "staging" / "airflow" / "stray.py").write_text("x = 1\n")  # anything else still fails it
    assert emit.compile_command([str(spec)], str(out), ("staging",), None, True) == 1
