"""Readiness as KServe reads it: live at once, ready only once the model is loaded, checked and warmed up.

A real uvicorn in this process (so the test controls when loading ends) and a real HTTP client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import serve_support as S

from mlc.serve.app import build_app
from mlc.serve.model import ServedModel
from mlc.serve.schema import Schema

ROW = {"tenure_months": 3, "monthly_usage_hours": 10.5, "last_contact_days": None, "plan": "basic",
       "plan_price": 9.99, "support_tickets": 2, "region": "north", "age_group": "25-34"}


class Counting:
    """The fitted pipeline, recording the batch size of every prediction."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.classes_, self.sizes = inner, inner.classes_, []

    def predict_proba(self, df: Any) -> Any:
        self.sizes.append(len(df))
        return self.inner.predict_proba(df)


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return S.train_pipeline()


def serve(load: Callable[[], Any]) -> Iterator[str]:
    import uvicorn

    model = ServedModel("churn-classifier", "1", "classification", Schema(S.churn_plan().inputs),
                        positive_class="yes", negative_class="no", load=load)
    port = S.free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(model), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        th.join(30)


def wait_ready(c: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while c.get("/v2/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.005)


def test_live_at_once_ready_only_after_load_and_warm_up(pipeline) -> None:
    gate = threading.Event()
    counting = Counting(pipeline)

    def load() -> Any:
        assert gate.wait(30)
        return counting

    for url in serve(load):
        with httpx.Client(base_url=url, timeout=10) as c:
            assert c.get("/v2/health/live").json() == {"live": True}
            r = c.get("/v2/health/ready")
            assert (r.status_code, r.json()) == (503, {"ready": False})
            assert c.get("/v2/models/churn-classifier/ready").status_code == 503
            r = c.post("/predict", json=ROW)
            assert (r.status_code, r.json()) == (503, {"error": "the model is still loading"})
            bad = c.post("/predict", json={**ROW, "plan": "gold"})  # the schema is known before the model
            assert bad.status_code == 422
            assert counting.sizes == []
            gate.set()
            wait_ready(c)
            # the warm-up (1 row, then 64) ran before readiness turned true, and nothing else reached the model
            assert counting.sizes == [1, 64]
            r = c.post("/predict", json=ROW)
            assert r.status_code == 200 and r.json()["label"] in ("yes", "no")
            assert counting.sizes == [1, 64, 1]


def test_a_failed_load_stays_unready_and_says_why() -> None:
    def load() -> Any:
        raise RuntimeError("the artefact is gone")

    for url in serve(load):
        with httpx.Client(base_url=url, timeout=10) as c:
            deadline = time.monotonic() + 10
            while "failed" not in (r := c.post("/predict", json=ROW)).text and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (r.status_code, r.json()) == (503, {"error": "model failed to load: RuntimeError: the artefact "
                                                                "is gone"})
            assert c.get("/v2/health/ready").status_code == 503
            assert c.get("/v2/health/live").status_code == 200
