"""depth_net train end to end on a tiny FastFoundationStereo and synthetic pairs (CPU).

Runs go through ``runtime.runner.run_action`` (the CLI's own function: spec loading, results folder,
status.json, exit codes) in-process, or through the real CLI in a subprocess where a process must die.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from runtime_helpers import read_status, write_spec

from skillbank.runtime.checkpoints import LATEST_NAME, load_checkpoint_file
from skillbank.runtime.runner import run_action


def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_train_two_epochs_loss_falls_then_resumes_at_the_exact_step(tmp_path, tiny_spec):
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    results = tmp_path / "results" / "train"
    assert run_action("train", str(spec), []) == 0

    events = read_status(results)
    assert [e["status"] for e in events] == ["STARTED", "RUNNING", "RUNNING", "SUCCESS"]
    running = [e for e in events if e["status"] == "RUNNING"]
    for i, event in enumerate(running):
        cat = event["categorical"]
        assert (cat["epoch"], cat["max_epoch"], cat["step"]) == (i + 1, 2, 2 * (i + 1))
        assert {"time_per_epoch", "eta"} <= set(cat)
        assert {"train_loss", "val_loss", "val/epe", "val/bp2"} <= set(event["kpi"])
    assert running[1]["kpi"]["train_loss"] < running[0]["kpi"]["train_loss"], "loss did not fall"
    assert events[-1]["kpi"]["train_loss"] == running[1]["kpi"]["train_loss"]

    first, second = results / "model_epoch_000_step_00002.pth", results / "model_epoch_001_step_00004.pth"
    assert first.is_file() and second.is_file()
    assert (results / LATEST_NAME).read_bytes() == second.read_bytes()
    state_dict, meta = load_checkpoint_file(results / LATEST_NAME)
    assert meta.global_step == 4 and not any(k.startswith("model.") for k in state_dict)
    assert not list(results.glob(".*.tmp"))

    # Resume: one more epoch continues from step 4 with the optimiser and schedule restored.
    assert run_action("train", str(spec), ["train.num_epochs=3"]) == 0
    resumed = read_status(results)[len(events):]
    assert [e["status"] for e in resumed] == ["STARTED", "RUNNING", "SUCCESS"]
    assert resumed[1]["categorical"]["epoch"] == 3 and resumed[1]["categorical"]["step"] == 6
    third = _ckpt(results / "model_epoch_002_step_00006.pth")
    assert third["global_step"] == 6 and third["epoch"] == 2
    adam_steps = {float(s["step"]) for s in third["optimizer_states"][0]["state"].values()}
    assert adam_steps == {6.0}, "optimizer state was not restored (Adam's step count restarted)"
    assert third["lr_schedulers"][0]["last_epoch"] == 6


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_a_fused_optimizer_trains_and_is_clipped(tmp_path, tiny_spec, monkeypatch, precision):
    """On a GPU the optimiser is fused (fp32, bf16). Lightning's mixed-precision plugin refuses to clip
    for it; the module clips itself. Forced here on the CPU: the run succeeds and every step clips."""
    from skillbank.runtime.training.module import DepthNetModule

    monkeypatch.setattr(DepthNetModule, "_fused_optimizer", lambda self: True)
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        clipped.append(max_norm)
        return real_clip(params, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    tiny_spec["train"].update(num_epochs=1, precision=precision, clip_grad_norm=0.5)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    assert run_action("train", str(spec), []) == 0
    assert clipped == [0.5, 0.5]
    state = _ckpt(tmp_path / "results" / "train" / LATEST_NAME)["optimizer_states"][0]
    assert state["param_groups"][0]["fused"] is True


def test_nan_loss_fails_with_training_error(tmp_path, tiny_spec, monkeypatch):
    import skillbank.runtime.training.loss as loss

    real = loss.stereo_sequence_loss

    def nan_loss(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        return loss * float("nan"), parts

    monkeypatch.setattr(loss, "stereo_sequence_loss", nan_loss)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    code = run_action("train", str(spec), [])
    events = read_status(tmp_path / "results" / "train")
    assert code == 4
    assert [e["status"] for e in events] == ["STARTED", "FAILURE"]
    assert events[-1]["message"].startswith("Training error: train loss is nan")
    assert not list((tmp_path / "results" / "train").glob("*.pth")), "a diverged run must not checkpoint"


def test_a_training_split_smaller_than_one_batch_names_the_split(tmp_path, tiny_spec):
    tiny_spec["dataset"]["train_dataset"]["batch_size"] = 8  # 4 synthetic pairs
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    code = run_action("train", str(spec), [])
    final = read_status(tmp_path / "results" / "train")[-1]
    assert code == 2 and final["status"] == "FAILURE"
    assert final["message"] == (
        "Configuration error: dataset.train_dataset: 4 samples is fewer than batch_size 8 x 1 process(es)"
    )


_STEP_ON_GPU = pytest.param("step", "gpu", id="step-gpu", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])


@pytest.mark.parametrize(("unit", "device"), [("step", "cpu"), ("epoch", "cpu"), _STEP_ON_GPU])
def test_lagged_nan_guard_still_fails_before_any_checkpoint(tmp_path, tiny_spec, monkeypatch, unit, device):
    """The GPU path checks the previous step's loss (copied to pinned memory behind an event); a NaN
    in the last step before a save is caught by the check that runs before every save. On the CPU
    the lagged path is forced; on a GPU it is the default."""
    import skillbank.runtime.training.loss as loss
    import skillbank.runtime.training.module as module

    real = loss.stereo_sequence_loss
    calls = [0]

    def nan_on_second(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        calls[0] += 1
        return (loss * float("nan") if calls[0] == 2 else loss), parts

    monkeypatch.setattr(loss, "stereo_sequence_loss", nan_on_second)
    monkeypatch.setattr(module.DepthNetModule, "lag_guard_on_cpu", True)
    tiny_spec["train"].update(checkpoint_interval=2, checkpoint_interval_unit=unit)
    if device == "gpu":
        tiny_spec["train"].update(num_gpus=1, gpu_ids=[0])
    tiny_spec["dataset"].pop("val_dataset")
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    code = run_action("train", str(spec), [])
    events = read_status(tmp_path / "results" / "train")
    assert code == 4 and events[-1]["status"] == "FAILURE"
    assert "train loss is nan" in events[-1]["message"] and "step 1" in events[-1]["message"]
    assert not list((tmp_path / "results" / "train").glob("*.pth")), "a diverged step reached a checkpoint"


def test_nan_in_the_input_is_reported_as_divergence_not_a_crash(tmp_path, tiny_spec, monkeypatch):
    """A NaN reaching the network (here: the images of the second step) flows through the lookup's
    gather without indexing out of range and ends as a 'train loss is nan' FAILURE (exit 4)."""
    from skillbank.runtime.training.module import DepthNetModule

    real_step = DepthNetModule.training_step

    def poisoned_step(self, batch, batch_idx):
        if self.global_step == 1:
            batch = {**batch, "left": torch.full_like(batch["left"], float("nan"))}
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(DepthNetModule, "training_step", poisoned_step)
    tiny_spec["dataset"].pop("val_dataset")
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    code = run_action("train", str(spec), [])
    events = read_status(tmp_path / "results" / "train")
    assert code == 4, events[-1]
    assert events[-1]["message"].startswith("Training error: train loss is nan")


def test_interrupt_writes_checkpoint_and_says_how_to_resume(tmp_path, tiny_spec, monkeypatch):
    from skillbank.runtime.training.module import DepthNetModule

    real_step = DepthNetModule.training_step

    def interrupted_step(self, batch, batch_idx):
        if self.global_step == 1:
            raise KeyboardInterrupt
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(DepthNetModule, "training_step", interrupted_step)
    tiny_spec["dataset"].pop("val_dataset")
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    handler = signal.getsignal(signal.SIGINT)
    code = run_action("train", str(spec), [])
    assert signal.getsignal(signal.SIGINT) is handler, "Lightning's SIG_IGN for SIGINT must not leak out"
    results = tmp_path / "results" / "train"
    events = read_status(results)
    assert code == 130 and events[-1]["status"] == "FAILURE"
    saved = results / "model_epoch_000_step_00001.pth"
    assert "resume" in events[-1]["message"] and str(saved) in events[-1]["message"]
    assert _ckpt(saved)["global_step"] == 1
    assert (results / LATEST_NAME).read_bytes() == saved.read_bytes()

    monkeypatch.setattr(DepthNetModule, "training_step", real_step)
    assert run_action("train", str(spec), []) == 0
    assert _ckpt(results / LATEST_NAME)["global_step"] == 4


CHILD = r"""
import io, sys, time
from pathlib import Path
import torch
real_save, marker, calls = torch.save, Path(sys.argv[2]), [0]
def dying_save(obj, f, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 2 and hasattr(f, "write"):  # the second checkpoint: stall half-written
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        marker.write_text("saving")
        time.sleep(600)
    return real_save(obj, f, *args, **kwargs)
torch.save = dying_save
from skillbank.runtime.runner import run_action
sys.exit(run_action("train", sys.argv[1], ["train.checkpoint_interval_unit=step"]))
"""


def test_kill_9_during_a_save_leaves_a_loadable_latest(tmp_path, tiny_spec):
    tiny_spec["dataset"].pop("val_dataset")
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    marker = tmp_path / "marker"
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(child), str(spec), str(marker)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never reached its second save"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    results = tmp_path / "results" / "train"
    partial = list(results.glob(".*.tmp"))
    assert partial, "the kill should have hit while a temp file was being written"
    assert not (results / "model_epoch_001_step_00002.pth").exists() and not (
        results / "model_epoch_000_step_00002.pth").exists()
    state_dict, meta = load_checkpoint_file(results / LATEST_NAME)
    assert meta.global_step == 1 and state_dict
    with pytest.raises(Exception):  # noqa: B017 - the half-written temp file is indeed unreadable
        torch.load(partial[0], weights_only=True)



@pytest.mark.slow
def test_resumed_run_matches_an_uninterrupted_one(tmp_path, tiny_spec):
    """2 epochs + resume to 3 gives bit-identical weights to 3 epochs in one go: data order, augmentation,
    optimiser state and schedule position are all restored. (MultiStepLR: its curve does not depend on
    the run's length, unlike cosine, so both runs follow the same learning rates.)"""
    tiny_spec["dataset"].pop("val_dataset")
    tiny_spec["train"]["optim"].update(lr_scheduler="MultiStepLR", lr_steps=[3], warmup_steps=2)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run_action("train", str(spec), ["train.num_epochs=3", f"train.results_dir={straight}"]) == 0
    assert run_action("train", str(spec), ["train.num_epochs=2", f"train.results_dir={resumed}"]) == 0
    assert run_action("train", str(spec), ["train.num_epochs=3", f"train.results_dir={resumed}"]) == 0
    a = _ckpt(straight / "model_epoch_002_step_00006.pth")
    b = _ckpt(resumed / "model_epoch_002_step_00006.pth")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), f"{key} differs after resume"


def test_val_metrics_only_on_epochs_that_validated(tmp_path, tiny_spec):
    tiny_spec["train"].update(num_epochs=2, validation_interval=2, optim={"lr": 1e-3, "warmup_steps": 0})
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    assert run_action("train", str(spec), []) == 0
    running = [e for e in read_status(tmp_path / "results" / "train") if e["status"] == "RUNNING"]
    assert "val_loss" not in running[0]["kpi"] and not any(k.startswith("val/") for k in running[0]["kpi"])
    assert {"val_loss", "val/epe"} <= set(running[1]["kpi"])


def test_resume_from_a_checkpoint_of_another_model_is_one_clear_line(tmp_path, tiny_spec):
    tiny_spec["dataset"].pop("val_dataset")
    tiny_spec["train"]["num_epochs"] = 1
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    assert run_action("train", str(spec), []) == 0
    code = run_action("train", str(spec), ["train.num_epochs=2", "model.volume_dim=12"])
    final = read_status(tmp_path / "results" / "train")[-1]
    assert code == 2 and final["status"] == "FAILURE"
    assert final["message"].startswith("Configuration error: train: cannot resume from")
    assert "volume_dim" in final["message"] and "\n" not in final["message"]


def test_steady_throughput_leaves_out_the_epochs_start_up(monkeypatch):
    """``train_samples_per_s``: samples per second from the end of batch STEADY_AFTER to the last
    one's, across ranks (a slow first step, compile or capture, is left out); none for short epochs."""
    from types import SimpleNamespace

    from skillbank.runtime.training import callbacks

    reporter, short = callbacks.StatusReporter(reporter=None), callbacks.StatusReporter(reporter=None)
    clock = iter([0.0, 30.0, 30.1, 30.2, 30.3, 30.5, 30.7])   # epoch start, then 6 batch ends
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock))
    trainer = SimpleNamespace(world_size=2)
    reporter.on_train_epoch_start(trainer, None)
    batch = {"left": torch.zeros(4, 3, 8, 8), "name": ["a"] * 4}
    for i in range(6):
        reporter.on_train_batch_end(trainer, None, None, batch, i)
    assert callbacks.STEADY_AFTER == 3
    # batches 5 and 6 (4 samples x 2 ranks each) over 30.3 -> 30.7 s
    assert reporter.steady_samples_per_s() == pytest.approx(16 / 0.4)
    clock2 = iter([0.0, 1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock2))
    short.on_train_epoch_start(trainer, None)
    for i in range(4):
        short.on_train_batch_end(trainer, None, None, [torch.zeros(2, 1)], i)
    assert short.steady_samples_per_s() is None
    assert callbacks._batch_size(torch.zeros(5, 2)) == 5 and callbacks._batch_size({"x": "no tensor"}) == 0


def test_weights_only_checkpoints_hold_the_weights_alone(tmp_path, tiny_spec):
    tiny_spec["train"].update({"num_epochs": 1, "checkpoint_weights_only": True})
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    assert run_action("train", str(spec), []) == 0
    results = tmp_path / "results" / "train"
    saved = _ckpt(results / "model_epoch_000_step_00002.pth")
    assert "optimizer_states" not in saved and "lr_schedulers" not in saved and saved["state_dict"]
    state_dict, _ = load_checkpoint_file(results / LATEST_NAME)  # what evaluate / export / pretrained read
    assert state_dict.keys() == {k.removeprefix("model.") for k in saved["state_dict"]}
    # a later run into the same folder cannot resume from weights alone: one clear line, exit 2
    assert run_action("train", str(spec), ["train.num_epochs=2"]) == 2
    assert "holds weights only (train.checkpoint_weights_only)" in read_status(results)[-1]["message"]


def test_startup_time_runs_to_where_the_steady_clock_starts(monkeypatch):
    """``startup_s``: from the start of training to the end of batch STEADY_AFTER + 1 (compilation and
    capture of the first steps included), reported once, on the first epoch."""
    from types import SimpleNamespace

    from skillbank.runtime.training import callbacks

    reporter = callbacks.StatusReporter(reporter=None)
    clock = iter([5.0, 6.0, 70.0, 70.1, 70.2, 70.3, 70.4])  # train start, epoch start, then 5 batch ends
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock))
    trainer = SimpleNamespace(world_size=1)
    reporter.on_train_start(trainer, None)
    reporter.on_train_epoch_start(trainer, None)
    for i in range(5):
        reporter.on_train_batch_end(trainer, None, None, [torch.zeros(2, 1)], i)
        if i < callbacks.STEADY_AFTER:
            assert reporter.startup_s is None
    assert reporter.startup_s == pytest.approx(70.3 - 5.0)
