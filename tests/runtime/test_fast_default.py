"""evaluate/inference take the GPU fast path by default: the decision, the compile cache, the timing (CPU),
and on a GPU (``-m gpu``) ``depth_net inference`` with no extra keys."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from runtime_helpers import read_status, split, tiny_ffs_model, write_spec

from skillbank.runtime import compile_cache
from skillbank.runtime.errors import ConfigurationError
from skillbank.runtime.prediction.fast_path import Predictor, plan_fast_path
from skillbank.runtime.runner import run_action
from skillbank.specs import load_spec

FFS = "FastFoundationStereo"


def _section(**keys) -> SimpleNamespace:
    return SimpleNamespace(**{"optimize": None, "precision": None, "compile": None, "cuda_graph": None, **keys})


def _plan(device: str = "cuda", model: str = FFS, **keys):
    return plan_fast_path(_section(**keys), action="inference", device_type=device, model_type=model)


def test_gpu_default_is_the_whole_fast_path():
    plan = _plan()
    assert (plan.optimize, plan.precision, plan.compile, plan.cuda_graph, plan.default) == (True, "fp16", True, True,
                                                                                            True)
    assert plan.describe() == ("fast path: folded BN + padded widths, fp16, compiled regions, "
                               "CUDA graph per shape")


def test_optimize_false_is_eager_fp32_on_a_gpu():
    plan = _plan(optimize=False)
    assert (plan.optimize, plan.precision, plan.compile, plan.cuda_graph) == (False, "fp32", False, False)
    assert plan.describe() == "eager fp32" and not plan.transforms


def test_each_key_overrides_the_default():
    plan = _plan(precision="bf16", cuda_graph=False)
    assert (plan.optimize, plan.precision, plan.compile, plan.cuda_graph, plan.default) == (True, "bf16", True, False,
                                                                                            True)
    plan = _plan(optimize=False, compile=True)           # off, but one switch asked for
    assert (plan.optimize, plan.precision, plan.compile, plan.cuda_graph) == (False, "fp32", True, False)
    assert _plan(optimize=True).default is False          # set by the user: the same path, not "the default"


def test_cpu_stays_eager():
    plan = _plan("cpu")
    assert (plan.optimize, plan.precision, plan.compile, plan.cuda_graph) == (False, "fp32", False, False)
    plan = _plan("cpu", optimize=True)                    # exact rewrites, still eager
    assert (plan.optimize, plan.precision, plan.compile, plan.cuda_graph) == (True, "fp32", False, False)


def test_other_networks_run_eager_by_default_and_say_why():
    plan = _plan(model="FoundationStereo")
    assert not plan.transforms and not plan.cuda_graph
    assert plan.note == "the GPU fast path is built for FastFoundationStereo; FoundationStereo runs eager"


def test_cuda_graph_on_a_cpu_names_the_key():
    with pytest.raises(ConfigurationError, match=r"^Configuration error: inference.cuda_graph: CUDA graphs need a GPU"):
        _plan("cpu", cuda_graph=True)


def test_cache_folder_is_per_user_and_stable(tmp_path):
    assert compile_cache.cache_root({"DEPTH_NET_CACHE_DIR": str(tmp_path / "c")}) == tmp_path / "c"
    assert compile_cache.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "skillbank"
    assert compile_cache.cache_root({}) == Path.home() / ".cache" / "skillbank"
    env = {"DEPTH_NET_CACHE_DIR": str(tmp_path / "c")}
    assert compile_cache.configure_inductor_cache(env) == tmp_path / "c" / "inductor"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "c" / "inductor") and (tmp_path / "c" / "inductor").is_dir()
    env = {"TORCHINDUCTOR_CACHE_DIR": "/somewhere/else", "DEPTH_NET_CACHE_DIR": str(tmp_path)}
    assert compile_cache.configure_inductor_cache(env) == Path("/somewhere/else")   # the user's choice stays


def test_torchs_own_default_in_the_environment_counts_as_unset(tmp_path):
    """Importing torch._dynamo writes torch's default folder into the environment; it must not win."""
    import torch._dynamo  # noqa: F401
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    env = {"TORCHINDUCTOR_CACHE_DIR": os.path.abspath(default_cache_dir()), "DEPTH_NET_CACHE_DIR": str(tmp_path)}
    assert compile_cache.configure_inductor_cache(env) == tmp_path / "inductor"


def test_cache_key_changes_with_what_changes_the_compiled_code():
    model = load_spec(None, data={"model": tiny_ffs_model()}).model.model_dump(mode="json")
    versions = {"torch": "2.11.0", "cuda": "13.0", "gpu": "H200"}

    def key(**change):
        args = {"precision": "fp16", "shapes": [(1, 3, 480, 736)], "device": "cuda", "versions": versions, **change}
        return compile_cache.cache_key(args.pop("model", model), **args)

    base = key()
    assert base == key() and base.startswith("FastFoundationStereo-fp16-1x3x480x736-")
    others = [key(precision="bf16"), key(shapes=[(1, 3, 320, 736)]), key(device="cpu"),
              key(versions={**versions, "torch": "2.13.0"}), key(model={**model, "gru_hidden": 16})]
    assert len({base, *others}) == 6


def test_mega_cache_round_trip_is_atomic_and_tolerates_garbage(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DEPTH_NET_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", lambda: (b"artefacts", None))
    loaded = []
    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", lambda blob: loaded.append(blob))
    assert compile_cache.load_mega_cache("k") is False
    assert compile_cache.save_mega_cache("k") == tmp_path / "mega" / "k.bin"
    assert compile_cache.load_mega_cache("k") is True and loaded == [b"artefacts"]

    def broken(blob):
        raise RuntimeError("version mismatch")

    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", broken)
    with caplog.at_level(logging.WARNING, logger="depth_net"):
        assert compile_cache.load_mega_cache("k") is False
    assert "not used (version mismatch)" in caplog.text


def test_predictor_times_steady_calls_and_hooks_each_new_shape():
    calls, seen, saved = [], [], []

    def model(left, right, iters=None, test_mode=True):
        calls.append(tuple(left.shape))
        return left[:, :1] * 0 + iters

    pred = Predictor(model, device=torch.device("cpu"), warm_first_call=True, on_new_shape=seen.append,
                     after_first_call=saved.append)
    a, b = torch.zeros(2, 3, 8, 8), torch.zeros(1, 3, 16, 8)
    assert pred.ms_per_pair() is None
    out = pred(a, a, iters=3, test_mode=True)
    assert out.shape == (2, 1, 8, 8) and float(out.max()) == 3
    pred(a, a, iters=3, test_mode=True)
    pred(b, b, iters=3, test_mode=True)
    # a first call per shape (compiles), one more timed call after it, then steady calls
    assert calls == [(2, 3, 8, 8)] * 3 + [(1, 3, 16, 8)] * 2
    assert seen == saved == [(2, 3, 8, 8), (1, 3, 16, 8)]
    assert len(pred.steady_ms_per_pair) == 3 and pred.ms_per_pair() > 0
    assert len(pred.first_call_s) == 2 and not pred.graphs        # no graphs on a CPU


def test_cpu_inference_is_eager_and_reports_ms_per_pair(tmp_path, synthetic_pairs, tiny_spec):
    from skillbank.runtime.networks.factory import build_network

    torch.manual_seed(0)
    net = build_network(load_spec(None, data={"model": tiny_ffs_model()}).model)
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "m.pth")
    spec = write_spec(tmp_path / "spec.yaml", {
        "results_dir": str(tmp_path / "results"), "model": tiny_ffs_model(),
        "dataset": {"infer_dataset": split(synthetic_pairs, train=False)},
        "inference": {"checkpoint": str(tmp_path / "m.pth"), "num_gpus": 0},
    })
    assert run_action("inference", str(spec), []) == 0
    last = read_status(tmp_path / "results" / "inference")[-1]
    assert last["categorical"]["path"] == "eager fp32"
    assert last["kpi"]["images"] == 4 and last["kpi"]["ms_per_pair"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_inference_with_no_extra_keys_runs_the_fast_path(tmp_path, synthetic_pairs, caplog, monkeypatch):
    """``depth_net inference`` with only a checkpoint and data: folded/padded fp16 network, compiled regions,
    a CUDA graph per shape, ms_per_pair in the kpi; a second run finds the compile cache warm; the
    result matches ``optimize: false`` (eager fp32)."""
    import time

    from skillbank.runtime.data.io import read_pfm
    from skillbank.runtime.networks.factory import build_network

    monkeypatch.setenv("DEPTH_NET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    torch.manual_seed(0)
    net = build_network(load_spec(None, data={"model": tiny_ffs_model()}).model)
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "m.pth")

    def run(name: str, **inference) -> tuple[dict, float]:
        spec = write_spec(tmp_path / f"{name}.yaml", {
            "results_dir": str(tmp_path / name), "model": tiny_ffs_model(),
            "dataset": {"infer_dataset": split(synthetic_pairs, train=False)},
            "inference": {"checkpoint": str(tmp_path / "m.pth"), "save_raw_pfm": True, **inference},
        })
        t0 = time.perf_counter()
        assert run_action("inference", str(spec), []) == 0
        return read_status(tmp_path / name / "inference")[-1], time.perf_counter() - t0

    with caplog.at_level(logging.INFO, logger="depth_net"):
        first, first_s = run("fast")
    assert first["categorical"]["path"].startswith("fast path: folded BN + padded widths, fp16, compiled regions, "
                                                   "CUDA graph per shape")
    assert first["kpi"]["ms_per_pair"] > 0 and first["kpi"]["images"] == 4
    assert "first pair at 80x112" in caplog.text and "CUDA graph capture" in caplog.text
    assert "compile cache cold" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="depth_net"):
        second, second_s = run("again")
    assert "compile cache warm" in caplog.text
    assert list((tmp_path / "cache" / "mega").glob("*.bin"))
    eager, _ = run("eager", optimize=False)
    assert eager["categorical"]["path"] == "eager fp32"
    for pfm in (tmp_path / "eager" / "inference").glob("*.pfm"):   # fp16 vs fp32 of a random tiny network
        diff = abs(read_pfm(tmp_path / "fast" / "inference" / pfm.name) - read_pfm(pfm))
        assert diff.max() < 0.5 and diff.mean() < 0.05, (pfm.name, float(diff.max()), float(diff.mean()))
    print(f"fast path: first run {first_s:.1f} s, second run {second_s:.1f} s, "
          f"{first['kpi']['ms_per_pair']:.2f} / {eager['kpi']['ms_per_pair']:.2f} ms per pair (fast / eager)")
