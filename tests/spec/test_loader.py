"""Hostile and odd input: every case must end in our SpecError (exit 1 from the CLI), never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlc.cli import main
from mlc.errors import SpecError
from mlc.spec.loader import MAX_BYTES, load_file, load_text

ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

HOSTILE = {
    "alias_bomb": (ALIAS_BOMB, "E006"),
    "deep_flow_sequences": ("[" * 100_000, "E006"),
    "deep_flow_mappings": ("a: " + "{b: " * 100_000, "E006"),
    "deep_block_mappings": "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "x: 1\n",
    "empty": ("", "E005"),
    "only_comments": ("# nothing\n\n# here\n", "E005"),
    "whitespace": ("   \n\n\t\n", "E005"),
    "list_top_level": ("- a\n- b\n", "E004"),
    "scalar_top_level": ("hello\n", "E004"),
    "null_top_level": ("~\n", "E004"),
    "tabs": ("a:\n\tb: 1\n", "E001"),
    "unclosed_quote": ('a: "open\n', "E001"),
    "control_character": ("a: \x07\n", "E001"),
    "nul_byte": ("a: 1\x00\n", "E003"),
    "duplicate_key": ("a: 1\na: 2\n", "E002"),
    "merge_key": ("x: &x {a: 1}\ny:\n  <<: *x\n", "E001"),
    "complex_key": ("? [a, b]\n: 1\n", "E001"),
    "python_tag": ("a: !!python/object/apply:os.system ['true']\n", "E001"),
    "unknown_tag": ("a: !custom 1\n", "E001"),
    "multi_document": ("a: 1\n---\nb: 2\n", "E001"),
}
HOSTILE["deep_block_mappings"] = (HOSTILE["deep_block_mappings"], "E006")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_gives_our_error(name: str) -> None:
    text, code = HOSTILE[name]
    with pytest.raises(SpecError) as info:
        load_text(text, "spec.yaml")
    codes = [d.code for d in info.value.diagnostics]
    assert codes == [code], info.value.render()
    assert "Traceback" not in info.value.render()


def test_alias_bomb_is_bounded_in_memory(tmp_path: Path) -> None:
    """Run in a fresh interpreter with a 1 GiB address-space cap: an unbounded expansion would die with
    MemoryError. (A fresh process, not a fork: a forked pytest worker may already hold more than the cap.)"""
    import subprocess
    import sys

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
        "from mlc.errors import SpecError\n"
        "from mlc.spec.loader import load_file\n"
        "try:\n"
        "    load_file(sys.argv[1]); print('no error')\n"
        "except SpecError as e:\n"
        "    print(e.diagnostics[0].code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "E006"


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "mlproject.yaml"
    with big.open("w") as fh:  # 50 MB: read only up to the limit
        fh.write("a: ")
        chunk = "x" * 1_000_000
        for _ in range(50):
            fh.write(chunk)
    with pytest.raises(SpecError) as info:
        load_file(str(big))
    assert info.value.diagnostics[0].code == "E003"
    assert f"{MAX_BYTES:,}" in info.value.diagnostics[0].message


def test_binary_junk_and_bad_utf8(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(bytes(range(256)) * 8 + os.urandom(4096))
    with pytest.raises(SpecError) as info:
        load_file(str(junk))
    assert info.value.diagnostics[0].code == "E003"
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"metadata:\n  name: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_file(str(latin1))
    d = info.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E003", 2, 12)


def test_missing_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "error[E003]" in err and "cannot read" in err


def test_directory_argument_without_spec_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert "no mlproject.yaml" in capsys.readouterr().err


def test_long_line_excerpt_is_cut_around_the_caret() -> None:
    with pytest.raises(SpecError) as info:
        load_text("a: " + "[" * 5000, "spec.yaml")
    rendered = info.value.render()
    assert max(len(line) for line in rendered.splitlines()) < 200
    assert "^" in rendered


def test_spans_point_at_keys_and_values() -> None:
    loaded = load_text("a:\n  b: [1, two]\n", "s.yaml")
    assert loaded.span(("a", "b", 1)).line == 2 and loaded.span(("a", "b", 1)).col == 10
    assert loaded.span(("a", "b"), key=True).col == 3
    assert loaded.span(("a", "missing")) == loaded.span(("a",))


@pytest.mark.parametrize(
    ("raw", "ambiguous"),
    [
        ("yes", True),
        ("off", True),
        ("1e3", True),
        ("0o17", True),
        ("017", True),
        ("12:30", True),
        ("2024-01-01", True),
        ("1_000", True),
        ("true", False),
        ("42", False),
        ("0.5", False),
        ("1.0e+3", False),
        ("0x1F", False),
        ("text", False),
        ("~", False),
        (".nan", False),
    ],
)
def test_yaml_1_1_versus_1_2_ambiguity(raw: str, ambiguous: bool) -> None:
    loaded = load_text(f'a: {raw}\nb: "{raw}"\n', "s.yaml")
    assert (("a",) in loaded.ambiguous) is ambiguous
    assert ("b",) not in loaded.ambiguous  # quoted is never ambiguous


def test_pure_python_parser_gives_the_same_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML without libyaml must behave the same: same data, spans and plain-scalar ambiguities."""
    import yaml

    from mlc.spec import loader

    text = (Path(__file__).resolve().parents[2] / "specs" / "churn" / "mlproject.yaml").read_text()
    text += "extra:\n  a: yes\n  b: 1e3\n"
    fast = load_text(text, "s.yaml")
    monkeypatch.setattr(loader, "_Loader", yaml.SafeLoader)
    slow = load_text(text, "s.yaml")
    assert fast.data == slow.data
    assert fast.value_spans == slow.value_spans and fast.key_spans == slow.key_spans
    assert fast.ambiguous.keys() == slow.ambiguous.keys() == {("extra", "a"), ("extra", "b")}
    for name in ("alias_bomb", "deep_flow_sequences", "tabs", "duplicate_key"):
        with pytest.raises(SpecError) as info:
            load_text(HOSTILE[name][0], "spec.yaml")
        assert info.value.diagnostics[0].code == HOSTILE[name][1]
