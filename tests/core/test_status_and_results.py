"""status.json is JSON Lines exactly as TAO writes it; results folders resolve as TAO's do."""

from __future__ import annotations

import json
import re

from skillbank.runtime.results import resolve_results_dir, save_experiment
from skillbank.runtime.status import StatusLogger, read_status
from skillbank.specs import load_spec


def test_status_lines_have_tao_fields(tmp_path):
    log = StatusLogger(tmp_path / "status.json", enabled=True)
    log.write("STARTED", "go")
    log.write("RUNNING", "epoch 1", kpi={"train_loss": 0.5, "val_loss": float("nan")}, categorical={"epoch": 1})
    log.write("SUCCESS", "done", kpi={"val/epe": 1.25})
    lines = (tmp_path / "status.json").read_text().splitlines()
    assert len(lines) == 3
    events = [json.loads(line) for line in lines]
    for event in events:
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", event["date"])
        assert re.fullmatch(r"\d{1,2}:\d{1,2}:\d{1,2}", event["time"])
        assert event["verbosity"] == "INFO"
    assert [e["status"] for e in events] == ["STARTED", "RUNNING", "SUCCESS"]
    assert events[1]["kpi"] == {"train_loss": 0.5, "val_loss": "nan"}
    assert read_status(tmp_path / "status.json") == events
    assert not list(tmp_path.glob(".status.json.*")), "temp files must not be left behind"


def test_non_zero_rank_does_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    log = StatusLogger(tmp_path / "status.json")
    log.write("STARTED", "go")
    assert not (tmp_path / "status.json").exists()


def test_results_dir_resolution_and_experiment_yaml(tmp_path):
    spec = load_spec(None, data={"results_dir": str(tmp_path), "evaluate": {"results_dir": str(tmp_path / "ev")}})
    assert resolve_results_dir(spec, "train") == tmp_path / "train"
    assert resolve_results_dir(spec, "evaluate") == tmp_path / "ev"
    path = save_experiment(spec, tmp_path / "train")
    text = path.read_text()
    assert "train:\n" in text and "optim:\n" in text  # nested, never dotted keys
    assert load_spec(path).model_dump() == spec.model_dump()


def test_run_action_restores_the_sigterm_handler(tmp_path):
    import signal

    from skillbank.runtime.runner import run_action

    def mine(signum, frame):  # noqa: ARG001
        return None

    old = signal.signal(signal.SIGTERM, mine)
    try:
        run_action("evaluate", None, [f"results_dir={tmp_path}"])  # fails (no checkpoint) but must clean up
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, old)
