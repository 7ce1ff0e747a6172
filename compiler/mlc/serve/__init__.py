"""The model server (`mlc serve`): the registered model behind the Open Inference Protocol v2, /predict and
/metrics, locally and in the KServe predictor container. It is a stage of its own, after the runtime: it reads
the Plan (the serving schema, the metric names) and the model registry, never the raw spec or the step code.

command.py   `mlc serve`: resolve the registered version, start uvicorn (the CLI's only entry here)
app.py       the ASGI app: V2 routes and /predict, health and readiness, background model loading
model.py     ServedModel (pipeline, class names, typed frames) and the micro-batcher that predicts
metrics.py   Prometheus series under the Plan's names, and the ASGI wrapper that counts, times and bounds requests
schema.py    request decoding: V2 tensors and /predict rows -> checked columns
fastpath.py  a numpy twin of the fitted feature transformer, verified against sklearn before use

Nothing here imports mlflow, sklearn or torch at module level: `mlc --help` imports none of it, and
`mlc serve` pays for a library only on the path that needs it.
"""
