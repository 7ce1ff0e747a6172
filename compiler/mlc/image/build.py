"""`mlc image` and `mlc build`: write the image files, stage a build context, run a real builder.

The builder is the first usable of ``docker buildx``, ``podman`` and ``buildah``. A docker client whose engine
does not answer (``docker info`` fails) is not usable: building would only fail later, less clearly. With none
usable, `mlc build` stages the context anyway and prints the exact commands to run by hand, then
``--digest`` records what was pushed.

The context (``<project>/.mlc/image/<env>/``) is the generated image/ files plus ``dist/<mlc wheel>``, a wheel
of the mlc that runs this command, so the image runs the compiler that wrote the manifests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc import __version__
from mlc.errors import MlcError, UsageError
from mlc.image import DOCKER_PLATFORM, wheel_name
from mlc.image.refs import DIGEST, IMAGES_LOCK, local_tag, parse, write_lock

TOOLS = ("docker", "podman", "buildah")
PROBE_TIMEOUT = 20


@dataclass
class Context:
    """A staged build: where, what tag, and the build arguments (OCI source and revision from git)."""

    dir: Path
    tag: str
    build_args: dict[str, str] = field(default_factory=dict)


def _probe(cmd: list[str]) -> str | None:
    """None when ``cmd`` succeeds, else its first line of complaint."""
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if done.returncode == 0:
        return None
    text = (done.stderr or done.stdout).strip().splitlines()
    return text[0] if text else f"exit {done.returncode}"


def find_builder(which: Callable[[str], str | None] = shutil.which,
                 probe: Callable[[list[str]], str | None] = _probe) -> tuple[str | None, list[str]]:
    """(the first usable tool, why each one before it is not)."""
    why: list[str] = []
    for tool in TOOLS:
        if which(tool) is None:
            why.append(f"{tool}: not on PATH")
            continue
        if tool == "docker":  # the engine first: without one, buildx could not build either
            if (e := probe(["docker", "info", "--format", "{{.ServerVersion}}"])) is not None:
                why.append(f"docker: the client is there but its engine is not reachable (`docker info`: {e})")
                continue
            if (e := probe(["docker", "buildx", "version"])) is not None:
                why.append(f"docker: the engine answers but the buildx plugin is missing ({e})")
                continue
        return tool, why
    return None, why


def commands(tool: str, ctx: Context, push: bool) -> list[list[str]]:
    """The command lines that build (and with ``push``, push) the image, writing the pushed digest to
    ``<ctx>/digest`` (podman, buildah) or ``<ctx>/metadata.json`` (buildx)."""
    d = str(ctx.dir)
    args = [a for k, v in sorted(ctx.build_args.items()) for a in ("--build-arg", f"{k}={v}")]
    common = ["--platform", DOCKER_PLATFORM, "--file", f"{d}/Dockerfile", "--tag", ctx.tag, *args]
    if tool == "docker":
        out = ["--push", "--metadata-file", f"{d}/metadata.json"] if push else ["--load"]
        return [["docker", "buildx", "build", *common, *out, d]]
    if tool in ("podman", "buildah"):
        cmds = [[tool, "build", *common, d]]
        if push:
            cmds.append([tool, "push", "--digestfile", f"{d}/digest", ctx.tag])
        return cmds
    raise ValueError(tool)


def pushed_digest(tool: str, ctx: Context) -> str:
    try:
        if tool == "docker":
            digest = json.loads((ctx.dir / "metadata.json").read_text())["containerimage.digest"]
        else:
            digest = (ctx.dir / "digest").read_text().strip()
    except (OSError, ValueError, KeyError) as e:
        raise MlcError(f"{tool} pushed {ctx.tag} but left no digest where mlc reads it ({e})") from None
    if not DIGEST.match(digest):
        raise MlcError(f"{tool} reported '{digest}' as the digest of {ctx.tag}; expected sha256:<64 hex>")
    return str(digest)


def _source_root() -> Path | None:
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "compiler" / "mlc").is_dir() else None


def build_wheel(dest: Path) -> Path:
    """A wheel of the running mlc, built from its source checkout in a scratch copy (no build/ left behind)."""
    root = _source_root()
    if root is None:
        raise UsageError("mlc build puts a wheel of this mlc into the image, and this mlc is not a source "
                         "checkout: pass --wheel PATH (mlc-" f"{__version__}-py3-none-any.whl)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlc-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, src / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in ("compiler", "templates"):
            shutil.copytree(root / name, src / name, ignore=ignore)
        env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}  # 1980-01-01: the same wheel for the same source
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                               "--quiet", "--wheel-dir", str(dest), str(src)],
                              check=False, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise MlcError(f"building mlc's wheel failed:\n{(done.stderr or done.stdout).strip()}")
    wheel = dest / wheel_name()
    if not wheel.is_file():
        raise MlcError(f"pip wheel did not write {wheel}")
    return wheel


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def public_url(url: str) -> str:
    """A remote URL fit for an image label: without the user and token an https remote may carry."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url)


def default_tag(sf: Any, env: str) -> str | None:
    """The tag to build when --tag is not given: the spec's own tag, or the local one for `local`."""
    e = sf.spec.environments.get(env)
    named = e.image if e is not None else None
    if named:
        parsed = parse(named)
        if parsed and parsed[1]:
            return f"{parsed[0]}:{parsed[1]}"
        return None  # a digest names a build already made; a new build needs a tag to push to
    return local_tag(sf.spec.metadata.name) if env == "local" else None


def stage(sf: Any, env: str, tag: str, wheel: Path | None) -> Context:
    """Write the build context: the image files exactly as compile writes them, and the mlc wheel."""
    from mlc.emit import header, spec_source
    from mlc.image import image_files
    from mlc.plan import spec_hash

    d = sf.root / ".mlc" / "image" / env
    if d.exists():
        shutil.rmtree(d)
    (d / "dist").mkdir(parents=True)
    head = header(spec_source(sf.path))
    for rel, text in image_files(sf.spec, env, spec_hash(sf.text)).items():
        (d / Path(rel).name).write_text(head + text, encoding="utf-8")
    if wheel is not None:
        if not wheel.is_file():
            raise UsageError(f"--wheel {wheel}: no such file")
        shutil.copy2(wheel, d / "dist" / wheel_name())
    else:
        build_wheel(d / "dist")
    repo = sf.root.resolve()
    args = {"MLC_REVISION": _git(repo, "rev-parse", "HEAD"),
            "MLC_SOURCE": public_url(_git(repo, "config", "--get", "remote.origin.url"))}
    return Context(d, tag, {k: v for k, v in args.items() if v})


def manual_message(ctx: Context, why: list[str], push: bool, spec: str, env: str) -> str:
    import shlex

    lines = ["no usable image builder: " + "; ".join(why) + ".",
             f"The build context is staged in {ctx.dir}. Build it with one of these:"]
    for tool in TOOLS:
        lines.append(f"  # {tool}")
        lines += ["  " + shlex.join(c) for c in commands(tool, ctx, push)]
    if push:
        lines.append(f"then record the pushed digest (buildx writes it to {ctx.dir}/metadata.json, podman and "
                     f"buildah to {ctx.dir}/digest): mlc build {spec} --env {env} --tag {ctx.tag} "
                     "--digest sha256:<digest>")
    return "\n".join(lines)


def record(sf: Any, env: str, tag: str, digest: str, tool: str) -> Path:
    from mlc.image import extras_for

    if not DIGEST.match(digest):
        raise UsageError(f"--digest {digest}: expected sha256:<64 hex digits>")
    return write_lock(sf.path, env, {"image": tag, "digest": digest, "built_with": tool, "mlc": __version__,
                                     "extras": ",".join(extras_for(sf.spec, env))})


def build_command(path: str, env: str, push: bool, tag: str | None, wheel: str | None, digest: str | None,
                  echo: Callable[[str], None]) -> int:
    from mlc.spec.validate import load_spec

    sf = load_spec(path)
    if env not in sf.spec.environments:
        raise UsageError(f"environment '{env}' is not defined; the spec has: {', '.join(sorted(sf.spec.environments))}")
    tag = tag or default_tag(sf, env)
    if tag is None:
        raise UsageError(f"the image of environment '{env}' needs a tag to build and push: "
                         f"pass --tag <registry>/<repo>:<tag>")
    parsed = parse(tag)
    if parsed is None or parsed[2] is not None:
        raise UsageError(f"--tag {tag}: expected <registry>/<repo>:<tag>")
    if push and tag.startswith("localhost/"):
        raise UsageError(f"{tag} names no registry to push to: pass --tag <registry>/<repo>:<tag>")
    if digest is not None:
        lock = record(sf, env, tag, digest, "by hand")
        echo(f"recorded {tag}@{digest} for {env} in {lock}")
        return 0
    ctx = stage(sf, env, tag, Path(wheel) if wheel else None)
    tool, why = find_builder()
    if tool is None:
        raise MlcError(manual_message(ctx, why, push, path, env))
    for cmd in commands(tool, ctx, push):
        echo("+ " + " ".join(cmd))
        if subprocess.run(cmd, check=False).returncode != 0:
            raise MlcError(f"{cmd[0]} {cmd[1]} failed (its output is above); nothing was recorded")
    if push:
        got = pushed_digest(tool, ctx)
        lock = record(sf, env, tag, got, tool if tool != "docker" else "docker buildx")
        echo(f"pushed {tag}@{got}; recorded in {lock} (commit it; `mlc compile` now pins this digest)")
    else:
        echo(f"built {tag} with {tool}; --push to publish it and record its digest in {IMAGES_LOCK}")
    return 0


def image_command(path: str, envs: tuple[str, ...], out: str, echo: Callable[[str], None]) -> int:
    """Write generated/<project>/<env>/image/ for the given (default: all) environments, the same bytes as
    compile (which covers them with --check)."""
    from mlc.emit import header, spec_source
    from mlc.image import image_files
    from mlc.plan import spec_hash
    from mlc.spec.validate import load_spec

    sf = load_spec(path)
    names = sorted(sf.spec.environments)
    for e in envs:
        if e not in names:
            raise UsageError(f"environment '{e}' is not defined; the spec has: {', '.join(names)}")
    head = header(spec_source(sf.path))
    for env in sorted(envs) or names:
        d = Path(out) / sf.spec.metadata.name / env
        for rel, text in image_files(sf.spec, env, spec_hash(sf.text)).items():
            target = d / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(head + text, encoding="utf-8")
            tmp.replace(target)
        echo(f"wrote {d / 'image'}/{{Dockerfile,requirements.lock,.dockerignore}}")
    return 0
