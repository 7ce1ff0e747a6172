"""The step image: what goes into ``generated/<project>/<env>/image/`` (Dockerfile, requirements.lock,
.dockerignore), for `mlc compile` and `mlc image`.

Pure and offline, like the rest of compile: the lock is not resolved here. mlc ships one hash-locked
requirements file per set of extras (``locks/requirements-<extras>.lock``, resolved by `mlc image --lock`,
see lock.py); a (spec, environment) picks the one for exactly the extras it uses: ``lightning`` when a
candidate trains with Lightning, ``s3`` when the environment's storage root is ``s3://``. The lock holds mlc's
dependencies, not mlc itself: `mlc build` puts the wheel of the running mlc into the build context (build.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mlc import __version__
from mlc.errors import CompileError

DEFAULT_BASE = "python:3.11-slim-bookworm"
LOCK_DIR = Path(__file__).parent / "locks"
EXTRAS = ("lightning", "s3")  # mlc's optional dependency groups a step image may need, in lock-name order
PLATFORM = "x86_64-manylinux_2_28"  # what the locks are resolved for: linux/amd64, glibc >= 2.28 (bookworm: 2.36)
DOCKER_PLATFORM = "linux/amd64"
PYTHON = "3.11"
UID = 10001
LOCK_COMMAND = "mlc image --lock"  # run in mlc's source checkout (lock.py)
INPUTS_PREFIX = "# inputs-sha256: "


def extras_for(spec: Any, env: str) -> tuple[str, ...]:
    """The extras the steps and `mlc serve` of one environment need, and no more."""
    e = spec.environments.get(env) or spec.environments.get("local")
    out = []
    if any(c.framework == "lightning" for c in spec.training.candidates):
        out.append("lightning")
    if e is not None and e.storage is not None and e.storage.root.startswith("s3://"):
        out.append("s3")
    return tuple(out)


def lock_name(extras: tuple[str, ...]) -> str:
    return f"requirements-{'-'.join(extras) if extras else 'base'}.lock"


def wheel_name() -> str:
    return f"mlc-{__version__}-py3-none-any.whl"


def inputs_sha256(requirements: list[str]) -> str:
    return hashlib.sha256("\n".join(requirements).encode()).hexdigest()


def recorded_inputs(text: str) -> tuple[str | None, list[str]]:
    """The inputs hash and requirement lines a lock's header records (see lock.py's header)."""
    digest, reqs, inside = None, [], False
    for line in text.splitlines():
        if line.startswith(INPUTS_PREFIX):
            digest = line[len(INPUTS_PREFIX):].strip()
        elif line == "# inputs:":
            inside = True
        elif inside and line.startswith("#   "):
            reqs.append(line[4:])
        elif inside:
            inside = False
    return digest, reqs


def lock_text(extras: tuple[str, ...]) -> str:
    """The shipped lock for ``extras``; a CompileError naming the command that regenerates it when it is missing,
    or stale against the requirements of a source checkout's pyproject.toml."""
    path = LOCK_DIR / lock_name(extras)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise CompileError(f"the step image lock {path} is missing (extras: {', '.join(extras) or 'none'}); "
                           f"regenerate the locks with `{LOCK_COMMAND}` in mlc's source checkout") from None
    digest, reqs = recorded_inputs(text)
    if digest is None or inputs_sha256(reqs) != digest:
        raise CompileError(f"{path}: the header's inputs do not match its inputs-sha256 (edited by hand?); "
                           f"regenerate it with `{LOCK_COMMAND}`")
    from mlc.image.lock import source_requirements  # reads pyproject.toml only in a source checkout

    current = source_requirements(extras)
    if current is not None and current != reqs:
        added = sorted(set(current) - set(reqs))
        removed = sorted(set(reqs) - set(current))
        what = "; ".join(x for x in (f"added {', '.join(added)}" if added else "",
                                     f"removed {', '.join(removed)}" if removed else "") if x) or "reordered"
        raise CompileError(f"{path} is stale: pyproject.toml's requirements changed since it was resolved ({what}); "
                           f"regenerate the locks with `{LOCK_COMMAND}`")
    return text


def base_image(spec: Any, env: str) -> str:
    e = spec.environments.get(env) or spec.environments.get("local")
    return (e.image_base if e is not None and e.image_base else None) or DEFAULT_BASE


def dockerfile(*, project: str, env: str, base: str, extras: tuple[str, ...], spec_sha256: str) -> str:
    """A Dockerfile for the build context `mlc build` stages: requirements.lock and dist/<mlc wheel>.

    Hash-checked, dependency-free installs (the lock is complete; ``pip check`` proves it in the build), a fixed
    non-root uid for ``runAsNonRoot``, no HEALTHCHECK (Kubernetes probes the predictor; steps are batch
    processes). source and revision are build arguments: compile cannot know them, `mlc build` passes git's."""
    wheel = wheel_name()
    return f"""\
# Build with `mlc build`, which stages this file, requirements.lock and dist/{wheel} as the context.
FROM {base}

ARG MLC_SOURCE=""
ARG MLC_REVISION=""
LABEL org.opencontainers.image.title="mlc-{project}" \\
      org.opencontainers.image.description="mlc {__version__} step and serving image for {project} ({env})" \\
      org.opencontainers.image.version="{__version__}" \\
      org.opencontainers.image.source="${{MLC_SOURCE}}" \\
      org.opencontainers.image.revision="${{MLC_REVISION}}" \\
      dev.mlc.project="{project}" \\
      dev.mlc.environment="{env}" \\
      dev.mlc.extras="{','.join(extras)}" \\
      dev.mlc.spec-sha256="{spec_sha256}"

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_NO_CACHE_DIR=1

RUN groupadd --system --gid {UID} mlc \\
    && useradd --system --uid {UID} --gid mlc --home-dir /home/mlc --create-home --shell /usr/sbin/nologin mlc

COPY requirements.lock /tmp/mlc/requirements.lock
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/mlc/requirements.lock

COPY dist/{wheel} /tmp/mlc/
RUN pip install --no-cache-dir --no-deps /tmp/mlc/{wheel} \\
    && pip check \\
    && rm -rf /tmp/mlc

USER {UID}:{UID}
WORKDIR /home/mlc
ENTRYPOINT ["mlc"]
CMD ["--help"]
"""


DOCKERIGNORE = """\
# The context is what `mlc build` stages: only the lock and mlc's wheel enter the image.
*
!requirements.lock
!dist/mlc-*.whl
"""


def image_files(spec: Any, env: str, spec_sha256: str) -> dict[str, str]:
    """``image/`` inside ``<project>/<env>/``: path -> text (emit.py adds the generated-file header)."""
    return context_files(project=spec.metadata.name, env=env, base=base_image(spec, env),
                         extras=extras_for(spec, env), spec_sha256=spec_sha256)


def context_files(*, project: str, env: str, base: str, extras: tuple[str, ...], spec_sha256: str) -> dict[str, str]:
    """The same from the facts the plan carries (the image backend reads only the plan)."""
    return {
        "image/Dockerfile": dockerfile(project=project, env=env, base=base, extras=extras, spec_sha256=spec_sha256),
        "image/requirements.lock": lock_text(extras),
        "image/.dockerignore": DOCKERIGNORE,
    }
