"""Routing (automl | direct_train | runtime), the missing-schema message, and request overrides surviving."""

from __future__ import annotations

import pytest
from skilltest_helpers import FFS, edit

from skillbank.registry import Registry
from skillbank.router import PlanQuestion, plan

TRAIN_CALL = {
    "skill": FFS,
    "action": "train",
    "inputs": {"train_datasets": ["/data/kitti"], "eval_dataset": "/data/kitti_val", "results_dir": "/runs/ffs"},
    "spec_overrides": {
        "learning_rate": 2e-5,
        "train": {"num_gpus": 2, "gpu_ids": [2, 3]},
        "dataset.train_dataset.batch_size": 4,
    },
}


def test_route_automl_when_auto_enabled_and_generated(registry: Registry) -> None:
    p = plan(TRAIN_CALL, registry)
    assert (p.route, p.automl_policy, p.policy_source) == ("automl", "auto", "default")
    assert p.skill_dir == str(registry.get(FFS).path)
    assert p.automl is not None and p.automl["metric"] == "val/epe"
    assert set(p.automl["hyperparameters"]) == {"train.optim.lr", "train.optim.lr_decay"}
    assert p.command == "skillbank automl run -e <spec.yaml>" and "child jobs" in p.message


def test_route_direct_train_when_policy_off(registry: Registry) -> None:
    p = plan(TRAIN_CALL | {"automl_policy": "disabled"}, registry)
    assert (p.route, p.automl_policy, p.policy_source) == ("direct_train", "off", 'explicit: "disabled"')
    assert p.automl is None
    assert p.command == "depth_net train -e <spec.yaml>"
    words = plan("fine-tune fast stereo on /data/kitti, no HPO, results in /runs/x", registry)
    assert (words.route, words.policy_source) == ("direct_train", 'request: "no HPO"')


def test_route_direct_train_when_automl_disabled(skill_copy) -> None:
    copy = skill_copy()
    edit(copy / "references" / "skill_info.yaml", "automl_enabled: true", "automl_enabled: false")
    edit(copy / "references" / "skill_info.yaml", "  enabled: true", "  enabled: false")
    p = plan(TRAIN_CALL, Registry.load([copy.parent], builtin=False))
    assert (p.route, p.automl_policy) == ("direct_train", "auto")
    assert "automl_enabled is false" in p.message


@pytest.mark.parametrize("missing", ["schemas/train.schema.json", "references/spec_template_train.yaml"])
def test_route_direct_train_with_message_when_schema_or_template_missing(skill_copy, missing: str) -> None:
    copy = skill_copy()
    (copy / missing).unlink()
    p = plan(TRAIN_CALL, Registry.load([copy.parent], builtin=False))
    assert (p.route, p.automl_policy) == ("direct_train", "auto")
    assert "AutoML is enabled for depth-net-fast-stereo but not runnable until schemas are generated" in p.message
    assert missing in p.message and "skillbank schemas generate" in p.message


@pytest.mark.parametrize("action", ["evaluate", "inference", "export", "gen_trt_engine", "convert"])
def test_every_other_action_routes_to_runtime(registry: Registry, action: str) -> None:
    p = plan({"skill": FFS, "action": action, "inputs": {"results_dir": "/r"}}, registry)
    assert p.route == "runtime"
    assert p.command == f"depth_net {action} -e <spec.yaml>"
    assert plan({"skill": FFS, "action": action, "automl_policy": "off"}, registry).route == "runtime"


def test_request_overrides_survive_every_route(registry: Registry, skill_copy) -> None:
    copy = skill_copy()
    (copy / "schemas" / "train.schema.json").unlink()
    registries = {"automl": registry, "direct_train": Registry.load([copy.parent], builtin=False)}
    for route, reg in registries.items():
        for policy in (None, "off"):
            p = plan(TRAIN_CALL | {"automl_policy": policy}, reg)
            assert p.route == ("direct_train" if policy == "off" else route)
            s = p.spec
            assert s["results_dir"] == "/runs/ffs"
            assert s["train"]["optim"]["lr"] == 2e-5
            assert (s["train"]["num_gpus"], s["train"]["gpu_ids"]) == (2, [2, 3])
            assert s["dataset"]["train_dataset"]["batch_size"] == 4
            assert s["dataset"]["train_dataset"]["data_sources"] == [
                {"dataset_name": "GenericDataset", "data_file": "/data/kitti/train.txt"}
            ]
            assert s["dataset"]["val_dataset"]["data_sources"][0]["data_file"] == "/data/kitti_val/val.txt"
            assert p.ready and not p.missing


def test_workflow_skill_unknown_action_and_unknown_key_are_questions(registry: Registry) -> None:
    with pytest.raises(PlanQuestion, match="workflow skill"):
        plan({"skill": "run-automl", "action": "train"}, registry)
    with pytest.raises(PlanQuestion, match="has no action 'convert'"):
        plan({"skill": "depth-net-mono", "action": "convert"}, registry)
    with pytest.raises(PlanQuestion, match=r"spec_overrides\.train\.optim\.lrr: .*did you mean 'lr'"):
        plan({"skill": FFS, "action": "train", "spec_overrides": {"train.optim.lrr": 1}}, registry)
    with pytest.raises(PlanQuestion, match=r"automl_policy: 'maybe' is not a policy"):
        plan({"skill": FFS, "action": "train", "automl_policy": "maybe"}, registry)
    with pytest.raises(PlanQuestion, match=r"train\.optim\.lr: 2\.0 is out of range"):
        plan({"skill": FFS, "action": "train", "spec_overrides": {"learning_rate": 2.0}}, registry)
    with pytest.raises(PlanQuestion, match="Which model"):
        plan("train something on /data", registry)
    with pytest.raises(PlanQuestion, match="What should depth-net-stereo do"):
        plan("FoundationStereo on /data/x", registry)
