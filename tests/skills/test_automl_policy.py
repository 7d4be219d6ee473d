"""automl_policy from explicit values and from the request's words (per run; never skill metadata)."""

from __future__ import annotations

import pytest

from skillbank.policy import PolicyError, resolve_automl_policy

OFF_PHRASES = [
    ("turn off AutoML", "turn off AutoML"),
    ("disable AutoML", "disable AutoML"),
    ("no HPO", "no HPO"),
    ("plain training", "plain training"),
    ("fine-tune fast stereo on my KITTI pairs, no HPO, then build an fp16 engine", "no HPO"),
    ("train without hyperparameter search", "without hyperparameter search"),
    ("skip automl", "skip automl"),
    ("don't tune", "don't tune"),
    ("do not tune anything, just train", "just train"),
    ("no hyperparameter optimization", "no hyperparameter optimization"),
    ("no hyper-parameter optimisation please", "no hyper-parameter optimisation"),
    ("w/o HPO", "w/o HPO"),
    ("AutoML: off", "AutoML: off"),
    ("automl=off", "automl=off"),
    ("HPO disabled", "HPO disabled"),
    ("train stereo, AutoML should be off", "AutoML should be off"),
    ("switch off the automl", "switch off the automl"),
    ("don't use AutoML", "don't use AutoML"),
    ("I don't want AutoML for this one", "don't want AutoML"),
    ("never run HPO", "never run HPO"),
    ("no need for hyperparameter tuning", "no need for hyperparameter tuning"),
    ("train directly", "train directly"),
    ("just train it once", "just train"),
    ("without any AutoML", "without any AutoML"),
    ("no auto-ml please", "no auto-ml"),
    ("disable hyper-parameter search", "disable hyper-parameter search"),
    ("skip the sweep", "skip the sweep"),
    ("with fixed hyperparameters", "fixed hyperparameters"),
    ("use automl, actually no, plain training", "plain training"),
    ("same lr as last time, no HPO", "no HPO"),
    ("NO HPO!!", "NO HPO"),
    ("Fine-tune FFS with a vanilla training run", "vanilla training"),
    ("stop using automl", "stop using automl"),
    ("no-hpo run on kitti", "no-hpo"),
    ("AutoML turned off", "AutoML turned off"),
    ("fine-tune ffs without any hyperparameter search", "without any hyperparameter search"),
    ("don't tune hyperparameters", "don't tune hyperparameters"),
    ("HPO: no", "HPO: no"),
    ("sans HPO", "sans HPO"),
    ("no automl", "no automl"),
    ("skip the HPO", "skip the HPO"),
    ("hyperparameter tuning disabled", "hyperparameter tuning disabled"),
    ("turn AutoML off", "turn AutoML off"),
    ("automl_policy: off", "automl_policy: off"),
    ("AutoML should stay off", "AutoML should stay off"),
    ("we don't need HPO", "don't need HPO"),
    ("an HPO-free run", "HPO-free"),
    ("non-HPO training", "non-HPO"),
    ("forget about automl", "forget about automl"),
    ("automl not required", "automl not required"),
    ("use automl? actually, don't", "actually don't"),
    ("train ffs, no hpo for now; run it on 2 gpus", "no hpo"),  # "run it" is the training, not a take-back
    ("train ffs, no hpo. Actually, run it on 4 gpus instead", "no hpo"),
]

AUTO_PHRASES = [
    ("don't disable automl", "request"),
    ("do not turn off AutoML", "request"),
    ("not without HPO", "request"),
    ("use automl", "request"),
    ("train with HPO", "request"),
    ("enable hyperparameter search", "request"),
    ("train, HPO on", "request"),
    ("plain training, no wait, use automl", "request"),
    ("never skip the automl", "request"),
    ("fine-tune fast stereo on KITTI", "default"),
    ("fine tune the mono model", "default"),
    ("finetune stereo on /data/hpo_runs", "default"),
    ("AutoML results from last week", "default"),
    ("compare with HPO off last time", "default"),
    ("like the previous run without automl", "default"),
    ("results in /x/hpo_off", "default"),
    ("train on /data/no_hpo, results in /x/automl-off", "default"),
    ("evaluate the checkpoint", "default"),
    ("run HPO for fast stereo", "request"),
    ("tune the hyperparameters of ffs", "request"),
    ("hyperparameter search on mono", "request"),
    ("optimize hyperparameters", "request"),
    ("sweep the learning rate", "request"),
    ("no HPO needed? actually do run it", "request"),
    ("train with no augmentation", "default"),
    ("no augmentation, no flips", "default"),
    ("use automl. actually, not on kitti but on /data/x", "request"),
    ("no HPO; actually do run it", "request"),
    ("", "default"),
]


@pytest.mark.parametrize(("text", "phrase"), OFF_PHRASES)
def test_off_phrasings(text: str, phrase: str) -> None:
    decision = resolve_automl_policy(None, text)
    assert decision.policy == "off"
    assert decision.source == "request"
    assert decision.phrase == phrase
    assert decision.describe() == f'request: "{phrase}"'


@pytest.mark.parametrize(("text", "source"), AUTO_PHRASES)
def test_auto_phrasings_negations_and_noise(text: str, source: str) -> None:
    decision = resolve_automl_policy(None, text)
    assert decision.policy == "auto"
    assert decision.source == source
    assert (decision.phrase is None) == (source == "default")


@pytest.mark.parametrize(
    ("value", "policy"),
    [
        ("auto", "auto"),
        ("AUTO", "auto"),
        ("on", "auto"),
        ("enabled", "auto"),
        (True, "auto"),
        ("off", "off"),
        ("Off", "off"),
        ("disabled", "off"),
        ("disable", "off"),
        ("none", "off"),
        ("false", "off"),
        (False, "off"),
        ("0", "off"),
    ],
)
def test_explicit_values_and_synonyms(value: str | bool, policy: str) -> None:
    decision = resolve_automl_policy(value, "use automl, with HPO")  # explicit wins over the words
    assert (decision.policy, decision.source, decision.phrase) == (policy, "explicit", str(value))


@pytest.mark.parametrize("value", ["maybe", "hpo", "sometimes", "2"])
def test_invalid_explicit_value_is_one_clear_error(value: str) -> None:
    with pytest.raises(PolicyError) as info:
        resolve_automl_policy(value, None)
    message = str(info.value)
    assert message.startswith(f"automl_policy: {value!r} is not a policy")
    assert "'auto' or 'off'" in message and "\n" not in message


def test_unset_explicit_falls_back_to_words_then_default() -> None:
    assert resolve_automl_policy(None, None).describe() == "default"
    assert resolve_automl_policy("", "no HPO").policy == "off"
    assert resolve_automl_policy(None, "nothing about it").policy == "auto"


def test_policy_resolution_never_touches_skill_metadata(tmp_path) -> None:
    from skillbank.registry import builtin_root

    info = builtin_root() / "depth-net-fast-stereo" / "references" / "skill_info.yaml"
    before = info.read_bytes()
    assert resolve_automl_policy("off", "disable automl").policy == "off"
    assert info.read_bytes() == before
