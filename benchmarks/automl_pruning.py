"""Benchmark: does pruning (Hyperband, ASHA, BOHB) reach the best val/epe of unpruned random search with at
most half the training epochs?

The problem is small and seeded so it runs on one CPU thread (10 minutes on a shared 2-core machine):
1-D stereo matching. Each sample is a random textured scanline (64 px) and its copy shifted by a
disparity in [0, 8) px plus noise; the
network (1-D conv features, a correlation cost volume over 8 disparities, soft-argmin) is trained with
AdamW at learning rate ``train.optim.lr`` decayed by ``train.optim.lr_decay`` every 3 epochs (the fast-
stereo skill's two searched keys and ranges); the metric is val/epe (mean |disparity error|, px) on 128
held-out samples after each epoch, reported to Optuna as in a real trial. The samplers and pruners are
skillbank.automl's (``make_sampler``, ``make_pruner``) with TAO's defaults (max 27 epochs, reduction 3).

Each search gets the same trials (27) and sampler seed; unpruned random search trains every trial for
27 epochs. Results: ``benchmarks/results/automl_pruning_cpu2.json`` (machine named inside).

    python benchmarks/automl_pruning.py [--trials 27] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import optuna
import torch
from torch import nn

from skillbank.automl.algorithms import make_pruner, make_sampler
from skillbank.automl.space import build_space, suggest
from skillbank.registry import default_registry

WIDTH, MAX_DISP, N_TRAIN, N_VAL, BATCH = 64, 8, 256, 128, 128


def make_data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, WIDTH + MAX_DISP, generator=g)
    base = nn.functional.avg_pool1d(base, 3, 1, 1)  # some texture scale
    disp = torch.rand(n, generator=g) * (MAX_DISP - 1)
    left = base[:, :, MAX_DISP:]
    idx = torch.arange(WIDTH).float()[None, :] + MAX_DISP - disp[:, None]  # right(x) = left(x + d)
    lo = idx.floor().long().clamp(0, WIDTH + MAX_DISP - 2)
    frac = (idx - lo.float())[:, None, :]
    right = base.gather(2, lo[:, None, :]) * (1 - frac) + base.gather(2, (lo + 1)[:, None, :]) * frac
    right = right + 0.05 * torch.randn(right.shape, generator=g)
    return left, right, disp


class TinyStereo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Sequential(nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.Conv1d(16, 16, 5, padding=2))
        self.temp = nn.Parameter(torch.tensor(1.0))

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        fl, fr = self.feat(left), self.feat(right)
        costs = []
        for d in range(MAX_DISP):  # right(x) ~ left(x + d): correlate left shifted by d with right
            shifted = torch.nn.functional.pad(fl[:, :, d:], (0, d))
            costs.append((shifted * fr).mean(1))
        prob = torch.softmax(torch.stack(costs, 1) * self.temp, 1)  # (n, D, W)
        disp = (prob * torch.arange(MAX_DISP).float()[None, :, None]).sum(1)
        return disp[:, : WIDTH - MAX_DISP].mean(1)  # one disparity per scanline (away from the border)


def train_trial(trial: optuna.Trial, params: list, data: tuple, max_epochs: int, seed: int) -> tuple[float, int]:
    values = suggest(trial, params)
    torch.manual_seed(seed)
    model = TinyStereo()
    opt = torch.optim.AdamW(model.parameters(), lr=values["train.optim.lr"] * 100)  # scale the range to this net
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, gamma=values["train.optim.lr_decay"])
    (tl, tr, td), (vl, vr, vd) = data
    value, epochs = math.inf, 0
    for epoch in range(1, max_epochs + 1):
        perm = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(0, N_TRAIN, BATCH):
            b = perm[i : i + BATCH]
            loss = (model(tl[b], tr[b]) - td[b]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        with torch.no_grad():
            value = float((model(vl, vr) - vd).abs().mean())
        epochs = epoch
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value, epochs


def search(algorithm: str, trials: int, seed: int, max_epochs: int, rf: int, data: tuple) -> dict:
    params = build_space(default_registry().get("depth-net-fast-stereo").info["automl"], [], {})
    pruner = make_pruner(algorithm, max_epochs, rf) if algorithm != "random" else optuna.pruners.NopPruner()
    study = optuna.create_study(direction="minimize", sampler=make_sampler(algorithm, params, seed), pruner=pruner)
    epochs_total = 0
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        try:
            value, epochs = train_trial(trial, params, data, max_epochs, seed)
            study.tell(trial, value)
        except optuna.TrialPruned:
            epochs = max(trial.storage.get_trial(trial._trial_id).intermediate_values)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        epochs_total += epochs
    states = [t.state.name for t in study.trials]
    return {
        "algorithm": algorithm,
        "seed": seed,
        "best_val_epe": round(study.best_value, 5),
        "epochs": epochs_total,
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--max-epochs", type=int, default=27)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "automl_pruning_cpu2.json"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    data = (make_data(100, N_TRAIN), make_data(200, N_VAL))
    runs = []
    for seed in args.seeds:
        base = search("random", args.trials, seed, args.max_epochs, args.reduction_factor, data)
        runs.append(base)
        print(json.dumps(base), flush=True)
        for algorithm in ("hyperband", "asha", "bohb"):
            run = search(algorithm, args.trials, seed, args.max_epochs, args.reduction_factor, data)
            run["same_or_better_than_random"] = run["best_val_epe"] <= base["best_val_epe"]
            run["epoch_ratio_to_random"] = round(run["epochs"] / base["epochs"], 3)
            runs.append(run)
            print(json.dumps(run), flush=True)
    pruned = [r for r in runs if r["algorithm"] == "hyperband"]
    result = {
        "benchmark": "automl_pruning",
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPU cores, shared), torch "
        f"{torch.__version__}, optuna {optuna.__version__}, 1 thread",
        "problem": "1-D stereo matching, 64 px scanlines, disparity < 8 px, 256 train / 128 val, tiny conv + "
        "correlation + soft-argmin; val/epe in px after each epoch",
        "settings": {
            "trials": args.trials,
            "max_epochs": args.max_epochs,
            "reduction_factor": args.reduction_factor,
            "seeds": args.seeds,
        },
        "runs": runs,
        "hyperband_same_or_better_with_at_most_half_the_epochs": all(
            r["same_or_better_than_random"] and r["epoch_ratio_to_random"] <= 0.5 for r in pruned
        ),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"wrote {args.out}: hyperband same or better with <= half the epochs on every seed: "
        f"{result['hyperband_same_or_better_with_at_most_half_the_epochs']}"
    )


if __name__ == "__main__":
    main()
