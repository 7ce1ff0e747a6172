"""Estimator parameters: the committed table is what the installed sklearn says, and validation uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlc.errors import SpecError
from mlc.spec import estimator_table
from mlc.spec.checks.params import _accepts
from mlc.spec.estimator_params import ESTIMATORS
from mlc.spec.loader import load_text
from mlc.spec.models import BUILTIN_ESTIMATORS
from mlc.spec.validate import validate_loaded

ROOT = Path(__file__).resolve().parents[2]
CHURN = (ROOT / "specs" / "churn" / "mlproject.yaml").read_text()
FOREST = "params: {n_estimators: 200, min_samples_leaf: 5}"


def test_the_committed_table_is_current() -> None:
    """Fails when sklearn or mlc's estimators change; fix with `python -m mlc.spec.estimator_table`."""
    fresh = estimator_table.render()
    committed = estimator_table.TARGET.read_text()
    assert estimator_table.comparable(committed) == estimator_table.comparable(fresh), (
        "compiler/mlc/spec/estimator_params.py is stale: run python -m mlc.spec.estimator_table"
    )
    assert estimator_table.main(["--check"]) == 0


def test_every_builtin_has_a_table_entry() -> None:
    builtin = {n for names in BUILTIN_ESTIMATORS.values() for n in names}
    assert builtin == set(ESTIMATORS["classification"]) | set(ESTIMATORS["regression"])
    assert "module" not in ESTIMATORS["classification"]["tabular_mlp"]["params"]  # internal to make_estimator


PROBES = [None, True, 0, 1, 2, 300, -1, 0.0, 0.5, 1.0, 2.5, float("inf")]
PROBES += ["300", "auto", "sqrt", "gini", "balanced", [1, 2], {}]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_table_agrees_with_sklearn_validation(task: str) -> None:
    """mlc rejects only what sklearn rejects, and accepts what sklearn accepts wherever it records a type.

    Two stricter verdicts are deliberate: true/false where a count is expected (YAML's `yes` is not a number),
    and a mapping where a list is expected (sklearn's array-like check lets it through; fitting fails)."""
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    from mlc.runtime.features import import_path

    checked = 0
    for name, entry in ESTIMATORS[task].items():
        cls = import_path(entry["class"])
        constraints = getattr(cls, "_parameter_constraints", None)
        if not constraints:
            continue
        for param, alts in entry["params"].items():
            for v in PROBES:
                try:
                    validate_parameter_constraints({param: constraints[param]}, {param: v}, cls.__name__)
                    sklearn_ok = True
                except InvalidParameterError:
                    sklearn_ok = False
                mlc_ok = any(_accepts(a, v) for a in alts)
                if not mlc_ok:
                    assert not sklearn_ok or isinstance(v, (bool, dict)), (name, param, v)
                elif all(a["type"] != "any" for a in alts):
                    assert sklearn_ok, (name, param, v)
                checked += 1
    assert checked > 1000


def _diags(text: str) -> list[dict]:
    with pytest.raises(SpecError) as e:
        validate_loaded(load_text(text, "mlproject.yaml"))
    return [d.to_json() for d in e.value.diagnostics]


def test_a_quoted_number() -> None:
    (d,) = _diags(CHURN.replace(FOREST, 'params: {n_estimators: "300"}'))
    assert (d["code"], d["path"]) == ("E225", "training.candidates[1].params.n_estimators")
    assert d["message"] == "expected an integer >= 1, got string '300'"
    assert d["hint"] == "write 300 without quotes: YAML reads a quoted number as text"


def test_an_unknown_name_and_a_misspelt_option() -> None:
    diags = _diags(CHURN.replace(FOREST, "params: {n_estimator: 200, criterion: ginni}"))
    assert [(d["code"], d["path"], d.get("hint")) for d in diags] == [
        ("E224", "training.candidates[1].params.n_estimator", "did you mean 'n_estimators'?"),
        ("E225", "training.candidates[1].params.criterion", "did you mean 'gini'?"),
    ]
    assert diags[0]["message"] == (
        "unknown parameter 'n_estimator' of random_forest (sklearn.ensemble.RandomForestClassifier)"
    )
    assert diags[1]["message"] == "expected one of 'entropy', 'gini', 'log_loss', got string 'ginni'"


def test_grid_keys_and_every_grid_value() -> None:
    diags = _diags(CHURN.replace("grid: {C: [0.1, 1.0]}", "grid: {C: [0.1, 0], Cs: [1]}"))
    assert [(d["code"], d["path"]) for d in diags] == [
        ("E225", "training.candidates[0].grid.C[1]"),
        ("E224", "training.candidates[0].grid.Cs"),
    ]
    assert diags[0]["message"] == "expected a number > 0, got integer 0"


def test_lightning_builtin_and_whole_numbers() -> None:
    diags = _diags(CHURN.replace("epochs: 15", "epochs: 15.0").replace("max_iter: 200}", "max_iter: 200.0}"))
    assert [(d["code"], d["path"], d["hint"]) for d in diags] == [
        ("E225", "training.candidates[2].params.max_iter", "write 200: max_iter takes a whole number"),
        ("E225", "training.candidates[3].params.epochs", "write 15: epochs takes a whole number"),
    ]


def test_an_estimator_without_a_version_for_the_task() -> None:
    text = (ROOT / "specs" / "delivery-eta" / "mlproject.yaml").read_text()
    assert "estimator: ridge" in text
    (d,) = _diags(text.replace("estimator: ridge", "estimator: logistic_regression", 1))
    assert d["code"] == "E226" and d["message"] == "'logistic_regression' has no regression version"


def test_import_paths_are_not_checked() -> None:
    text = CHURN.replace("estimator: random_forest", "estimator: sklearn.ensemble:ExtraTreesClassifier")
    spec = validate_loaded(load_text(text.replace(FOREST, "params: {anything: '300'}"), "mlproject.yaml"))
    assert spec.training.candidates[1].params == {"anything": "300"}


def test_validate_does_not_import_sklearn() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mlc.spec.validate import load_spec; "
        f"load_spec({str(ROOT / 'specs' / 'churn')!r}, data=True); print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
