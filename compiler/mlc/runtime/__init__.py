"""The step runtime: the code every container runs (`mlc step`) and `mlc run` calls locally.

context.py  StepContext: run id, storage root, tracking URI, artifact paths, output parameters
steps.py    STEPS: step kind -> function(ctx, step) -> StepResult; execute() publishes atomically; is_complete()
artifacts.py  fsspec IO (local paths and s3:// share one code path)
tracking.py   MLflow: parent run per pipeline run, nested candidate runs, the registry
data.py     ingest, validate-data       features.py  split, label, ColumnTransformer
train.py    train-<candidate>           lightning_model.py  Lightning as sklearn estimators
evaluate.py evaluate                    gates.py     gate
register.py register, deploy, model card  monitor.py  drift, quality, batch-score
"""
