"""TensorRT: the builder and the engine runner against a stand-in module with TensorRT 10's signatures
(:mod:`fake_tensorrt`), and against the real package where ``import tensorrt`` works."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import fake_tensorrt
import numpy as np
import pytest
import torch
import yaml

from skillbank.runtime.deploy.trt_build import BuildSettings, ShapeProfile, build_engine
from skillbank.runtime.runner import run_action
from skillbank.runtime.status import read_status
from skillbank.runtime.training.weights import build_model
from skillbank.specs import load_spec

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "spec.yaml"


@pytest.fixture
def trt(monkeypatch):
    """``import tensorrt`` gives the stand-in; its call log starts empty."""
    fake_tensorrt.CALLS.clear()
    monkeypatch.setattr(fake_tensorrt, "OUTPUT_OFFSET", 0.0)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt)
    return fake_tensorrt


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """A tiny FFS checkpoint, spec and its ONNX graphs: static 64x96 and dynamic batch + H/W."""
    tmp = tmp_path_factory.mktemp("trt")
    spec = yaml.safe_load(QUICKSTART.read_text())
    spec["results_dir"] = str(tmp / "results")
    spec["model"]["valid_iters"] = 2
    spec["export"] = {"checkpoint": str(tmp / "m.pth"), "input_height": 64, "input_width": 96}
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(0)
    model = build_model(load_spec(path))
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, tmp / "m.pth")
    files = {"spec": path}
    for name, extra in (("static", []), ("dynamic", ["export.batch_size=-1", "export.dynamic_hw=true"])):
        onnx_file = tmp / f"{name}.onnx"
        assert run_action("export", str(path), [f"export.onnx_file={onnx_file}", *extra]) == 0
        files[name] = onnx_file
    return files


def _calls(trt, prefix: str = "") -> list[str]:
    return [name for name, _, _ in trt.CALLS if name.startswith(prefix)]


def test_builder_calls_follow_tensorrt10(trt, exported, tmp_path):
    profiles = [ShapeProfile(n, (1, 3, 64, 64), (2, 3, 64, 96), (4, 3, 128, 160)) for n in ("left", "right")]
    cache = tmp_path / "timing.cache"
    settings = BuildSettings(precision="FP16", workspace_gib=2, profiles=profiles, timing_cache=cache,
                             layers_precision=["classifier:fp32"])
    engine = build_engine(exported["dynamic"], tmp_path / "out" / "model.engine", settings)

    assert _calls(trt) == [
        "Builder", "Builder.create_network", "OnnxParser", "OnnxParser.parse", "Builder.create_builder_config",
        "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.set_flag", "Builder.create_optimization_profile",
        "IOptimizationProfile.set_shape", "IOptimizationProfile.set_shape", "IBuilderConfig.add_optimization_profile",
        "IBuilderConfig.set_flag", "IBuilderConfig.create_timing_cache", "IBuilderConfig.set_timing_cache",
        "Builder.build_serialized_network", "IBuilderConfig.get_timing_cache", "ITimingCache.serialize",
    ]
    args = {name: a for name, a, _ in trt.CALLS}
    assert args["Builder.create_network"] == (0,)          # explicit batch is implicit in TensorRT 10
    assert args["IBuilderConfig.set_memory_pool_limit"] == (trt.MemoryPoolType.WORKSPACE, 2 << 30)
    assert args["IBuilderConfig.create_timing_cache"] == (b"",)  # no cache file yet: an empty one
    assert args["IBuilderConfig.set_timing_cache"][1] is False
    header = trt.read_header(engine.read_bytes())
    assert header["flags"] == ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    assert header["workspace"] == 2 << 30
    assert header["profiles"] == [{n: [[1, 3, 64, 64], [2, 3, 64, 96], [4, 3, 128, 160]] for n in ("left", "right")}]
    assert header["layers"] == {"/model/classifier/Conv": "float32"}
    # the timing cache is written after the build and read by the next one
    assert json.loads(cache.read_bytes()) == {"built": 1}
    trt.CALLS.clear()
    build_engine(exported["dynamic"], tmp_path / "out" / "again.engine", settings)
    assert dict((n, a) for n, a, _ in trt.CALLS)["IBuilderConfig.create_timing_cache"] == (b'{"built": 1}',)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["again.engine", "model.engine"]  # no temp left


@pytest.mark.parametrize(("data_type", "flags"), [("FP32", []), ("FP16", ["FP16"]), ("BF16", ["BF16"])])
def test_precision_flags(trt, exported, tmp_path, data_type, flags):
    engine = build_engine(exported["static"], tmp_path / "m.engine", BuildSettings(precision=data_type))
    assert trt.read_header(engine.read_bytes())["flags"] == flags
    assert "Builder.create_optimization_profile" not in _calls(trt)   # a static graph needs no profile
    assert "IBuilderConfig.create_timing_cache" not in _calls(trt)


def test_unparsable_graph_fails_with_the_parser_errors(trt, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(RuntimeError, match="TensorRT could not parse the ONNX graph: stand-in: not an ONNX model"):
        build_engine(bad, tmp_path / "m.engine", BuildSettings())
    assert not (tmp_path / "m.engine").exists()


def test_standin_rejects_signatures_of_other_versions(trt):
    """The stand-in is strict: a TensorRT 8 style call fails here as it would on TensorRT 10."""
    config = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.set_max_workspace_size(1 << 30)
    with pytest.raises(TypeError):
        config.set_memory_pool_limit("WORKSPACE", 1 << 30)
    with pytest.raises(AttributeError):
        trt.Builder(trt.Logger()).build_engine  # noqa: B018


def _common(ann: Path) -> list[str]:
    sources = f"[{{dataset_name: GenericDataset, data_file: {ann}}}]"
    return ["evaluate.checkpoint=null", "inference.checkpoint=null", f"dataset.test_dataset.data_sources={sources}",
            f"dataset.infer_dataset.data_sources={sources}", "dataset.test_dataset.workers=0",
            "dataset.infer_dataset.workers=0", "evaluate.num_gpus=0", "inference.num_gpus=0"]


def test_gen_trt_engine_builds_checks_drift_and_the_engine_evaluates(trt, exported, tmp_path, capsys):
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    spec = str(exported["spec"])
    out = tmp_path / "engine"
    keys = [f"gen_trt_engine.onnx_file={exported['dynamic']}", f"gen_trt_engine.results_dir={out}",
            "gen_trt_engine.min_height=64", "gen_trt_engine.opt_height=64", "gen_trt_engine.max_height=128",
            "gen_trt_engine.min_width=64", "gen_trt_engine.opt_width=96", "gen_trt_engine.max_width=128",
            "gen_trt_engine.tensorrt.max_batch_size=2", f"gen_trt_engine.timing_cache={tmp_path / 'tc.bin'}"]
    assert run_action("gen_trt_engine", spec, keys) == 0
    status = read_status(out / "status.json")
    assert status[-1]["status"] == "SUCCESS" and status[-1]["kpi"]["drift_max_px"] < 1e-4
    drift = json.loads((out / "drift.json").read_text())
    assert drift["accepted"] and drift["artefact"] == str(out / "model.engine")
    assert drift["input"] == "synthetic pair (seed 0) at 64x96"
    names = sorted(p.name for p in out.iterdir())
    assert "model.engine" in names and not [n for n in names if n.startswith(".") or "rejected" in n], names
    assert (tmp_path / "tc.bin").is_file()

    # deploy evaluate through the engine runner (host buffers, stand-in execution)
    ann = generate_synthetic_stereo(tmp_path / "data", num_pairs=2, height=64, width=96, max_disparity=12, seed=1)
    engine = out / "model.engine"
    assert run_action("evaluate", spec, [*_common(ann), f"evaluate.trt_engine={engine}"]) == 0
    kpi = read_status(Path(yaml.safe_load(exported["spec"].read_text())["results_dir"]) / "evaluate" /
                      "status.json")[-1]["kpi"]
    assert {"epe", "bp2", "ms_per_pair"} <= set(kpi)
    assert "IExecutionContext.execute_async_v3" in _calls(trt)
    # a size outside the profile names the keys
    big = generate_synthetic_stereo(tmp_path / "big", num_pairs=1, height=192, width=96, max_disparity=12, seed=1)
    capsys.readouterr()
    assert run_action("evaluate", spec, [*_common(big), f"evaluate.trt_engine={engine}"]) == 2
    assert "evaluate.input_height/evaluate.input_width: engine model.engine takes [1..2, 3, 64..128, 64..128], " \
           "got [1, 3, 192, 96]" in capsys.readouterr().err


def test_gen_trt_engine_rejects_a_drifting_engine(trt, exported, tmp_path, capsys):
    trt.OUTPUT_OFFSET = 0.5
    out = tmp_path / "engine"
    code = run_action("gen_trt_engine", str(exported["spec"]),
                      [f"gen_trt_engine.onnx_file={exported['static']}", f"gen_trt_engine.results_dir={out}"])
    assert code == 1
    err = capsys.readouterr().err
    assert "gen_trt_engine.max_drift_px: model.engine differs from the ONNX graph under onnxruntime (fp32) by up " \
           "to 0.5 px (limit 0.05); kept as model.rejected.engine" in err
    assert not (out / "model.engine").exists() and (out / "model.rejected.engine").is_file()
    drift = json.loads((out / "drift.json").read_text())
    assert drift["accepted"] is False and drift["bp2_pct"] == 0.0 and drift["max_abs_px"] == pytest.approx(0.5)


def test_wrong_engine_kind_names_the_key(exported, tmp_path, capsys):
    from skillbank.runtime.data.synthetic import generate_synthetic_stereo

    ann = generate_synthetic_stereo(tmp_path / "data", num_pairs=1, height=64, width=96, max_disparity=12, seed=1)
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\0" * 16)
    assert run_action("evaluate", str(exported["spec"]), [*_common(ann), f"evaluate.trt_engine={weights}"]) == 2
    assert "evaluate.trt_engine: model.bin: not an engine file (expected .pt2, .onnx, .engine, .plan, .trt)" in (
        capsys.readouterr().err)
    fake_pt2 = tmp_path / "model.pt2"
    fake_pt2.write_bytes(b"not a zip")
    assert run_action("inference", str(exported["spec"]), [*_common(ann), f"inference.trt_engine={fake_pt2}"]) == 2
    assert f"inference.trt_engine: cannot load {fake_pt2}: not an AOTInductor package" in capsys.readouterr().err


@pytest.mark.gpu
def test_real_tensorrt_builds_and_runs(exported, tmp_path):
    """The real package, where it is installed (a CUDA machine with NVIDIA's wheels)."""
    try:
        real = importlib.import_module("tensorrt")
    except ImportError as exc:
        pytest.skip(f"tensorrt is not installed ({exc}); the stand-in tests above cover the calls")
    if not torch.cuda.is_available():
        pytest.skip("tensorrt needs a CUDA GPU")
    from skillbank.runtime.deploy.engines import OnnxRuntimeEngine, TensorRTEngine

    engine = build_engine(exported["static"], tmp_path / "m.engine", BuildSettings(precision="FP32"))
    left = torch.randn(1, 3, 64, 96)
    right = torch.roll(left, -3, dims=3)
    out = TensorRTEngine(engine)(left, right).cpu().numpy()
    ref = OnnxRuntimeEngine(exported["static"])(left, right).numpy()
    assert np.abs(out - ref).max() < 1e-2, real.__version__


def test_bad_layer_precision_rule_names_the_key(trt, exported, tmp_path, capsys):
    out = tmp_path / "engine"
    code = run_action("gen_trt_engine", str(exported["spec"]),
                      [f"gen_trt_engine.onnx_file={exported['static']}", f"gen_trt_engine.results_dir={out}",
                       "gen_trt_engine.tensorrt.layers_precision=['classifier:int4']"])
    assert code == 2
    assert "gen_trt_engine.tensorrt.layers_precision: 'classifier:int4': expected 'layer_name:fp32'" in (
        capsys.readouterr().err)
    assert not [p for p in out.iterdir() if "engine" in p.name]
