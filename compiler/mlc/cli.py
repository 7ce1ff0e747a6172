"""Thin click commands. The only place that maps errors to exit codes:
0 ok, 1 the user's input is wrong (MlcError), 2 usage error, 3 an internal bug (with traceback).

Heavy libraries are imported inside each command, so `mlc --help` and `mlc validate` stay fast.
"""

from __future__ import annotations

import sys
import traceback

import click

from mlc import __version__
from mlc.errors import MlcError, SpecError, UsageError

EPILOG_VALIDATE = """\b
Examples:
  mlc validate specs/churn
  mlc validate specs/                       # every */mlproject.yaml below specs/
  mlc validate specs/*/mlproject.yaml --format json
  mlc validate specs/ --format github       # in GitHub Actions: errors inline on the PR's lines
  mlc validate specs/ --format sarif > mlc.sarif   # for code scanning (upload-sarif)

\b
Exit status: 0 every spec is valid, 1 a spec is invalid or unreadable, 2 usage error
(e.g. a directory with no mlproject.yaml), 3 internal error in mlc.
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mlc")
def cli() -> None:
    """mlc compiles one mlproject.yaml into Argo Workflows, Kubeflow Pipelines, KServe and Prometheus
    manifests, and runs the same pipeline locally.

    \b
    Quick start:
      mlc validate specs/churn     check a spec, with compiler-style errors
      mlc run specs/churn          train, gate and register locally (MLflow in .mlc/)
      mlc compile specs/           write generated/<project>/<env>/...
      mlc serve specs/churn        serve the production model (Open Inference Protocol v2)
    """


@cli.command(epilog=EPILOG_VALIDATE)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]), default="text",
              show_default=True, help="Output format; json prints one object with every diagnostic on stdout, "
              "github one ::error workflow command per diagnostic (inline PR annotations), sarif a SARIF 2.1.0 "
              "log for code scanning.")
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Check specs (files, or directories holding mlproject.yaml) and report every error in one run."""
    import json

    from mlc.spec.validate import load_spec, render_warnings

    errors: list[SpecError] = []
    results = []
    found = []  # (file, diagnostics) for --format github|sarif
    for p in _expand(paths):
        try:
            sf = load_spec(p, data=True)  # also the local data files: existence and header columns
            found.append((str(sf.path), list(sf.warnings)))
            results.append({"file": str(sf.path), "valid": True, "diagnostics": [w.to_json() for w in sf.warnings]})
            if fmt == "text":
                if sf.warnings:
                    click.echo(render_warnings(sf) + "\n", err=True)
                w = len(sf.warnings)
                n = len(sf.spec.environments)
                click.echo(f"{sf.path}: ok ({sf.spec.metadata.name}, {n} environment{'s' if n != 1 else ''}"
                           + (f", {w} warning{'s' if w != 1 else ''})" if w else ")"))
        except SpecError as e:
            found.append((e.file, list(e.diagnostics)))
            results.append({"file": e.file, "valid": False, "diagnostics": [d.to_json() for d in e.diagnostics]})
            if fmt == "text":
                click.echo(("\n" if errors else "") + e.render(), err=True)
            errors.append(e)
    if fmt == "json":
        click.echo(json.dumps({"valid": not errors, "files": results}, indent=2))
    elif fmt in ("github", "sarif"):
        from mlc.ci import annotations

        click.echo(annotations.github(found) if fmt == "github" else annotations.sarif_text(found), nl=False)
    if errors:
        raise _Exit(1)


@cli.command(epilog="""\b
Examples:
  mlc schema > schemas/mlproject.schema.json
  # then, first line of a spec, for completion and hover docs in editors:
  # yaml-language-server: $schema=../../schemas/mlproject.schema.json
""")
def schema() -> None:
    """Print the JSON Schema of mlproject.yaml (the same as schemas/mlproject.schema.json)."""
    from mlc.spec.schema import schema_text

    click.echo(schema_text(), nl=False)


@cli.command()
@click.argument("directory", type=click.Path())
@click.option("--name", help="Project name (default: the directory name).")
@click.option("--from-csv", "from_csv", type=click.Path(), metavar="FILE",
              help="Infer the spec from your own CSV file instead of writing sample data.")
@click.option("--target", metavar="COLUMN", help="With --from-csv: the column to predict.")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="With --from-csv: the task (default: inferred from the target's values).")
def init(directory: str, name: str | None, from_csv: str | None, target: str | None, task: str | None) -> None:
    """Scaffold a new project: a commented mlproject.yaml that validates and runs as it is.

    Without --from-csv it writes sample data too. With --from-csv it reads a bounded sample of FILE (any size;
    comma, semicolon, tab or pipe separated), infers every column's type, nullability, range and categories,
    finds the id and time columns, and writes the whole pipeline (schema, checks, features, candidates,
    gates, registry) with the reason for each choice as a comment. FILE is copied to DIR/data/ unless it is
    already inside DIR.

    \b
    Examples:
      mlc init my-project && mlc validate my-project
      mlc init projects/fraud --name fraud-detector
      mlc init attrition --from-csv ~/Downloads/attrition.csv --target Attrition
      mlc init prices --from-csv sales.tsv --target price --task regression
    Refuses to overwrite an existing mlproject.yaml; with --from-csv, DIR must be new or empty, or hold FILE.
    """
    if from_csv is None:
        if target is not None or task is not None:
            raise click.UsageError("--target and --task need --from-csv FILE")
        from mlc.scaffold import init_project

        spec = init_project(directory, name)
        click.echo(f"created {spec} and sample data in {spec.parent / 'data'}\n"
                   f"next: mlc validate {directory}   then: mlc run {directory}")
        return
    if target is None:
        raise click.UsageError("--from-csv needs --target COLUMN (the column to predict)")
    from mlc.scaffold import init_from_csv

    r = init_from_csv(directory, from_csv, target, task, name)
    where = {"copied": f"copied from {from_csv}", "in place": "used where it is",
             "rewritten": f"a comma-separated UTF-8 copy of {from_csv}, which mlc's reader needs"}[r.how]
    click.echo(f"created {r.spec}: {r.summary}\n"
               f"data: {r.data} ({where}), pinned by sha256\n"
               "every inferred choice has its reason as a comment: review them, then\n"
               f"next: mlc validate {directory}   then: mlc run {directory}")


@cli.command(name="compile")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", default="generated", show_default=True, type=click.Path(),
              help="Output directory.")
@click.option("--env", "envs", multiple=True, help="Environment(s) to compile (default: all).")
@click.option("--argo-version", type=click.Choice(["3.7", "4"]), help="Override each environment's Argo version.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if OUT is stale.")
def compile_(paths: tuple[str, ...], out: str, envs: tuple[str, ...], argo_version: str | None, check: bool) -> None:
    """Compile specs into generated/<project>/<env>/{argo,kfp,kserve,prometheus}/ and kustomization.yaml.

    \b
    Examples:
      mlc compile specs/
      mlc compile specs/churn --env prod -o generated/
      mlc compile specs/ --check      # in CI: fail when generated/ is stale
    """
    from mlc.emit import compile_command

    code = compile_command(_expand(paths), out, envs, argo_version, check)
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path(), required=False)
@click.option("-o", "--out", default="generated", show_default=True, type=click.Path(), help="Output directory.")
@click.option("--env", "envs", multiple=True, help="Environment(s) (default: all).")
@click.option("--lock", "relock", is_flag=True,
              help="Re-resolve the locks mlc ships (uv pip compile --generate-hashes; needs the network).")
@click.option("--find-links", multiple=True, type=click.Path(),
              help="With --lock: also look here for wheels (e.g. the torch CPU wheel).")
def image(path: str | None, out: str, envs: tuple[str, ...], relock: bool, find_links: tuple[str, ...]) -> None:
    """Write the step image's Dockerfile, requirements.lock and .dockerignore into
    OUT/<project>/<env>/image/ (compile writes the same files).

    \b
    Examples:
      mlc image specs/churn --env staging
      mlc image --lock --find-links /opt/wheels   # in mlc's source checkout: re-resolve the locks
    """
    if relock:
        from mlc.image.lock import lock_command

        lock_command(list(find_links))
        if path is None:
            return
    if path is None:
        raise UsageError("mlc image: give a PATH (or --lock)")
    from mlc.image.build import image_command

    image_command(path, envs, out, lambda m: click.echo(m, err=True))


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--env", required=True, help="Environment whose image to build.")
@click.option("--push", is_flag=True, help="Push the image and record its digest in images.lock beside the spec.")
@click.option("--tag", help="Image tag to build (default: the environment's image: tag).")
@click.option("--wheel", type=click.Path(), help="The mlc wheel to install (default: built from this checkout).")
@click.option("--digest", help="Record this pushed digest (sha256:...) for --tag without building.")
def build(path: str, env: str, push: bool, tag: str | None, wheel: str | None, digest: str | None) -> None:
    """Build the step image with docker buildx, podman or buildah (the first usable); with --push, push it and
    record its digest in images.lock, which compile then pins.

    \b
    Examples:
      mlc build specs/churn --env staging --push
      mlc build specs/churn --env local            # localhost/mlc-churn:<version>, for kind or minikube
    """
    from mlc.image.build import build_command

    build_command(path, env, push, tag, wheel, digest, lambda m: click.echo(m, err=True))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--base", metavar="REV|PATH",
              help="Compare with this git revision (read with git, no checkout) or another copy of the project.")
@click.option("--against", type=click.Path(), default="generated", show_default=True,
              help="The generated output: the base when there is no --base, else where both sides' "
                   "current files may be read from instead of compiling.")
@click.option("--env", "envs", multiple=True, help="Environment(s) to compare (default: all).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="markdown: the pull-request comment (under GitHub's 65,536 characters).")
@click.option("--kubeconfig", type=click.Path(),
              help="With --env: read the live traffic split from this cluster (only when given, or --context).")
@click.option("--context", "kube_context", help="With --env: the kubeconfig context to read the traffic split from.")
def diff(paths: tuple[str, ...], base: str | None, against: str, envs: tuple[str, ...], fmt: str,
         kubeconfig: str | None, kube_context: str | None) -> None:
    """What a spec change does to the model and the cluster: every change with its impact class (retrain,
    redeploy, traffic, alerting, schedule, resources, data, cosmetic) and a sentence, the champion's metrics
    against a changed gate where the registry is reachable, then the generated resources and their diffs.

    \b
    Examples:
      mlc diff specs/churn                          # against the committed generated/
      mlc diff specs/ --base origin/main --format markdown > comment.md
      mlc diff specs/churn --base ../churn-before --env prod
    Exit status (as kubectl diff): 0 no changes, 1 changes, 2 error (3: a bug in mlc).
    """
    from mlc.diff.command import diff_command

    try:
        code = diff_command(_expand(paths), base, against, envs, fmt, lambda t: click.echo(t, nl=False),
                            kubeconfig, kube_context)
    except MlcError as e:  # kubectl diff's convention: >1 is an error, 1 means "there are changes"
        click.echo(e.render(), err=True)
        raise _Exit(max(2, e.exit_code)) from None
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--env", default="local", show_default=True, help="Environment to run.")
@click.option("--only", "only", help="Run only this step (its inputs must exist from an earlier run).")
@click.option("--from", "from_", help="Rerun from this step on, ignoring the cache for it and after.")
@click.option("--no-cache", is_flag=True, help="Ignore the step cache.")
@click.option("--pipeline", default="train", show_default=True,
              type=click.Choice(["train", "monitor", "batch"]), help="Which pipeline of the plan to run.")
@click.option("-v", "--verbose", count=True,
              help="Show full step notes, and what libraries log and warn (-vv: their debug output too).")
def run(path: str, env: str, only: str | None, from_: str | None, no_cache: bool, pipeline: str,
        verbose: int) -> None:
    """Run the pipeline on this machine: the same steps as the cluster, MLflow in .mlc/ by default.

    \b
    Examples:
      mlc run specs/churn
      mlc run specs/churn --from gate
      mlc run specs/churn --pipeline monitor
      mlc run specs/churn -v          # full notes, MLflow's and sklearn's own messages
    """
    from mlc.local import run_command

    code = run_command(path, env, only=only, from_=from_, no_cache=no_cache, pipeline=pipeline, verbosity=verbose)
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--env", default="local", show_default=True, help="Environment the run used.")
@click.option("--run-id", help="The run to report on (default: the latest train run).")
@click.option("--no-mlflow", is_flag=True, help="Do not log the figures to the run's MLflow run.")
def report(path: str, env: str, run_id: str | None, no_mlflow: bool) -> None:
    """Write an HTML report of a local run to .mlc/reports/<run-id>.html and print its path."""
    from mlc.report import report_command

    click.echo(str(report_command(path, env, run_id, mlflow=not no_mlflow)))


@cli.command()
@click.argument("step")
@click.option("--spec", "spec_path", required=True, type=click.Path(), help="The spec file.")
@click.option("--run-id", required=True, help="Pipeline run id shared by every step of one run.")
@click.option("--env", default="local", show_default=True, help="Environment.")
@click.option("-v", "--verbose", count=True, help="Show what libraries log and warn (-vv: their debug output too).")
def step(step: str, spec_path: str, run_id: str, env: str, verbose: int) -> None:
    """Run one pipeline step: the entrypoint of every container on a cluster.

    \b
    Example:
      mlc step features --spec /etc/mlc/mlproject.yaml --run-id churn-train-x7k2p --env prod
    """
    from mlc.local import step_command

    code = step_command(step, spec_path, run_id, env, verbosity=verbose)
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--env", default="local", show_default=True, help="Environment.")
@click.option("--model-version", type=click.IntRange(min=1),
              help="Serve this registered version (default: $MLC_MODEL_VERSION when set, else the alias).")
@click.option("--alias", help="Serve the version with this alias (default: the production alias).")
@click.option("--role", type=click.Choice(["stable", "canary"]),
              help="The role label of this process's metrics (default: $MLC_SERVE_ROLE, else stable).")
@click.option("--canary", is_flag=True,
              help="Serve the champion (stable) and the challenger (canary) side by side, splitting requests "
                   "by the weight in .mlc/rollout/state.json.")
@click.option("--canary-weight", type=click.IntRange(0, 100),
              help="With --canary: a fixed percent of requests for the challenger, instead of the state file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def serve(path: str, env: str, model_version: int | None, alias: str | None, role: str | None, canary: bool,
          canary_weight: int | None, host: str, port: int) -> None:
    """Serve the registered model with the Open Inference Protocol v2 and Prometheus /metrics.

    \b
    Example:
      mlc serve specs/churn --port 8080
      curl localhost:8080/v2/models/churn-classifier
      mlc serve specs/churn --canary --canary-weight 10   # champion and challenger, 10% to the challenger
    """
    from mlc.serve.command import serve_command

    if canary_weight is not None and not canary:
        raise UsageError("--canary-weight needs --canary")
    serve_command(path, env, model_version=model_version, alias=alias, host=host, port=port, role=role,
                  canary=canary, canary_weight=canary_weight)


def _cluster_options(f):  # type: ignore[no-untyped-def]
    """--env, --kubeconfig and --context, shared by the commands that talk to a cluster."""
    f = click.option("--context", help="kubeconfig context (default: the current context).")(f)
    f = click.option("--kubeconfig", type=click.Path(),
                     help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).")(f)
    return click.option("--env", required=True, help="Environment to ship.")(f)


@cli.group()
def rollout() -> None:
    """Progressive delivery of the newest registered version: canary steps judged by metric analysis.

    \b
    Locally (`mlc serve PATH --canary` running):
      mlc rollout start specs/churn --env local     # steps the weight, analyses, promotes or rolls back
    On a cluster:
      mlc rollout start specs/churn --env prod      # pins the version and starts <project>-rollout
      mlc rollout status specs/churn --env prod
    """


def _rollout_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--context", help="kubeconfig context (cluster environments).")(f)
    f = click.option("--kubeconfig", type=click.Path(), help="kubeconfig file (cluster environments).")(f)
    f = click.option("--env", default="local", show_default=True, help="Environment.")(f)
    return click.argument("path", type=click.Path())(f)


@rollout.command(name="start")
@_rollout_options
@click.option("--prometheus", metavar="URL", help="Prometheus to query (default: the spec's; locally, without "
              "one, `mlc serve`'s /metrics is read directly).")
@click.option("--metrics-url", metavar="URL", help="Local only, without Prometheus: the /metrics of `mlc serve "
              "--canary` (default http://127.0.0.1:8080/metrics).")
def rollout_start(path: str, env: str, kubeconfig: str | None, context: str | None, prometheus: str | None,
                  metrics_url: str | None) -> None:
    """Roll the candidate version out beside the production one, step by step."""
    from mlc.rollout.commands import start

    raise _Exit(start(path, env, prometheus=prometheus, metrics_url=metrics_url, kubeconfig=kubeconfig,
                      context=context))


@rollout.command(name="status")
@_rollout_options
def rollout_status(path: str, env: str, kubeconfig: str | None, context: str | None) -> None:
    """The current weight, each measurement of the current step, and each step's verdict."""
    from mlc.rollout.commands import status

    raise _Exit(status(path, env, kubeconfig=kubeconfig, context=context))


@rollout.command(name="promote")
@_rollout_options
def rollout_promote(path: str, env: str, kubeconfig: str | None, context: str | None) -> None:
    """Skip the remaining analysis: all traffic and the production alias to the canary now."""
    from mlc.rollout.commands import decide

    raise _Exit(decide(path, env, "promote", kubeconfig=kubeconfig, context=context))


@rollout.command(name="abort")
@_rollout_options
def rollout_abort(path: str, env: str, kubeconfig: str | None, context: str | None) -> None:
    """Roll back as a failed analysis would: the canary to 0%, the production alias on stable."""
    from mlc.rollout.commands import decide

    raise _Exit(decide(path, env, "abort", kubeconfig=kubeconfig, context=context))


@cli.command(name="plan")
@click.argument("path", type=click.Path())
@_cluster_options
def plan_(path: str, env: str, kubeconfig: str | None, context: str | None) -> None:
    """Compare the compiled objects with the live cluster (server dry-run apply) and print what would change.

    Exit code: 0 no changes, 1 error, 2 changes present.

    \b
    Example:
      mlc plan specs/churn --env staging --context staging
    """
    from mlc.cluster.commands import plan_command

    code = plan_command(path, env, kubeconfig, context)
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@_cluster_options
@click.option("--dry-run", is_flag=True, help="Validate everything with the server (dryRun=All); write nothing.")
@click.option("--prune", is_flag=True, help="Delete objects this project and env own that are no longer produced.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal, e.g. in CI).")
@click.option("--force-conflicts", is_flag=True, help="Take over fields another field manager owns.")
@click.option("--allow-delete-endpoints", is_flag=True,
              help="Allow deleting InferenceServices and Namespaces (protected).")
def apply(path: str, env: str, kubeconfig: str | None, context: str | None, dry_run: bool, prune: bool,
          yes: bool, force_conflicts: bool, allow_delete_endpoints: bool) -> None:
    """Server-side apply the compiled objects (field manager mlc), in dependency order.

    \b
    Examples:
      mlc apply specs/churn --env staging --dry-run
      mlc apply specs/churn --env prod --prune --yes
    """
    from mlc.cluster.commands import apply_command

    code = apply_command(path, env, kubeconfig, context, dry_run=dry_run, prune=prune, yes=yes,
                         force_conflicts=force_conflicts, allow_delete_endpoints=allow_delete_endpoints)
    if code:
        raise _Exit(code)


@cli.command(name="delete")
@click.argument("path", type=click.Path())
@_cluster_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow-delete-endpoints", is_flag=True,
              help="Also delete InferenceServices and the Namespace (kept otherwise).")
@click.option("--wait", type=click.BOOL, default=True, show_default=True, is_flag=False, flag_value=True,
              metavar="BOOL", help="Wait until the objects are gone (as kubectl delete); --wait=false returns "
                                   "once the deletions are accepted.")
@click.option("--timeout", "timeout", default="2m", show_default=True, metavar="DURATION",
              help="How long to wait for the objects to be gone, e.g. 90s, 5m; exit 1 naming those still there.")
def delete_(path: str, env: str, kubeconfig: str | None, context: str | None, yes: bool,
            allow_delete_endpoints: bool, wait: bool, timeout: str) -> None:
    """Delete everything this project owns in one environment (found by its ownership labels), and wait until
    it is gone.

    \b
    Examples:
      mlc delete specs/churn --env staging --yes
      mlc delete specs/churn --env staging --yes --wait=false
    """
    from mlc.cluster.commands import delete_command, parse_duration

    code = delete_command(path, env, kubeconfig, context, yes=yes, allow_delete_endpoints=allow_delete_endpoints,
                          wait=wait, timeout=parse_duration(timeout))
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@_cluster_options
@click.option("--pipeline", default="train", show_default=True, type=click.Choice(["train", "monitor", "batch"]),
              help="Which WorkflowTemplate to run.")
@click.option("--watch", is_flag=True, help="Follow the run's phase; exit 0 when it succeeds, 1 when it fails.")
@click.option("--interval", default=5.0, show_default=True, type=float, help="Seconds between polls with --watch.")
def submit(path: str, env: str, kubeconfig: str | None, context: str | None, pipeline: str, watch: bool,
           interval: float) -> None:
    """Start a run of the applied WorkflowTemplate now and print the Workflow's name.

    \b
    Example:
      mlc submit specs/churn --env staging --watch
    """
    from mlc.cluster.commands import submit_command

    code = submit_command(path, env, kubeconfig, context, pipeline=pipeline, watch=watch, interval=interval)
    if code:
        raise _Exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--env", required=True, help="Environment whose storage root receives the files.")
@click.option("--endpoint-url", help="S3 endpoint (default: $AWS_ENDPOINT_URL, then the env's storage.endpoint).")
@click.option("--force", is_flag=True, help="Replace remote files whose content differs from the local ones.")
@click.option("--dry-run", is_flag=True, help="Check the pins and print the plan; upload nothing.")
def push(path: str, env: str, endpoint_url: str | None, force: bool, dry_run: bool) -> None:
    """Upload the spec and its data files to <storage root>/project/, where the cluster steps read them.

    \b
    Every file is checked against its pin first, uploaded to a temporary key, re-read (size and sha256)
    and only then moved into place. Files already there with the same sha256 are skipped.
    Examples:
      mlc push specs/churn --env staging
      AWS_PROFILE=minio mlc push specs/churn --env staging --endpoint-url http://localhost:9000
    """
    from mlc.push import push_command

    code = push_command(path, env, endpoint=endpoint_url, force=force, dry_run=dry_run)
    if code:
        raise _Exit(code)


@cli.group()
def ci() -> None:
    """Continuous integration: write the pull-request workflow."""


@ci.command(name="init")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--provider", default="github", show_default=True, type=click.Choice(["github"]))
@click.option("--env", "envs", multiple=True,
              help="Environments to ship, in order: the first is planned on pull requests and applied on merge, "
                   "each later one after the previous, behind a GitHub environment (default: staging, prod).")
@click.option("-o", "--out", default="generated", show_default=True, help="The generated output directory.")
@click.option("--branch", help="The default branch (default: origin's HEAD, else the current branch).")
@click.option("--install", help='How CI installs mlc (default: pip install "mlc==<this version>").')
@click.option("--force", is_flag=True, help="Replace an existing .github/workflows/mlc.yaml.")
def ci_init_(paths: tuple[str, ...], provider: str, envs: tuple[str, ...], out: str, branch: str | None,
             install: str | None, force: bool) -> None:
    """Write .github/workflows/mlc.yaml at the top of the git repository: on pull requests validate (inline
    errors), compile --check, the semantic diff as one sticky comment, and mlc plan for the first environment;
    on merge, mlc apply environment by environment.

    \b
    Examples:
      mlc ci init specs/
      mlc ci init specs/churn --env staging --env prod --branch main
    """
    from mlc.ci.workflow import ci_init

    dest = ci_init(_expand(paths or ("specs",)), provider, envs, out, branch, install, force)
    click.echo(f"wrote {dest}")


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _expand(paths: tuple[str, ...]) -> list[str]:
    """A directory without mlproject.yaml expands to the specs in its immediate subdirectories."""
    from pathlib import Path

    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir() and not (path / "mlproject.yaml").exists():
            found = sorted(str(c) for c in path.glob("*/mlproject.yaml"))
            if not found:
                raise UsageError(f"{p}: no mlproject.yaml here or in its subdirectories")
            out.extend(found)
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mlc", standalone_mode=False)
        return 0
    except _Exit as e:
        return e.code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except MlcError as e:
        click.echo(e.render(), err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug in mlc: show it, exit 3
        from mlc.services import classify

        service = classify(e)  # an unreachable or refusing S3, MLflow, Kubernetes API or Prometheus: exit 1
        if service is not None:
            click.echo(service.render(), err=True)
            return service.exit_code
        traceback.print_exc()
        click.echo(f"internal error in mlc {__version__}: please report this with the traceback above", err=True)
        return 3


def console() -> None:
    """The `mlc` console script."""
    sys.exit(main())


if __name__ == "__main__":
    console()
