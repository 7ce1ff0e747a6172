"""The README's spec reference is generated from the models; it fails here when it goes stale."""

from __future__ import annotations

from pathlib import Path

from mlc.spec.models import Spec
from mlc.spec.reference import END, START, main, reference_markdown, replace_block

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert replace_block(text, reference_markdown()) == text, (
        "README.md's spec reference is stale; run: python -m mlc.spec.reference --write README.md"
    )


def test_every_field_is_in_the_reference() -> None:
    md = reference_markdown()
    for path in (
        "apiVersion",
        "metadata.name",
        "environments.<name>.storage.endpoint",
        "data.schema.<name>.allowed",
        "data.checks[].max_share",
        "features[].max_categories",
        "training.candidates[].grid",
        "gates.champion[].max_relative_drop",
        "deployment.online.canary",
        "monitoring.drift.threshold",
        "monitoring.retraining.on_drift",
        "registry.production_alias",
    ):
        assert f"| `{path}` |" in md, path
    assert md.count("| `") >= sum(1 for _ in Spec.model_fields)


def test_write_and_check(tmp_path: Path) -> None:
    f = tmp_path / "README.md"
    f.write_text(f"# x\n\n{START}\nSTALE-TEXT\n{END}\ntail\n")
    assert main(["--check", str(f)]) == 1
    assert main(["--write", str(f)]) == 0
    assert main(["--check", str(f)]) == 0
    text = f.read_text()
    assert text.startswith("# x\n") and text.endswith(f"{END}\ntail\n") and "STALE-TEXT" not in text
