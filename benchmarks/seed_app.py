"""The seed's minimal FastAPI /predict app, the baseline `benchmarks/serve.py` measures `mlc serve` against.

It serves the same model file (MODEL_URI, an MLflow model URI such as models:/churn-classifier/1, with
MLFLOW_TRACKING_URI set) the way the seed project did: one DataFrame per request, predict_proba, no batching.

    MODEL_URI=models:/churn-classifier/1 uvicorn benchmarks.seed_app:app --port 8081
"""

from __future__ import annotations

import os

import mlflow.sklearn
import pandas as pd
from fastapi import FastAPI

model = mlflow.sklearn.load_model(os.environ["MODEL_URI"])
app = FastAPI()


@app.post("/predict")
def predict(row: dict) -> dict:
    df = pd.DataFrame([row])
    score = float(model.predict_proba(df)[0, 1])
    return {"score": score}
