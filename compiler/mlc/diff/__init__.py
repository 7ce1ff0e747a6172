"""`mlc diff`: what a change to a spec does to the model and the cluster.

    semantic.py  spec vs spec: every changed path, its impact class and one sentence (a table of path prefixes)
    context.py   the facts that make a sentence concrete: the champion's metrics (local store or MLflow REST)
    render.py    text, markdown (the PR comment, under GitHub's 65,536-character limit) and json
    command.py   where the base comes from (a git revision, another copy, generated/), the generated resources

Runs beside the compiler, never inside it: a diff reads two specs and the output they compile to.
"""
