"""FFS bp2 deploy paths on one GPU: eager fp32, the default ``depth_net inference`` path, the ``.pt2`` engine.

480x736, batch 1, 8 refinement iterations, random weights (BatchNorm statistics randomised so folding is
not a no-op), a synthetic pair rendered at that size. Every path's output is compared with eager fp32
on the same pair (max / mean |d| px, bp2 = % of pixels more than 2 px apart).

* ``eager_fp32``: the network as built, fp32, TF32 off; median of ``--runs`` calls (CUDA events).
* ``inference_default``: ``depth_net inference`` through the action with no fast-path keys on ``--pairs``
  pairs: ``ms_per_pair`` is the action's own kpi (median steady latency per pair: host clock around the
  CUDA-graph replay, input copy and output copy included); the action's wall time, and with
  ``--second-run`` a second run's (the compile cache warm).
* ``aoti_fp16``: ``depth_net export`` with ``format: aoti`` (fp16, folded BN, padded widths, whole graph
  compiled by AOTInductor; its drift.json), then the package: plain calls (``aoti_fp16``) and the same
  runner replayed as a CUDA graph (``aoti_fp16_cuda_graph``: no host work per pair). ``--paths
  aoti_autotune`` builds it with Inductor max-autotune (``aoti_fp16_autotune[_cuda_graph]``; minutes).

    python benchmarks/deploy_paths.py --out benchmarks/results/deploy_paths_h200.json

The report is rewritten after every path, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cuda_timing import time_cuda  # noqa: E402

HEIGHT, WIDTH, ITERS = 480, 736, 8


def build_checkpoint(path: Path) -> dict[str, Any]:
    """bp2 FFS, random weights, randomised BatchNorm statistics; saved like train saves. Returns the model spec."""
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(model_type="FastFoundationStereo", valid_iters=ITERS)
    model = build_network(config)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, path)
    return config.model_dump(mode="json", exclude_none=True)


def drift(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    d = np.abs(out.astype(np.float64).reshape(ref.shape) - ref.astype(np.float64))
    return {"max_abs_diff_vs_fp32_px": float(d.max()), "mean_abs_diff_vs_fp32_px": float(d.mean()),
            "bp2_vs_fp32_pct": float((d > 2).mean() * 100)}


def timed(fn, runs: int, warmup: int) -> dict[str, float]:  # noqa: ANN001
    times = time_cuda(fn, runs, warmup)
    s = sorted(times)
    return {"median_ms": statistics.median(times), "p10_ms": s[len(s) // 10], "p90_ms": s[9 * len(s) // 10],
            "runs": runs}


def capture_runner(package: Path, left: torch.Tensor, right: torch.Tensor):  # noqa: ANN201
    """A CUDA graph of one call of a freshly loaded AOTInductor runner: (graph, its static output, the runner
    to keep alive with the graph).

    The runner's container queries its previous run's CUDA event before each run (``cudaEventQuery``),
    which a default ("global") capture forbids: the capture is "relaxed". Afterwards that runner's event
    lives in the graph and the runner cannot be called directly again, so it gets its own instance."""
    from skillbank.runtime.deploy.engines import AOTIEngine

    engine = AOTIEngine(package, torch.device("cuda"))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            engine(left, right)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="relaxed"):
        out = engine(left, right)
    return graph, out, engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("deploy_paths.json"))
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--pairs", type=int, default=16, help="pairs the inference action runs")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--paths", default="eager,inference,aoti",
                        help="comma list of eager, inference, aoti, aoti_autotune (max-autotune build: minutes)")
    parser.add_argument("--second-run", action="store_true", help="run the inference action twice (warm cache)")
    args = parser.parse_args()

    from skillbank.runtime.data.synthetic import generate_synthetic_stereo
    from skillbank.runtime.deploy.drift import normalise
    from skillbank.runtime.runner import run_action
    from skillbank.runtime.status import read_status

    paths = set(args.paths.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="deploy_paths_"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "bp2_random.pth"
    model_spec = build_checkpoint(ckpt)
    ann = generate_synthetic_stereo(work / "data", num_pairs=args.pairs, height=HEIGHT, width=WIDTH,
                                    max_disparity=150, seed=0)
    from skillbank.runtime.data.io import read_image_rgb

    left_png, right_png = work / "data" / "left" / "000000.png", work / "data" / "right" / "000000.png"
    left = torch.from_numpy(normalise(read_image_rgb(left_png))).cuda()
    right = torch.from_numpy(normalise(read_image_rgb(right_png))).cuda()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    report: dict[str, Any] = {
        "benchmark": "FFS bp2 deploy paths, batch 1, random weights, synthetic pair",
        "input": [1, 3, HEIGHT, WIDTH], "iters": ITERS, "device": torch.cuda.get_device_name(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": [],
    }

    def save(entry: dict[str, Any]) -> None:
        report["results"].append(entry)
        ok = [r for r in report["results"] if "median_ms" in r or "ms_per_pair" in r]
        if ok:
            best = min(ok, key=lambda r: r.get("median_ms", r.get("ms_per_pair")))
            report["best"] = {"path": best["path"], "ms": best.get("median_ms", best.get("ms_per_pair"))}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(json.dumps({k: v for k, v in entry.items() if not isinstance(v, dict)}), flush=True)

    # eager fp32: the reference of every drift
    from skillbank.runtime.networks.factory import build_network
    from skillbank.runtime.training.weights import load_weights
    from skillbank.specs import ModelConfig

    net = build_network(ModelConfig(**model_spec))
    load_weights(net, ckpt, "checkpoint")
    net = net.cuda().eval()

    def eager(model: torch.nn.Module = net) -> torch.Tensor:
        with torch.inference_mode():
            return model(left, right, iters=ITERS, test_mode=True)

    ref = eager().float().cpu().numpy()        # cuDNN's default algorithms, as the export's reference runs
    torch.backends.cudnn.benchmark = True      # eager timed at its best; the action sets what it uses itself
    if "eager" in paths:
        torch.cuda.reset_peak_memory_stats()
        save({"path": "eager_fp32", **timed(eager, args.runs, args.warmup),
              "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9, **drift(ref, ref)})
    del net, eager
    torch.backends.cudnn.benchmark = False     # the actions below run as a CLI run does
    torch.cuda.empty_cache()

    if "inference" in paths:
        import yaml

        from skillbank.runtime.data.io import read_pfm

        spec = {"results_dir": str(work / "results"), "model": model_spec,
                "dataset": {"infer_dataset": {"data_sources": [{"dataset_name": "GenericDataset",
                                                                "data_file": str(ann)}], "workers": 2}},
                "inference": {"checkpoint": str(ckpt), "save_raw_pfm": True}}
        (work / "inference.yaml").write_text(yaml.safe_dump(spec))
        for run in (["first", "second"] if args.second_run else ["first"]):
            out_dir = work / f"inference_{run}"
            t0 = time.perf_counter()
            try:
                code = run_action("inference", str(work / "inference.yaml"), [f"inference.results_dir={out_dir}"])
                wall = time.perf_counter() - t0
                last = read_status(out_dir / "status.json")[-1]
                entry = {"path": "inference_default" + ("" if run == "first" else "_second_run"), "exit": code,
                         "ms_per_pair": last.get("kpi", {}).get("ms_per_pair"), "action_wall_s": wall,
                         "pairs": args.pairs, "fast_path": last.get("categorical", {}).get("path"),
                         "message": last.get("message")}
                log_file = out_dir / "depth_net.log"
                if log_file.is_file():  # the compile cost of the first pair and the cache state, as logged
                    entry["log"] = [line.strip() for line in log_file.read_text().splitlines()
                                    if "first pair at" in line or "compile cache" in line or "fast path" in line]
                if code == 0:
                    entry.update(drift(read_pfm(out_dir / "000000.pfm"), ref))
            except Exception as exc:  # report and go on to the next path
                entry = {"path": f"inference_default_{run}", "error": f"{type(exc).__name__}: {exc}"[:500]}
            save(entry)
        torch.cuda.empty_cache()

    if paths & {"aoti", "aoti_autotune"}:
        import yaml

        from skillbank.runtime.deploy.engines import AOTIEngine

        builds = [b for b in (("aoti_fp16", False), ("aoti_fp16_autotune", True)) if b[0].replace("_fp16", "") in paths]
        for name, autotune in builds:
            out_dir = work / name
            spec = {"results_dir": str(work / "results"), "model": model_spec,
                    "export": {"checkpoint": str(ckpt), "format": "aoti", "precision": "fp16",
                               "input_height": HEIGHT, "input_width": WIDTH, "valid_iters": ITERS,
                               "autotune": autotune, "results_dir": str(out_dir),
                               "drift_left": str(left_png), "drift_right": str(right_png)}}
            (work / f"{name}.yaml").write_text(yaml.safe_dump(spec))
            t0 = time.perf_counter()
            try:
                code = run_action("export", str(work / f"{name}.yaml"), [])
                build_s = time.perf_counter() - t0
                last = read_status(out_dir / "status.json")[-1]
                if code != 0:
                    save({"path": name, "error": last.get("message"), "build_s": build_s})
                    continue
                export_drift = json.loads((out_dir / "drift.json").read_text())
                torch.backends.cudnn.benchmark = True   # as evaluate/inference run a CUDA package
                engine = AOTIEngine(Path(last["categorical"]["aoti_file"]), torch.device("cuda"))
                torch.cuda.reset_peak_memory_stats()
                out = engine(left, right).float().cpu().numpy()
                save({"path": name, **timed(lambda e=engine: e(left, right), args.runs, args.warmup),
                      "build_s": build_s, "export_kpi": last.get("kpi"), "drift_json": export_drift,
                      "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9, **drift(out, ref)})
                try:
                    graph, static_out, runner = capture_runner(Path(last["categorical"]["aoti_file"]), left, right)
                    graph.replay()
                    torch.cuda.synchronize()
                    graphed = static_out.float().cpu().numpy()
                    save({"path": f"{name}_cuda_graph", **timed(graph.replay, args.runs, args.warmup),
                          **drift(graphed, ref)})
                    del graph, runner
                except Exception as exc:
                    save({"path": f"{name}_cuda_graph", "error": f"{type(exc).__name__}: {exc}"[:500]})
                del engine
                torch.cuda.empty_cache()
            except Exception as exc:
                save({"path": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
    print(json.dumps(report.get("best")))


if __name__ == "__main__":
    main()
