"""The generated Airflow DAGs in a real Airflow 3 (see conftest.py): every file of generated/ loads in a DagBag
with no import errors and no import of mlc, and its task graph and settings are the plan's; the churn `local`
train DAG runs end to end under `airflow dags test` and leaves a champion in the project's MLflow store; the
KubernetesPodOperator tasks render (`airflow tasks render`) to the Argo template's image, command, env,
resources and mounts."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from planhelpers import EXAMPLE_ENVS, REPO, example_plan

from mlc.backends import airflow as backend
from mlc.plan.model import RETRY_DELAY_S, RETRY_MAX_DELAY_S

pytestmark = pytest.mark.xdist_group("airflow")
GENERATED = REPO / "generated"
DUMP = Path(__file__).with_name("dagbag_dump.py")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def dagbag(af, *folders: Path) -> dict:
    done = af.run([str(DUMP), *map(str, folders)], folders[0])
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("DAGBAG-JSON "))
    return json.loads(line.removeprefix("DAGBAG-JSON "))


def expected_upstream(plan, pipeline) -> dict[str, list[str]]:
    approve = plan.manual_approval and pipeline.purpose == "train"
    want = {}
    for s in pipeline.steps:
        deps = sorted(s.depends)
        if approve and s.kind == "register":
            want[backend.APPROVE], deps = deps, [backend.APPROVE]
        want[s.name] = deps
    return want


def test_every_generated_dag_loads_and_matches_the_plan(airflow, tmp_path: Path) -> None:
    approval = tmp_path / "approval"  # the manual-approval variant, which the examples do not use
    approval.mkdir()
    plan_a = dataclasses.replace(example_plan("churn", "prod"), manual_approval=True)
    for o in backend.build(plan_a):
        (approval / Path(o.path).name).write_text(o.text)
    out = dagbag(airflow, GENERATED, approval)
    assert out["mlc_imported"] == []
    cases = [(GENERATED, example_plan(spec, env)) for spec, env in EXAMPLE_ENVS] + [(approval, plan_a)]
    seen = 0
    for folder, plan in cases:
        bag = out[str(folder)]
        assert bag["import_errors"] == {}
        for p in plan.pipelines:
            dag = bag["dags"][backend.dag_id(plan, p)]
            seen += 1
            assert Path(dag["file"]).name == Path(backend.dag_path(plan, p)).name
            assert {t: v["upstream"] for t, v in dag["tasks"].items()} == expected_upstream(plan, p)
            sched = next((s for s in plan.schedules if s.pipeline == p.name), None)
            assert dag["schedule"] == (sched.cron if sched else None)
            assert dag["is_paused_upon_creation"] == (True if sched and sched.suspend else None)
            assert dag["catchup"] is False and dag["max_active_runs"] == 1
            assert {plan.project, plan.env} <= set(dag["tags"])
            assert dag["on_failure_callback"] == "on_failure"
            for s in p.steps:
                t = dag["tasks"][s.name]
                assert t["retries"] == s.retries and t["execution_timeout"] == s.timeout_s
                assert t["retry_delay"] == RETRY_DELAY_S and t["max_retry_delay"] == RETRY_MAX_DELAY_S
                assert t["retry_exponential_backoff"] == 2.0
                assert t["do_xcom_push"] == bool(s.outputs)
                if plan.env == "local":
                    assert t["operator"] == "BashOperator"
                else:
                    assert t["operator"] == "KubernetesPodOperator"
                    assert (t["image"], t["namespace"], t["service_account_name"]) == (
                        plan.image, plan.namespace, plan.service_account)
                    assert t["on_finish_action"] in ("delete_succeeded_pod", "OnFinishAction.DELETE_SUCCEEDED_POD")
    assert seen == sum(len(plan.pipelines) for _, plan in cases)
    assert sum(len(b["dags"]) for k, b in out.items() if k != "mlc_imported") == seen  # nothing else loaded


HOOK_CHECK = r"""
import importlib.util, json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
spec = importlib.util.spec_from_file_location("generated_dag", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
class Run:
    run_id = "manual__2026-01-01T00:00:00+00:00"
ctx = {"dag_run": Run(), "reason": "task_failure"}
mod.on_failure(ctx)  # no hooks module yet: only the log line
sys.path.insert(0, sys.argv[2])
mod.on_failure(ctx)
print("SAFE " + json.dumps([mod.mlc_run_id(r) for r in sys.argv[3:]]))
"""


def test_failure_hook_and_run_id_filter(airflow, tmp_path: Path) -> None:
    plan = example_plan("churn", "prod")
    dag_file = GENERATED / "churn" / "prod" / backend.dag_path(plan, plan.pipelines[0])
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / f"{backend.HOOKS_MODULE}.py").write_text(
        "def on_failure(context):\n    print('HOOK CALLED ' + context['reason'])\n")
    ids = ["manual__2026-01-01T00:00:00+00:00", "manual__2026-01-01T00-00-00-00-00", "scheduled__x", "a b/c"]
    done = airflow.run(["-c", HOOK_CHECK, str(dag_file), str(hooks), *ids], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    line = "mlc: DAG run manual__2026-01-01T00:00:00+00:00 of churn/prod failed: task_failure"
    assert done.stdout.count(line) == 2
    assert done.stdout.count("HOOK CALLED task_failure") == 1  # only once the module is importable
    safe = json.loads(next(ln for ln in done.stdout.splitlines() if ln.startswith("SAFE ")).removeprefix("SAFE "))
    assert all(RUN_ID_RE.match(s) for s in safe) and len(set(safe)) == len(safe)
    assert safe[2] == "scheduled__x"  # a safe run id is kept as it is
    assert safe[0].startswith("manual__2026-01-01T00-00-00-00-00-") and safe[0] != safe[1]


# --------------------------------------------------------------------------- airflow tasks render vs Argo
RENDER_CASES = [("churn", "staging", "churn-train", "ingest"), ("churn", "staging", "churn-train", "train-logreg"),
                ("churn", "prod", "churn-train", "train-forest"), ("churn", "prod", "churn-train", "register"),
                ("delivery-eta", "prod", "delivery-eta-monitor", "drift")]
LOGICAL_DATE = "2026-01-01T00:00:00+00:00"


def rendered_fields(text: str) -> dict[str, object]:
    """`airflow tasks render` prints each template field under a '# property: <name>' banner, as a Python
    literal (the kubernetes models print as dicts)."""
    fields: dict[str, object] = {}
    for chunk in re.split(r"^# -+\n# property: ", text, flags=re.MULTILINE)[1:]:
        name, _, rest = chunk.partition("\n")
        body = re.sub(r"^# -+\n", "", rest, count=1, flags=re.MULTILINE).strip()
        try:
            fields[name.strip()] = ast.literal_eval(body)
        except (ValueError, SyntaxError):
            fields[name.strip()] = body
    return fields


def _camel(d: object) -> object:
    """A kubernetes client model's to_dict() as the API (and Argo) writes it: camelCase, no None."""
    if isinstance(d, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v) for k, v in d.items()
                if v is not None}
    if isinstance(d, list):
        return [_camel(v) for v in d]
    return d


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "env", "template", "step"), RENDER_CASES)
def test_pod_operator_renders_the_argo_container(airflow, tmp_path: Path, spec: str, env: str, template: str,
                                                 step: str) -> None:
    plan = example_plan(spec, env)
    pipeline = next(p for p in plan.pipelines if p.name == template)
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(GENERATED / spec / env / backend.dag_path(plan, pipeline), dags)
    done = airflow.cli(["tasks", "render", backend.dag_id(plan, pipeline), step, LOGICAL_DATE], dags)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    got = rendered_fields(done.stdout)
    argo = yaml.safe_load((GENERATED / spec / env / "argo" / f"workflowtemplate-{template}.yaml").read_text())
    container = next(t for t in argo["spec"]["templates"] if t["name"] == step)["container"]
    assert got["image"] == container["image"] == plan.image
    run_at = container["command"].index("{{workflow.name}}")
    cmds = list(got["cmds"])  # type: ignore[call-overload]
    assert RUN_ID_RE.match(cmds[run_at]), cmds[run_at]  # Airflow's run id, made safe for paths
    cmds[run_at] = "{{workflow.name}}"
    assert cmds == container["command"]
    env_vars = _camel(got["env_vars"])
    extra = [{"name": "MLC_OUTPUTS_JSON", "value": backend.XCOM_FILE}] if plan.find_step(step)[1].outputs else []
    assert env_vars == container["env"] + extra
    assert _camel(got["container_resources"]) == container["resources"]
    assert _camel(got["volume_mounts"]) == container["volumeMounts"]
    assert _camel(got["volumes"]) == argo["spec"]["volumes"]
    assert _camel(got.get("env_from") or []) == container.get("envFrom", [])
    assert got["namespace"] == argo["metadata"]["namespace"]
    assert got["labels"] == argo["spec"]["podMetadata"]["labels"]


# --------------------------------------------------------------------------- airflow dags test, for real
@pytest.mark.slow
def test_local_train_dag_runs_end_to_end_and_registers_a_champion(airflow, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    project = tmp_path / "churn"
    shutil.copytree(REPO / "specs" / "churn", project, ignore=shutil.ignore_patterns(".mlc"))
    plan = example_plan("churn", "local")
    train = plan.pipeline("train")
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(GENERATED / "churn" / "local" / backend.dag_path(plan, train), dags)  # the committed file
    var = f"AIRFLOW_VAR_{backend.spec_variable(plan).upper()}"
    done = airflow.cli(["dags", "test", backend.dag_id(plan, train)], dags, **{var: str(project / "mlproject.yaml")})
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    for s in train.steps:  # every step ran through its BashOperator, calling `mlc step`
        assert f"Running command: ['/usr/bin/bash', '-c', 'mlc step {s.name} " in log or \
            f"'mlc step {s.name} --spec" in log, s.name
        assert f"{s.name}: ok" in log, s.name
    assert "state=success" in log
    runs = list((project / ".mlc" / "artifacts" / "runs").iterdir())
    assert len(runs) == 1 and RUN_ID_RE.match(runs[0].name) and runs[0].name.startswith("manual__")
    assert {p.name for p in runs[0].iterdir() if (p / "_SUCCESS").exists()} >= {s.name for s in train.steps}
    db = project / ".mlc" / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    champion = client.get_model_version_by_alias(plan.model_name, plan.endpoint.alias)
    assert int(champion.version) == 1
    # the output parameters arrived as XComs, one dict per step that declares them
    q = ("import json\nfrom airflow.utils.session import create_session\nfrom airflow.models.xcom import XComModel\n"
         "with create_session() as s:\n"
         f"    rows = s.query(XComModel).filter(XComModel.dag_id == {backend.dag_id(plan, train)!r}).all()\n"
         "    print('XCOMS ' + json.dumps({r.task_id: r.value for r in rows if r.key == 'return_value'}))\n")
    got = airflow.run(["-c", q], dags)
    assert got.returncode == 0, got.stderr[-2000:]
    xcoms = json.loads(next(ln for ln in got.stdout.splitlines() if ln.startswith("XCOMS ")).removeprefix("XCOMS "))
    assert {t: sorted(v) for t, v in xcoms.items()} == {s.name: sorted(s.outputs) for s in train.steps if s.outputs}
    assert xcoms["register"]["version"] == str(champion.version)
    assert xcoms["gate"]["passed"] == "true"
