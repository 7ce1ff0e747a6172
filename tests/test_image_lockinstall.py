"""The step image's lock installs, as the Dockerfile installs it, into a fresh venv, and mlc runs from it.

Slow (it downloads every package of the lock): marked ``slow`` and ``lockinstall``; `make test` (so .ci/run)
runs it, a quick loop deselects it with ``-m 'not slow'``. The lock tested is the one compile wrote for
delivery-eta's prod environment (extra ``s3``, as every cluster environment with an s3:// root); the other locks
differ by their extras' packages, which test_image.py checks. The lightning locks fetch torch from the PyTorch
CPU index, which this test does not assume is reachable."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from mlc import __version__
from mlc.cli import main
from mlc.image.build import build_wheel

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.lockinstall,
              pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the locks are resolved for Python 3.11")]


def test_lock_installs_with_require_hashes_and_mlc_runs(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert main(["image", str(REPO / "specs" / "delivery-eta"), "--env", "prod", "-o", str(out)]) == 0
    lock = out / "delivery-eta" / "prod" / "image" / "requirements.lock"
    assert "extras: s3;" in lock.read_text()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"

    def pip(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(py), "-m", "pip", "--disable-pip-version-check", *args],
                              check=False, capture_output=True, text=True, timeout=1800)

    done = pip("install", "--require-hashes", "--no-deps", "-r", str(lock))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheel = build_wheel(tmp_path / "dist")
    done = pip("install", "--no-deps", str(wheel))
    assert done.returncode == 0, done.stderr[-3000:]
    done = pip("check")  # the lock is complete: nothing mlc (or a package of the lock) needs is missing
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([str(env_dir / "bin" / "mlc"), "--version"], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"mlc, version {__version__}", done.stdout + done.stderr
    # the image runs compile and serve paths too: their imports resolve from the lock alone
    done = subprocess.run([str(py), "-c", "import mlc.emit, mlc.serve.app, mlflow, sklearn, kfp, hera, s3fs, boto3"],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
