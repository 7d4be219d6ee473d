"""depth_net evaluate (real Middlebury scenes) and inference (colour PNG + PFM, name collisions) on CPU."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from runtime_helpers import REAL_STEREO, read_status, split, tiny_ffs_model, write_spec

from skillbank.runtime.checkpoints import save_checkpoint_atomic
from skillbank.runtime.data.io import read_image_rgb, read_pfm
from skillbank.runtime.runner import run_action
from skillbank.specs import load_spec

MIDDLEBURY = REAL_STEREO / "middlebury"


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A random-init tiny FFS saved as a Lightning-style dict (``model.`` keys), like train writes."""
    from skillbank.runtime.networks.factory import build_network

    torch.manual_seed(0)
    net = build_network(load_spec(None, data={"model": tiny_ffs_model()}).model)
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    return save_checkpoint_atomic({"state_dict": state, "epoch": 0, "global_step": 0}, tmp_path / "tiny.pth")


@pytest.mark.skipif(not MIDDLEBURY.is_dir(), reason="shared Middlebury data not present")
@pytest.mark.slow
def test_evaluate_middlebury_writes_all_metrics_under_val(tmp_path, tiny_checkpoint):
    scenes = sorted(p for p in MIDDLEBURY.iterdir() if (p / "disp0GT.pfm").is_file())
    annotation = tmp_path / "middlebury.txt"
    annotation.write_text("".join(f"{s}/im0.png {s}/im1.png {s}/disp0GT.pfm {s}/mask0nocc.png\n" for s in scenes))
    spec = write_spec(tmp_path / "spec.yaml", {
        "results_dir": str(tmp_path / "results"),
        "model": tiny_ffs_model(),
        "dataset": {"test_dataset": split(annotation, train=False, dataset_name="Middlebury")},
        "evaluate": {"checkpoint": str(tiny_checkpoint), "num_gpus": 0},
    })
    assert run_action("evaluate", str(spec), []) == 0
    results = tmp_path / "results" / "evaluate"
    final = read_status(results)[-1]
    assert final["status"] == "SUCCESS"
    kpi = final["kpi"]
    for name in ("epe", "bp1", "bp2", "bp3", "d1", "rmse"):
        assert f"val/{name}" in kpi and f"val/{name}_noc" in kpi
        assert np.isfinite(kpi[f"val/{name}"])
    assert kpi["val/images"] == len(scenes)
    assert 0 <= kpi["val/bp3"] <= kpi["val/bp2"] <= kpi["val/bp1"] <= 100
    assert kpi["val/rmse"] >= kpi["val/epe"]  # sqrt(mean e^2) >= mean e, per image and so on average
    with open(results / "metrics_per_image.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(scenes) and {"epe", "epe_noc", "rmse"} <= set(rows[0])
    assert np.mean([float(r["epe"]) for r in rows]) == pytest.approx(kpi["val/epe"], rel=1e-4)


def test_inference_one_png_per_pair_names_without_collisions(tmp_path, synthetic_pairs, tiny_checkpoint):
    src = synthetic_pairs.parent
    lines = []
    for scene, stem in (("teddy", "000000"), ("cones", "000001")):
        folder = tmp_path / "data" / scene
        folder.mkdir(parents=True)
        shutil.copy(src / "left" / f"{stem}.png", folder / "im0.png")
        shutil.copy(src / "right" / f"{stem}.png", folder / "im1.png")
        lines.append(f"{scene}/im0.png {scene}/im1.png")
    annotation = tmp_path / "data" / "infer.txt"
    annotation.write_text("\n".join(lines) + "\n")
    spec = write_spec(tmp_path / "spec.yaml", {
        "results_dir": str(tmp_path / "results"),
        "model": tiny_ffs_model(),
        "dataset": {"infer_dataset": split(annotation, train=False)},
        "inference": {"checkpoint": str(tiny_checkpoint), "num_gpus": 0, "save_raw_pfm": True,
                      "input_height": 64, "input_width": 96},
    })
    assert run_action("inference", str(spec), []) == 0
    out = tmp_path / "results" / "inference"
    assert sorted(p.name for p in out.glob("*.png")) == ["cones_im0.png", "teddy_im0.png"]
    assert read_status(out)[-1]["kpi"]["images"] == 2
    source = read_image_rgb(tmp_path / "data" / "teddy" / "im0.png")
    colour = read_image_rgb(out / "teddy_im0.png")
    raw = read_pfm(out / "teddy_im0.pfm")
    assert colour.shape == source.shape and raw.shape == source.shape[:2]  # back at the file's size
    assert np.isfinite(raw).all() and raw.min() >= 0


def _evaluate(tmp_path: Path, annotation: Path, checkpoint: Path, name: str, **fast) -> tuple[int, dict]:
    spec = write_spec(tmp_path / f"{name}.yaml", {
        "results_dir": str(tmp_path / name),
        "model": tiny_ffs_model(),
        "dataset": {"test_dataset": split(annotation, train=False)},
        "evaluate": {"checkpoint": str(checkpoint), "num_gpus": 0, **fast},
    })
    code = run_action("evaluate", str(spec), [])
    return code, read_status(tmp_path / name / "evaluate")[-1]


@pytest.mark.slow
def test_evaluate_fast_path_gives_the_same_metrics(tmp_path, synthetic_pairs, tiny_checkpoint):
    """evaluate.optimize (BN folded, widths padded: the tiny GRU input 17 -> 24, lookup 162 -> 168,
    the heads widened) must not change what the network predicts."""
    code, plain = _evaluate(tmp_path, synthetic_pairs, tiny_checkpoint, "plain")
    assert code == 0
    code, fast = _evaluate(tmp_path, synthetic_pairs, tiny_checkpoint, "fast", optimize=True)
    assert code == 0 and fast["status"] == "SUCCESS"
    for key in ("val/epe", "val/bp1", "val/d1", "val/rmse"):
        assert fast["kpi"][key] == pytest.approx(plain["kpi"][key], rel=1e-4, abs=1e-4), key


def test_half_precision_on_a_cpu_is_a_spec_error_naming_the_key(tmp_path, synthetic_pairs, tiny_checkpoint):
    code, final = _evaluate(tmp_path, synthetic_pairs, tiny_checkpoint, "half", precision="fp16")
    assert code != 0 and final["status"] == "FAILURE"
    assert "evaluate.precision" in final["message"] and "GPU" in final["message"]


def test_inference_compile_switch_compiles_the_two_regions(tmp_path, synthetic_pairs, tiny_checkpoint, monkeypatch):
    from skillbank.runtime.networks.ffs.model import FastFoundationStereo

    calls = []

    def fake_compile_regions(self, **kwargs):  # noqa: ANN001, ANN202 - records the call, runs eager
        calls.append(kwargs)
        return self

    monkeypatch.setattr(FastFoundationStereo, "compile_regions", fake_compile_regions)
    spec = write_spec(tmp_path / "spec.yaml", {
        "results_dir": str(tmp_path / "results"),
        "model": tiny_ffs_model(),
        "dataset": {"infer_dataset": split(synthetic_pairs, train=False)},
        "inference": {"checkpoint": str(tiny_checkpoint), "num_gpus": 0, "compile": True, "optimize": True},
    })
    assert run_action("inference", str(spec), []) == 0
    assert calls == [{}]
    assert read_status(tmp_path / "results" / "inference")[-1]["kpi"]["images"] == 4


@pytest.mark.parametrize(("switches", "key"), [({"optimize": True}, "evaluate.optimize"),
                                               ({"compile": True}, "inference.compile")])
def test_fast_path_on_a_network_without_one_names_the_key(switches, key):
    """The fast-path switches on a network they do not serve (a mono DepthAnything, here any non-FFS
    module) fail in one configuration line that names the spec key, before any image is read."""
    from types import SimpleNamespace

    from skillbank.runtime.errors import ConfigurationError
    from skillbank.runtime.prediction.fast_path import plan_fast_path
    from skillbank.runtime.prediction.predict import _apply_plan

    section = SimpleNamespace(**{"optimize": False, "compile": False, "precision": "fp32", **switches})
    action = key.split(".")[0]
    plan = plan_fast_path(section, action=action, device_type="cpu", model_type="Conv2d")
    with pytest.raises(ConfigurationError, match=rf"^Configuration error: {key}: the inference fast path is built for "
                                                 r"FastFoundationStereo, not Conv2d$"):
        _apply_plan(torch.nn.Conv2d(3, 1, 1).eval(), plan, section, action)
