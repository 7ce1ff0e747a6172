"""Property test: however the example specs are mangled, the loader and validator raise only SpecError."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlc.errors import SpecError
from mlc.spec.loader import load_text
from mlc.spec.validate import validate_loaded

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [(ROOT / "specs" / n / "mlproject.yaml").read_text() for n in ("churn", "delivery-eta")]
TREES = [yaml.safe_load(t) for t in EXAMPLES]

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "yes",
            "no",
            "on",
            "0o17",
            "1e3",
            "2024-01-01",
            "",
            "~",
            "*x",
            "!!str",
            "[",
            "{",
            "- a",
            "a: b",
            "500m",
            "2Gi",
            "AKIAIOSFODNN7EXAMPLE",
        ]
    ),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, path + (i,))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for p in path:
        tree = tree[p]
    return tree


@st.composite
def tree_mutations(draw: st.DrawFn) -> str:
    tree = copy.deepcopy(draw(st.sampled_from(TREES)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(tree) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _get(tree, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "replace", "swap", "add_key", "wrap_list"]))
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(JUNK)
        elif op == "swap":
            other = draw(st.sampled_from(paths))
            try:  # a copy: putting a node inside itself would make a cycle no YAML text can hold
                parent[last] = copy.deepcopy(_get(tree, other))
            except (KeyError, IndexError, TypeError):
                continue
        elif op == "add_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(JUNK)
        elif op == "wrap_list":
            parent[last] = [parent[last]]
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


@st.composite
def text_mutations(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(EXAMPLES)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "indent", "dedent", "bytes", "truncate"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=30)) + "\n")
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "bytes":
            junk = draw(st.binary(max_size=8)).decode("latin-1")
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        elif op == "truncate":
            lines = lines[:i]
        if not lines:
            break
    return "".join(lines)


def _only_spec_errors(text: str) -> None:
    try:
        validate_loaded(load_text(text, "fuzz.yaml"))
    except SpecError as e:
        assert e.diagnostics, "a SpecError always carries at least one diagnostic"
        e.render()  # rendering must not fail either


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(tree_mutations())
def test_tree_mutations_raise_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


@SETTINGS
@given(text_mutations())
def test_text_mutations_raise_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


def test_the_examples_are_valid() -> None:
    for text in EXAMPLES:
        validate_loaded(load_text(text, "example.yaml"))
