"""The executor with real depth_net runs: chains, failures and their cascade, concurrency, cancel."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest
from jobtest_helpers import convert_request, empty_postgres_jobs, make_job

from skillbank.sdk import Client


def _train_then(data: Path, then: str = "then evaluate it and export it", hpo: str = "no HPO") -> str:
    return f"train fast stereo on {data}/train.txt, validate on {data}/val.txt, 1 epoch, {hpo}" + (
        f", {then}" if then else ""
    )


def _started_lines(job) -> int:
    path = Path(job.results_dir) / "status.json"
    return sum(json.loads(line)["status"] == "STARTED" for line in path.read_text().splitlines() if line.strip())


def test_failing_parent_cancels_its_children_with_the_reason(tmp_path: Path, overrides: dict) -> None:
    client = Client(tmp_path / "ws", idle_exit_s=2)
    train, evaluate, export = client.submit(_train_then(tmp_path / "missing"), overrides=overrides)
    assert evaluate.parent_job_id == train.id and export.parent_job_id == train.id
    done = client.wait([train.id, evaluate.id, export.id], timeout=240)
    assert [j.status for j in done] == ["FAILED", "CANCELED", "CANCELED"]
    assert done[0].exit_code == 3 and "file not found" in done[0].message
    for child in done[1:]:
        assert child.message.startswith(f"parent job {train.id} (train) FAILED: exit 3 (file system error)")
        assert child.started_at is None


def _submit_two(workspace: str, out: mp.Queue) -> None:
    client = Client(workspace, idle_exit_s=3)
    out.put([client.submit(convert_request())[0].id for _ in range(2)])


def test_eight_jobs_from_four_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_submit_two, args=(str(tmp_path / "ws"), out)) for _ in range(4)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
    assert len(set(ids)) == 8
    client = Client(tmp_path / "ws", idle_exit_s=3)
    done = client.wait(ids, timeout=420)
    assert [j.status for j in done] == ["COMPLETE"] * 8, [j.message for j in done]
    assert all(j.exit_code == 0 and _started_lines(j) == 1 for j in done)  # each ran exactly once
    assert len(client.jobs()) == 8
    assert all(Path(j.results_dir, "synthetic.txt").is_file() for j in done)


@pytest.mark.slow
def test_one_request_trains_evaluates_and_exports(tmp_path: Path, overrides: dict, synthetic_data: Path) -> None:
    client = Client(tmp_path / "ws", idle_exit_s=5)
    jobs = client.submit(_train_then(synthetic_data), overrides=overrides)
    assert [j.action for j in jobs] == ["train", "evaluate", "export"]
    assert jobs[0].route == "direct_train" and jobs[0].automl_policy == "off"
    train, evaluate, export = client.wait([j.id for j in jobs], timeout=1500)
    assert [j.status for j in (train, evaluate, export)] == ["COMPLETE"] * 3, [train.message, evaluate.message]
    assert evaluate.parent_job_id == train.id and export.parent_job_id == train.id
    assert Path(evaluate.artifact).name == "model_epoch_000_step_00006.pth"
    assert Path(evaluate.artifact).parent == Path(train.results_dir)
    assert isinstance(evaluate.kpi["val/epe"], float)
    assert Path(export.results_dir, "FastFoundationStereo.onnx").stat().st_size > 0
    assert "SUCCESS" in client.logs(export.id, tail=3)


@pytest.mark.slow
def test_cancel_a_running_train_job_leaves_an_interrupt_checkpoint(
    tmp_path: Path, overrides: dict, synthetic_data: Path
) -> None:
    client = Client(tmp_path / "ws", idle_exit_s=5)
    overrides["train"].update({"num_epochs": 50, "checkpoint_interval": 100})  # no periodic checkpoint
    train, evaluate = client.submit(_train_then(synthetic_data, then="then evaluate it"), overrides=overrides)
    deadline = time.monotonic() + 900
    while not client.status(train.id).progress.get("epoch"):  # inside trainer.fit
        assert time.monotonic() < deadline and client.status(train.id).status in ("PENDING", "RUNNING")
        time.sleep(1)
    assert client.cancel(train.id).status == "RUNNING"
    train, evaluate = client.wait([train.id, evaluate.id], timeout=300)
    assert train.status == "CANCELED" and train.exit_code == 130
    checkpoints = sorted(Path(train.results_dir).glob("model_epoch_*_step_*.pth"))
    assert len(checkpoints) == 1 and str(checkpoints[0]) in train.message  # the interrupt checkpoint
    assert evaluate.status == "CANCELED" and evaluate.message.startswith(f"parent job {train.id} (train) CANCELED")


def test_submit_a_plan_and_name_a_parent(tmp_path: Path) -> None:
    from skillbank.jobs.chain import SubmitError, plan_chain

    client = Client(tmp_path / "ws", idle_exit_s=2)
    (job,) = client.submit(client.plan(convert_request()))
    assert Path(job.results_dir).parent == tmp_path / "ws" / "jobs" / job.id
    assert client.wait(job.id, timeout=240).status == "COMPLETE"
    with pytest.raises(SubmitError, match="export cannot take its input from convert job"):
        plan_chain(client.store, f"export fast stereo, results in {tmp_path}/x", parent_job_id=job.id)
    train = client.store.add(
        make_job(action="train", route="direct_train", results_dir=str(tmp_path / "t"), status="COMPLETE")
    )
    (export,) = [p.job for p in plan_chain(client.store, "export fast stereo", parent_job_id=train.id)]
    assert export.parent_job_id == train.id and export.action == "export"


def test_a_job_through_a_postgresql_store(tmp_path: Path) -> None:
    import os

    url = os.environ.get("SKILLBANK_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set SKILLBANK_TEST_POSTGRES_URL to run a job on a PostgreSQL store")
    empty_postgres_jobs(url)
    client = Client(tmp_path / "ws", db_url=url, idle_exit_s=2)
    (job,) = client.submit(convert_request())
    assert client.wait(job.id, timeout=240).status == "COMPLETE"
    assert not (tmp_path / "ws" / "jobs.db").exists()  # the rows live in PostgreSQL
