"""depth_net export (ONNX, checked with onnxruntime) and gen_trt_engine without TensorRT."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from skillbank.runtime.deploy.engines import open_engine
from skillbank.runtime.runner import run_action
from skillbank.runtime.status import read_status
from skillbank.runtime.training.weights import build_model
from skillbank.specs import load_spec

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "spec.yaml"


def _tiny_spec(tmp_path: Path, **export) -> Path:
    spec = yaml.safe_load(QUICKSTART.read_text())
    spec["results_dir"] = str(tmp_path / "results")
    spec["model"]["valid_iters"] = 2
    spec["export"] = {"checkpoint": str(tmp_path / "m.pth"), "input_height": 64, "input_width": 96, **export}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(0)
    model = build_model(load_spec(path))
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "m.pth")
    return path


@pytest.mark.parametrize("export", [{}, pytest.param({"batch_size": -1, "dynamic_hw": True}, marks=pytest.mark.slow)],
                         ids=["static", "dynamic"])
def test_export_matches_pytorch_under_onnxruntime(tmp_path, export):
    spec = _tiny_spec(tmp_path, **export)
    assert run_action("export", str(spec), []) == 0
    status = read_status(tmp_path / "results" / "export" / "status.json")
    assert [e["status"] for e in status][0] == "STARTED" and status[-1]["status"] == "SUCCESS"
    assert status[-1]["kpi"]["drift_max_px"] < 1e-3
    drift = json.loads((tmp_path / "results" / "export" / "drift.json").read_text())
    assert drift["accepted"] and drift["max_abs_px"] == status[-1]["kpi"]["drift_max_px"]
    assert drift["input"].startswith("synthetic pair") and drift["bp2_pct"] == 0.0
    onnx_file = Path(status[-1]["categorical"]["onnx_file"])
    assert onnx_file.is_file()

    # the exported graph runs through the deploy engine runner, at another size when dynamic
    engine = open_engine(onnx_file)
    h, w = (96, 128) if export else (64, 96)
    batch = 2 if export else 1
    left = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 3, h, w)).astype(np.float32))
    out = engine(left, torch.roll(left, -3, dims=3))
    assert out.shape == (batch, 1, h, w)
    assert torch.isfinite(out).all() and (out >= 0).all()


def test_export_needs_multiples_of_32(tmp_path, capsys):
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), ["export.input_height=70"]) == 2
    assert "export.input_height: 70 must be a multiple of 32" in capsys.readouterr().err


def test_export_names_a_missing_checkpoint(tmp_path, capsys):
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), [f"export.checkpoint={tmp_path / 'nope.pth'}"]) == 3
    assert "export.checkpoint:" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt installed")
@pytest.mark.slow
def test_gen_trt_engine_without_tensorrt_fails_honestly(tmp_path, capsys):
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), []) == 0
    onnx_file = tmp_path / "results" / "export" / "FastFoundationStereo.onnx"
    code = run_action("gen_trt_engine", str(spec), [f"gen_trt_engine.onnx_file={onnx_file}"])
    assert code == 6
    status = read_status(tmp_path / "results" / "gen_trt_engine" / "status.json")
    assert status[-1]["status"] == "FAILURE"
    assert status[-1]["message"].startswith("Dependency error: the tensorrt package is not installed")
    assert not (tmp_path / "results" / "gen_trt_engine" / "model.engine").exists()


@pytest.mark.slow
def test_engine_evaluate_and_inference_run_the_exported_onnx(tmp_path):
    """Deploy side: evaluate/inference with <action>.trt_engine = the exported .onnx (onnxruntime)."""
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    ann = generate_synthetic_stereo(tmp_path / "data", num_pairs=2, height=64, width=96, max_disparity=12, seed=1)
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), []) == 0
    onnx_file = tmp_path / "results" / "export" / "FastFoundationStereo.onnx"
    sources = f"[{{dataset_name: GenericDataset, data_file: {ann}}}]"
    common = [
        "evaluate.checkpoint=null",
        "inference.checkpoint=null",
        f"dataset.test_dataset.data_sources={sources}",
        f"dataset.infer_dataset.data_sources={sources}",
        "dataset.test_dataset.workers=0",
        "dataset.infer_dataset.workers=0",
    ]
    assert run_action("evaluate", str(spec), [*common, f"evaluate.trt_engine={onnx_file}", "evaluate.num_gpus=0"]) == 0
    status = read_status(tmp_path / "results" / "evaluate" / "status.json")
    kpi = status[-1]["kpi"]
    assert {"epe", "bp1", "bp2", "bp3", "d1", "rmse"} <= set(kpi) and not any(k.startswith("val/") for k in kpi)
    assert (tmp_path / "results" / "evaluate" / "results.json").is_file()
    assert (
        run_action("inference", str(spec), [*common, f"inference.trt_engine={onnx_file}", "inference.num_gpus=0"]) == 0
    )
    assert len(list((tmp_path / "results" / "inference").glob("*.png"))) == 2


@pytest.mark.slow
def test_static_engine_fed_another_size_names_the_keys(tmp_path, capsys):
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    ann = generate_synthetic_stereo(tmp_path / "data", num_pairs=1, height=96, width=128, max_disparity=12, seed=1)
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), []) == 0
    onnx_file = tmp_path / "results" / "export" / "FastFoundationStereo.onnx"
    code = run_action(
        "evaluate",
        str(spec),
        [
            f"dataset.test_dataset.data_sources=[{{dataset_name: GenericDataset, data_file: {ann}}}]",
            "dataset.test_dataset.workers=0",
            "evaluate.checkpoint=null",
            f"evaluate.trt_engine={onnx_file}",
            "evaluate.num_gpus=0",
        ],
    )
    assert code == 2
    assert "evaluate.input_height/evaluate.input_width: engine FastFoundationStereo.onnx takes [1, 3, 64, 96]" in (
        capsys.readouterr().err
    )


def test_export_above_max_drift_is_rejected_not_presented_as_good(tmp_path, capsys):
    """A limit the graph cannot meet: the file is kept under its rejected name, drift.json says so, exit 1."""
    spec = _tiny_spec(tmp_path)
    results = tmp_path / "results" / "export"
    assert run_action("export", str(spec), ["export.max_drift_px=1e-12"]) == 1
    err = capsys.readouterr().err
    assert "export.max_drift_px: FastFoundationStereo.onnx differs from PyTorch fp32 (CPU) by up to" in err
    assert "kept as FastFoundationStereo.rejected.onnx, not deployable (drift.json)" in err
    assert not (results / "FastFoundationStereo.onnx").exists()
    assert (results / "FastFoundationStereo.rejected.onnx").is_file()
    assert not [p.name for p in results.iterdir() if p.name.startswith(".")]  # no temporary left behind
    drift = json.loads((results / "drift.json").read_text())
    assert drift["accepted"] is False and drift["max_drift_px"] == 1e-12 and drift["max_abs_px"] > 1e-12
    assert read_status(results / "status.json")[-1]["status"] == "FAILURE"


def test_export_drift_on_a_given_pair(tmp_path):
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    generate_synthetic_stereo(tmp_path / "pair", num_pairs=1, height=80, width=120, max_disparity=12, seed=2)
    left, right = tmp_path / "pair" / "left" / "000000.png", tmp_path / "pair" / "right" / "000000.png"
    spec = _tiny_spec(tmp_path, drift_left=str(left), drift_right=str(right))
    assert run_action("export", str(spec), []) == 0
    drift = json.loads((tmp_path / "results" / "export" / "drift.json").read_text())
    assert drift["input"] == f"{left} + {right} at 64x96" and drift["accepted"]


def test_export_drift_pair_keys_are_checked(tmp_path, capsys):
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), [f"export.drift_left={tmp_path / 'l.png'}"]) == 2
    assert "export.drift_right: required with export.drift_left for a stereo network" in capsys.readouterr().err
    assert run_action("export", str(spec), [f"export.drift_left={tmp_path / 'l.png'}",
                                            f"export.drift_right={tmp_path / 'r.png'}"]) == 3
    assert f"export.drift_left: file not found: {tmp_path / 'l.png'}" in capsys.readouterr().err


def test_onnx_export_is_fp32(tmp_path, capsys):
    spec = _tiny_spec(tmp_path)
    assert run_action("export", str(spec), ["export.precision=fp16"]) == 2
    assert "export.precision: ONNX graphs are fp32" in capsys.readouterr().err
