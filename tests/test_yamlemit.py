"""mlc.yamlemit writes the bytes libyaml writes, or says it cannot (and emit.py falls back to PyYAML)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc import emit, yamlemit

pytest.importorskip("yaml")

# text that exercises every rule of the writer: indicators, quotes, spaces, breaks, things YAML resolves
# (true, 1, null, ~, 2020-01-01, 0o17, .inf), non-ASCII and control characters (which it must refuse)
_ALPHABET = st.sampled_from(list("ab z09-_.:#,[]{}&*!|>'\"%@`?~/=$\n"))
_WORDS = st.sampled_from(["", "true", "no", "1", "-1", "0o17", "1e3", "1.5", ".inf", "null", "~", "2020-01-01",
                          "---", "...", "- x", "a: b", "x #y", "{{$.inputs.parameters['run']}}", " lead",
                          "trail ", "two  spaces", "caf\u00e9", "tab\t", "cr\r", "\x85", "\u2028", "a\n", "a\n\n", "\nb", "line\nline\n", "x" * 130])
_TEXT = st.one_of(_WORDS, st.text(_ALPHABET, max_size=12),
                  st.lists(st.sampled_from(["word", "w", "--flag", "'q'", "long-word-" * 3]), max_size=40)
                  .map(" ".join))
_KEYS = st.one_of(st.sampled_from(["name", "a", "true", "1", "", "- x", "a: b", "{{k}}", "x" * 128]),
                  st.text(st.sampled_from(list("ab z09-_.:#{}'\"?")), max_size=8))
_SCALARS = st.one_of(_TEXT, st.integers(-(10**12), 10**12), st.booleans(), st.none(),
                     st.floats(allow_nan=True, allow_infinity=True))
_TREES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_KEYS, inner, max_size=4)),
                      max_leaves=30)
_DOCS = st.lists(st.dictionaries(_KEYS, _TREES, min_size=1, max_size=5), min_size=1, max_size=3)


COVERED: list[bool] = []


@settings(max_examples=600, deadline=None)
@given(_DOCS, st.sampled_from([None, 20, 100]), st.booleans())
def test_same_bytes_as_libyaml(docs: list, width: int | None, sort_keys: bool) -> None:
    keys = emit._sorted_keys if sort_keys else emit._given_keys
    try:
        got = yamlemit.dump(docs, keys, width)
    except yamlemit.Unsupported:
        COVERED.append(False)
        return
    COVERED.append(True)
    for allow_unicode in (True, False):  # what it covers is ASCII: both settings give the same bytes
        assert got == emit._pyyaml_documents(docs, sort_keys, width, allow_unicode)


def test_the_property_test_exercised_the_writer() -> None:
    """Most random trees must take the fast path, or the property above proves little."""
    if len(COVERED) < 100:
        pytest.skip("runs after test_same_bytes_as_libyaml in the same process")
    assert sum(COVERED) > len(COVERED) // 3


def test_covers_what_mlc_writes() -> None:
    """The common shapes go the fast way; only what needs double quotes or tags falls back."""
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "b"}},
           "data": {"mlproject.yaml": "a: 1\n\nb:\n  - c\n", "empty": "", "n": None, "list": [], "map": {}},
           "spec": {"command": ["sh", "-ec", "mlc step x --run-id \"$1\"; " * 8, "{{$.inputs.parameters['run']}}"],
                    "nums": [1, 2.5, 1e-05, True, float("inf")], "yes": "yes"}}
    assert yamlemit.dump([doc], emit._canonical_keys, 100) == emit._pyyaml_documents(
        [emit._ordered(doc, top=True)], False, 100, True)
    for unsupported in ({"k": "caf\u00e9"}, {"k": "tab\there"}, {"k": "trailing space \nnext"}, {"k": "x\n\n"},
                        {"x" * 129: 1}, {"k\nk": 1}, {"k": b"bytes"}):
        with pytest.raises(yamlemit.Unsupported):
            yamlemit.dump([unsupported], emit._given_keys)
    assert emit.dump_yaml({"k": "caf\u00e9"}) == "k: caf\u00e9\n"  # the fallback writes it


def test_kfp_documents_match() -> None:
    """The KFP IR documents (sorted keys, the default width) of the example plans."""
    from google.protobuf import json_format
    from planhelpers import example_plan

    from mlc.backends import kfp

    checked = 0
    for name, env in (("churn", "prod"), ("churn", "local"), ("delivery-eta", "prod")):
        plan = example_plan(name, env)
        for p in plan.pipelines:
            func = kfp.pipeline_func(plan, p)
            docs = [json_format.MessageToDict(func.pipeline_spec), json_format.MessageToDict(func.platform_spec)]
            assert yamlemit.dump(docs, emit._sorted_keys) == emit._pyyaml_documents(docs, True, None, False)
            checked += 1
    assert checked >= 5
