"""Thin adapters between mlc and the services of the user's environment: S3 (through s3fs/botocore), the MLflow
tracking server, the Kubernetes API and Prometheus (the Pushgateway).

An unreachable, refusing or misconfigured service is the user's environment, not a bug in mlc, so it must end in
exit 1 with one line (a ServiceError), not in exit 3 with a traceback. ``classify`` is the one table that
recognises those faults by the exception the client library raised (walking ``__cause__``/``__context__``, since
s3fs re-raises botocore's ClientError as an OSError); ``guard`` applies it around a block with what the caller
knows (the storage root, the S3 endpoint, the tracking URI). Everything else is left alone: a missing key is
not a service fault, and a real bug still shows its traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlc.errors import ServiceError

# S3 error codes that mean "your environment is wrong" (bucket, credentials, permissions, endpoint)
_S3_CHECK = {
    "NoSuchBucket": "that the bucket exists (create it) and that storage.root names it",
    "InvalidAccessKeyId": "AWS_ACCESS_KEY_ID / AWS_PROFILE (the storage credentials Secret on a cluster)",
    "SignatureDoesNotMatch": "AWS_SECRET_ACCESS_KEY (the storage credentials Secret on a cluster)",
    "AccessDenied": "the bucket policy and the permissions of these credentials",
    "Forbidden": "the bucket policy and the permissions of these credentials",
    "403": "the bucket policy and the permissions of these credentials",
    "InvalidBucketName": "storage.root: s3://<bucket>/<prefix> with a valid bucket name",
    "PermanentRedirect": "the region or storage.endpoint (the bucket lives elsewhere)",
    "AuthorizationHeaderMalformed": "the region of the credentials (AWS_DEFAULT_REGION)",
    "ExpiredToken": "AWS_SESSION_TOKEN (expired)",
}


@dataclass(frozen=True)
class Where:
    """What the caller knows about the services in play; every field optional."""

    storage: str | None = None  # s3://bucket/prefix or a path
    endpoint: str | None = None  # S3 endpoint URL
    tracking: str | None = None  # MLflow tracking URI

    def s3_endpoint(self) -> str:
        return self.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") \
            or "AWS S3"

    def tracking_uri(self) -> str:
        return self.tracking or os.environ.get("MLFLOW_TRACKING_URI") or "the MLflow tracking server"


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _raised_in(e: BaseException, *modules: str) -> bool:
    """Whether a frame of ``e``'s traceback (or of an exception it wraps) belongs to one of ``modules``."""
    for x in _chain(e):
        tb = x.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_globals.get("__name__", "")
            if any(name == m or name.startswith(m + ".") for m in modules):
                return True
            tb = tb.tb_next
    return False


def _short(text: object, limit: int = 200) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _s3(e: BaseException, w: Where) -> ServiceError | None:
    try:
        import botocore.exceptions as bx
    except ImportError:
        return None
    for x in _chain(e):
        if isinstance(x, bx.ClientError):
            err = x.response.get("Error", {})
            code = str(err.get("Code", ""))
            if code not in _S3_CHECK:
                return None  # NoSuchKey and friends: the caller's business
            bucket = err.get("BucketName") or (w.storage or "").removeprefix("s3://").split("/", 1)[0]
            where = f"{w.s3_endpoint()}" + (f" (bucket {bucket})" if bucket else "")
            op = x.operation_name if hasattr(x, "operation_name") else "request"
            return ServiceError("S3", where, f"{op} answered {code}: {_short(err.get('Message') or x)}",
                                _S3_CHECK[code])
        if isinstance(x, bx.NoCredentialsError | bx.PartialCredentialsError):
            return ServiceError("S3", w.s3_endpoint(), f"no credentials found ({_short(x)})",
                                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
        if isinstance(x, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
            url = w.endpoint or str(getattr(x, "kwargs", {}).get("endpoint_url") or w.s3_endpoint()).split("?")[0]
            return ServiceError("S3", url, f"unreachable ({_short(x)})",
                                "that the endpoint is running and storage.endpoint / --endpoint-url / "
                                "AWS_ENDPOINT_URL point at it")
    return None


def _mlflow(e: BaseException, w: Where) -> ServiceError | None:
    try:
        from mlflow.exceptions import MlflowException, RestException
    except ImportError:
        return None
    for x in _chain(e):
        if isinstance(x, RestException):
            return None  # the server answered with an MLflow error (no such model, ...): not a service fault
        if isinstance(x, MlflowException):
            msg = str(x.message if hasattr(x, "message") else x)
            if "API request to" not in msg:
                return None
            if "Invalid Host header" in msg:
                check = ("the server's --allowed-hosts (MLflow 3 refuses hosts it does not list; start it with "
                         "--allowed-hosts '<host>:<port>,...' naming this tracking URI's host)")
            elif "error code 401" in msg or "error code 403" in msg:
                check = "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
            elif "failed with exception" in msg or "Max retries" in msg:
                check = "that the tracking server is running and tracking_uri / MLFLOW_TRACKING_URI point at it"
            else:
                check = "the tracking server's log"
            return ServiceError("MLflow", w.tracking_uri(), _short(msg, 300), check)
    return None


def _kube(e: BaseException, w: Where) -> ServiceError | None:
    if not _raised_in(e, "kubernetes"):
        return None
    try:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        return None
    for x in _chain(e):
        if isinstance(x, ConfigException):
            return ServiceError(
                "Kubernetes API", "in-cluster config", f"not configured ({_short(x)})",
                "that this runs in a pod with a ServiceAccount token (KUBERNETES_SERVICE_HOST/PORT set), "
                "or pass a kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config)")
        if isinstance(x, ApiException):
            from kubernetes import client

            host = getattr(client.Configuration.get_default_copy(), "host", "")
            check = {401: "the ServiceAccount token or kubeconfig credentials",
                     403: "the Role and RoleBinding of this ServiceAccount (mlc compile writes them)",
                     404: "that the object and its CRD exist (mlc apply first)"}.get(
                x.status or 0, "the API server's log")
            return ServiceError("Kubernetes API", host or "the API server",
                                f"answered {x.status} {x.reason}: {_short(x.body or '', 200)}", check)
        if isinstance(x, OSError) or type(x).__module__.startswith("urllib3"):
            return ServiceError("Kubernetes API", "the API server", f"unreachable ({_short(x)})",
                                "the server address in the kubeconfig or KUBERNETES_SERVICE_HOST/PORT")
    return None


def _prometheus(e: BaseException, w: Where) -> ServiceError | None:
    if not _raised_in(e, "prometheus_client"):
        return None
    import urllib.error

    for x in _chain(e):
        if isinstance(x, urllib.error.HTTPError):
            answer = f"answered {x.code} {x.reason}"
        elif isinstance(x, OSError):
            answer = f"unreachable ({_short(getattr(x, 'reason', x))})"
        else:
            continue
        return ServiceError("Prometheus Pushgateway", os.environ.get("MLC_PUSHGATEWAY") or "the Pushgateway",
                            answer, "that the Pushgateway runs and MLC_PUSHGATEWAY (host:port) points at it")
    return None


CLASSIFIERS = (_s3, _mlflow, _kube, _prometheus)


def classify(e: BaseException, where: Where | None = None) -> ServiceError | None:
    """The ServiceError ``e`` stands for, or None when it is not a fault of an environment service."""
    if isinstance(e, ServiceError):
        return e
    w = where or Where()
    for c in CLASSIFIERS:
        found = c(e, w)
        if found is not None:
            return found
    return None


@contextmanager
def guard(where: Where | None = None) -> Iterator[None]:
    """Turn a service fault raised inside the block into a ServiceError; anything else passes unchanged."""
    try:
        yield
    except Exception as e:  # classified below; an unrecognised exception is re-raised as it is
        found = classify(e, where)  # also an MlcError caused by one (a RunError "no such file" from NoSuchBucket)
        if found is None or found is e:
            raise
        raise found from e
