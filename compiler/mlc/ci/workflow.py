"""`mlc ci init`: the GitHub Actions workflow of the pull-request loop, written into the user's repository.

The workflow (templates/ci/github-mlc.yaml.j2) is text with comments, so it is a template, not a dumped dict.
Actions are pinned to full commit SHAs (the tag in a comment would be mutable), and every job lists the
permissions it needs under a workflow-wide ``permissions: {}``. The tests run the real actionlint on it and
validate it against the GitHub workflow schema that check-jsonschema vendors.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlc import __version__
from mlc.errors import UsageError

WORKFLOW = Path(".github") / "workflows" / "mlc.yaml"
PROVIDERS = ("github",)
# owner/action -> full commit SHA of the release named in the comment the template writes after it
ACTIONS = {
    "checkout": "11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2",
    "setup_python": "0b93645e9fea7318ecaed2b359559ac225c90a2b  # v5.3.0",
    "github_script": "60a0d83039c74a4aee543508d2ffcb1c3799cdea  # v7.0.1",
}
PYTHON = "3.11"


@dataclass(frozen=True)
class SpecInfo:
    path: str  # relative to the repository root, posix
    envs: tuple[str, ...]


def repo_root(start: Path) -> Path:
    try:
        r = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True,
                           check=False)
    except FileNotFoundError:
        return start.resolve()
    return Path(r.stdout.strip()) if r.returncode == 0 else start.resolve()


def default_branch(root: Path) -> str:
    """origin's HEAD when the clone knows it, else the current branch, else main."""
    for args in (["symbolic-ref", "--short", "refs/remotes/origin/HEAD"], ["symbolic-ref", "--short", "HEAD"]):
        try:
            r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            break
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip().removeprefix("origin/")
    return "main"


def _specs(root: Path, paths: list[str]) -> list[SpecInfo]:
    from mlc.spec.validate import load_spec, resolve_path

    out = []
    for p in paths:
        f = resolve_path(p).resolve()
        try:
            rel = f.parent.relative_to(root.resolve()).as_posix()
        except ValueError:
            raise UsageError(f"{p}: not inside the repository {root}") from None
        sf = load_spec(f)
        out.append(SpecInfo(rel or ".", tuple(sorted(sf.spec.environments))))
    return out


def _envs(specs: list[SpecInfo], given: tuple[str, ...]) -> list[str]:
    have = sorted({e for s in specs for e in s.envs} - {"local"})
    if given:
        missing = [e for e in given if e not in have]
        if missing:
            raise UsageError(f"--env {', '.join(missing)}: no spec given defines it; they define: "
                             f"{', '.join(have) or 'only local'}")
        return list(dict.fromkeys(given))
    usual = [e for e in ("staging", "prod") if e in have]
    envs = usual or have
    if not envs:
        raise UsageError("the specs define no environment besides local: nothing to plan or apply; add one "
                         "(environments.staging) or pass --env")
    return envs


def render(specs: list[SpecInfo], envs: list[str], branch: str, out: str, install: str) -> str:
    import jinja2

    from mlc.diff.render import MARKER
    from mlc.resources import template_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir("ci"))), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True,
                             lstrip_blocks=True, variable_start_string="[[", variable_end_string="]]",
                             block_start_string="[%", block_end_string="%]", comment_start_string="[#",
                             comment_end_string="#]")
    specs_args = " ".join(s.path for s in specs)
    return env.get_template("github-mlc.yaml.j2").render(
        version=__version__, specs=specs, specs_args=specs_args, envs=envs, first_env=envs[0],
        later_envs=envs[1:], branch=branch, out=out, install=install, python=PYTHON, marker=MARKER,
        actions=ACTIONS)


def ci_init(paths: list[str], provider: str, envs: tuple[str, ...], out: str, branch: str | None,
            install: str | None, force: bool, root: Path | None = None) -> Path:
    if provider not in PROVIDERS:
        raise UsageError(f"--provider {provider}: mlc writes workflows for {', '.join(PROVIDERS)}")
    root = root or repo_root(Path.cwd())
    specs = _specs(root, paths)
    text = render(specs, _envs(specs, envs), branch or default_branch(root), out,
                  install or f'pip install "mlc=={__version__}"')
    dest = root / WORKFLOW
    if dest.exists() and not force:
        if dest.read_text(encoding="utf-8") == text:
            return dest
        raise UsageError(f"{dest} exists; pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(dest)
    return dest
