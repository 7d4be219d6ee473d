"""A short real AutoML study on the GPU: FFS bp2 on synthetic pairs, a few trials, its summary kept.

1. ``depth_net convert`` (synthetic mode) renders ``--pairs`` stereo pairs with exact disparity and splits
   them into train.txt / val.txt.
2. ``skillbank.automl.runner.run``: ``--algorithm`` (asha) over the fast-stereo skill's space (lr,
   lr_decay), ``--trials`` trials of up to ``--max-epochs`` epochs, one at a time on the GPU, each a real
   ``depth_net train`` (bf16, crop 320x736, batch 2, train.compile + cuda_graph + channels_last +
   pad_channels) started through benchmarks/automl_step_timer.py, which records every training step's end.
3. Every trial gets the same ``TORCHINDUCTOR_CACHE_DIR`` (the runner's default: <results_dir>/automl/
   inductor_cache). Per trial the JSON gives the time from process start to the first fast training step
   and the cache files the trial added: the first trial compiles (cold cache), the later ones should load
   the kernels (few or no new files, a much shorter time to the first fast step).

    python benchmarks/automl_gpu_study.py --work /tmp/automl_gpu --out benchmarks/results/automl_gpu_study_h200.json

The study's own summary.json is copied into the result (``summary``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pairs", type=int, default=48)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--max-epochs", type=int, default=2)
    p.add_argument("--algorithm", default="asha")
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny widths, 64x96 pairs, no GPU switches")
    p.add_argument("overrides", nargs="*", help="extra spec overrides for the trials, e.g. train.compile=false")
    args = p.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    size = (64, 96) if args.tiny else (320, 736)
    convert = {
        "results_dir": str(work),
        "convert": {
            "mode": "synthetic",
            "num_pairs": args.pairs,
            "height": size[0],
            "width": size[1],
            "max_disparity": 32 if args.tiny else 160,
            "split_ratio": 0.75,
        },
    }
    (work / "convert.yaml").write_text(yaml.safe_dump(convert))
    subprocess.run(
        [sys.executable, "-m", "skillbank.runtime.cli", "convert", "-e", str(work / "convert.yaml")], check=True
    )
    render_s = time.perf_counter() - t0

    def source(name: str) -> list[dict]:
        return [{"dataset_name": "GenericDataset", "data_file": str(work / "convert" / name)}]

    aug = {"crop_size": list(size)}
    spec = {
        "results_dir": str(work / "study"),
        "model": {"model_type": "FastFoundationStereo"},  # the bp2 block (filled in by the spec models)
        "dataset": {
            "train_dataset": {"data_sources": source("train.txt"), "batch_size": 2, "workers": 4, "augmentation": aug},
            "val_dataset": {"data_sources": source("val.txt"), "batch_size": 1, "workers": 2, "augmentation": aug},
        },
        "train": {
            "num_gpus": 1,
            "precision": "bf16",
            "compile": True,
            "cuda_graph": True,
            "channels_last": True,
            "pad_channels": True,
            "log_every_n_steps": 10,
            "optim": {"warmup_steps": 0},
        },
        "automl": {
            "automl_algorithm": args.algorithm,
            "automl_max_recommendations": args.trials,
            "automl_max_epochs": args.max_epochs,
            "automl_max_concurrent": 1,
            "automl_delete_intermediate_ckpt": True,
        },
    }
    if args.tiny:
        sys.path.insert(0, str(HERE))
        from train_short_run import TINY_WIDTHS

        spec["model"].update(max_disparity=64, volume_dim=8, train_iters=3, valid_iters=3, **TINY_WIDTHS)
        spec["train"] = {"num_gpus": 0, "optim": {"warmup_steps": 0}}
        spec["dataset"]["train_dataset"]["workers"] = spec["dataset"]["val_dataset"]["workers"] = 0
    from skillbank.automl.launch import SubprocessLauncher, trial_env
    from skillbank.automl.runner import run
    from skillbank.automl.settings import resolve
    from skillbank.specs import load_spec

    spec_path = work / "automl_spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    settings = resolve(load_spec(spec_path, args.overrides))
    env = trial_env(settings.automl_dir)
    cache = Path(env.get("TORCHINDUCTOR_CACHE_DIR") or os.environ["TORCHINDUCTOR_CACHE_DIR"])
    launcher = SubprocessLauncher(env=env, command=[sys.executable, str(HERE / "automl_step_timer.py")])

    cache_counts: dict[int, int] = {}

    def echo(line: str) -> None:
        print(line, flush=True)
        if line.startswith("[automl] trial") and " started" not in line:
            cache_counts[int(line.split()[2])] = files_in(cache)

    study_t0 = time.perf_counter()
    summary = run(settings, launcher=launcher, echo=echo)
    study_s = time.perf_counter() - study_t0

    trials = []
    before = 0
    for t in summary["trials"]:
        folder = Path(settings.automl_dir) / f"trial_{t['number']:03d}"
        steps = json.loads((folder / "step_times.json").read_text()) if (folder / "step_times.json").exists() else {}
        after = cache_counts.get(t["number"], before)
        trials.append(
            {
                "number": t["number"],
                "state": t["state"],
                "value": t["value"],
                "epochs": t["epochs"],
                "seconds": t.get("seconds"),
                "inductor_cache_files_added": after - before,
                **{k: v for k, v in steps.items() if k != "step_end_s"},
            }
        )
        before = after
    import torch

    result = {
        "benchmark": "automl_gpu_study",
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "machine": f"{platform.node()}, torch {torch.__version__}, python {platform.python_version()}",
        "settings": {
            "pairs": args.pairs,
            "trials": args.trials,
            "max_epochs": args.max_epochs,
            "algorithm": args.algorithm,
            "overrides": args.overrides,
            "inductor_cache": str(cache),
        },
        "render_s": round(render_s, 1),
        "study_s": round(study_s, 1),
        "trials": trials,
        "kernels_reused": all(t["inductor_cache_files_added"] == 0 for t in trials[1:]) if len(trials) > 1 else None,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=2, default=str))


if __name__ == "__main__":
    main()
