"""Request decoding against the churn schema: every rejection is a 4xx with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlc.plan import lower
from mlc.serve.model import ServedModel
from mlc.serve.schema import InputError, Schema
from mlc.spec.validate import load_spec

CHURN = Path(__file__).resolve().parents[2] / "specs" / "churn"

ROW = {"tenure_months": 3, "monthly_usage_hours": 10.5, "last_contact_days": None, "plan": "basic",
       "plan_price": 9.99, "support_tickets": 2, "region": "north", "age_group": "25-34"}


@pytest.fixture(scope="module")
def plan():
    sf = load_spec(CHURN)
    return lower(sf.spec, sf.text, "local")


@pytest.fixture(scope="module")
def schema(plan) -> Schema:
    return Schema(plan.inputs)


def err(fn, *a) -> InputError:
    with pytest.raises(InputError) as e:
        fn(*a)
    return e.value


def test_row_ok_and_types_normalised(schema: Schema) -> None:
    cols = schema.row({**ROW, "plan_price": 10, "tenure_months": 3.0})
    assert cols["plan_price"] == [10.0] and type(cols["plan_price"][0]) is float
    assert cols["tenure_months"] == [3] and type(cols["tenure_months"][0]) is int
    assert list(cols) == list(schema.names)


@pytest.mark.parametrize(("change", "status", "needle"), [
    ({"tenure_months": "3"}, 422, "column 'tenure_months': expected an integer, got a string \"3\""),
    ({"tenure_months": 3.5}, 422, "expected an integer, got a number 3.5"),
    ({"tenure_months": True}, 422, "expected an integer, got a boolean"),
    ({"plan_price": "cheap"}, 422, "column 'plan_price': expected a number"),
    ({"plan": "gold"}, 422, "column 'plan': 'gold' is not an allowed value; expected one of basic, standard, premium"),
    ({"region": None}, 422, "column 'region': null is not allowed"),
    ({"plan": 3}, 422, "column 'plan': expected a string, got an integer 3"),
    ({"tenure_months": 121}, 422, "column 'tenure_months': 121 is outside the schema's range [0, 120]"),
    ({"plan_price": -1.5}, 422, "column 'plan_price': -1.5 is outside the schema's range [0, inf]"),
])
def test_row_value_errors(schema: Schema, change: dict, status: int, needle: str) -> None:
    e = err(schema.row, {**ROW, **change})
    assert e.status == status
    assert needle in e.message


def test_missing_and_unknown_columns_named_together(schema: Schema) -> None:
    row = {k: v for k, v in ROW.items() if k not in ("plan", "region")}
    row["customer_id"] = "C1"
    e = err(schema.row, row)
    assert e.status == 422
    assert "missing columns 'plan', 'region'" in e.message
    assert "unknown column 'customer_id'" in e.message


def test_nullable_columns_take_null(schema: Schema) -> None:
    assert schema.row({**ROW, "age_group": None, "monthly_usage_hours": None})["age_group"] == [None]


def test_body_not_an_object(schema: Schema) -> None:
    assert err(schema.row, [ROW]).status == 400


def v2(rows: list[dict], nested: bool = False) -> dict:
    dt = {"integer": "INT64", "float": "FP64"}
    return {"inputs": [{"name": k, "datatype": dt.get(t, "BYTES"), "shape": [len(rows), 1] if nested else [len(rows)],
                        "data": [[r[k]] for r in rows] if nested else [r[k] for r in rows]}
                       for k, t in (("tenure_months", "integer"), ("monthly_usage_hours", "float"),
                                    ("last_contact_days", "integer"), ("plan", "category"), ("plan_price", "float"),
                                    ("support_tickets", "integer"), ("region", "category"),
                                    ("age_group", "category"))]}


def test_v2_columns_flat_and_nested(schema: Schema) -> None:
    rows = [ROW, {**ROW, "plan": "premium", "tenure_months": 40}]
    for nested in (False, True):
        cols, n = schema.v2(v2(rows, nested))
        assert n == 2
        assert cols["plan"] == ["basic", "premium"] and cols["tenure_months"] == [3, 40]


def test_v2_rows_content_type(schema: Schema) -> None:
    import json

    req = {"inputs": [{"name": "rows", "datatype": "BYTES", "shape": [2], "parameters": {"content_type": "json"},
                       "data": [json.dumps(ROW), {**ROW, "region": "west"}]}]}
    cols, n = schema.v2(req)
    assert n == 2 and cols["region"] == ["north", "west"]
    req["inputs"][0]["data"][1] = {**ROW, "region": "mars"}
    e = err(schema.v2, req)
    assert e.status == 422 and "column 'region' row 1: 'mars' is not an allowed value" in e.message


def test_v2_errors(schema: Schema) -> None:
    req = v2([ROW, ROW])
    req["inputs"][3]["data"] = ["basic"]
    req["inputs"][3]["shape"] = [1]
    e = err(schema.v2, req)
    assert e.status == 400 and "input 'plan' has 1 rows but 'tenure_months' has 2" in e.message

    req = v2([ROW])
    req["inputs"][0]["shape"] = [3]
    e = err(schema.v2, req)
    assert e.status == 400 and "shape [3] says 3 values but 'data' holds 1" in e.message

    req = v2([ROW])
    req["inputs"][0]["shape"] = [1, 2]
    assert "is not [N] or [N, 1]" in err(schema.v2, req).message

    req = v2([ROW])
    req["inputs"][0]["datatype"] = "BYTES"
    e = err(schema.v2, req)
    assert e.status == 422 and "datatype BYTES does not fit a integer column; use INT64" in e.message

    req = v2([ROW])
    req["inputs"][4]["data"] = [None]
    e = err(schema.v2, req)
    assert e.status == 422 and "column 'plan_price' row 0: null is not allowed" in e.message

    req = v2([ROW])
    req["inputs"].pop(1)
    assert "missing column 'monthly_usage_hours'" in err(schema.v2, req).message

    assert err(schema.v2, {"inputs": []}).status == 400
    assert err(schema.v2, {"nothing": 1}).status == 400
    assert err(schema.v2, [1, 2]).status == 400


def test_frame_dtypes_match_training_cast(plan) -> None:
    """Serving frames must have the dtypes `mlc run` trained on (runtime.data.cast_frame)."""
    import pandas as pd

    from mlc.runtime.data import cast_frame

    sf = load_spec(CHURN)
    schema = Schema(plan.inputs)
    model = ServedModel("m", "1", "classification", schema)
    rows = [ROW, {**ROW, "last_contact_days": 12, "age_group": None}]
    served = model.frame(schema.rows(rows))
    raw = pd.DataFrame([{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]).replace({"": None})
    trained, _, _ = cast_frame(raw, {c.name: sf.spec.data.schema_[c.name] for c in plan.inputs})
    assert served.dtypes.to_dict() == trained.dtypes.to_dict()
    pd.testing.assert_frame_equal(served, trained, check_dtype=True)
