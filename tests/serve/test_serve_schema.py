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


@pytest.mark.parametrize(("change", "check", "message"), [
    ({"tenure_months": "3"}, "type", "column 'tenure_months': expected an integer, got a string \"3\""),
    ({"tenure_months": 3.5}, "type", "column 'tenure_months': expected an integer, got a number 3.5"),
    ({"tenure_months": True}, "type", "column 'tenure_months': expected an integer, got a boolean true"),
    ({"plan_price": "cheap"}, "type", "column 'plan_price': expected a number, got a string \"cheap\""),
    ({"plan": "gold"}, "allowed",
     "column 'plan': 'gold' is not an allowed value (expected one of basic, standard, premium)"),
    ({"region": None}, "nullable", "column 'region': null is not allowed (the column is not nullable)"),
    ({"plan": 3}, "type", "column 'plan': expected a string, got an integer 3"),
    ({"tenure_months": 121}, "range", "column 'tenure_months': 121 is outside the schema's range [0, 120]"),
    ({"plan_price": -1.5}, "range", "column 'plan_price': -1.5 is outside the schema's range [0, inf]"),
])
def test_row_value_errors(schema: Schema, change: dict, check: str, message: str) -> None:
    e = err(schema.row, {**ROW, **change})
    assert e.status == 422
    assert e.message == message
    column = next(iter(change))
    assert e.body() == {"error": message, "problems": [{"column": column, "row": None, "check": check,
                                                        "message": message}], "problems_omitted": 0}


def test_every_problem_of_a_row_at_once_in_schema_order(schema: Schema) -> None:
    """Missing, unknown, wrong type, null, not allowed and out of range together, as `mlc validate` reports
    every error at once; request order does not matter, the schema's does."""
    row = {"customer_id": "C1", "region": None, **{k: v for k, v in ROW.items() if k not in ("plan", "region")},
           "tenure_months": "3", "plan_price": -2.0, "age_group": "90+", "Plan": "basic"}
    e = err(schema.row, row)
    assert e.status == 422
    assert [(p["column"], p["check"]) for p in e.problems] == [
        ("tenure_months", "type"), ("plan", "missing"), ("plan_price", "range"), ("region", "nullable"),
        ("age_group", "allowed"), ("Plan", "unknown"), ("customer_id", "unknown")]
    assert all(p["row"] is None for p in e.problems)
    by = {p["column"]: p["message"] for p in e.problems}
    assert by["Plan"] == "column 'Plan': not an input of the model (did you mean 'plan'?)"
    assert by["customer_id"].startswith("column 'customer_id': not an input of the model (it takes tenure_months, ")
    assert by["plan"] == "column 'plan': missing (the model needs every input column)"
    assert e.message.startswith("7 problems: column 'tenure_months': expected an integer")
    assert all(p["message"] in e.message for p in e.problems)
    assert e.omitted == 0


def test_many_problems_are_capped_and_counted(schema: Schema) -> None:
    from mlc.serve.schema import MAX_PROBLEMS, SUMMARY_PROBLEMS

    rows = [{**ROW, "plan": "gold", "region": "mars"}] * 80  # 160 problems
    e = err(schema.rows, rows)
    assert len(e.problems) == MAX_PROBLEMS and e.omitted == 160 - MAX_PROBLEMS
    assert [(p["row"], p["column"]) for p in e.problems[:4]] == [(0, "plan"), (0, "region"), (1, "plan"),
                                                                 (1, "region")]
    assert e.message.startswith("160 problems: column 'plan' row 0: 'gold' is not an allowed value")
    assert e.message.endswith(f"; and {160 - SUMMARY_PROBLEMS} more")


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
    req["inputs"][0]["data"].append({k: v for k, v in ROW.items() if k != "plan"})
    req["inputs"][0]["shape"] = [3]
    e = err(schema.v2, req)
    assert e.status == 422
    assert [(p["row"], p["column"], p["check"]) for p in e.problems] == [(1, "region", "allowed"),
                                                                         (2, "plan", "missing")]
    assert e.problems[0]["message"] == ("column 'region' row 1: 'mars' is not an allowed value (expected one of "
                                        "north, south, east, west)")


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
    assert e.status == 422
    assert e.message == "column 'tenure_months': datatype BYTES does not fit a integer column; use INT64"

    req = v2([ROW])
    req["inputs"][4]["data"] = [None]
    e = err(schema.v2, req)
    assert e.status == 422 and "column 'plan_price' row 0: null is not allowed" in e.message

    req = v2([ROW])
    req["inputs"].pop(1)
    assert err(schema.v2, req).message == "column 'monthly_usage_hours': missing (the model needs every input column)"

    assert err(schema.v2, {"inputs": []}).status == 400
    assert err(schema.v2, {"nothing": 1}).status == 400
    assert err(schema.v2, [1, 2]).status == 400


def test_v2_every_problem_at_once(schema: Schema) -> None:
    """Column tensors: a wrong datatype, a missing and an unknown tensor, and bad cells in several rows and
    columns, all in one 422; request-wide problems first, then by row, then by column."""
    rows = [ROW, {**ROW, "tenure_months": -1, "plan": "gold"}, {**ROW, "region": None, "plan_price": "9"}]
    req = v2(rows)
    req["inputs"][5]["datatype"] = "FP64"  # support_tickets is an integer column
    req["inputs"].pop(7)  # age_group
    req["inputs"].append({"name": "extra", "datatype": "INT64", "shape": [3], "data": [1, 2, 3]})
    e = err(schema.v2, req)
    assert e.status == 422
    assert [(p["row"], p["column"], p["check"]) for p in e.problems] == [
        (None, "support_tickets", "datatype"), (None, "age_group", "missing"), (None, "extra", "unknown"),
        (1, "tenure_months", "range"), (1, "plan", "allowed"), (2, "plan_price", "type"), (2, "region", "nullable")]
    assert e.body()["problems_omitted"] == 0


def test_good_requests_take_the_strict_pass_unchanged(schema: Schema) -> None:
    """The two-pass design must not change what a good request decodes to."""
    rows = [ROW, {**ROW, "plan": "premium", "tenure_months": 40.0, "plan_price": 10}]
    cols, n = schema.v2(v2(rows))
    assert n == 2 and cols == schema.rows(rows)
    assert cols["tenure_months"] == [3, 40] and type(cols["tenure_months"][1]) is int
    assert cols["plan_price"] == [9.99, 10.0] and type(cols["plan_price"][1]) is float


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
