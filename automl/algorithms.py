"""TAO's AutoML algorithm names on Optuna: a sampler (which values to try) and a pruner (when to stop a trial).

=========  ==========================================  =========================================
name       sampler                                     pruner
=========  ==========================================  =========================================
bayesian   TPE, multivariate (a Gaussian-process        none: every trial trains train.num_epochs
           sampler when the space is at most 3 floats)
random     random                                      none
hyperband  random                                      Hyperband (1 .. automl_max_epochs epochs)
asha       random                                      successive halving (asynchronous)
bohb       TPE, multivariate                           Hyperband
=========  ==========================================  =========================================

The pruners' resource is the epoch: a trial reports its validation metric after each epoch and is
stopped when the pruner says so. TAO's DEHB and PBT have no Optuna counterpart and are not offered.
"""

from __future__ import annotations

from typing import Any

from skillbank.automl.space import Param, is_small_continuous
from skillbank.specs.automl import PRUNING_ALGORITHMS


def make_sampler(algorithm: str, params: list[Param], seed: int) -> Any:
    import optuna

    if algorithm in ("random", "hyperband", "asha"):
        return optuna.samplers.RandomSampler(seed=seed)
    if algorithm == "bayesian" and is_small_continuous(params):
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=min(10, 4 + len(params)))
    # constant_liar: concurrent trials see each other as pending instead of all sampling the same point
    return optuna.samplers.TPESampler(multivariate=True, seed=seed, constant_liar=True)


def make_pruner(algorithm: str, max_epochs: int, reduction_factor: int) -> Any:
    import optuna

    if algorithm in ("hyperband", "bohb"):
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs, reduction_factor=reduction_factor
        )
    if algorithm == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=reduction_factor, min_early_stopping_rate=0
        )
    return optuna.pruners.NopPruner()


def prunes(algorithm: str) -> bool:
    """Whether trials of ``algorithm`` are stopped early (and so may train up to automl_max_epochs)."""
    return algorithm in PRUNING_ALGORITHMS
