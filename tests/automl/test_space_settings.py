"""The search space, the algorithms and the settings of a study (fast: no trial runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from automl_helpers import base_spec

from skillbank.automl.algorithms import make_pruner, make_sampler
from skillbank.automl.settings import resolve
from skillbank.automl.space import Param, build_space
from skillbank.registry import default_registry
from skillbank.specs import SpecError, load_spec

FFS = default_registry().get("depth-net-fast-stereo").info["automl"]
STEREO = default_registry().get("depth-net-stereo").info["automl"]


def test_the_space_is_the_skills_allow_list_inside_the_spec_fields():
    space = {p.key: p for p in build_space(FFS, [], {})}
    assert list(space) == ["train.optim.lr", "train.optim.lr_decay"]
    lr, decay = space["train.optim.lr"], space["train.optim.lr_decay"]
    assert (lr.low, lr.high, lr.log) == (1e-6, 1e-3, True)
    assert (decay.low, decay.high, decay.log) == (0.05, 0.9, False)  # 18x: not two decades
    assert [p.key for p in build_space(STEREO, [], {})] == ["train.optim.lr", "train.optim.weight_decay"]


def test_custom_ranges_narrow_pick_options_and_are_refused_outside_the_schema():
    spec = load_spec(
        None,
        [
            "automl.custom_param_ranges={train.optim.lr: {valid_min: 1.0e-5, valid_max: 1.0e-4}, "
            "train.optim.lr_decay: {valid_options: [0.1, 0.5]}}"
        ],
    )
    space = {p.key: p for p in build_space(FFS, [], dict(spec.automl.custom_param_ranges))}
    assert (space["train.optim.lr"].low, space["train.optim.lr"].high) == (1e-5, 1e-4)
    assert space["train.optim.lr_decay"] == Param("train.optim.lr_decay", options=(0.1, 0.5))
    with pytest.raises(SpecError) as err:
        load_spec(None, ["automl.custom_param_ranges={train.optim.lr: {valid_min: 1.0e-5, valid_max: 2.0}}"])
    assert str(err.value) == (
        "Configuration error: automl.custom_param_ranges.train.optim.lr: 2.0 is outside the spec field's range [0, 1]"
    )
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "automl.automl_hyperparameters=[model.gru_hidden]",
            "automl.automl_hyperparameters: model.gru_hidden is never searched for this model (matches 'model.*')",
        ),
        (
            "automl.automl_hyperparameters=[train.optim.weight_decay]",
            "automl.automl_hyperparameters: train.optim.weight_decay is not in the model skill's allow-list",
        ),
        (
            "automl.custom_param_ranges={train.optim.weight_decay: {valid_min: 0.0, valid_max: 0.1}}",
            "automl.custom_param_ranges.train.optim.weight_decay: train.optim.weight_decay is not in the model skill's",
        ),
    ],
)
def test_keys_outside_the_allow_list_are_refused_naming_the_key(tmp_path, pairs, override, expected):
    spec = load_spec(None, [override], data=base_spec(tmp_path, pairs))
    with pytest.raises(SpecError) as err:
        resolve(spec)
    assert expected in str(err.value)


def test_settings_default_per_skill_and_follow_the_spec(tmp_path, pairs):
    spec = load_spec(
        None,
        ["automl.automl_algorithm=hyperband", "automl.automl_max_recommendations=6", "automl.automl_max_epochs=3"],
        data=base_spec(tmp_path, pairs),
    )
    s = resolve(spec)
    assert (s.skill, s.metric, s.direction) == ("depth-net-fast-stereo", "val/epe", "minimize")
    assert s.algorithm == "hyperband"
    assert (s.max_trials, s.trial_epochs, s.reduction_factor, s.max_concurrent) == (6, 3, 3, 4)
    assert "automl" not in s.base_spec and s.automl_dir == str(tmp_path / "automl")
    bayes = resolve(load_spec(None, [], data=base_spec(tmp_path, pairs)))
    assert bayes.trial_epochs == 1  # no pruner: trials train train.num_epochs
    with pytest.raises(SpecError, match="automl.direction: required"):
        resolve(load_spec(None, ["automl.metric=val/bp2"], data=base_spec(tmp_path, pairs)))


def test_mono_maximises_the_metric_its_skill_names(tmp_path):
    spec = load_spec(None, ["model.model_type=MetricDepthAnything", "results_dir=" + str(tmp_path)])
    s = resolve(spec)
    mono = default_registry().get("depth-net-mono").info["automl"]
    assert (s.skill, s.metric, s.direction) == ("depth-net-mono", mono["metric"], "maximize")
    assert [p["key"] for p in s.params] == ["train.optim.lr", "train.optim.weight_decay"]


def test_algorithms_map_to_optuna_samplers_and_pruners():
    import optuna

    space = build_space(FFS, [], {})
    assert isinstance(make_sampler("bayesian", space, 0), optuna.samplers.GPSampler)
    four = [*space, Param("a", 0.0, 1.0), Param("b", 0.0, 1.0)]
    tpe = make_sampler("bayesian", four, 0)
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._multivariate
    assert isinstance(make_sampler("random", space, 0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("bohb", space, 0), optuna.samplers.TPESampler)
    assert isinstance(make_pruner("hyperband", 27, 3), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("bohb", 27, 3), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("asha", 27, 3), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner("bayesian", 27, 3), optuna.pruners.NopPruner)


def test_skillbank_list_and_the_automl_help_import_neither_torch_nor_optuna():
    code = (
        "import sys; from typer.testing import CliRunner; from skillbank.cli import app; r = CliRunner(); "
        "assert r.invoke(app, ['list']).exit_code == 0; assert r.invoke(app, ['automl', '--help']).exit_code == 0;"
        " print(sorted(m for m in ('torch', 'optuna', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
