"""Two CPU processes in DDP (gloo) through the real CLI: one set of checkpoints, reduced metrics,
identical weights on both ranks; also with train.pad_channels (checkpoints in the network's own shapes)."""

from __future__ import annotations

import re

import pytest
import torch
from runtime_helpers import read_status, run_cli, write_spec

from skillbank.runtime.checkpoints import load_checkpoint_file
from skillbank.runtime.networks.factory import build_network
from skillbank.specs import load_spec


@pytest.mark.slow
@pytest.mark.parametrize("padded", [False, True], ids=["plain", "pad_channels"])
def test_ddp_two_cpu_processes_checkpoint_once_and_agree(tmp_path, tiny_spec, padded):
    tiny_spec["dataset"]["train_dataset"]["batch_size"] = 1
    tiny_spec["train"].update(num_epochs=1, checkpoint_interval_unit="step", checkpoint_interval=1,
                              pad_channels=padded)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    proc = run_cli("train", spec, env={"DEPTH_NET_CPU_PROCESSES": "2", "DEPTH_NET_LOG_LEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "results" / "train"
    events = read_status(results)
    # rank 1 runs the same command but writes nothing: exactly one line of each kind
    assert [e["status"] for e in events] == ["STARTED", "RUNNING", "SUCCESS"]
    # 4 pairs, batch 1, 2 processes -> 2 optimiser steps, one checkpoint per step, written once
    names = sorted(p.name for p in results.iterdir() if p.suffix == ".pth" or p.name.endswith(".tmp"))
    assert names == ["dn_model_latest.pth", "model_epoch_000_step_00001.pth", "model_epoch_000_step_00002.pth"]
    assert events[1]["categorical"]["step"] == 2
    # validation metrics are summed across ranks: 2 images each, 4 in all
    assert events[-1]["kpi"]["val/images"] == 4
    sums = dict(re.findall(r"rank (\d) weights checksum (\S+)", proc.stderr))
    assert set(sums) == {"0", "1"}, proc.stderr[-3000:]
    assert sums["0"] == sums["1"], f"weights differ across ranks: {sums}"
    # a padded run's checkpoint loads strictly into the network as built (TAO's shapes)
    state_dict, _ = load_checkpoint_file(results / "dn_model_latest.pth")
    build_network(load_spec(spec).model).load_state_dict(state_dict, strict=True)
    assert all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())
