"""`mlc image --lock`: resolve the step image's locks with a real resolver (uv pip compile --generate-hashes).

The only part of the image that needs the network, so it is an explicit command and never part of compile.
It runs in mlc's source checkout (the locks are package data under compiler/mlc/image/locks/, committed) and
writes one lock per set of extras, each for linux/amd64 and Python 3.11 whatever machine runs it.

torch is pinned to the CPU build (``torch==2.13.0+cpu``), which PyPI does not carry: PyPI's linux wheel is
the CUDA build, which drags in several GB of nvidia-* packages. The CPU wheel lives on the PyTorch CPU index;
the lightning locks name that index (``--extra-index-url``), so pip in the image fetches torch from there and
checks it against the hash recorded here. Where that index is unreachable (this project's CI, say), pass
``--find-links DIR`` holding the same file (``torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl``): uv
hashes the file it finds, and pip in a build that reaches the index accepts only a file with that hash.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlc.errors import MlcError
from mlc.image import EXTRAS, INPUTS_PREFIX, LOCK_DIR, PLATFORM, PYTHON, inputs_sha256, lock_name

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_CPU_PINS = {"torch==2.13.0": "torch==2.13.0+cpu"}


def _pyproject() -> Path | None:
    """pyproject.toml of the source checkout this mlc runs from, if it is one."""
    p = Path(__file__).resolve().parents[3] / "pyproject.toml"
    return p if p.is_file() and (p.parent / "compiler" / "mlc").is_dir() else None


def source_requirements(extras: tuple[str, ...]) -> list[str] | None:
    """The requirement lines a lock for ``extras`` is resolved from: pyproject's dependencies, then each extra's,
    with torch's CPU pin. None outside a source checkout (an installed mlc's locks are what it shipped with)."""
    path = _pyproject()
    if path is None:
        return None
    import tomllib

    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    for extra in extras:
        reqs += [r for r in project.get("optional-dependencies", {}).get(extra, []) if not r.startswith("mlc[")]
    return [_CPU_PINS.get(r.strip(), r.strip()) for r in reqs]


def extra_sets() -> list[tuple[str, ...]]:
    return [tuple(c) for n in range(len(EXTRAS) + 1) for c in itertools.combinations(EXTRAS, n)]


def header(extras: tuple[str, ...], reqs: list[str]) -> str:
    lines = [f"# mlc step image lock; extras: {', '.join(extras) or 'none'}; Python {PYTHON}, {PLATFORM}.",
             ("# Resolved by `uv pip compile --generate-hashes`; regenerate with `mlc image --lock` "
              "in mlc's source checkout."),
             f"{INPUTS_PREFIX}{inputs_sha256(reqs)}",
             "# inputs:", *(f"#   {r}" for r in reqs)]
    if any(r.startswith("torch==") and "+cpu" in r for r in reqs):
        lines.append(f"--extra-index-url {TORCH_CPU_INDEX}")
    return "\n".join(lines) + "\n"


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    try:
        import uv  # type: ignore[import-not-found]  # the PyPI package ships the binary

        return [uv.find_uv_bin()]
    except (ImportError, FileNotFoundError):
        raise MlcError("`mlc image --lock` needs uv (pip install uv, or the dev extra: pip install -e '.[dev]')") \
            from None


def resolve(extras: tuple[str, ...], reqs: list[str], find_links: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="mlc-lock-") as tmp:
        src = Path(tmp) / "requirements.in"
        src.write_text("\n".join(reqs) + "\n", encoding="utf-8")
        cmd = [*_uv(), "pip", "compile", str(src), "--generate-hashes", "--no-header", "--no-annotate",
               "--python-version", PYTHON, "--python-platform", PLATFORM, "--quiet"]
        for d in find_links:
            cmd += ["--find-links", d]
        if any("+cpu" in r for r in reqs) and not find_links:
            cmd += ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise MlcError(f"uv pip compile failed for extras [{', '.join(extras)}]:\n{done.stderr.strip()}")
        body = done.stdout
    if "--find-links" in body or "file://" in body:
        raise MlcError("the resolved lock names a local path; a lock must only name index packages")
    return header(extras, reqs) + body


def lock_command(find_links: list[str], out_dir: Path = LOCK_DIR) -> list[Path]:
    """Resolve and write every lock; returns the files written."""
    if _pyproject() is None:
        raise MlcError("`mlc image --lock` rewrites the locks mlc ships, so it runs in mlc's source checkout "
                       "(pip install -e .); an installed mlc uses the locks it was released with")
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for extras in extra_sets():
        reqs = source_requirements(extras)
        assert reqs is not None
        text = resolve(extras, reqs, find_links)
        path = out_dir / lock_name(extras)
        tmp = path.with_suffix(".lock.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
        print(f"wrote {path} ({sum(1 for ln in text.splitlines() if '==' in ln and not ln.startswith('#'))} "
              "packages)", file=sys.stderr)
    return written
