"""The step runtime: the code every container runs (`mlc step`) and `mlc run` calls locally.

context.py  StepContext: run id, storage root, tracking URI, artifact paths, output parameters
steps.py    STEPS: step kind -> function(ctx, step) -> StepResult; one function per pipeline step kind
"""
