"""`mlc push`: put the project's files where the cluster steps read them, ``<storage root>/project/``.

On a cluster a relative data path of the spec resolves against ``<storage root>/project/`` (see
``StepContext.data_uri``), so this uploads exactly the files the steps read that way: the spec, every data
source, each source's DVC pointer, the batch input, the drift window and the quality feedback. Schemes and
absolute paths are read where they are and are not pushed.

Every file is checked against its pin before anything is sent. Each upload goes to a temporary key outside
``project/`` (``<root>/.mlc-push/<token>/...``), is re-read (size and sha256), and only then is moved into place
(S3 has no rename: a server-side copy, verified by size and the stored sha256, then the temporary key is deleted).
A file already there with the same sha256 is skipped: on S3 the sha256 lives in the object's metadata
(``x-amz-meta-mlc-sha256``); an object without it (uploaded by another tool) is compared by reading it, and so is
every file of a local-path root. A remote file whose content differs is replaced only with ``--force``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.errors import MlcError, RunError
from mlc.services import Where, guard

if TYPE_CHECKING:
    from mlc.plan import Plan
    from mlc.spec.validate import SpecFile

META_KEY = "mlc-sha256"  # S3 user metadata: x-amz-meta-mlc-sha256
TMP_DIR = ".mlc-push"
LARGE = 8 << 20  # files from this size on get a progress bar
CHUNK = 1 << 20


class PushError(MlcError):
    """A file cannot be pushed as the user asked (pin mismatch, missing file, a remote file that differs)."""


@dataclass(frozen=True)
class Item:
    key: str  # path under <root>/project/, posix
    local: Path
    what: str  # spec, source 'customers', DVC pointer, batch input, ...
    size: int
    sha256: str


# ----------------------------------------------------------------------------- what to push
def _hash(path: Path) -> tuple[str, str, int]:
    sha, md5, n = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
            n += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), n


def _relative(uri: str) -> bool:
    return "://" not in uri and not os.path.isabs(uri)


def collect(sf: SpecFile) -> list[Item]:
    """The files a cluster step reads from ``<root>/project/``, each checked against its pin."""
    import yaml

    spec, root = sf.spec, sf.root
    wanted: list[tuple[str, str, bool]] = [(sf.path.name, "spec", True)]  # (uri, what, required)
    for s in spec.data.sources:
        wanted.append((s.uri, f"source '{s.name}'", True))
        if s.pin and s.pin.dvc:
            wanted.append((s.pin.dvc, f"DVC pointer of '{s.name}'", True))
    if spec.deployment.batch:
        wanted.append((spec.deployment.batch.input.uri, "batch input", False))
    if spec.monitoring.drift:
        wanted.append((spec.monitoring.drift.current.uri, "drift window", False))
    if spec.monitoring.quality and spec.monitoring.quality.feedback:
        wanted.append((spec.monitoring.quality.feedback.uri, "quality feedback", False))

    items: dict[str, Item] = {}
    problems: list[str] = []
    md5s: dict[str, str] = {}
    for uri, what, required in wanted:
        if not _relative(uri):
            continue
        key = posixpath.normpath(uri.replace(os.sep, "/"))
        if key.startswith("../") or key == "..":
            problems.append(f"{what} {uri}: outside the project directory; the cluster reads it as "
                            f"<storage root>/project/{uri}, so keep it inside {root}")
            continue
        path = root / key
        if not path.is_file():
            if required:
                problems.append(f"{what} {uri}: no such file ({path})")
            else:
                print(f"note: {what} {uri} is not here ({path}); the step will need it at project/{key}",
                      file=sys.stderr)
            continue
        if key in items:
            continue
        sha, md5, size = _hash(path)
        md5s[key] = md5
        items[key] = Item(key, path, what, size, sha)
    for s in spec.data.sources:  # pins, once every file is hashed
        key = posixpath.normpath(s.uri) if _relative(s.uri) else None
        if key not in items or s.pin is None:
            continue
        item = items[key]
        if s.pin.sha256 and s.pin.sha256.lower() != item.sha256:
            problems.append(f"source '{s.name}' {s.uri}: pin mismatch, expected sha256 {s.pin.sha256}, found "
                            f"{item.sha256} (update data.sources[].pin.sha256 if the change is intended)")
        if s.pin.dvc and posixpath.normpath(s.pin.dvc) in items:
            pointer = items[posixpath.normpath(s.pin.dvc)].local
            try:
                expected = str((yaml.safe_load(pointer.read_text()) or {})["outs"][0]["md5"])
            except (KeyError, IndexError, TypeError, yaml.YAMLError, OSError):
                problems.append(f"{s.pin.dvc}: not a DVC pointer file (expected outs[0].md5)")
                continue
            if expected != md5s[key]:
                problems.append(f"source '{s.name}' {s.uri}: pin mismatch, expected md5 {expected} (from "
                                f"{s.pin.dvc}), found {md5s[key]} (run `dvc pull`, or `dvc add` to pin this one)")
    if problems:
        raise PushError("nothing was pushed:\n" + "\n".join(f"  - {p}" for p in problems))
    return list(items.values())


# ----------------------------------------------------------------------------- where to
def storage_root(sf: SpecFile, plan: Plan) -> str:
    """The environment's storage root as the steps see it (a relative path resolves against the spec's dir)."""
    root = plan.storage.root
    if not plan.storage.is_s3 and "://" not in root and not os.path.isabs(root):
        root = str((sf.root / root).resolve())
    return root.rstrip("/")


def endpoint_url(plan: Plan, override: str | None = None) -> str | None:
    """--endpoint-url, then AWS_ENDPOINT_URL(_S3), then the environment's storage.endpoint."""
    return (override or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            or plan.storage.endpoint)


class _Local:
    """A local-path root (a mounted volume): temporary file, re-read, then os.replace (atomic)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root.removeprefix("file://"))

    def url(self, key: str) -> str:
        return str(self.root / key)

    def preflight(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise PushError(f"storage root {self.root} is a file, not a directory")

    def remote(self, key: str) -> str | None:
        p = self.root / key
        return _hash(p)[0] if p.is_file() else None

    def put(self, item: Item, tmp: str, progress: Callable[[int], None]) -> None:
        dst = self.root / tmp
        dst.parent.mkdir(parents=True, exist_ok=True)
        with item.local.open("rb") as src, dst.open("wb") as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                out.write(chunk)
                progress(len(chunk))
            out.flush()
            os.fsync(out.fileno())

    def reread(self, key: str) -> tuple[int, str]:
        sha, _, size = _hash(self.root / key)
        return size, sha

    def move(self, tmp: str, key: str, item: Item) -> None:
        dst = self.root / key
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.root / tmp, dst)

    def check_final(self, key: str, item: Item) -> tuple[int, str]:
        return self.reread(key)

    def delete(self, tmp: str) -> None:
        shutil.rmtree(self.root / tmp.split("/", 2)[0] / tmp.split("/", 2)[1], ignore_errors=True)


class _S3:
    """An s3:// root through boto3 (credentials the standard way: env vars, profiles, instance roles)."""

    def __init__(self, root: str, endpoint: str | None) -> None:
        import boto3
        from botocore.config import Config

        rest = root.removeprefix("s3://")
        self.bucket, _, self.prefix = rest.partition("/")
        self.endpoint = endpoint
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint,
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}))

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._k(key)}"

    def preflight(self) -> None:
        """One listing call, whose answer names the fault (NoSuchBucket, InvalidAccessKeyId, AccessDenied...)."""
        self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._k("project/"), MaxKeys=1)

    def remote(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        sha = head.get("Metadata", {}).get(META_KEY)
        return sha if sha else self.reread(key)[1]

    def put(self, item: Item, tmp: str, progress: Callable[[int], None]) -> None:
        self.client.upload_file(str(item.local), self.bucket, self._k(tmp),
                                ExtraArgs={"Metadata": {META_KEY: item.sha256}}, Callback=progress)

    def reread(self, key: str) -> tuple[int, str]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
        sha, n = hashlib.sha256(), 0
        for chunk in iter(lambda: body.read(CHUNK), b""):
            sha.update(chunk)
            n += len(chunk)
        return n, sha.hexdigest()

    def move(self, tmp: str, key: str, item: Item) -> None:
        self.client.copy({"Bucket": self.bucket, "Key": self._k(tmp)}, self.bucket, self._k(key),
                         ExtraArgs={"Metadata": {META_KEY: item.sha256}, "MetadataDirective": "REPLACE"})

    def check_final(self, key: str, item: Item) -> tuple[int, str]:
        head = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        return int(head["ContentLength"]), str(head.get("Metadata", {}).get(META_KEY, ""))

    def delete(self, tmp: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._k(tmp))


def target(root: str, endpoint: str | None) -> _Local | _S3:
    if root.startswith("s3://"):
        try:
            import boto3  # noqa: F401
        except ImportError as e:
            raise RunError("pushing to s3:// needs boto3 and s3fs\nhint: pip install 'mlc[s3]'") from e
        return _S3(root, endpoint)
    if "://" in root and not root.startswith("file://"):
        raise PushError(f"storage root {root}: mlc push supports a local path or s3://")
    return _Local(root)


# ----------------------------------------------------------------------------- push
def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _bar(item: Item) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr for a large file; a no-op callback otherwise."""
    if item.size < LARGE:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(item.key, total=item.size)
        yield lambda n: bar.advance(task, n)


def _upload(t: _Local | _S3, item: Item) -> None:
    tmp = f"{TMP_DIR}/{secrets.token_hex(8)}/{item.key}"
    ok = False
    try:
        gen = _bar(item)
        progress = next(gen)
        try:
            t.put(item, tmp, progress)
        finally:
            gen.close()
        size, sha = t.reread(tmp)
        if (size, sha) != (item.size, item.sha256):
            raise PushError(f"{t.url(tmp)}: read back {size} bytes with sha256 {sha}, sent {item.size} bytes "
                            f"with sha256 {item.sha256}; nothing was moved into place")
        t.move(tmp, f"project/{item.key}", item)
        size, sha = t.check_final(f"project/{item.key}", item)
        if (size, sha) != (item.size, item.sha256):
            raise PushError(f"{t.url('project/' + item.key)}: after the move it has {size} bytes, sha256 "
                            f"{sha or 'unknown'}; expected {item.size}, {item.sha256}")
        ok = True
    finally:
        try:
            t.delete(tmp)
        except Exception:
            if ok:  # otherwise the first failure is the one to report
                raise


def push_command(path: str, env: str, *, endpoint: str | None = None, force: bool = False,
                 dry_run: bool = False) -> int:
    from mlc.plan import lower
    from mlc.spec.validate import load_spec

    sf = load_spec(path)
    plan = lower(sf.spec, sf.text, env)
    env_spec = sf.spec.environments.get(env)
    if env_spec is None or env_spec.storage is None:
        raise PushError(f"environment '{env}' has no storage.root: nothing on a cluster reads from "
                        f"<storage root>/project/ (mlc run reads the files where they are)")
    root = storage_root(sf, plan)
    ep = endpoint_url(plan, endpoint) if plan.storage.is_s3 else None
    items = collect(sf)
    with guard(Where(storage=root, endpoint=ep)):
        t = target(root, ep)
        t.preflight()
        todo, same, differ = [], [], []
        for it in items:
            remote = t.remote(f"project/{it.key}")
            (todo if remote is None else same if remote == it.sha256 else differ).append((it, remote))
        if differ and not force:
            lines = "\n".join(f"  - {t.url('project/' + i.key)}: remote sha256 {r}, local {i.sha256}"
                              for i, r in differ)
            raise PushError(f"refusing to replace {len(differ)} remote file(s) whose content differs; nothing "
                            f"was pushed:\n{lines}\nhint: rerun with --force to replace them")
        send = todo + differ
        total = sum(i.size for i, _ in send)
        print(f"{root}/project/: {len(send)} to upload"
              + (f" ({len(differ)} replaced)" if differ else "")
              + f", {len(same)} unchanged, {human(total)}" + (" (dry run)" if dry_run else ""), flush=True)
        if dry_run:
            return 0
        for it, _ in send:
            _upload(t, it)
            print(f"  uploaded {it.key} ({human(it.size)}, sha256 {it.sha256[:12]})", flush=True)
    return 0


def preflight(sf: SpecFile, plan: Plan) -> None:
    """For `mlc run --env <cluster env>`: fail fast, naming `mlc push`, when the files the steps read from
    ``<storage root>/project/`` are missing there or differ from the local ones."""
    env_spec = sf.spec.environments.get(plan.env)
    if plan.env == "local" or env_spec is None or env_spec.storage is None:
        return
    root = storage_root(sf, plan)
    ep = endpoint_url(plan) if plan.storage.is_s3 else None
    with guard(Where(storage=root, endpoint=ep)):
        t = target(root, ep)
        stale = []
        for it in collect(sf):
            remote = t.remote(f"project/{it.key}")
            if remote != it.sha256:
                stale.append(f"{it.key} ({'missing' if remote is None else 'differs'})")
    if stale:
        raise RunError(f"the cluster steps read the project's files from {root}/project/, where "
                       f"{', '.join(stale)}\nhint: mlc push {sf.root} --env {plan.env}")

