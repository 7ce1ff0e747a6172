"""What a cluster gives a container, for the executed-pipeline harness: its own filesystem (volumes at their
mountPaths), its declared environment with Secret references resolved, the cluster's DNS names, and a process.

A pod here is a directory: every absolute path the manifest gives the container (a volume's mountPath, the
directory of a declared output file) is rewritten into that directory, in the command, the args and the env
values alike, so parallel or repeated pods never share scratch space. The cluster's service names (e.g.
``http://minio.minio.svc:9000``) are rewritten to the loopback servers the test started, wherever they appear:
env values, args and the ConfigMap contents; that is this harness's DNS. Nothing else of the manifest is changed,
and the process gets only the environment the manifest declares (plus PATH and HOME).

Anything in a manifest the harness does not understand raises HarnessError, which fails the test: a field that
is skipped silently is a contract that is not tested.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent


class HarnessError(AssertionError):
    """The manifest has something the harness cannot run faithfully: a test failure, never a skip."""


def known(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise HarnessError(f"{where}: unknown field(s) {extra}; teach the harness what they mean")


@dataclass
class Cluster:
    """The parts of a cluster a pipeline relies on: objects from `mlc compile`, Secrets, DNS and a workdir."""

    workdir: Path
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)  # cluster URL -> loopback URL
    # "<namespace>/<serviceaccount>" -> a kubeconfig holding that ServiceAccount's token (what a pod's projected
    # token gives it); a pod whose ServiceAccount has none here has no Kubernetes API, as outside a cluster
    kubeconfigs: dict[str, str] = field(default_factory=dict)
    timeout: float = 900

    @classmethod
    def from_compiled(cls, env_dir: Path, workdir: Path, **kw: Any) -> Cluster:
        """Read the ConfigMaps `mlc compile` wrote for one project and environment (core/*.yaml)."""
        c = cls(workdir=workdir, **kw)
        for f in sorted(env_dir.glob("core/*.yaml")):
            for doc in yaml.safe_load_all(f.read_text()):
                if doc and doc.get("kind") == "ConfigMap":
                    c.configmaps[doc["metadata"]["name"]] = dict(doc.get("data") or {})
        return c

    def dns(self, text: str) -> str:
        for name, url in sorted(self.services.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(name, url)
        return text

    def secret(self, name: str, key: str | None, optional: bool, where: str) -> dict[str, str]:
        data = self.secrets.get(name)
        if data is None or (key is not None and key not in data):
            if optional:
                return {}
            raise HarnessError(f"{where}: Secret {name}{'/' + key if key else ''} does not exist in the cluster; "
                               "the pod would not start")
        return dict(data) if key is None else {key: data[key]}


@dataclass
class Attempt:
    exit_code: int
    seconds: float
    log: str


@dataclass
class Pod:
    """One container run: its directory, mounts, env and the paths it declares."""

    cluster: Cluster
    name: str
    command: list[str]
    env: dict[str, str]
    mounts: dict[str, dict[str, str]]  # mountPath -> files (name -> content)
    scratch: tuple[str, ...] = ()  # other container-local directories (where output files are declared)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.cluster.workdir / "pods" / self.name

    def prefixes(self) -> list[str]:
        """Container-local paths: the mounts, the declared output directories and /tmp (every container has its
        own)."""
        return sorted({*self.mounts, *self.scratch, "/tmp"}, key=len, reverse=True)

    def local(self, path: str) -> Path:
        """Where the container-local absolute ``path`` lives in this pod's directory."""
        if not path.startswith("/"):
            raise HarnessError(f"pod {self.name}: {path!r} is not an absolute path")
        return self.root / path.lstrip("/")

    def rewrite(self, text: str) -> str:
        """Container paths to pod-directory paths, cluster names to loopback: in any string the pod gets."""
        alternatives = "|".join(re.escape(p) for p in self.prefixes())  # one pass: never rewrite a rewrite
        text = re.sub(rf"(?<![\w./-])({alternatives})(?=/|$|[^\w.-])", lambda m: str(self.local(m.group(1))), text)
        return self.cluster.dns(text)

    def run(self) -> Attempt:
        root = self.root
        for mount, files in self.mounts.items():
            d = self.local(mount)
            d.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                (d / name).write_text(self.cluster.dns(content))
        for s in (*self.scratch, "/tmp"):
            self.local(s).mkdir(parents=True, exist_ok=True)
        (root / "home").mkdir(parents=True, exist_ok=True)
        cmd = [self.rewrite(c) for c in self.command]
        if cmd[0] == "mlc":  # the image's entrypoint: this venv's mlc
            cmd[0] = str(BIN / "mlc")
        env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(root / "home"), "LANG": "C.UTF-8",
               "TMPDIR": str(self.local("/tmp")),
               **{k: self.rewrite(v) for k, v in self.env.items()}}
        log = root / f"attempt-{len(self.attempts) + 1}.log"
        start = time.perf_counter()
        with log.open("wb") as out:
            try:
                code = subprocess.run(cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=self.cluster.timeout, check=False).returncode
            except subprocess.TimeoutExpired:
                code = 124
        a = Attempt(code, time.perf_counter() - start, log.read_text(errors="replace"))
        self.attempts.append(a)
        return a


def secret_env(cluster: Cluster, env: list[dict[str, Any]], where: str) -> dict[str, str]:
    """A container's ``env`` list: literal values and secretKeyRef, in order."""
    out: dict[str, str] = {}
    for e in env:
        known(e, {"name", "value", "valueFrom"}, f"{where}.env[{e.get('name')}]")
        if "value" in e:
            out[e["name"]] = str(e["value"])
            continue
        vf = e.get("valueFrom") or {}
        known(vf, {"secretKeyRef"}, f"{where}.env[{e['name']}].valueFrom")
        ref = vf["secretKeyRef"]
        known(ref, {"name", "key", "optional"}, f"{where}.env[{e['name']}].valueFrom.secretKeyRef")
        got = cluster.secret(ref["name"], ref["key"], bool(ref.get("optional")), where)
        if got:
            out[e["name"]] = got[ref["key"]]
    return out


def wait_order(tasks: dict[str, list[str]]) -> list[str]:
    """Tasks in dependency order (ties in declaration order); a cycle or unknown dependency is an error."""
    done: list[str] = []
    pending = list(tasks)
    while pending:
        ready = next((t for t in pending if all(d in done for d in tasks[t])), None)
        if ready is None:
            missing = {d for t in pending for d in tasks[t] if d not in tasks}
            raise HarnessError(f"DAG cannot be ordered: unknown dependencies {sorted(missing)} or a cycle in "
                               f"{pending}")
        pending.remove(ready)
        done.append(ready)
    return done


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]

