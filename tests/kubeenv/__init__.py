"""A real Kubernetes API server on loopback for the cluster tests: etcd, kube-apiserver, kube-controller-manager.

Binaries are found the way controller-runtime's envtest finds them: the directory named by ``KUBEBUILDER_ASSETS``
holds ``kube-apiserver`` and ``etcd`` (``setup-envtest use 1.28 -p path`` prints one). ``etcd`` may also come
from ``PATH`` (Debian's ``etcd-server``), and ``kube-controller-manager`` is optional: without it there is no
garbage collector and no namespace controller, and the tests that need them skip. When ``KUBEBUILDER_ASSETS`` is
unset, a ``../shared/kube`` folder beside the checkout (with ``bin/*.xz``) is used if it exists.

The CRDs installed are vendored in ``crds/`` (see its README for source and version). Only one Argo major version's
CRDs can be installed at a time; ``use_argo()`` swaps them.

Nothing here runs a kubelet: objects are stored, validated, defaulted and garbage-collected, but no pod starts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import lzma
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import yaml

HERE = Path(__file__).resolve().parent
CRDS = HERE / "crds"
REPO = HERE.parents[1]
SHARED_KUBE = REPO.parent / "shared" / "kube"
ARGO_CRDS = {"3.7": "argo-v3.7.18", "4": "argo-v4.1.2"}
OTHER_CRDS = ("kserve", "prometheus-operator")
ADMIN_TOKEN = "mlc-test-admin"  # system:masters
USER_TOKENS = {"alice": "mlc-test-alice", "bob": "mlc-test-bob"}  # no rights until a test binds a Role


class Unavailable(Exception):
    """No binaries: the reason goes into the skip message."""


@dataclass
class Assets:
    apiserver: Path
    etcd: Path
    controller_manager: Path | None
    source: str


def find_assets(cache: Path) -> Assets:
    """KUBEBUILDER_ASSETS first; else ../shared/kube (decompressed into ``cache``); etcd may come from PATH."""
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env:
        d = Path(env)
        source = f"KUBEBUILDER_ASSETS={env}"
        apiserver = d / "kube-apiserver"
        if not apiserver.is_file():
            raise Unavailable(f"{source} has no kube-apiserver")
        kcm = d / "kube-controller-manager"
        return Assets(apiserver, _etcd(d, source), kcm if kcm.is_file() else None, source)
    if not (SHARED_KUBE / "bin" / "kube-apiserver.xz").is_file():
        raise Unavailable("no Kubernetes test binaries: set KUBEBUILDER_ASSETS to a directory with kube-apiserver "
                          "and etcd (e.g. `export KUBEBUILDER_ASSETS=$(setup-envtest use 1.28 -p path)`)")
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("kube-apiserver", "kube-controller-manager"):
        src = SHARED_KUBE / "bin" / f"{name}.xz"
        dest = cache / name
        stamp = cache / f".{name}.sum"
        sig = f"{src.stat().st_size}:{src.stat().st_mtime_ns}"
        if not dest.is_file() or not stamp.is_file() or stamp.read_text() != sig:
            tmp = dest.with_suffix(".tmp")
            with lzma.open(src) as f, open(tmp, "wb") as g:
                shutil.copyfileobj(f, g, 1 << 20)
            tmp.chmod(0o755)
            tmp.replace(dest)
            stamp.write_text(sig)
        out[name] = dest
    source = f"{SHARED_KUBE} (unpacked into {cache})"
    return Assets(out["kube-apiserver"], _etcd(None, source), out["kube-controller-manager"], source)


def _etcd(d: Path | None, source: str) -> Path:
    if d is not None and (d / "etcd").is_file():
        return d / "etcd"
    found = shutil.which("etcd")
    if not found:
        raise Unavailable(f"{source}: no etcd beside kube-apiserver nor on PATH (apt-get install etcd-server)")
    return Path(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certs(d: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    def pem_key(k: Any) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlc-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "tls.key").write_bytes(pem_key(key))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (d / "sa.key").write_bytes(pem_key(sa))
    (d / "sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))


@dataclass
class KubeEnv:
    """``with KubeEnv(assets) as k:`` starts everything; ``k.kubeconfig(path, user)`` points a client at it."""

    assets: Assets
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlc-kube-")))
    url: str = ""
    argo: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    http: httpx.Client | None = None

    @property
    def has_controllers(self) -> bool:
        return self.assets.controller_manager is not None

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _start(self) -> None:
        d = self.dir
        _certs(d)
        (d / "tokens.csv").write_text(f"{ADMIN_TOKEN},admin,admin,system:masters\n" + "".join(
            f"{tok},{user},{user}\n" for user, tok in USER_TOKENS.items()))
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        self._spawn("etcd", [str(self.assets.etcd), "--data-dir", str(d / "etcd"),
                             "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
                             "--unsafe-no-fsync", "--quota-backend-bytes", str(2 << 30)])
        self._spawn("kube-apiserver", [
            str(self.assets.apiserver), "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
            "--bind-address", "127.0.0.1", "--secure-port", str(api_port), "--advertise-address", "127.0.0.1",
            "--tls-cert-file", str(d / "tls.crt"), "--tls-private-key-file", str(d / "tls.key"),
            "--client-ca-file", str(d / "ca.crt"),
            "--service-account-key-file", str(d / "sa.pub"),
            "--service-account-signing-key-file", str(d / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--token-auth-file", str(d / "tokens.csv"), "--authorization-mode", "RBAC",
            "--service-cluster-ip-range", "10.0.0.0/24", "--endpoint-reconciler-type", "none",
            "--disable-admission-plugins", "ServiceAccount", "--enable-priority-and-fairness=false"])
        self.url = f"https://127.0.0.1:{api_port}"
        self.http = httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=str(d / "ca.crt")), timeout=60, trust_env=False,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self._wait("/readyz", 90)
        self.kubeconfig(d / "admin.kubeconfig")
        if self.assets.controller_manager is not None:
            self._spawn("kube-controller-manager", [
                str(self.assets.controller_manager), "--kubeconfig", str(d / "admin.kubeconfig"),
                "--authentication-kubeconfig", str(d / "admin.kubeconfig"),
                "--authorization-kubeconfig", str(d / "admin.kubeconfig"),
                "--bind-address", "127.0.0.1", "--secure-port", str(_free_port()), "--leader-elect=false",
                "--service-account-private-key-file", str(d / "sa.key"), "--root-ca-file", str(d / "ca.crt"),
                "--service-cluster-ip-range", "10.0.0.0/24", "--controllers", "garbagecollector,namespace",
                "--concurrent-gc-syncs", "5", "--concurrent-namespace-syncs", "5"])
        self.install([CRDS / name for name in OTHER_CRDS])

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.dir / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True))

    def _wait(self, path: str, timeout: float) -> None:
        assert self.http is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited with {p.returncode}: {self._tail(Path(str(p.args[0])).name)}")
            with contextlib.suppress(httpx.HTTPError):
                r = self.http.get(path)
                if r.status_code == 200:
                    return
                last = r.text[-300:]
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver not ready after {timeout:.0f}s: {last}")

    def _tail(self, name: str) -> str:
        f = self.dir / f"{name}.log"
        return f.read_text(errors="replace")[-1500:] if f.exists() else ""

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients -------------------------------------------------------------------------------------------
    def kubeconfig(self, path: Path, user: str = "admin") -> Path:
        token = ADMIN_TOKEN if user == "admin" else USER_TOKENS[user]
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
               "clusters": [{"name": "test", "cluster": {"server": self.url,
                                                         "certificate-authority": str(self.dir / "ca.crt")}}],
               "users": [{"name": user, "user": {"token": token}},
                         {"name": "expired", "user": {"token": "no-such-token"}}],
               "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}},
                            {"name": "expired", "context": {"cluster": "test", "user": "expired"}}]}
        path.write_text(yaml.safe_dump(cfg))
        return path

    def request(self, method: str, path: str, body: Any = None, ctype: str = "application/json",
                follow_redirects: bool = False, **params: str) -> httpx.Response:
        """A request as the admin (kubectl, a colleague), straight to the API."""
        assert self.http is not None
        content = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        return self.http.request(method, path, params=params, content=content, follow_redirects=follow_redirects,
                                 headers={"Content-Type": ctype} if content is not None else {})

    # -- CRDs ----------------------------------------------------------------------------------------------
    def install(self, dirs: list[Path]) -> None:
        """Server-side apply every CRD in ``dirs`` (too large for client-side apply), then wait until Established."""
        names = []
        for d in dirs:
            for f in sorted(d.glob("*.json.xz")):
                group, _, plural = f.name.removesuffix(".json.xz").partition("_")
                name = f"{plural}.{group}"
                r = self.request("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                                 lzma.decompress(f.read_bytes()), "application/apply-patch+yaml",
                                 fieldManager="mlc-tests", force="true")
                if r.status_code >= 300 and "cost" in r.text and "budget" in r.text:
                    raise Unavailable(f"this kube-apiserver refuses the CRD {name} (its CEL rules exceed the "
                                      "estimated cost budget; Argo's full CRDs do on an unpatched 1.28)")
                if r.status_code >= 300:
                    raise RuntimeError(f"installing CRD {name}: {r.status_code} {r.text[:500]}")
                names.append(name)
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
                conds = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
                if conds.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not Established after 60s: {conds}")
                time.sleep(0.1)
        # discovery answers lag behind Established by a moment
        for d in dirs:
            for f in d.glob("*.json.xz"):
                group, _, plural = f.name.removesuffix(".json.xz").partition("_")
                self._wait_served(group, plural)

    def _wait_served(self, group: str, plural: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            groups = self.request("GET", "/apis").json().get("groups", [])
            for g in groups:
                if g["name"] == group:
                    gv = g["preferredVersion"]["groupVersion"]
                    r = self.request("GET", f"/apis/{gv}")
                    if r.status_code == 200 and any(x["name"] == plural for x in r.json().get("resources", [])):
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{plural}.{group} is not served 30s after it was Established")

    def uninstall(self, names: list[str]) -> None:
        for name in names:
            self.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        deadline = time.monotonic() + 120
        for name in names:
            while self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                               ).status_code != 404:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} still there 120s after delete")
                time.sleep(0.2)

    def use_argo(self, version: str) -> None:
        """Install the CRDs of one Argo major version, removing the other's first (and every Argo object)."""
        if self.argo == version:
            return
        if self.argo is not None:
            d = CRDS / ARGO_CRDS[self.argo]
            self.uninstall([f"{f.name.removesuffix('.json.xz').partition('_')[2]}.argoproj.io"
                            for f in d.glob("*.json.xz")])
        self.install([CRDS / ARGO_CRDS[version]])
        self.argo = version
        self._wait_openapi(version)

    def _wait_openapi(self, version: str) -> None:
        """The server publishes a CRD's OpenAPI a moment after serving it; wait until it shows this version's."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            index = self.request("GET", "/openapi/v3").json()
            url = (index.get("paths", {}).get("apis/argoproj.io/v1alpha1") or {}).get("serverRelativeURL")
            if url:
                doc = self.request("GET", url, follow_redirects=True)
                schemas = doc.json().get("components", {}).get("schemas", {}) if doc.status_code == 200 else {}
                spec = schemas.get("io.argoproj.v1alpha1.CronWorkflow", {}).get("properties", {}).get("spec", {})
                if spec and ("schedule" in spec.get("properties", {})) == (version == "3.7"):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the OpenAPI of argoproj.io/v1alpha1 does not show Argo {version} after 60s")


