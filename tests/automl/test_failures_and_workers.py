"""A diverging trial is FAIL and the study goes on; two workers share a study (SQLite, PostgreSQL); a runner
killed with -9 mid-study resumes with its completed trials kept and its stale trial retried."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from automl_helpers import study_spec
from study_helpers import automl, start, starts, summary

pytestmark = pytest.mark.slow


def test_a_diverging_trial_fails_and_the_study_completes(tmp_path, pairs):
    # SGD at lr 1.0 without clipping turns the tiny network's loss to NaN by its third step: depth_net exits 4
    # (Training error). The other trial's lr trains normally.
    spec = study_spec(
        tmp_path,
        pairs,
        automl_algorithm="random",
        automl_max_recommendations=2,
        automl_max_concurrent=1,
        seed=0,
        custom_param_ranges={
            "train.optim.lr": {"valid_options": [1.0, 1.0e-3]},
            "train.optim.lr_decay": {"valid_options": [0.5]},
        },
    )
    proc = automl(
        "run",
        "-e",
        str(spec),
        "train.clip_grad_norm=0",
        "train.optim.optimizer=SGD",
        "train.num_epochs=2",
        "dataset.train_dataset.batch_size=1",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = {t["params"]["train.optim.lr"]: t for t in summary(tmp_path / "results")["trials"]}
    assert set(trials) == {1.0, 1.0e-3}, "seed 0 should try both learning rates"
    bad, good = trials[1.0], trials[1.0e-3]
    assert bad["state"] == "FAIL" and bad["error"].startswith("Training error"), bad
    assert good["state"] == "COMPLETE"
    assert summary(tmp_path / "results")["best"]["trial"] == good["number"]
    assert "baseline" in proc.stdout and "no starting weights" in proc.stdout


def _two_workers(tmp_path: Path, pairs: Path, url: str | None) -> None:
    spec = study_spec(
        tmp_path, pairs, automl_algorithm="random", automl_max_recommendations=4, automl_max_concurrent=1, seed=1
    )
    storage = ["--storage", url] if url else []
    runner = start("run", "-e", str(spec), *storage, log=tmp_path / "runner.log")
    url = url or f"sqlite:///{tmp_path / 'results' / 'automl' / 'study.db'}"
    deadline = time.time() + 120
    while not (tmp_path / "results" / "automl" / "trial_000").exists():  # the study exists once a trial runs
        assert time.time() < deadline and runner.poll() is None, (tmp_path / "runner.log").read_text()
        time.sleep(0.5)
    worker = automl("worker", "--storage", url)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert runner.wait(900) == 0, (tmp_path / "runner.log").read_text()
    s = summary(tmp_path / "results")
    assert [t["number"] for t in s["trials"]] == [0, 1, 2, 3]
    assert all(t["state"] == "COMPLETE" for t in s["trials"])
    ran_here = {
        int(line.split()[2])
        for line in (tmp_path / "runner.log").read_text().splitlines()
        if line.startswith("[automl] trial") and "started" in line
    }
    ran_there = {
        int(line.split()[2])
        for line in worker.stdout.splitlines()
        if line.startswith("[automl] trial") and "started" in line
    }
    assert ran_here and ran_there and not ran_here & ran_there and ran_here | ran_there == {0, 1, 2, 3}
    assert all(starts(tmp_path / "results" / "automl" / f"trial_{n:03d}") == 1 for n in range(4))


def test_two_workers_share_a_sqlite_study(tmp_path, pairs):
    _two_workers(tmp_path, pairs, None)


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL server on a Unix socket in a temp folder (no TCP), or skip without pg_ctl."""
    bindir = Path("/usr/lib/postgresql")
    pg_ctl = shutil.which("pg_ctl") or next(iter(sorted(bindir.glob("*/bin/pg_ctl"))), None)
    if not pg_ctl:
        pytest.skip("PostgreSQL (pg_ctl) is not installed")
    bin_dir = Path(pg_ctl).resolve().parent  # initdb, createdb beside the real pg_ctl
    root = Path(tempfile.mkdtemp(prefix="automl-pg-"))  # not under pytest's 0700 folder: the server must reach it
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sock = root / "data", root
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "start",
            "-o",
            f"-c listen_addresses='' -k {sock}",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "createdb"), "-h", str(sock), "-U", "postgres", "automl"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@/automl?host={sock}"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path, pairs, postgres):
    _two_workers(tmp_path, pairs, postgres)


def test_kill_9_mid_study_then_resume_keeps_completed_trials_and_retries_the_stale_one(tmp_path, pairs):
    spec = study_spec(
        tmp_path, pairs, automl_algorithm="random", automl_max_recommendations=3, automl_max_concurrent=1, seed=2
    )
    args = ["run", "-e", str(spec), "--heartbeat", "1", "--grace", "4"]
    runner = start(*args, log=tmp_path / "first.log")
    automl_dir = tmp_path / "results" / "automl"
    deadline = time.time() + 600
    while not (automl_dir / "trial_001" / "status.json").exists():  # trial 0 done, trial 1 training
        assert time.time() < deadline and runner.poll() is None, (tmp_path / "first.log").read_text()
        time.sleep(0.2)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    time.sleep(6)  # past the grace period: trial 1's heartbeat is stale; its depth_net died with the runner
    events = [json.loads(x) for x in (automl_dir / "trial_001" / "status.json").read_text().splitlines()]
    assert events[-1]["status"] in ("STARTED", "RUNNING", "FAILURE")

    resumed = automl(*args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed, 1 trial(s) finished" in resumed.stdout
    s = summary(tmp_path / "results")
    by_number = {t["number"]: t for t in s["trials"]}
    assert by_number[0]["state"] == "COMPLETE" and starts(automl_dir / "trial_000") == 1  # kept, not re-run
    assert by_number[1]["state"] == "FAIL"
    retries = [t for t in s["trials"] if t.get("retry_of") == 1]
    assert len(retries) == 1 and retries[0]["state"] == "COMPLETE"
    assert retries[0]["params"] == by_number[1]["params"]
    assert sum(t["state"] == "COMPLETE" for t in s["trials"]) == 3  # the budget of 3, the retry in place of 1
