"""The job store: ids, conditional updates, atomic claims across processes, cancel and its cascade."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
from pathlib import Path

import pytest
from jobtest_helpers import empty_postgres_jobs, make_job

from skillbank.jobs.store import FINAL, ID_ALPHABET, JobError, JobNotFoundError, Store

#: e.g. postgresql+psycopg://postgres@/jobs?host=/tmp/pg&port=5432 (the PostgreSQL runs skip without it)
PG_URL = os.environ.get("SKILLBANK_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded SQLite store) or a PostgreSQL URL whose jobs table starts empty."""
    if request.param == "sqlite":
        return None
    if not PG_URL:
        pytest.skip("set SKILLBANK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
    empty_postgres_jobs(PG_URL)
    return PG_URL


def test_ids_are_short_and_typable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ids = {store.add(make_job()).id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(f"[{ID_ALPHABET}]{{6}}", i) for i in ids)
    with pytest.raises(JobError, match="taken"):
        store.add(make_job(id=next(iter(ids))))


def test_store_uses_wal_and_roundtrips_fields(tmp_path: Path) -> None:
    store = Store(tmp_path)
    job = store.add(make_job(kpi={"val/epe": 1.5}, command=["depth_net", "convert"], parent_job_id=None))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    got = store.get(job.id)
    assert got.kpi == {"val/epe": 1.5} and got.command == ["depth_net", "convert"] and got.status == "PENDING"
    with pytest.raises(JobNotFoundError, match="no such job"):
        store.get("zzzzzz")
    with pytest.raises(JobError, match="expected one of"):
        store.list(status="DONE")


def test_claim_respects_parents_and_gpus(tmp_path: Path, db_url: str | None) -> None:
    store = Store(tmp_path, db_url)
    parent = store.add(make_job())
    child = store.add(make_job(parent_job_id=parent.id))
    gpu = store.add(make_job(gpus_needed=2))
    assert store.claim("e:1", free_gpus=0).id == parent.id
    assert store.claim("e:1", free_gpus=0) is None  # child waits for its parent, gpu job for GPUs
    assert store.claim("e:1", free_gpus=2).id == gpu.id
    assert store.finish(parent.id, "COMPLETE", 0, "ok")
    assert not store.finish(parent.id, "FAILED", 1, "twice")  # a job ends once
    assert store.claim("e:1", free_gpus=0).id == child.id


def test_cancel_pending_and_cascade(tmp_path: Path, db_url: str | None) -> None:
    store = Store(tmp_path, db_url)
    a = store.add(make_job())
    b = store.add(make_job(parent_job_id=a.id))
    c = store.add(make_job(parent_job_id=b.id))
    assert store.request_cancel(a.id).status == "CANCELED"
    assert store.cancel_descendants(a.id, "parent gone") == [b.id, c.id]
    assert {store.get(i).message for i in (b.id, c.id)} == {"parent gone"}
    running = store.add(make_job())
    store.claim("e:1", 0)
    job = store.request_cancel(running.id)
    assert job.status == "RUNNING" and job.cancel_requested


def _claimer(workspace: str, url: str | None, out: mp.Queue) -> None:
    store = Store(workspace, url)
    mine = []
    while True:
        job = store.claim(f"proc:{mp.current_process().pid}", free_gpus=0)
        if job is None:
            break
        mine.append(job.id)
        store.finish(job.id, "COMPLETE", 0, "ok")
    out.put(mine)


def test_claims_are_exclusive_across_processes(tmp_path: Path, db_url: str | None) -> None:
    store = Store(tmp_path, db_url)
    ids = {store.add(make_job()).id for _ in range(40)}
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(str(tmp_path), db_url, out)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    flat = [i for chunk in claimed for i in chunk]
    assert sorted(flat) == sorted(ids)  # none lost, none claimed twice
    assert all(store.get(i).status in FINAL for i in ids)


def test_status_comes_from_exit_code_and_status_json(tmp_path: Path) -> None:
    from skillbank.jobs.status_file import outcome, read_run_state

    path = tmp_path / "status.json"
    path.write_text(
        '{"status": "STARTED", "message": "go"}\n'
        '{"status": "RUNNING", "message": "e1", "kpi": {"train_loss": 1.0}, '
        '"categorical": {"epoch": 1, "max_epoch": 3, "eta": "0:01:00"}}\n'
        '{"status": "FAILURE", "message": "training diverged: loss is NaN at step 7"}\n'
    )
    state = read_run_state(path)
    assert state.progress == {"epoch": 1, "max_epoch": 3, "eta": "0:01:00"} and state.kpi == {"train_loss": 1.0}
    assert outcome(4, state, False) == (
        "FAILED",
        "exit 4 (training diverged): training diverged: loss is NaN at step 7",
    )
    assert outcome(0, state, False)[0] == "FAILED"  # exit 0 without SUCCESS is no success
    assert outcome(130, state, True)[0] == "CANCELED"
    path.write_text(path.read_text() + '{"status": "SUCCESS", "message": "done", "kpi": {"val/epe": 2.0}}\n')
    state = read_run_state(path)
    assert outcome(0, state, False) == ("COMPLETE", "done") and state.kpi == {"val/epe": 2.0}
    assert outcome(None, state, False)[0] == "COMPLETE"
    assert outcome(1, state, False)[0] == "FAILED"  # a non-zero exit wins over the file
