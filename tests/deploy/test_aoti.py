"""depth_net export with format aoti (an AOTInductor .pt2 for the CPU here) and deploy evaluate/inference on it.

AOTInductor compiles C++ for the CPU (a C++ compiler is needed): minutes on a small shared CPU, so slow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_export import _tiny_spec

from skillbank.runtime.runner import run_action
from skillbank.runtime.status import read_status

NO_COMPILER = shutil.which("c++") is None and shutil.which("g++") is None


@pytest.mark.slow
@pytest.mark.skipif(NO_COMPILER, reason="AOTInductor needs a C++ compiler for CPU packages")
def test_aoti_export_then_deploy_evaluate_and_inference(tmp_path, capsys):
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo
    from skillbank.runtime.deploy.engines import AOTIEngine

    spec = _tiny_spec(tmp_path, format="aoti", on_cpu=True, batch_size=-1)
    assert run_action("export", str(spec), []) == 0
    results = tmp_path / "results" / "export"
    status = read_status(results / "status.json")[-1]
    package = results / "FastFoundationStereo.pt2"
    assert status["status"] == "SUCCESS" and status["categorical"]["aoti_file"] == str(package)
    assert status["categorical"]["optimized"] is True and status["categorical"]["dynamic_batch"] is True
    drift = json.loads((results / "drift.json").read_text())
    assert drift["accepted"] and drift["max_abs_px"] < 1e-3 and drift["reference"] == "PyTorch fp32 (cpu)"

    # the package: metadata, dynamic batch, the shape check
    engine = AOTIEngine(package)
    assert engine.metadata["depth_net.input_shape"] == "-1,3,64,96" and engine.metadata["depth_net.iters"] == "2"
    assert engine.device.type == "cpu" and engine.accepts((3, 3, 64, 96)) and not engine.accepts((1, 3, 96, 96))
    left = torch.randn(3, 3, 64, 96)
    assert engine(left, torch.roll(left, -2, dims=3)).shape == (3, 1, 64, 96)

    ann = generate_synthetic_stereo(tmp_path / "data", num_pairs=2, height=64, width=96, max_disparity=12, seed=1)
    sources = f"[{{dataset_name: GenericDataset, data_file: {ann}}}]"
    common = ["evaluate.checkpoint=null", "inference.checkpoint=null", f"dataset.test_dataset.data_sources={sources}",
              f"dataset.infer_dataset.data_sources={sources}", "dataset.test_dataset.workers=0",
              "dataset.infer_dataset.workers=0", "evaluate.num_gpus=0", "inference.num_gpus=0",
              "evaluate.batch_size=2"]
    assert run_action("evaluate", str(spec), [*common, f"evaluate.trt_engine={package}"]) == 0
    kpi = read_status(tmp_path / "results" / "evaluate" / "status.json")[-1]["kpi"]
    assert {"epe", "bp2", "ms_per_pair"} <= set(kpi) and not any(k.startswith("val/") for k in kpi)
    # the same pairs through the checkpoint: the package reproduces its metrics
    assert run_action("evaluate", str(spec), [*common, f"evaluate.checkpoint={tmp_path / 'm.pth'}",
                                              f"evaluate.results_dir={tmp_path / 'pyt'}"]) == 0
    pyt = read_status(tmp_path / "pyt" / "status.json")[-1]["kpi"]
    assert kpi["epe"] == pytest.approx(pyt["val/epe"], abs=1e-3)
    assert run_action("inference", str(spec), [*common, f"inference.trt_engine={package}"]) == 0
    assert len(list((tmp_path / "results" / "inference").glob("*.png"))) == 2

    # a size the static package cannot take: one line naming the keys
    big = generate_synthetic_stereo(tmp_path / "big", num_pairs=1, height=96, width=96, max_disparity=12, seed=1)
    capsys.readouterr()
    code = run_action("inference", str(spec), [*common[:1], "inference.checkpoint=null",
                                               f"dataset.infer_dataset.data_sources=[{{dataset_name: GenericDataset, "
                                               f"data_file: {big}}}]", "dataset.infer_dataset.workers=0",
                                               "inference.num_gpus=0", f"inference.trt_engine={package}"])
    assert code == 2
    assert "inference.input_height/inference.input_width: engine FastFoundationStereo.pt2 takes " \
           "[1..64, 3, 64, 96], got [1, 3, 96, 96]" in capsys.readouterr().err


def test_aoti_half_precision_needs_a_gpu(tmp_path, capsys):
    spec = _tiny_spec(tmp_path, format="aoti", on_cpu=True, precision="fp16")
    assert run_action("export", str(spec), []) == 2
    assert "export.precision: fp16 needs a GPU" in capsys.readouterr().err
    assert not list((tmp_path / "results" / "export").glob("*.pt2"))


def test_aoti_file_must_end_in_pt2(tmp_path, capsys):
    spec = _tiny_spec(tmp_path, format="aoti", on_cpu=True, aoti_file=str(tmp_path / "m.onnx"))
    assert run_action("export", str(spec), []) == 2
    assert "export.aoti_file:" in capsys.readouterr().err and not Path(tmp_path / "m.onnx").exists()
