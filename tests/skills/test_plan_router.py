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


def test_parent_job_fills_the_model_at_submit_time_instead_of_demanding_a_path(registry: Registry) -> None:
    without = plan("evaluate fast stereo on /data/k, results in /o", registry)
    assert not without.ready and any(m.startswith("evaluate.checkpoint") for m in without.missing)
    for request in (
        "evaluate fast stereo with parent job abc123 on /data/k, results in /o",
        "evaluate fast stereo from job abc123 on /data/k, results in /o",
        "parent_job_id: abc123, evaluate fast stereo on /data/k, results in /o",
        {
            "skill": FFS,
            "action": "evaluate",
            "parent_job_id": "abc123",
            "inputs": {"eval_dataset": "/data/k", "results_dir": "/o"},
        },
        {
            "skill": FFS,
            "action": "evaluate",
            "inputs": {"parent_job_id": "abc123", "eval_dataset": "/data/k", "results_dir": "/o"},
        },
    ):
        p = plan(request, registry)
        assert (p.parent_job_id, p.ready, p.missing) == ("abc123", True, []), request
        assert p.from_parent == {"evaluate.checkpoint": "checkpoint"}
        assert any("from parent job abc123" in n and "no path needed" in n for n in p.notes)
    engine = plan("evaluate the ffs engine from job e9 on /data/k, results in /o", registry)
    assert engine.from_parent == {"evaluate.trt_engine": "engine"} and engine.spec["evaluate"]["checkpoint"] is None
    assert engine.ready
    onnx = plan("build an fp16 engine for ffs with parent job j-4, results in /o", registry)
    assert onnx.from_parent == {"gen_trt_engine.onnx_file": "onnx"} and onnx.ready
    assert plan("export ffs from job results, results in /o", registry).parent_job_id is None  # not an id


def test_chain_steps_carry_their_own_data_and_parents_and_plan_one_by_one(registry: Registry) -> None:
    p = plan("train ffs on /data/kitti, then evaluate it on /data/val.txt and export it, results in /runs/a", registry)
    assert (p.action, p.next_actions) == ("train", ["evaluate", "export"])
    evaluate, export = p.next_steps
    assert evaluate.inputs == {"results_dir": "/runs/a", "dataset_name": "Kitti", "eval_dataset": "/data/val.txt"}
    assert (evaluate.parent_step, evaluate.uses, export.parent_step, export.uses) == (0, "checkpoint", 0, "checkpoint")
    assert p.spec["dataset"]["train_dataset"]["data_sources"] == [
        {"dataset_name": "Kitti", "data_file": "/data/kitti/train.txt"}
    ]  # the evaluate step's file is not a training set
    step = plan(p.step_call(0, parent_job_id="t1"), registry)
    assert (step.action, step.parent_job_id, step.ready) == ("evaluate", "t1", True)
    assert step.spec["dataset"]["test_dataset"]["data_sources"][0]["data_file"] == "/data/val.txt"
    assert plan(p.step_call(1, parent_job_id="t1"), registry).from_parent == {"export.checkpoint": "checkpoint"}
    deploy = plan("train ffs on /d, export it, then build an fp16 engine and evaluate the engine on /t, results in /r")
    assert [(s.action, s.parent_step, s.uses) for s in deploy.next_steps] == [
        ("export", 0, "checkpoint"),
        ("gen_trt_engine", 1, "onnx"),
        ("evaluate", 2, "engine"),
    ]
    assert "then (3):       evaluate (its engine from step 2) [" in deploy.text()


@pytest.mark.parametrize(
    ("request_text", "kind", "words"),
    [
        ("segment cars", "unsupported", "depth-net-mono (MetricDepthAnything): train, evaluate"),
        ("detect pedestrians in /data/street", "unsupported", "depth-net-fast-stereo (FastFoundationStereo)"),
        ("translate this text", "unsupported", "gen_trt_engine"),
        ("train something on /data", "which_model", "Which model?"),
    ],
)
def test_requests_the_bank_cannot_serve_get_what_it_can_do(registry: Registry, request_text, kind, words) -> None:
    with pytest.raises(PlanQuestion) as info:
        plan(request_text, registry)
    assert info.value.kind == kind and words in info.value.question


def _pairs(root, left: str, right: str) -> None:
    for side in (left, right):
        (root / side).mkdir(parents=True)
        (root / side / "0001.png").write_bytes(b"x")


def test_image_folder_for_inference_plans_convert_or_asks_never_invents_a_file(registry: Registry, tmp_path) -> None:
    kitti = tmp_path / "kitti"
    _pairs(kitti, "image_2", "image_3")
    p = plan(f"run ffs inference with /c/x.pth on {kitti}, results in /o", registry)
    assert (p.action, p.next_actions, p.ready) == ("convert", ["inference"], True)
    assert {k: p.spec["convert"][k] for k in ("data_root", "left_dir", "right_dir", "split_ratio")} == {
        "data_root": str(kitti),
        "left_dir": "image_2",
        "right_dir": "image_3",
        "split_ratio": None,
    }
    infer = p.next_steps[0]
    assert infer.inputs["inference_dataset"] == "/o/convert/test.txt" and infer.inputs["checkpoint"] == "/c/x.pth"
    assert (infer.parent_step, infer.uses) == (0, "annotations")
    infer_plan = plan(p.step_call(0, parent_job_id="conv1"), registry)
    assert infer_plan.spec["dataset"]["infer_dataset"]["data_sources"][0]["data_file"] == "/o/convert/test.txt"
    assert (infer_plan.parent_job_id, infer_plan.spec["inference"]["checkpoint"]) == (None, "/c/x.pth")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"x")
    with pytest.raises(PlanQuestion, match="no infer.txt and no left/right folders") as info:
        plan(f"run ffs inference with /c/x.pth on {flat}, results in /o", registry)
    assert info.value.kind == "needs_annotation"
    with pytest.raises(PlanQuestion, match="depth-net-mono has no convert action") as info:
        plan(f"run mono inference with /c/m.pth on {flat}, results in /o", registry)
    (flat / "infer.txt").write_text("a.png\n")
    ok = plan(f"run mono inference with /c/m.pth on {flat}, results in /o", registry)
    assert ok.action == "inference" and ok.ready
    no_train_file = plan(f"train ffs on {kitti}, results in /o", registry)
    assert not no_train_file.ready
    assert any(f"{kitti}/train.txt not found" in m and "run convert" in m for m in no_train_file.missing)


def test_typos_are_repaired_and_reported_json_typos_get_a_suggestion(registry: Registry) -> None:
    p = plan("fine-tnue fast sterio on /data/k, results in /r", registry)
    assert (p.skill, p.action) == (FFS, "train")
    assert p.notes[:2] == ["read 'fine-tnue' as 'finetune'", "read 'sterio' as 'stereo'"]
    with pytest.raises(PlanQuestion, match="did you mean depth-net-fast-stereo"):
        plan({"skill": "depth-net-fast-sterio", "action": "train"}, registry)
    with pytest.raises(PlanQuestion, match="Did you mean 'evaluate'"):
        plan({"skill": FFS, "action": "evalute"}, registry)
