"""Multi-GPU DDP scaling of FFS bp2 training: 1 vs N GPUs, bf16, 320x736 crops, batch 2 per GPU.

Two measurements, written to one JSON:

1. ``step``: the training step of ``train_throughput.py`` (forward with 22 iterations, sequence loss,
   backward, clipping, AdamW) under ``torch.nn.parallel.DistributedDataParallel``, one process per GPU
   (torchrun, NCCL), timed with CUDA events on rank 0 (median over ``--steps`` after ``--warmup``);
   pairs/s = world size x batch / step time; scaling efficiency = pairs/s(N) / (N x pairs/s(1)); peak
   memory per GPU.
2. ``depth_net``: the real command, ``depth_net train`` with ``train.num_gpus`` 1 and N on the same
   synthetic set (rendered by ``depth_net convert``), 2 epochs; per-epoch train_loss (status.json, mean
   across ranks), time per epoch, and the checkpoint files written (a DDP run writes each once).

    python benchmarks/ddp_scaling.py --gpus 2 --out benchmarks/results/ddp_scaling_h100x2.json

NVLink multicast stays off (NCCL_NVLS_ENABLE=0), as the GPU machines require.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def worker(args: argparse.Namespace) -> None:
    """One DDP rank (run under torchrun)."""
    import torch
    import torch.distributed as dist

    sys.path.insert(0, str(HERE))
    from train_throughput import build_model, make_batch  # noqa: E402

    from skillbank.runtime.training.loss import stereo_sequence_loss
    from skillbank.runtime.training.schedule import build_optimizer
    from skillbank.specs import OptimConfig

    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.backends.cudnn.benchmark = True
    model = torch.nn.parallel.DistributedDataParallel(build_model(), device_ids=[torch.cuda.current_device()])
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-5))
    left, right, gt, valid = make_batch(args.batch, args.height, args.width)
    left = left + 0.01 * rank  # each rank its own data

    def step() -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            init_disp, preds = model(left, right, iters=args.iters)
            loss, _ = stereo_sequence_loss(init_disp, preds, gt, valid, max_disparity=192)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    # weights must be identical on every rank after DDP steps
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    peak = torch.tensor([torch.cuda.max_memory_allocated() / 1e9], device="cuda")
    peaks = [torch.zeros_like(peak) for _ in range(world)]
    dist.all_gather(peaks, peak)
    if rank == 0:
        median = statistics.median(times)
        result = {
            "world_size": world,
            "median_ms_per_step": round(median, 2),
            "pairs_per_s": round(world * args.batch * 1000.0 / median, 2),
            "peak_mem_gb_per_gpu": [round(float(p), 3) for p in peaks],
            "max_weight_diff_across_ranks": float(max((g - gathered[0]).abs().max() for g in gathered)),
            "steps_timed": len(times),
        }
        Path(args.worker_out).write_text(json.dumps(result))
    dist.destroy_process_group()


def run_step_benchmark(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    out = tmp / f"step_{n}.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}", "--standalone", __file__,
           "--worker", "--worker-out", str(out), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def run_depth_net(n: int, spec: Path, tmp: Path) -> dict[str, Any]:
    results = tmp / f"train_{n}gpu"
    t0 = time.perf_counter()
    proc = subprocess.run(["depth_net", "train", "-e", str(spec), f"train.num_gpus={n}",
                           f"train.gpu_ids={list(range(n))}", f"train.results_dir={results}"])
    wall = time.perf_counter() - t0
    events = [json.loads(line) for line in (results / "status.json").read_text().splitlines() if line.strip()]
    epochs = [e for e in events if e["status"] == "RUNNING" and "epoch" in (e.get("categorical") or {})]
    return {
        "num_gpus": n,
        "exit_code": proc.returncode,
        "final_status": events[-1]["status"],
        "wall_s": round(wall, 1),
        "epochs": [{"epoch": e["categorical"]["epoch"], "train_loss": e["kpi"].get("train_loss"),
                    "time_per_epoch": e["categorical"].get("time_per_epoch")} for e in epochs],
        "checkpoints": sorted(p.name for p in results.glob("*.pth")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("ddp_scaling.json"))
    parser.add_argument("--tmp", type=Path, default=Path("/tmp/ddp_scaling"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=736)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=22)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--skip-depth-net", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    os.environ.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")
    if args.worker:
        worker(args)
        return
    import torch

    args.tmp.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "FFS bp2 DDP training scaling, bf16 autocast, batch 2 per GPU, 22 iterations, 320x736",
        "device": torch.cuda.get_device_name(),
        "gpus_visible": torch.cuda.device_count(),
        "torch": torch.__version__,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "step": [run_step_benchmark(n, args, args.tmp) for n in (1, args.gpus)],
    }
    one, many = report["step"]
    report["scaling_efficiency"] = round(many["pairs_per_s"] / (args.gpus * one["pairs_per_s"]), 3)
    print(json.dumps(report), flush=True)
    if not args.skip_depth_net:
        spec = args.tmp / "spec.yaml"
        import yaml

        spec.write_text(yaml.safe_dump({
            "results_dir": "results",
            "convert": {"mode": "synthetic", "num_pairs": args.pairs, "height": 384, "width": 768,
                        "max_disparity": 96, "seed": 3},
            "model": {"model_type": "FastFoundationStereo"},
            "dataset": {"train_dataset": {
                "data_sources": [{"dataset_name": "GenericDataset", "data_file": "results/convert/test.txt"}],
                "batch_size": args.batch, "workers": 6, "augmentation": {"crop_size": [320, 736]}}},
            "train": {"num_epochs": 2, "precision": "bf16", "seed": 0, "log_every_n_steps": 5,
                      "checkpoint_interval": 1,
                      "optim": {"lr": 2e-4, "lr_scheduler": "LambdaLR", "warmup_steps": 10}},
        }))
        subprocess.run(["depth_net", "convert", "-e", str(spec)], check=True)
        report["depth_net"] = [run_depth_net(n, spec, args.tmp) for n in (1, args.gpus)]
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
