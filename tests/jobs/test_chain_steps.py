"""Chained requests become jobs as the planner links them (``next_steps``: each step's own inputs, its
``parent_step`` and what it ``uses``); run by the executor with a fake backend (no depth_net, no training)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from skillbank.jobs.chain import SubmitError, plan_chain
from skillbank.jobs.executor import Executor
from skillbank.jobs.store import FINAL, Job
from skillbank.sdk import Client

CHECKPOINT = "model_epoch_000_step_00006.pth"


class FakeBackend:
    """Runs nothing: records the spec each job starts with and writes what its action would leave."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def start(self, job: Job, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
        self.specs[job.id] = yaml.safe_load(Path(argv[-1]).read_text())
        folder = Path(job.results_dir)
        folder.mkdir(parents=True, exist_ok=True)
        outputs = {"train": CHECKPOINT, "export": "FastFoundationStereo.onnx"}
        if job.action in outputs:
            (folder / outputs[job.action]).write_bytes(b"x")
        kpi = {"val/epe": 1.25} if job.action == "evaluate" else {}
        events = [{"status": "STARTED", "message": "go"}, {"status": "SUCCESS", "message": "done", "kpi": kpi}]
        (folder / "status.json").write_text("".join(json.dumps(e) + "\n" for e in events))
        return {"pid": None}

    def poll(self, job: Job) -> tuple[bool, int | None]:
        return True, 0

    def forget(self, job: Job) -> None:
        pass

    def terminate(self, job: Job) -> None:
        pass

    def kill(self, job: Job) -> None:
        pass

    def adopt(self, job: Job) -> bool:
        return False


def _data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.txt", "val.txt", "holdout.txt"):
        (folder / name).write_text("")
    return folder


def _run_all(client: Client, backend: FakeBackend, ids: list[str]) -> list[Job]:
    executor = Executor(client.store, gpus=["0"], poll_s=0)
    executor.backends["local"] = backend
    deadline = time.monotonic() + 60
    while not all(client.status(i).status in FINAL for i in ids):
        assert time.monotonic() < deadline, [client.status(i).message for i in ids]
        executor.step()
    return [client.status(i) for i in ids]


def test_an_evaluate_step_reads_its_own_data_and_takes_the_train_jobs_checkpoint(tmp_path: Path) -> None:
    data = _data(tmp_path / "d")
    client = Client(tmp_path / "ws", start_executor=False)
    request = (
        f"train fast stereo on {data}/train.txt, validate on {data}/val.txt, no HPO, "
        f"then evaluate it on {data}/holdout.txt and export it"
    )
    train, evaluate, export = client.submit(request)
    assert [j.action for j in (train, evaluate, export)] == ["train", "evaluate", "export"]
    assert train.parent_job_id is None
    assert evaluate.parent_job_id == train.id and export.parent_job_id == train.id
    planned = yaml.safe_load(evaluate.spec)["dataset"]["test_dataset"]["data_sources"]
    assert [s["data_file"] for s in planned] == [f"{data}/holdout.txt"]  # its own data, not the train's val

    backend = FakeBackend()
    done = _run_all(client, backend, [train.id, evaluate.id, export.id])
    assert [j.status for j in done] == ["COMPLETE"] * 3, [j.message for j in done]
    checkpoint = str(Path(train.results_dir) / CHECKPOINT)
    ran = backend.specs[evaluate.id]
    assert ran["evaluate"]["checkpoint"] == checkpoint and done[1].artifact == checkpoint
    assert [s["data_file"] for s in ran["dataset"]["test_dataset"]["data_sources"]] == [f"{data}/holdout.txt"]
    assert backend.specs[export.id]["export"]["checkpoint"] == checkpoint
    assert done[1].kpi == {"val/epe": 1.25}


def test_an_evaluate_step_without_data_reads_the_train_jobs_validation_data(tmp_path: Path) -> None:
    data = _data(tmp_path / "d")
    request = f"train fast stereo on {data}/train.txt, validate on {data}/val.txt, no HPO, then evaluate it"
    _train, evaluate = (p.job for p in plan_chain(Client(tmp_path / "ws").store, request))
    sources = yaml.safe_load(evaluate.spec)["dataset"]["test_dataset"]["data_sources"]
    assert [s["data_file"] for s in sources] == [f"{data}/val.txt"]


def test_a_named_parent_job_fills_the_planned_key(tmp_path: Path) -> None:
    """'fine-tune ... from job X': the plan's parent_job_id and from_parent (train.pretrained_model_path)."""
    data = _data(tmp_path / "d")
    client = Client(tmp_path / "ws", start_executor=False)
    backend = FakeBackend()
    (train,) = client.submit(f"train fast stereo on {data}/train.txt, validate on {data}/val.txt, no HPO")
    _run_all(client, backend, [train.id])
    (tuned,) = client.submit(f"fine-tune fast stereo on {data}/train.txt, no HPO, from job {train.id}")
    assert tuned.parent_job_id == train.id
    assert tuned.options["from_parent"] == {"train.pretrained_model_path": "checkpoint"}
    (done,) = _run_all(client, backend, [tuned.id])
    assert done.status == "COMPLETE", done.message
    assert backend.specs[tuned.id]["train"]["pretrained_model_path"] == str(Path(train.results_dir) / CHECKPOINT)
    with pytest.raises(SubmitError, match="parent job given|names parent job"):
        client.submit(f"export fast stereo from job {train.id}", parent_job_id="abc234")


def test_inference_on_an_image_folder_waits_for_convert_and_takes_the_named_jobs_checkpoint(tmp_path: Path) -> None:
    """convert <- inference (reads the convert job's test.txt); its model from the job the request named."""
    data = _data(tmp_path / "d")
    for side in ("left", "right"):
        (data / "imgs" / side).mkdir(parents=True)
        (data / "imgs" / side / "0.png").write_bytes(b"x")
    client = Client(tmp_path / "ws", start_executor=False)
    backend = FakeBackend()
    (train,) = client.submit(f"train fast stereo on {data}/train.txt, validate on {data}/val.txt, no HPO")
    _run_all(client, backend, [train.id])
    convert, infer = client.submit(f"run inference with fast stereo on the images in {data}/imgs from job {train.id}")
    assert (convert.action, infer.action, infer.parent_job_id) == ("convert", "inference", convert.id)
    assert infer.options == {"from_parent": {"inference.checkpoint": "checkpoint"}, "from_job": train.id}
    done = _run_all(client, backend, [convert.id, infer.id])
    assert [j.status for j in done] == ["COMPLETE"] * 2, [j.message for j in done]
    ran = backend.specs[infer.id]
    assert ran["inference"]["checkpoint"] == str(Path(train.results_dir) / CHECKPOINT)
    sources = ran["dataset"]["infer_dataset"]["data_sources"]
    assert [s["data_file"] for s in sources] == [str(Path(convert.results_dir) / "test.txt")]
