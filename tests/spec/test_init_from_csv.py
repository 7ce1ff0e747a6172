"""`mlc init DIR --from-csv FILE --target COLUMN`: the inferred spec validates, matches what a careful person
wrote by hand for the bundled examples, handles the nasty cases of real CSV files one by one, and bad input is
an error with exit 1 that leaves nothing behind."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from mlc import infer
from mlc.cli import main
from mlc.spec.validate import load_spec

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers
def write(path: Path, rows: list[list[object]], delimiter: str = ",", bom: bool = False,
          encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode(encoding))
    return path


def frame(n: int, seed: int = 0, **extra: list[object]) -> list[list[object]]:
    """A small classification table with signal: x and flag drive the label; extra columns are appended."""
    r = random.Random(seed)
    header = ["x", "label", *extra]
    rows: list[list[object]] = [header]
    for i in range(n):
        x = r.gauss(0, 1)
        rows.append([f"{x:.4f}", "yes" if x + r.gauss(0, 0.7) > 0.6 else "no", *(v[i] for v in extra.values())])
    return rows


def init(tmp: Path, csv_path: Path, target: str = "label", *args: str) -> tuple[int, str, str]:
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["init", str(tmp / "proj"), "--from-csv", str(csv_path), "--target", target, *args])
    return code, out.getvalue(), err.getvalue()


def spec_of(tmp: Path) -> dict:
    return yaml.safe_load((tmp / "proj" / "mlproject.yaml").read_text())


def column_comment(tmp: Path, column: str) -> str:
    """The comment line written above a schema column."""
    lines = (tmp / "proj" / "mlproject.yaml").read_text().splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.strip().startswith(f"{column}: {{type:")
             or ln.strip().startswith(f'"{column}": {{type:'))
    return lines[i - 1].strip()


def group_of(spec: dict, column: str) -> dict:
    return next(g for g in spec["features"] if column in g["columns"])


def ok(tmp: Path, csv_path: Path, target: str = "label", *args: str) -> dict:
    code, _, err = init(tmp, csv_path, target, *args)
    assert code == 0, err
    assert main(["validate", str(tmp / "proj")]) == 0
    return spec_of(tmp)


_EXAMPLES = {"churn": ("data/customers.csv", "churned"), "delivery-eta": ("data/orders.csv", "delivery_minutes")}


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each bundled example inferred once for the module (the tests only read the result)."""
    out = {}
    for name, (source, target) in _EXAMPLES.items():
        tmp = tmp_path_factory.mktemp(name)
        ok(tmp, REPO / "specs" / name / source, target)
        out[name] = tmp
    return out


# ----------------------------------------------------------------------------- the bundled examples
@pytest.mark.parametrize("example", sorted(_EXAMPLES))
def test_examples_round_trip_to_their_hand_written_schema(examples: dict[str, Path], example: str) -> None:
    tmp_path, source = examples[example], _EXAMPLES[example][0]
    hand = load_spec(REPO / "specs" / example).spec
    spec = spec_of(tmp_path)
    inferred = load_spec(tmp_path / "proj").spec
    assert {k: (c.type, c.nullable) for k, c in inferred.data.schema_.items()} == {
        k: (c.type, c.nullable) for k, c in hand.data.schema_.items()}
    assert inferred.data.label.task == hand.data.label.task
    assert inferred.data.label.positive == hand.data.label.positive
    assert inferred.data.entity == hand.data.entity
    assert inferred.data.split.strategy == hand.data.split.strategy
    assert inferred.data.split.time_column == hand.data.split.time_column
    # the same columns reach the model as in the hand-written spec
    used = lambda s: sorted(c for f in s.features if f.type != "drop" for c in f.columns)
    assert used(inferred) == used(hand)
    # the data was copied and pinned by content
    copied = tmp_path / "proj" / "data" / Path(source).name
    assert copied.read_bytes() == (REPO / "specs" / example / source).read_bytes()
    assert spec["data"]["sources"][0]["pin"]["sha256"] == hashlib.sha256(copied.read_bytes()).hexdigest()


def test_churn_bounds_and_categories_are_exact(examples: dict[str, Path]) -> None:
    schema = spec_of(examples["churn"])["data"]["schema"]
    assert schema["tenure_months"] == {"type": "integer", "nullable": False, "min": 0, "max": 120}
    assert schema["plan"]["allowed"] == ["basic", "premium", "standard"]
    assert schema["age_group"]["allowed"] == ["18-24", "25-34", "35-44", "45-54", "55+"]
    assert schema["customer_id"]["unique"] is True
    assert "2.0% null" in column_comment(examples["churn"], "age_group")


def test_every_inferred_choice_has_a_comment(examples: dict[str, Path]) -> None:
    text = (examples["churn"] / "proj" / "mlproject.yaml").read_text()
    lines = text.splitlines()
    start, end = lines.index("  schema:"), lines.index("  checks:")
    entries = [ln for ln in lines[start + 1:end] if not ln.strip().startswith("#")]
    assert len(entries) == 11
    assert all(lines[lines.index(e) - 1].strip().startswith("# ") for e in entries)
    checks = lines[end + 1:lines.index("  label:")]
    assert checks and all("   # " in ln for ln in checks)
    assert "# 'yes' names the event (18.3% of labelled rows)" in text
    assert "not in file order: no time split" in text  # signup_date


def test_output_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = REPO / "specs/delivery-eta/data/orders.csv"
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        monkeypatch.chdir(d)
        assert init(Path("."), src, "delivery_minutes")[0] == 0
    assert (a / "proj/mlproject.yaml").read_bytes() == (b / "proj/mlproject.yaml").read_bytes()


# ----------------------------------------------------------------------------- nasty files
def test_bom_semicolons_and_quoted_newlines(tmp_path: Path) -> None:
    n = 200
    rows = frame(n, note=[f"line one; {i}\nline two" for i in range(n)], city=[("Paris", "Lyon")[i % 2] for i in range(n)])
    src = write(tmp_path / "eu.csv", rows, delimiter=";", bom=True)
    code, out, _ = init(tmp_path, src)
    assert code == 0
    assert "comma-separated UTF-8 copy" in out
    spec = spec_of(tmp_path)
    assert list(spec["data"]["schema"]) == ["x", "label", "note", "city"]  # the BOM is not in the first name
    copy = tmp_path / "proj" / "data" / "eu.csv"
    with copy.open(newline="", encoding="utf-8") as fh:
        back = list(csv.reader(fh))
    assert back == [[str(v) for v in r] for r in rows]  # same records, commas, the newline kept in its field
    assert not copy.read_bytes().startswith(b"\xef\xbb\xbf")
    assert spec["data"]["sources"][0]["pin"]["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert "(semicolon-separated, UTF-8 with a BOM)" in (tmp_path / "proj/mlproject.yaml").read_text()
    assert main(["validate", str(tmp_path / "proj")]) == 0


@pytest.mark.parametrize("delimiter, name", [("\t", "tab"), ("|", "pipe"), (",", "comma")])
def test_delimiters_are_sniffed(tmp_path: Path, delimiter: str, name: str) -> None:
    src = write(tmp_path / "d.txt", frame(50, a=["1,5" if delimiter != "," else "1"] * 50))
    src = write(tmp_path / "d.txt", frame(50, a=[f"v{i % 3}" for i in range(50)]), delimiter=delimiter)
    assert infer.sniff(src)[0].delimiter == delimiter
    spec = ok(tmp_path, src)
    assert list(spec["data"]["schema"]) == ["x", "label", "a"]
    assert f"({name}-separated, UTF-8)" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_all_null_column_is_dropped(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, gone=["", "NA", "null", "n/a"] * 25)))
    assert spec["data"]["schema"]["gone"] == {"type": "string"}
    assert group_of(spec, "gone")["type"] == "drop"
    assert column_comment(tmp_path, "gone") == "# no values in 100 rows"


def test_numbers_stored_as_padded_or_decimal_strings(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(200, padded=[f"  {i % 100} " for i in range(200)],
                                                         whole=[f"{i % 7}.0" for i in range(200)])))
    schema = spec["data"]["schema"]
    assert schema["padded"] == {"type": "integer", "nullable": False, "min": 0, "max": 99}
    assert schema["whole"] == {"type": "integer", "nullable": False, "min": 0, "max": 6}
    assert "written as decimals" in column_comment(tmp_path, "whole")
    assert group_of(spec, "padded")["type"] == "numeric"


def test_thousands_separators_are_text_with_the_fix(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, amount=[f"{1000 + 37 * i:,}" for i in range(100)])))
    assert spec["data"]["schema"]["amount"]["type"] == "string"
    assert "thousands separators" in column_comment(tmp_path, "amount")
    assert group_of(spec, "amount")["type"] == "drop"
    assert "without thousands separators" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_decimal_commas_are_text_with_the_fix(tmp_path: Path) -> None:
    src = write(tmp_path / "f.csv", frame(60, w=[f"{i % 9},{i % 4}5" for i in range(60)]), delimiter=";")
    spec = ok(tmp_path, src)
    assert spec["data"]["schema"]["w"]["type"] == "string"
    assert "decimal commas ('0,05', '1,15')" in column_comment(tmp_path, "w")
    assert "write decimals with a point" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_mostly_numeric_with_text_is_a_string(tmp_path: Path) -> None:
    vals = [str(i % 50) if i % 20 else "unknown" for i in range(200)]
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(200, mixed=vals)))
    assert spec["data"]["schema"]["mixed"]["type"] == "string"
    assert "95% numbers, the rest text ('unknown')" in column_comment(tmp_path, "mixed")
    assert group_of(spec, "mixed")["type"] == "drop"


def test_single_valued_column_is_dropped(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, country=["FR"] * 100)))
    assert group_of(spec, "country")["type"] == "drop"
    assert column_comment(tmp_path, "country") == "# one value ('FR') in every row"


def test_ten_thousand_categories_are_not_one_hot(tmp_path: Path) -> None:
    n = 30_000
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(n, shop=[f"s{i % 10_000}" for i in range(n)])))
    assert spec["data"]["schema"]["shop"] == {"type": "string", "nullable": False}
    g = group_of(spec, "shop")
    assert (g["type"], g["encode"]) == ("categorical", "ordinal")
    assert "10000 values: too many for one-hot" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_few_and_some_categories_are_one_hot(tmp_path: Path) -> None:
    n = 400
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(n, few=[("a", "b", "")[i % 3] for i in range(n)],
                                                         some=[f"c{i % 60}" for i in range(n)])))
    schema = spec["data"]["schema"]
    assert schema["few"] == {"type": "category", "allowed": ["a", "b"]}  # nullable: it has gaps
    assert schema["some"] == {"type": "category", "nullable": False}  # too many values to list
    g = group_of(spec, "few")
    assert (g["type"], g["encode"], g["max_categories"]) == ("categorical", "onehot", 20)
    assert group_of(spec, "some") is g


def test_id_like_columns(tmp_path: Path) -> None:
    n = 100
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(
        n, order_no=[f"O-{i:05d}" for i in range(n)], row=[str(i + 1) for i in range(n)],
        comment=[f"said thing {i}" for i in range(n)], amount=[str(1000 + 7 * i) for i in range(n)])))
    assert spec["data"]["entity"] == "order_no"
    assert spec["data"]["schema"]["order_no"] == {"type": "string", "nullable": False, "unique": True}
    assert group_of(spec, "row")["type"] == "drop"  # a second id: 1..n in file order
    assert "another unique-per-row id" in (tmp_path / "proj/mlproject.yaml").read_text()
    assert group_of(spec, "comment")["type"] == "drop"  # free text, not an id
    assert group_of(spec, "amount")["type"] == "numeric"  # unique, but a quantity: no id name, not 1..n
    assert "order_no" not in [c for g in spec["features"] for c in g["columns"]]


def test_integer_id_by_name_becomes_the_entity(tmp_path: Path) -> None:
    ids = random.Random(3).sample(range(10**6), 100)
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, customer_id=[str(i) for i in ids])))
    assert spec["data"]["entity"] == "customer_id"
    assert spec["data"]["schema"]["customer_id"]["type"] == "integer"


def test_time_ordered_datetime_becomes_the_time_split(tmp_path: Path) -> None:
    t0 = datetime(2025, 1, 1)
    n = 200
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(
        n, at=[(t0 + timedelta(minutes=17 * i)).isoformat() for i in range(n)],
        born=[f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}" for i in range(n)])))
    split = spec["data"]["split"]
    assert (split["strategy"], split["time_column"]) == ("time", "at")
    assert spec["data"]["schema"]["at"] == {"type": "datetime", "nullable": False}
    assert spec["data"]["schema"]["born"]["type"] == "datetime"
    assert group_of(spec, "at")["type"] == group_of(spec, "born")["type"] == "drop"
    assert "- born   # datetime: no datetime transform" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_unordered_dates_leave_a_stratified_split(tmp_path: Path) -> None:
    r = random.Random(5)
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, d=[f"2024-0{r.randint(1, 9)}-1{r.randint(0, 9)}"
                                                                for _ in range(100)])))
    assert spec["data"]["split"] == {"strategy": "stratified", "test_size": 0.2, "seed": 42}


def test_non_iso_dates_are_text(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, d=[f"{1 + i % 28:02d}/03/2024" for i in range(100)])))
    assert spec["data"]["schema"]["d"]["type"] == "string"
    assert "not ISO 8601" in column_comment(tmp_path, "d")


def test_booleans(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, vip=[("True", "False", "")[i % 3] for i in range(100)],
                                                         bit=[str(i % 2) for i in range(100)])))
    assert spec["data"]["schema"]["vip"] == {"type": "boolean"}
    g = group_of(spec, "vip")
    assert (g["type"], g["scale"]) == ("numeric", "none")
    assert spec["data"]["schema"]["bit"] == {"type": "integer", "nullable": False, "min": 0, "max": 1}


def test_leading_zeros_stay_text(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(100, zip=[("01234", "02100", "75001")[i % 3] for i in range(100)])))
    assert spec["data"]["schema"]["zip"] == {"type": "category", "nullable": False,
                                              "allowed": ["01234", "02100", "75001"]}
    assert "leading zeros" in column_comment(tmp_path, "zip")


def test_heavy_right_tail_gets_log1p(tmp_path: Path) -> None:
    r = random.Random(2)
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(500, spend=[f"{r.paretovariate(1.2):.2f}" for _ in range(500)])))
    g = group_of(spec, "spend")
    assert g["log"] is True and g["clip"] == {"min": 0}
    assert group_of(spec, "x").get("log") is not True  # a normal column is not logged


def test_awkward_names_and_values_are_quoted(tmp_path: Path) -> None:
    n = 60
    rows = frame(n, **{"yes": [("on", "off")[i % 2] for i in range(n)], "unit price ($)": [str(i) for i in range(n)],
                       "1e3": [("null", "y", "1.0")[i % 3] for i in range(n)]})
    spec = ok(tmp_path, write(tmp_path / "f.csv", rows))
    schema = spec["data"]["schema"]
    assert {"yes", "unit price ($)", "1e3"} <= set(schema)
    assert schema["yes"]["allowed"] == ["off", "on"]
    assert schema["1e3"]["allowed"] == ["1.0", "y"]  # 'null' is pandas' NA token, as at run time


def test_a_newline_in_a_column_name_stays_inside_its_comment(tmp_path: Path) -> None:
    n = 40
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(n, **{"two\nlines": [("p", "q")[i % 2] for i in range(n)],
                                                            "when\nordered": [f"2024-01-{1 + i // 2:02d}"
                                                                               for i in range(n)]})))
    assert spec["data"]["schema"]["two\nlines"]["allowed"] == ["p", "q"]
    assert spec["data"]["split"]["time_column"] == "when\nordered"
    assert "when\\nordered is in file order" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_infinities_are_not_given_to_the_scalers(tmp_path: Path) -> None:
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(50, ratio=[("inf", "1.5", "2")[i % 3] for i in range(50)])))
    assert spec["data"]["schema"]["ratio"] == {"type": "float", "nullable": False}
    assert group_of(spec, "ratio")["type"] == "drop"


def test_nothing_usable_is_an_error_naming_each_column(tmp_path: Path) -> None:
    rows = [["id", "same", "label"]] + [[f"r{i}", "x", "ab"[i % 2]] for i in range(40)]
    code, _, err = init(tmp_path, write(tmp_path / "f.csv", rows))
    assert code == 1
    assert "no column is usable as a feature (id: the id; same: constant → drop" in err
    assert not (tmp_path / "proj").exists()


def test_non_utf8_text_is_rewritten_as_utf8(tmp_path: Path) -> None:
    n = 50
    src = write(tmp_path / "w.csv", frame(n, city=[("Zürich", "Genève")[i % 2] for i in range(n)]), encoding="cp1252")
    code, out, _ = init(tmp_path, src)
    assert code == 0 and "UTF-8 copy" in out
    assert spec_of(tmp_path)["data"]["schema"]["city"]["allowed"] == ["Genève", "Zürich"]
    assert "Zürich" in (tmp_path / "proj/data/w.csv").read_text(encoding="utf-8")


def test_a_sampled_file_gets_warn_checks_not_hard_constraints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infer, "sample_rows", lambda ncols: 50)
    n = 120
    spec = ok(tmp_path, write(tmp_path / "f.csv", frame(n, k=[("a", "b")[i % 2] for i in range(n)],
                                                         key=[f"K{i}" for i in range(n)])))
    schema = spec["data"]["schema"]
    assert schema["x"] == {"type": "float"} and schema["k"] == {"type": "category"}
    assert schema["key"] == {"type": "string"}
    checks = spec["data"]["checks"]
    assert {"check": "range", "column": "x", "severity": "warn"} == {k: v for k, v in
                                                                     next(c for c in checks if c["check"] == "range").items()
                                                                     if k not in ("min", "max")}
    assert {"check": "allowed_values", "column": "k", "values": ["a", "b"], "severity": "warn"} in checks
    assert {"check": "unique", "column": "key", "severity": "warn"} in checks
    text = (tmp_path / "proj/mlproject.yaml").read_text()
    assert "Inferred from the first 50 data rows only (the sample is capped at 50 rows" in text


def test_sample_size_is_bounded_by_cells() -> None:
    assert infer.sample_rows(10) == 100_000
    assert infer.sample_rows(500) == 10_000
    assert infer.sample_rows(100_000) == 1_000


def test_csv_inside_dir_is_used_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = tmp_path / "proj"
    (proj / "raw").mkdir(parents=True)
    src = write(proj / "raw" / "t.csv", frame(60))
    assert main(["init", str(proj), "--from-csv", str(src), "--target", "label"]) == 0
    assert "used where it is" in capsys.readouterr().out
    assert spec_of(tmp_path)["data"]["sources"][0]["uri"] == "raw/t.csv"
    assert sorted(p.name for p in proj.iterdir()) == ["mlproject.yaml", "raw"]
    assert main(["validate", str(proj)]) == 0


# ----------------------------------------------------------------------------- the target
def test_zero_one_target_is_classification_with_positive_one(tmp_path: Path) -> None:
    rows = [["a", "y"]] + [[str(i % 7), str(int(i % 3 == 0))] for i in range(90)]
    spec = ok(tmp_path, write(tmp_path / "f.csv", rows), "y")
    assert spec["data"]["label"] == {"column": "y", "task": "classification", "positive": "1"}
    assert spec["data"]["schema"]["y"] == {"type": "category", "nullable": False, "allowed": ["0", "1"]}
    assert spec["training"]["select_by"] == "roc_auc"


def test_float_zero_one_target_picks_one(tmp_path: Path) -> None:
    rows = [["a", "y"]] + [[str(i % 7), ("1.0", "0.0", "0.0")[i % 3]] for i in range(60)]
    assert ok(tmp_path, write(tmp_path / "f.csv", rows), "y")["data"]["label"]["positive"] == "1.0"


def test_unnamed_classes_pick_the_rarer_as_positive(tmp_path: Path) -> None:
    rows = [["a", "y"]] + [[str(i % 7), "stay" if i % 4 else "leave"] for i in range(80)]
    spec = ok(tmp_path, write(tmp_path / "f.csv", rows), "y")
    assert spec["data"]["label"]["positive"] == "leave"
    assert "the rarer class" in (tmp_path / "proj/mlproject.yaml").read_text()


def test_numeric_target_is_regression(tmp_path: Path) -> None:
    r = random.Random(1)
    rows = [["a", "price"]] + [[str(i % 7), f"{100 + r.random() * 50:.2f}"] for i in range(100)]
    spec = ok(tmp_path, write(tmp_path / "f.csv", rows), "price")
    assert spec["data"]["label"] == {"column": "price", "task": "regression"}
    assert spec["data"]["split"]["strategy"] == "random"
    assert spec["training"]["select_by"] == "rmse"
    assert [c["estimator"] for c in spec["training"]["candidates"]] == ["ridge", "hist_gradient_boosting"]
    assert spec["gates"]["metrics"] == [{"metric": "r2", "min": 0.1}]


def test_task_flag_overrides_inference(tmp_path: Path) -> None:
    rows = [["a", "stars"]] + [[str(i % 7), str(1 + i % 5)] for i in range(100)]
    code, _, err = init(tmp_path, write(tmp_path / "f.csv", rows), "stars")
    assert code == 1 and "look like classes" in err and "--task regression" in err
    spec = ok(tmp_path, tmp_path / "f.csv", "stars", "--task", "regression")
    assert spec["data"]["label"]["task"] == "regression"


@pytest.mark.parametrize("rows, target, args, message", [
    ([["a", "y"]] + [[str(i), "abc"[i % 3]] for i in range(30)], "y", (),
     "3 classes ('a', 'b', 'c'); mlc supports binary classification only"),
    ([["a", "y"]] + [[str(i), "abc"[i % 3]] for i in range(30)], "y", ("--task", "classification"),
     "3 classes"),
    ([["a", "y"]] + [[str(i), "ab"[i % 2]] for i in range(30)], "y", ("--task", "regression"),
     "regression needs a numeric target"),
    ([["a", "y"]] + [[str(i), "same"] for i in range(30)], "y", (), "one value ('same') in every row"),
    ([["a", "y"]] + [[str(i), ""] for i in range(30)], "y", (), "no values"),
    ([["a", "churned"]] + [[str(i), "ab"[i % 2]] for i in range(30)], "Churned", (), "did you mean 'churned'?"),
    ([["a", "label"]] + [[str(i), "ab"[i % 2]] for i in range(30)], "lable", (), "did you mean 'label'?"),
    ([["y"]] + [["ab"[i % 2]] for i in range(30)], "y", (), "only one column"),
    ([["a", "y"]] + [[str(i % 7), "a" if i < 3 else "b"] for i in range(30)], "y", (),
     "the class 'a' has only 3 row(s)"),
])
def test_target_errors(tmp_path: Path, rows: list, target: str, args: tuple, message: str) -> None:
    code, _, err = init(tmp_path, write(tmp_path / "f.csv", rows), target, *args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "proj").exists()


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\xef\xbb\xbf\n\n", "the file is empty"),
    (b"a,b,label\n", "a header but no data rows"),
    (b"PAR1\x00\x01\x02", "this is a Parquet file"),
    (b"\x1f\x8b\x08\x00", "gzip-compressed"),
    (b"a,b\x00\x00\x01\x02,c\n", "binary file"),
    (b"a,a,label\n1,2,x\n", "more than once"),
    (b"a,,label\n1,2,x\n", "column 2 of the header has no name"),
    (b"a,label\n1,x\n2,y,3,4\n", "cannot read it as comma-separated"),
])
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "f.csv").write_bytes(content)
    code, _, err = init(tmp_path, tmp_path / "f.csv")
    assert code == 1, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "proj").exists()


def test_missing_file_suggests_the_near_name(tmp_path: Path) -> None:
    write(tmp_path / "wa_churn.csv", frame(20))
    code, _, err = init(tmp_path, tmp_path / "wa-churn.csv")
    assert code == 1 and "no such file" in err and "wa_churn.csv'?" in err


def test_non_empty_dir_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    code, _, err = init(tmp_path, write(tmp_path / "f.csv", frame(30)))
    assert code == 1 and "exists and is not empty" in err
    assert [p.name for p in (tmp_path / "proj").iterdir()] == ["notes.txt"]


def test_an_existing_spec_is_never_overwritten(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "mlproject.yaml").write_text("mine\n")
    src = write(proj / "f.csv", frame(30))
    code, _, err = init(tmp_path, src)
    assert code == 1 and "already exists" in err
    assert (proj / "mlproject.yaml").read_text() == "mine\n"


def test_empty_existing_dir_is_fine_and_no_temp_dirs_remain(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    ok(tmp_path, write(tmp_path / "f.csv", frame(40)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "proj"]
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["data", "mlproject.yaml"]


def test_a_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlc import scaffold

    def boom(*a: object, **k: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scaffold, "_copy", boom)
    code, _, err = init(tmp_path, write(tmp_path / "f.csv", frame(40)))
    assert code == 1 and "No space left on device; nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "p"), "--target", "y"]) == 2
    assert "--target and --task need --from-csv" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "p"), "--from-csv", "f.csv"]) == 2
    assert "needs --target" in capsys.readouterr().err


def test_validate_never_imports_the_inference_code() -> None:
    code = ("import sys; from mlc.cli import main; rc = main(['validate', 'specs/churn']); "
            "assert rc == 0, rc; assert 'mlc.infer' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_inferred_nasty_project_runs_and_registers(tmp_path: Path) -> None:
    """A semicolon-separated file with a BOM, booleans, padded numbers, an all-null and a constant column, many
    categories, free text and a time-ordered datetime: `mlc run` on the inferred spec, as written, registers
    a model."""
    r = random.Random(11)
    t0 = datetime(2025, 3, 1)
    rows: list[list[object]] = [["user_id", "at", "visits", "vip", "plan", "shop", "empty", "constant", "note",
                                 "spend", "converted"]]
    for i in range(1200):
        visits, vip = r.randint(0, 20), r.random() < 0.3
        z = -1.5 + 0.2 * visits + (1.0 if vip else 0) + r.gauss(0, 0.8)
        rows.append([f"U{i:05d}", (t0 + timedelta(minutes=13 * i)).isoformat(timespec="minutes"), f" {visits} ",
                     ("True" if vip else "False") if r.random() > 0.05 else "", r.choice(["free", "pro", "team"]),
                     f"shop{r.randint(0, 299)}", "", "v1", f"free text {i};\nmore", f"{r.paretovariate(1.5):.2f}",
                     "yes" if z > 0 else "no"])
    src = write(tmp_path / "leads.csv", rows, delimiter=";", bom=True)
    spec = ok(tmp_path, src, "converted")
    assert spec["data"]["split"]["time_column"] == "at"
    assert group_of(spec, "shop")["encode"] == "ordinal"
    import json

    result = subprocess.run([sys.executable, "-m", "mlc", "run", str(tmp_path / "proj")], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "registered proj version 1" in result.stdout
    runs = sorted((tmp_path / "proj" / ".mlc" / "artifacts" / "runs").iterdir())
    reg = json.loads((runs[-1] / "register" / "result.json").read_text())
    assert reg["outputs"]["version"] == "1"
