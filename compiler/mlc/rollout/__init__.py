"""Progressive delivery: the canary's analysis and the moves it decides, on one machine and on a cluster.

    analysis.py  the measurements and verdicts (Argo Rollouts' semantics), shared by every caller
    sources.py   Prometheus' HTTP API, or `mlc serve`'s /metrics read directly
    registry.py  which versions take part; the production alias and the outcome tag
    local.py     `mlc rollout ... --env local`: the weight file `mlc serve --canary` follows
    cluster.py   the InferenceService's weight, pin and state annotation; the rollout Workflows
    commands.py  `mlc rollout start|status|promote|abort`

The compiled side is mlc.backends.argo_rollout; the workflow's steps are mlc.runtime.rollout_steps.
"""
