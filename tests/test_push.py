"""`mlc push` against a real S3 API (moto's server on loopback) and a local-path root.

Faults come from the real server wherever it can produce them: a bucket that does not exist, credentials it
never issued (moto with IAM auth on), a closed port. The one injected fault is a failure between the temporary
upload and the move (a monkeypatched move), besides a real SIGKILL of a pushing process mid-upload.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e.servers import S3Server, closed_port, moto_server

from mlc.cli import main

REPO = Path(__file__).resolve().parents[1]
CHURN = REPO / "specs" / "churn"
KEYS = ["mlproject.yaml", "data/customers.csv", "data/to_score.csv", "data/current.csv"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> S3Server:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch, s3: S3Server) -> S3Server:
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3


_n = 0


def project(tmp_path: Path, root: str) -> Path:
    """A copy of specs/churn whose staging environment stores under ``root``."""
    d = tmp_path / "churn"
    shutil.copytree(CHURN, d, ignore=shutil.ignore_patterns(".mlc", "__pycache__"))
    spec = d / "mlproject.yaml"
    text = spec.read_text().replace("root: s3://ml-staging/churn", f"root: {root}")
    assert root in text
    if not root.startswith("s3://"):
        text = text.replace("      endpoint: http://minio.minio.svc:9000\n", "")
    spec.write_text(text)
    return d


def bucket(s3: S3Server) -> str:
    global _n
    _n += 1
    name = f"push-{os.getpid()}-{_n}"
    s3.client().create_bucket(Bucket=name)
    return name


def keys(s3: S3Server, b: str) -> dict[str, bytes]:
    c = s3.client()
    out = {}
    for o in c.list_objects_v2(Bucket=b).get("Contents", []):
        out[o["Key"]] = c.get_object(Bucket=b, Key=o["Key"])["Body"].read()
    return out


def push(*args: str) -> int:
    return main(["push", *args])


def test_first_push_then_unchanged(tmp_path: Path, creds: S3Server, capsys: pytest.CaptureFixture) -> None:
    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    assert push(str(p), "--env", "staging") == 0
    out = capsys.readouterr().out
    assert re.search(r"4 to upload, 0 unchanged, 5\d\d\.\d kB", out), out
    stored = keys(creds, b)
    assert sorted(stored) == sorted(f"churn/project/{k}" for k in KEYS)  # no temporary key left behind
    for k in KEYS:
        assert stored[f"churn/project/{k}"] == (p / k).read_bytes()
    head = creds.client().head_object(Bucket=b, Key="churn/project/data/customers.csv")
    assert head["Metadata"]["mlc-sha256"] == hashlib.sha256((p / "data/customers.csv").read_bytes()).hexdigest()
    before = head["LastModified"]

    time.sleep(1.1)  # LastModified has a resolution of one second
    assert push(str(p), "--env", "staging") == 0
    assert "0 to upload, 4 unchanged, 0 B" in capsys.readouterr().out
    after = creds.client().head_object(Bucket=b, Key="churn/project/data/customers.csv")["LastModified"]
    assert after == before  # skipped, not rewritten


def test_object_without_metadata_is_compared_by_reading(tmp_path: Path, creds: S3Server,
                                                         capsys: pytest.CaptureFixture) -> None:
    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    creds.client().put_object(Bucket=b, Key="churn/project/data/current.csv", Body=(p / "data/current.csv").read_bytes())
    assert push(str(p), "--env", "staging") == 0
    assert "3 to upload, 1 unchanged" in capsys.readouterr().out


def test_differing_remote_needs_force(tmp_path: Path, creds: S3Server, capsys: pytest.CaptureFixture) -> None:
    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    creds.client().put_object(Bucket=b, Key="churn/project/data/to_score.csv", Body=b"someone else's rows\n")
    assert push(str(p), "--env", "staging") == 1
    err = capsys.readouterr().err
    assert "refusing to replace 1 remote file(s) whose content differs; nothing was pushed" in err
    assert f"s3://{b}/churn/project/data/to_score.csv" in err and "--force" in err
    assert list(keys(creds, b)) == ["churn/project/data/to_score.csv"]  # nothing else was written
    assert push(str(p), "--env", "staging", "--force") == 0
    assert "4 to upload (1 replaced), 0 unchanged" in capsys.readouterr().out
    assert keys(creds, b)["churn/project/data/to_score.csv"] == (p / "data/to_score.csv").read_bytes()


def test_missing_bucket(tmp_path: Path, creds: S3Server, capsys: pytest.CaptureFixture) -> None:
    p = project(tmp_path, "s3://no-such-bucket-here/churn")
    assert push(str(p), "--env", "staging") == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: S3 at {creds.url} (bucket no-such-bucket-here): ListObjectsV2 answered NoSuchBucket: "
                   "The specified bucket does not exist; check that the bucket exists (create it) and that "
                   "storage.root names it")


def test_wrong_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    with moto_server(tmp_path, auth=True) as guarded:
        for k, v in guarded.env().items():
            monkeypatch.setenv(k, v)
        p = project(tmp_path, "s3://anything/churn")
        assert push(str(p), "--env", "staging") == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"error: S3 at {guarded.url} (bucket anything): ListObjectsV2 answered "
                          "InvalidAccessKeyId: ")
    assert err.endswith("check AWS_ACCESS_KEY_ID / AWS_PROFILE (the storage credentials Secret on a cluster)")


def test_unreachable_endpoint(tmp_path: Path, creds: S3Server, capsys: pytest.CaptureFixture) -> None:
    p = project(tmp_path, "s3://ml-staging/churn")
    url = f"http://127.0.0.1:{closed_port()}"
    assert push(str(p), "--env", "staging", "--endpoint-url", url) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: S3 at {url}: unreachable (Could not connect to the endpoint URL")
    assert "check that the endpoint is running" in err


def test_pin_mismatch_uploads_nothing(tmp_path: Path, creds: S3Server, capsys: pytest.CaptureFixture) -> None:
    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    with (p / "data/customers.csv").open("a") as fh:
        fh.write("c-x,2024-01-01,1,1,1,basic,10,0,north,18-24,no\n")
    assert push(str(p), "--env", "staging") == 1
    err = capsys.readouterr().err
    assert "error: nothing was pushed:" in err
    assert "source 'customers' data/customers.csv: pin mismatch, expected sha256 50b73759d55c" in err
    assert keys(creds, b) == {}


def test_failure_after_the_temporary_upload_keeps_the_old_object(
        tmp_path: Path, creds: S3Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The injected fault: the move after a verified temporary upload fails (as a dropped connection would)."""
    from botocore.exceptions import EndpointConnectionError

    from mlc import push as P

    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    old = b"customer_id\nold\n"
    creds.client().put_object(Bucket=b, Key="churn/project/data/customers.csv", Body=old)

    def broken_move(self, tmp: str, key: str, item: P.Item) -> None:
        assert self.reread(tmp) == (item.size, item.sha256)  # the temporary object is complete
        raise EndpointConnectionError(endpoint_url=creds.url)

    monkeypatch.setattr(P._S3, "move", broken_move)
    assert push(str(p), "--env", "staging", "--force") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: S3 at {creds.url}: unreachable")
    stored = keys(creds, b)
    assert stored["churn/project/data/customers.csv"] == old
    assert not [k for k in stored if ".mlc-push" in k]  # the temporary key was removed


@pytest.mark.slow
def test_killed_mid_upload_keeps_the_old_object(tmp_path: Path, creds: S3Server) -> None:
    """A real interruption: SIGKILL while a large file is being uploaded (multipart) to its temporary key."""
    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    big = p / "data" / "current.csv"
    row = (p / "data/current.csv").read_text().splitlines()
    with big.open("w") as fh:  # ~120 MB of valid rows: many multipart chunks
        fh.write(row[0] + "\n")
        body = "\n".join(row[1:]) + "\n"
        while fh.tell() < 120_000_000:
            fh.write(body)
    old = b"old window\n"
    creds.client().put_object(Bucket=b, Key="churn/project/data/current.csv", Body=old)
    proc = subprocess.Popen([sys.executable, "-m", "mlc", "push", str(p), "--env", "staging", "--force"],
                            env={**os.environ, **creds.env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    c = creds.client()
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            ups = c.list_multipart_uploads(Bucket=b).get("Uploads", [])
            if any(".mlc-push/" in u["Key"] and u["Key"].endswith("data/current.csv") for u in ups):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    stored = keys(creds, b)
    assert stored["churn/project/data/current.csv"] == old  # the old object survived
    assert not [k for k in stored if k.startswith("churn/project/") and ".mlc-push" in k]


def test_local_path_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    p = project(tmp_path, "../volume/churn")  # relative: resolved against the spec's directory
    assert push(str(p), "--env", "staging") == 0
    assert "4 to upload, 0 unchanged" in capsys.readouterr().out
    root = tmp_path / "volume" / "churn"
    for k in KEYS:
        assert (root / "project" / k).read_bytes() == (p / k).read_bytes()
    assert not list((root / ".mlc-push").iterdir())  # temporary files moved into place, none left
    assert push(str(p), "--env", "staging") == 0
    assert "0 to upload, 4 unchanged" in capsys.readouterr().out
    (root / "project/data/current.csv").write_text("changed\n")
    assert push(str(p), "--env", "staging") == 1
    assert "refusing to replace 1 remote file(s)" in capsys.readouterr().err


def test_run_on_a_cluster_env_needs_the_push(tmp_path: Path, creds: S3Server, capsys: pytest.CaptureFixture) -> None:
    b = bucket(creds)
    p = project(tmp_path, f"s3://{b}/churn")
    from mlc.errors import RunError
    from mlc.local import run_command

    with pytest.raises(RunError) as e:
        run_command(str(p), "staging")
    err = e.value.render()
    assert f"the cluster steps read the project's files from s3://{b}/churn/project/, where mlproject.yaml " \
           "(missing), data/customers.csv (missing)" in err
    assert f"hint: mlc push {p} --env staging" in err
    assert push(str(p), "--env", "staging") == 0
    from mlc.plan import lower
    from mlc.push import preflight
    from mlc.spec.validate import load_spec

    sf = load_spec(str(p))
    preflight(sf, lower(sf.spec, sf.text, "staging"))  # no error once pushed


def test_environment_without_storage(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert push(str(CHURN), "--env", "local") == 1
    assert "environment 'local' has no storage.root" in capsys.readouterr().err

