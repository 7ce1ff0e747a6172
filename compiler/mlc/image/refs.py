"""Which image an environment's pods run, and images.lock, where `mlc build --push` records what it pushed.

An environment names ``image: repo/name@sha256:<digest>`` (immutable), ``image: repo/name:tag`` (a tag; when
images.lock recorded a push of that very tag, the objects carry ``repo/name:tag@sha256:<digest>``), or nothing:
then the digest images.lock recorded for it, and when there is none, an error with the command that fixes it.
mlc never names an image nobody built. The one exception is ``local``, which is for a kind or minikube cluster
on this machine: with nothing named it runs ``localhost/mlc-<project>:<mlc version>``, the tag
`mlc build --env local` gives the image it builds and loads there (no registry, so no digest).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlc import __version__
from mlc.errors import Diagnostic, MlcError, SpecError

IMAGES_LOCK = "images.lock"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# [registry[:port]/]path[:tag][@sha256:digest]: a registry has a dot, a port or is localhost; the path is lower-case
# (the distribution reference grammar)
_REF = re.compile(r"^(?P<name>(?:(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|localhost)(?::[0-9]+)?/|[a-zA-Z0-9-]+:[0-9]+/)?"
                  r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                  r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
                  r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
PROD_LIKE = re.compile(r"(^|[-_])(prod|production|prd|live)($|[-_])")


def parse(ref: str) -> tuple[str, str | None, str | None] | None:
    """(name, tag, digest) of an image reference, or None when it is not one."""
    m = _REF.match(ref)
    return (m["name"], m["tag"], m["digest"]) if m else None


def local_tag(project: str) -> str:
    return f"localhost/mlc-{project}:{__version__}"


def lock_path(spec_path: Path) -> Path:
    return Path(spec_path).parent / IMAGES_LOCK


def lock_bytes(spec_path: Path) -> bytes:
    """images.lock's bytes, for compile's input hash (empty when there is none): a push changes the output."""
    try:
        return b"\0" + IMAGES_LOCK.encode() + b"\0" + lock_path(spec_path).read_bytes()
    except OSError:
        return b""


def read_lock(spec_path: Path) -> dict[str, dict[str, Any]]:
    """Environment -> what `mlc build --push` recorded ({"image": "name:tag", "digest": "sha256:…", …})."""
    path = lock_path(spec_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise MlcError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = json.loads(text)
        envs = data["environments"]
        assert isinstance(envs, dict)
        for entry in envs.values():
            assert isinstance(entry, dict) and parse(str(entry.get("image", ""))) is not None
            assert DIGEST.match(str(entry.get("digest", "")))
    except (ValueError, KeyError, TypeError, AssertionError):
        raise MlcError(f"{path}: not an images.lock written by `mlc build --push` (expected "
                       '{"environments": {"<env>": {"image": "repo/name:tag", "digest": "sha256:<64 hex>"}}}); '
                       "fix it or delete it and push again") from None
    return envs


def write_lock(spec_path: Path, env: str, entry: dict[str, Any]) -> Path:
    """Record a push; byte-stable (sorted keys, no clock), so committing it shows only real changes."""
    path = lock_path(spec_path)
    envs = dict(read_lock(spec_path))
    envs[env] = dict(sorted(entry.items()))
    body = {"comment": "Written by `mlc build --push`: the image each environment runs when its spec names none "
                       "(or names this tag). Commit it.",
            "environments": dict(sorted(envs.items()))}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def resolve(spec: Any, env: str, spec_path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The image reference the objects of ``env`` carry, and the diagnostics (errors and warnings)."""
    e = spec.environments.get(env) or spec.environments.get("local")
    named = e.image if e is not None else None
    recorded = read_lock(spec_path).get(env)
    where = ("environments", env, "image") if named else ("environments", env)
    diags: list[Diagnostic] = []
    if named:
        parsed = parse(named)
        if parsed is None:
            return None, [Diagnostic("E402", f"'{named}' is not an image reference", path_hint(where), None,
                                     "write repo/name@sha256:<digest> or repo/name:tag")]
        name, _tag, digest = parsed
        if digest:
            return named, []
        if recorded and recorded["image"] == named:
            return f"{named}@{recorded['digest']}", []
        if PROD_LIKE.search(env):
            diags.append(Diagnostic(
                "W400", f"'{named}' is a mutable tag: what a {env} rollout runs can change under it",
                path_hint(where), None,
                f"pin the digest: image: {name}@sha256:<digest>; `mlc build <spec> --env {env} --push` "
                f"records it in {IMAGES_LOCK} and the objects then carry {named}@sha256:<digest>",
                "warning"))
        return named, diags
    if recorded:
        pushed = parse(recorded["image"])
        assert pushed is not None  # read_lock checked it
        return f"{pushed[0]}@{recorded['digest']}", []
    if env == "local":
        return local_tag(spec.metadata.name), []
    return None, [Diagnostic(
        "E400", f"no image for environment '{env}': the spec names none and {IMAGES_LOCK} recorded none",
        path_hint(where), None,
        f"build and push one: `mlc build <spec> --env {env} --push --tag <registry>/<repo>:<tag>` records its "
        f"digest in {IMAGES_LOCK}; or name one: image: <registry>/<repo>@sha256:<digest>")]


def path_hint(where: tuple[str, ...]) -> str:
    return ".".join(where)


def check(sf: Any, envs: list[str]) -> tuple[dict[str, str], SpecError | None, list[Diagnostic]]:
    """Resolve every environment's image: (env -> reference, the errors as one SpecError, the warnings),
    each diagnostic placed at the environment (or its image:) in the spec."""
    from mlc.spec.loader import load_text

    images: dict[str, str] = {}
    found: list[tuple[str, Diagnostic]] = []
    for env in envs:
        ref, diags = resolve(sf.spec, env, sf.path)
        if ref is not None:
            images[env] = ref
        found += [(env, d) for d in diags]
    if not found:
        return images, None, []
    loaded = sf.loaded if sf.loaded is not None else load_text(sf.text, str(sf.path))  # placed with load_spec's parse: no second one
    for env, d in found:
        on_image = d.path.endswith(".image")
        d.span = loaded.span(("environments", env, "image") if on_image else ("environments", env), key=not on_image)
    errors = [d for _, d in found if d.severity == "error"]
    warnings = [d for _, d in found if d.severity != "error"]
    return images, (SpecError(str(sf.path), errors, source=sf.text) if errors else None), warnings

