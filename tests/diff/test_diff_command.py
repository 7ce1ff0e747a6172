"""`mlc diff` end to end: the bases (a git revision, another copy, the committed generated/), exit codes like
kubectl diff, the registry's context, the lock short cut, and GitHub's comment limit."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ci"))
from prrepo import REPO, edit, git, make_repo, mlc

from mlc import emit
from mlc.cli import main
from mlc.diff import command, render

GATE = ("{metric: roc_auc, min: 0.80}", "{metric: roc_auc, min: 0.82}")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn in a git repository; HEAD~1 is the example, HEAD raises a gate (compiled and committed)."""
    root = make_repo(tmp_path_factory.mktemp("diff"), "churn")
    edit(root, "churn", *GATE)
    mlc(root, "compile", "specs/", check=True)
    git(root, "commit", "-qam", "stricter gate")
    return root


def run(root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
        ) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = main(["diff", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_exit_codes_like_kubectl_diff(repo: Path, capsys, monkeypatch) -> None:
    assert run(repo, capsys, monkeypatch, "specs/churn", "--base", "HEAD")[0] == 0
    code, out, _ = run(repo, capsys, monkeypatch, "specs/churn", "--base", "HEAD~1")
    assert code == 1 and "gates.metrics[roc_auc].min" in out
    code, _, err = run(repo, capsys, monkeypatch, "specs/churn", "--base", "no-such-rev")
    assert code == 2 and "--base no-such-rev: neither a path nor a git revision" in err
    code, _, err = run(repo, capsys, monkeypatch, "specs/churn", "--base", "HEAD~1", "--env", "qa")
    assert code == 2 and "environment 'qa' is not defined" in err


def test_against_generated_is_semantic_too(repo: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    """No --base: the committed output is the base; its spec ConfigMap holds the spec it was compiled from."""
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    assert run(work, capsys, monkeypatch, "specs/churn")[0] == 0
    edit(work, "churn", "threshold: 0.2\n", "threshold: 0.3\n")
    code, out, _ = run(work, capsys, monkeypatch, "specs/churn", "--env", "prod")
    assert code == 1
    assert "drift alert threshold 0.2 → 0.3: fewer alerts" in out
    assert re.search(r"changed +churn/prod/prometheus/prometheusrule-churn\.yaml +PrometheusRule churn\n", out), out
    assert "churn/staging/" not in out


def test_base_as_another_copy(repo: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(REPO / "specs" / "churn", old / "specs" / "churn")
    for base in (str(old / "specs" / "churn"), str(old), str(old / "specs" / "churn" / "mlproject.yaml")):
        code, out, _ = run(repo, capsys, monkeypatch, "specs/churn", "--base", base, "--format", "json")
        assert code == 1, base
        (p,) = json.loads(out)["projects"]
        assert [c["path"] for c in p["changes"]] == ["gates.metrics[roc_auc].min"]
    code, _, err = run(repo, capsys, monkeypatch, "specs/churn", "--base", str(tmp_path))
    assert code == 2 and "no mlproject.yaml there" in err


def test_comments_only_is_one_cosmetic_change(repo: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    edit(work, "churn", "kind: MLProject\n", "kind: MLProject  # see docs/diff.md\n")
    code, out, _ = run(work, capsys, monkeypatch, "specs/churn", "--base", "HEAD", "--format", "json")
    assert code == 1
    (p,) = json.loads(out)["projects"]
    assert [(c["impact"], c["path"]) for c in p["changes"]] == [("cosmetic", "(spec text)")]
    assert {r["resource"] for r in p["resources"]} == {"ConfigMap churn-spec", "step image Dockerfile"}


def test_a_new_project_is_all_added(repo: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    shutil.copytree(REPO / "specs" / "delivery-eta", work / "specs" / "delivery-eta")
    code, out, _ = run(work, capsys, monkeypatch, "specs/delivery-eta", "--base", "HEAD", "--format", "json")
    assert code == 1
    (p,) = json.loads(out)["projects"]
    assert p["changes"] == [] and p["resources"] and {r["status"] for r in p["resources"]} == {"added"}
    assert "does not exist" in p["base"]


def test_fresh_locks_mean_no_compile(repo: Path, monkeypatch, tmp_path: Path) -> None:
    """Both sides' committed output is current (the lock says so): the diff reads it and compiles nothing."""
    monkeypatch.chdir(repo)

    def refuse(*a, **k):
        raise AssertionError("compiled although the lock vouches for generated/")

    monkeypatch.setattr(emit, "_render_all", refuse)
    d = command.diff_project("specs/churn", "HEAD~1", "generated", (), tmp_path)
    assert d.changes and d.resources
    (repo / "generated" / "churn" / "prod" / "kserve" / "inferenceservice-churn.yaml").write_text("stale\n")
    try:
        with pytest.raises(AssertionError, match="compiled although"):
            command.diff_project("specs/churn", "HEAD~1", "generated", (), tmp_path / "2")
    finally:
        git(repo, "checkout", "--", "generated")


def test_markdown_stays_under_githubs_limit_dropping_the_largest_diffs(repo: Path, monkeypatch, tmp_path) -> None:
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    para = "Retention needs this model to be right. " * 1000  # 40 kB, in every ConfigMap of the three envs
    edit(work, "churn", "  description: >\n", f"  description: >\n    {para}\n")
    monkeypatch.chdir(work)
    d = command.diff_project("specs/churn", "HEAD", "generated", (), tmp_path / "t")
    full = sum(len(render.unified(r)) for r in d.resources)
    assert full > 100_000
    md = render.markdown([d])
    assert len(md) <= render.LIMIT
    assert "resource diffs left out, largest first" in md and "diff not shown" in md
    assert "`metadata.description`" in md  # the summary always survives
    shown = md.count("```diff")
    assert 0 < shown < len(d.resources)  # the small diffs (the Dockerfiles) are still there
    assert render.markdown([d], limit=2_000).endswith("run `mlc diff` locally.\n")
    assert len(render.markdown([d], limit=2_000)) <= 2_000


def test_champion_unreachable_is_said_and_never_fails(repo: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert main(["diff", "specs/churn", "--base", "HEAD~1", "--format", "json"]) == 1
    (p,) = json.loads(capsys.readouterr().out)["projects"]
    assert p["changes"][0]["context"] == "champion unavailable"
    assert any("MLflow at http://127.0.0.1:9 is not reachable" in n for n in p["notes"])


@pytest.mark.slow
@pytest.mark.xdist_group("diff-mlflow")
def test_the_champion_from_a_real_local_store(repo: Path, capsys, monkeypatch, tmp_path: Path) -> None:
    """A real MLflow sqlite store with a champion whose test_roc_auc is 0.846: 0.82 still passes, 0.85 would not."""
    import mlflow
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    from mlc.runtime.tracking import use_store

    use_store(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("churn", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "test_roc_auc", 0.846)
    client.set_terminated(run.info.run_id)
    client.create_registered_model("churn-classifier")
    mv = client.create_model_version("churn-classifier", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("churn-classifier", "champion", mv.version)
    del mlflow
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["diff", "specs/churn", "--base", "HEAD~1"]) == 1
    out = capsys.readouterr().out
    assert ("gate roc_auc min 0.8 → 0.82: stricter, so the next retrain may not promote; the current champion's "
            "0.846 still passes") in out
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    edit(work, "churn", "{metric: roc_auc, min: 0.82}", "{metric: roc_auc, min: 0.85}")
    monkeypatch.chdir(work)
    assert main(["diff", "specs/churn", "--base", "HEAD", "--format", "markdown"]) == 1
    assert "the current champion's 0.846 would fail it" in capsys.readouterr().out


CANARY = ("{weight: 10, pause: 10m}", "{weight: 25, pause: 10m}")


def test_traffic_split_only_when_asked_and_unreachable_is_a_note(repo: Path, capsys, monkeypatch, tmp_path) -> None:
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    edit(work, "churn", *CANARY)
    code, out, _ = run(work, capsys, monkeypatch, "specs/churn", "--base", "HEAD", "--env", "prod", "--format", "json")
    (p,) = json.loads(out)["projects"]
    assert code == 1 and any("reads the cluster only when given" in n for n in p["notes"])
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: {server: "
                  "'https://127.0.0.1:9'}}]\nusers: [{name: x, user: {token: t}}]\n"
                  "contexts: [{name: x, context: {cluster: x, user: x}}]\n")
    code, out, _ = run(work, capsys, monkeypatch, "specs/churn", "--base", "HEAD", "--env", "prod", "--format", "json",
                       "--kubeconfig", str(kc))
    (p,) = json.loads(out)["projects"]
    assert code == 1
    assert any(n.startswith("current traffic split unavailable: cannot read InferenceService churn/churn") for n in
               p["notes"])
    assert p["changes"][0]["context"] == "traffic split unavailable"


@pytest.mark.slow
@pytest.mark.xdist_group("kube")
def test_traffic_split_from_a_real_api_server(kube_server, repo: Path, capsys, monkeypatch, tmp_path) -> None:
    """The live InferenceService on a real kube-apiserver (KServe's CRD), its status as KServe writes it."""
    import yaml

    isvc = yaml.safe_load((repo / "generated/churn/prod/kserve/inferenceservice-churn.yaml").read_text())
    for path, obj in (("/api/v1/namespaces/churn", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "churn"}}),
                      ("/apis/serving.kserve.io/v1beta1/namespaces/churn/inferenceservices/churn", isvc)):
        r = kube_server.request("PATCH", path, json.dumps(obj), "application/apply-patch+yaml", fieldManager="t",
                                force="true")
        assert r.status_code < 300, r.text
    status = {"status": {"components": {"predictor": {
        "latestReadyRevision": "churn-predictor-00002", "latestRolledoutRevision": "churn-predictor-00001",
        "traffic": [{"revisionName": "churn-predictor-00001", "percent": 90, "latestRevision": False},
                    {"revisionName": "churn-predictor-00002", "percent": 10, "latestRevision": True,
                     "tag": "prev"}]}}}}
    r = kube_server.request("PATCH", "/apis/serving.kserve.io/v1beta1/namespaces/churn/inferenceservices/churn/status",
                            json.dumps(status), "application/merge-patch+json")
    assert r.status_code < 300, r.text
    kc = kube_server.kubeconfig(tmp_path / "kubeconfig")
    work = tmp_path / "w"
    shutil.copytree(repo, work)
    edit(work, "churn", *CANARY)
    code, out, _ = run(work, capsys, monkeypatch, "specs/churn", "--base", "HEAD", "--env", "prod",
                       "--kubeconfig", str(kc))
    assert code == 1
    assert ("canary step 1 weight 10% → 25%: more traffic at risk at that step; live now: 90% on churn-predictor-00001, "
            "10% on churn-predictor-00002 (latest)") in out
