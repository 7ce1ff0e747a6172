"""The step image's build context files, ``image/`` in each environment: Dockerfile, requirements.lock and
.dockerignore (see mlc/image/). Text files, not Kubernetes resources: kustomization.yaml does not list them."""

from __future__ import annotations

from typing import Any

from mlc.backends import Output


def build(plan: Any) -> list[Output]:
    from mlc.image import image_files

    return [Output(path, text=text, resource=False)
            for path, text in sorted(image_files(plan.spec, plan.env, plan.spec_hash).items())]
