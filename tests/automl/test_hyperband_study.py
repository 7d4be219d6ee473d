"""A 6-trial Hyperband study on a tiny FFS and synthetic pairs, end to end through the CLI, then resumed."""

from __future__ import annotations

import json

import pytest
from automl_helpers import study_spec
from study_helpers import automl, starts, summary

from skillbank.specs import load_spec

pytestmark = pytest.mark.slow


def test_hyperband_study_prunes_keeps_the_best_and_resumes_without_rerunning(tmp_path, pairs, start_weights):
    spec = study_spec(
        tmp_path,
        pairs,
        start_weights,
        automl_algorithm="hyperband",
        automl_max_recommendations=6,
        automl_max_epochs=3,
        automl_reduction_factor=3,
        automl_max_concurrent=2,
        seed=3,
        custom_param_ranges={"train.optim.lr": {"valid_min": 1e-6, "valid_max": 1e-2}},
    )
    results = tmp_path / "results"
    first = automl("run", "-e", str(spec))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "trial 5" in first.stdout and "ETA" in first.stdout and "best val/epe" in first.stdout

    s = summary(results)
    assert (s["algorithm"], s["metric"], s["direction"]) == ("hyperband", "val/epe", "minimize")
    assert isinstance(s["baseline"]["value"], float) and s["baseline"]["checkpoint"] == str(start_weights)
    trials = s["trials"]
    assert [t["number"] for t in trials] == list(range(6))
    assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    pruned = [t for t in trials if t["state"] == "PRUNED"]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert pruned, "Hyperband pruned no trial"
    assert all(1 <= t["epochs"] < 3 for t in pruned) and all(t["epochs"] == 3 for t in complete)
    for t in pruned:  # stopped through a signal: the run's last status line says it was interrupted
        events = [
            json.loads(x)
            for x in (results / "automl" / f"trial_{t['number']:03d}" / "status.json").read_text().splitlines()
        ]
        assert events[-1]["status"] == "FAILURE" and events[-1]["message"].startswith("Interrupted")
        assert sum(e["status"] == "RUNNING" for e in events) == t["epochs"]

    best = s["best"]
    assert best["value"] == min(t["value"] for t in complete)
    assert best["trial"] in [t["number"] for t in complete]
    best_spec = load_spec(best["spec"])  # a valid depth_net spec
    assert best_spec.train.optim.lr == best["params"]["train.optim.lr"]
    assert 1e-6 <= best_spec.train.optim.lr <= 1e-2 and 0.05 <= best_spec.train.optim.lr_decay <= 0.9
    assert best_spec.train.num_epochs == 3 and best_spec.results_dir == str(results)
    assert best_spec.model.gru_hidden == 8  # the widths are never touched
    assert best["checkpoint"].endswith(".pth") and best_spec.evaluate.checkpoint == best["checkpoint"]
    assert (results / "automl" / "best" / "best_spec.yaml").is_file()
    report = (results / "automl" / "report.html").read_text()
    assert "Optimisation history" in report and "Intermediate values" in report and "plotly" in report
    for t in trials:  # automl_delete_intermediate_ckpt: only the best trial keeps checkpoints
        kept = list((results / "automl" / f"trial_{t['number']:03d}").glob("*.pth"))
        assert bool(kept) == (t["number"] == best["trial"])

    # The same command again: the study resumes, nothing is run twice.
    again = automl("run", "-e", str(spec))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resumed, 6 trial(s) finished" in again.stdout and "trial 0 started" not in again.stdout
    assert summary(results)["trials"] == trials
    assert all(starts(results / "automl" / f"trial_{n:03d}") == 1 for n in range(6))
    assert starts(results / "automl" / "baseline") == 1
    assert not (results / "automl" / "trial_006").exists()

    status = automl("status", str(results), "--json")
    assert status.returncode == 0 and len(json.loads(status.stdout)["trials"]) == 6
    text = automl("status", str(results)).stdout
    assert "6 of 6 finished" in text and f"best: trial {best['trial']}" in text

    # optuna-dashboard reads the same storage: the study, its six trials and their intermediate values
    storage = f"sqlite:///{results / 'automl' / 'study.db'}"
    studies = _dashboard_get(storage, "/api/studies")["study_summaries"]
    assert [x["study_name"] for x in studies] == ["automl"]
    detail = _dashboard_get(storage, f"/api/studies/{studies[0]['study_id']}")
    assert sorted(t["number"] for t in detail["trials"]) == list(range(6))
    assert {t["state"] for t in detail["trials"]} == {t["state"].capitalize() for t in trials}
    assert all(t["intermediate_values"] for t in detail["trials"])


def _dashboard_get(url: str, path: str) -> dict:
    """GET ``path`` from optuna-dashboard's WSGI app on storage ``url`` (no server, no port)."""
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard import wsgi

    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(wsgi(url)(environ, lambda s, headers, exc=None: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)
