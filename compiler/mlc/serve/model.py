"""The served model: the loaded pipeline with its class names and typed frames, and the micro-batcher.

Why micro-batching: for one row, a fitted sklearn Pipeline spends almost all of its time in per-call overhead
(DataFrame construction, ColumnTransformer dispatch, input validation), so predicting 50 rows costs about the
same as predicting one. Requests that arrive while a prediction runs are gathered and predicted together as one
DataFrame; a lone client waits for nobody (a batch is flushed as soon as no more requests are ready).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlc.serve.schema import Columns, Schema

log = logging.getLogger("mlc.serve")

MAX_BATCH_ROWS = 4096


@dataclass
class ServedModel:
    """What the server knows about the model; ``pipeline`` is filled in once loading finished."""

    name: str
    version: str
    task: str  # classification | regression
    schema: Schema
    alias: str | None = None
    role: str = "stable"  # stable | canary: the `role` label of its series (mlc.plan.metrics.ROLE_*)
    run_id: str | None = None
    positive_class: str | None = None
    pipeline: Any = None
    pos_index: int = 1
    classes: list[str] = field(default_factory=list)
    load: Callable[[], Any] | None = None  # returns the pipeline; run in a thread at startup

    negative_class: str | None = None  # label of class 0 when the pipeline predicts a mapped 0/1 label
    fast: Callable[[Columns], Any] | None = None  # numpy twin of the feature transformer (serve/fastpath.py)
    source: str = ""  # where ``load`` reads the model from, for the log
    started: float | None = None  # time.monotonic() when `mlc serve` began, for the "ready in" log line
    ready: bool = False  # loaded, checked against the fast path and warmed up: what readiness reports

    def set_pipeline(self, pipeline: Any) -> None:
        """Find the positive column of predict_proba and the label names.

        `mlc run` trains on the label mapped to 0/1 (1 = the positive class, recorded in the version's
        ``mlc.positive_class`` tag), so ``classes_`` is [0, 1]; a pipeline trained on the raw labels has them
        in ``classes_`` instead. Both are served with the spec's class names.
        """
        if self.task == "classification":
            classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])]
            names = [str(c) for c in classes]
            pos = self.positive_class
            if pos is not None and pos in names:
                self.pos_index = names.index(pos)
            elif sorted(classes) == [0, 1] and pos is not None:
                self.pos_index = classes.index(1)
                names[classes.index(0)] = self.negative_class or f"not {pos}"
                names[self.pos_index] = pos
            elif len(classes) == 2:
                self.pos_index = 1
            self.classes = names
        self.pipeline = pipeline

    def frame(self, cols: Columns) -> Any:
        """Columns -> a DataFrame with the dtypes training saw (mlc.runtime.data.cast_column): numbers as
        float64 (int64 for non-nullable integers), strings and categories as str, booleans as boolean,
        date-times as datetime64."""
        import numpy as np
        import pandas as pd

        out: dict[str, Any] = {}
        for c in self.schema.inputs:
            v = cols[c.name]
            t = c.type
            if t in ("integer", "float"):
                if t == "integer" and not c.nullable:
                    out[c.name] = np.asarray(v, dtype="int64")
                else:
                    out[c.name] = np.asarray([np.nan if x is None else x for x in v], dtype="float64")
            elif t in ("string", "category"):
                out[c.name] = pd.array(v, dtype="str")
            elif t == "boolean":
                out[c.name] = pd.array(v, dtype="boolean")
            else:
                out[c.name] = pd.to_datetime(pd.Series(v, dtype="object"), errors="coerce", format="ISO8601")
        return pd.DataFrame(out)

    def accelerate(self) -> bool:
        """Serve through the numpy twin of the feature transformer when it reproduces sklearn exactly on
        varied example rows; otherwise keep the sklearn pipeline. Returns whether the twin is in use."""
        from mlc.serve import fastpath

        steps = getattr(self.pipeline, "steps", None)
        if not steps or len(steps) != 2 or type(steps[0][1]).__name__ != "ColumnTransformer":
            return False
        ct = steps[0][1]
        fast = fastpath.compile_transformer(ct, {c.name: c.type for c in self.schema.inputs})
        if fast is None or not fastpath.verified(fast, ct, self.frame, self.schema.varied_columns(60)):
            return False
        self.fast = fast
        return True

    def predict(self, cols: Columns) -> dict[str, list[Any]]:
        """Columns of many rows -> output columns (score + label, or prediction)."""
        import numpy as np

        if self.fast is not None:  # the same estimator, on the numpy twin's features
            est, X = self.pipeline.steps[-1][1], self.fast(cols)
        else:
            est, X = self.pipeline, self.frame(cols)
        if self.task == "classification":
            proba = np.asarray(est.predict_proba(X))
            labels = [self.classes[i] for i in proba.argmax(axis=1).tolist()]
            return {"score": proba[:, self.pos_index].tolist(), "label": labels}
        return {"prediction": np.asarray(est.predict(X), dtype="float64").ravel().tolist()}


class ModelFailed(Exception):
    """The model raised on valid input: the server's fault, a 500."""


class Batcher:
    """Gathers concurrent requests and predicts them as one DataFrame in a worker thread.

    The worker thread keeps the event loop free to parse the next requests while the current batch predicts.
    If a batch fails, each request is retried alone so one poisonous row fails only its own request.
    """

    def __init__(self, model: ServedModel, max_rows: int = MAX_BATCH_ROWS,
                 observe: Callable[[list[float]], None] | None = None) -> None:
        self.model = model
        self.max_rows = max_rows
        # the score of every predicted row, observed here in the prediction thread, off the event loop
        self.observe = observe
        self.score_key = "score" if model.task == "classification" else "prediction"
        self.queue: asyncio.Queue[tuple[Columns, int, asyncio.Future]] = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlc-predict",
                                       initializer=_fast_sklearn)
        self.task: asyncio.Task | None = None
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.pool.shutdown(wait=False)

    async def submit(self, cols: Columns, n: int) -> dict[str, list[Any]]:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((cols, n, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        q = self.queue
        while True:
            items = [await q.get()]
            rows = items[0][1]
            # Let requests that are already readable join: yield to the loop until a pass brings no more.
            for _ in range(8):
                if rows >= self.max_rows:
                    break
                await asyncio.sleep(0)
                if q.empty():
                    break
                while not q.empty() and rows < self.max_rows:
                    it = q.get_nowait()
                    items.append(it)
                    rows += it[1]
            try:
                results = await loop.run_in_executor(self.pool, self._predict_batch, items)
            except Exception:
                log.exception("batch prediction failed")
                results = [ModelFailed("internal error")] * len(items)
            for (_, _, fut), res in zip(items, results):
                if fut.done():
                    continue
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)

    def _predict_batch(self, items: list[tuple[Columns, int, asyncio.Future]]) -> list[Any]:
        self.batches += 1
        self.rows += sum(n for _, n, _ in items)
        if len(items) == 1:
            return [self._predict_one(items[0][0])]
        names = self.model.schema.names
        merged = {n: [v for cols, _, _ in items for v in cols[n]] for n in names}
        try:
            out = self.model.predict(merged)
        except Exception:  # noqa: BLE001 - one bad request must not fail the others
            return [self._predict_one(cols) for cols, _, _ in items]
        if self.observe is not None:
            self.observe(out[self.score_key])
        results, start = [], 0
        for _, n, _ in items:
            results.append({k: v[start:start + n] for k, v in out.items()})
            start += n
        return results

    def _predict_one(self, cols: Columns) -> Any:
        try:
            out = self.model.predict(cols)
        except Exception as e:
            log.exception("prediction failed")
            return ModelFailed(f"the model failed on this input: {type(e).__name__}: {e}")
        if self.observe is not None:
            self.observe(out[self.score_key])
        return out


def _fast_sklearn() -> None:
    """Inputs were checked against the schema already; skip sklearn's per-call re-validation (thread-local)."""
    try:
        import sklearn

        sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    except ImportError:
        pass
