"""Where mlc's Jinja2 templates live: ``templates/`` at the top of a source checkout (editable installs), or
``<prefix>/share/mlc/templates`` where a wheel installs them (pyproject's data-files)."""

from __future__ import annotations

import sys
from pathlib import Path

from mlc.errors import MlcError


def template_dirs() -> list[Path]:
    checkout = Path(__file__).resolve().parents[2] / "templates"
    installed = Path(sys.prefix) / "share" / "mlc" / "templates"
    return [d for d in (checkout, installed) if d.is_dir()]


def template_dir(sub: str = "") -> Path:
    """The first templates directory that holds ``sub``; an MlcError naming where it looked otherwise."""
    for d in template_dirs():
        if (d / sub).exists():
            return d / sub if sub else d
    looked = [Path(__file__).resolve().parents[2] / "templates", Path(sys.prefix) / "share" / "mlc" / "templates"]
    raise MlcError(f"mlc's templates are missing (looked for '{sub or '.'}' in {', '.join(map(str, looked))}); "
                   "reinstall mlc")
