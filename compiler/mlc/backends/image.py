"""The step image's build context files, ``image/`` in each environment: Dockerfile, requirements.lock and
.dockerignore (see mlc/image/). Text files, not Kubernetes resources: kustomization.yaml does not list them."""

from __future__ import annotations

from typing import Any

from mlc.backends import Output


def build(plan: Any) -> list[Output]:
    from mlc.image import context_files

    files = context_files(project=plan.project, env=plan.env, base=plan.image_base, extras=plan.image_extras,
                          spec_sha256=plan.spec_hash)
    return [Output(path, text=text, resource=False) for path, text in sorted(files.items())]
