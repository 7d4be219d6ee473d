"""Unit tests: stereo/mono metrics, the learning-rate schedules, losses and output naming."""

from __future__ import annotations

import math

import pytest
import torch

from skillbank.runtime.metrics import MetricAverager, align_scale_shift, mono_image_metrics, stereo_image_metrics
from skillbank.runtime.prediction.predict import unique_output_names
from skillbank.runtime.training.loss import (
    sequence_weights,
    silog_loss,
    ssi_l1_loss,
    stereo_loss_fn,
    stereo_sequence_loss,
)
from skillbank.runtime.training.schedule import LRMultiplier, build_scheduler
from skillbank.specs import OptimConfig


def test_stereo_metrics_by_hand():
    gt = torch.tensor([10.0, 10.0, 10.0, 100.0, 50.0])
    pred = torch.tensor([10.5, 11.5, 12.5, 104.0, 0.0])
    mask = torch.tensor([True, True, True, True, False])
    m = stereo_image_metrics(pred, gt, mask)
    err = torch.tensor([0.5, 1.5, 2.5, 4.0])
    assert m["epe"] == pytest.approx(float(err.mean()))
    assert m["bp1"] == pytest.approx(75.0) and m["bp2"] == pytest.approx(50.0) and m["bp3"] == pytest.approx(25.0)
    # 4 px error on gt 100 is > 3 px but only 4 % of gt: not a D1 outlier
    assert m["d1"] == pytest.approx(0.0)
    # one square root, not two (TAO's bug would give sqrt(sqrt(mse)))
    assert m["rmse"] == pytest.approx(math.sqrt(float((err**2).mean())))
    assert stereo_image_metrics(pred, gt, torch.zeros(5, dtype=torch.bool)) is None


def test_metric_averager_is_per_image_mean_and_reducible():
    a, b = MetricAverager(["epe"]), MetricAverager(["epe"])
    a.add({"epe": 1.0})
    a.add(None)
    b.add({"epe": 3.0})
    merged = MetricAverager(["epe"])
    merged.load_state(a.state() + b.state())  # what an all-reduce(sum) across two ranks gives
    assert merged.result("val/") == {"val/epe": 2.0}
    assert merged.images == 2


def test_mono_metrics_and_alignment():
    gt = torch.tensor([1.0, 2.0, 4.0, 8.0])
    m = mono_image_metrics(gt * 1.1, gt, torch.ones(4, dtype=torch.bool))
    assert m["abs_rel"] == pytest.approx(0.1) and m["d1"] == 100.0
    inv = 1.0 / gt
    aligned = align_scale_shift(3.0 * inv + 0.5, inv, torch.ones(4, dtype=torch.bool))
    assert torch.allclose(aligned, inv, atol=1e-5)


def test_sequence_weights_are_taos_adjusted_gamma():
    w = sequence_weights(22, 0.9)
    assert w[-1] == 1.0 and w[0] == pytest.approx(0.9 ** 15) and w[0] == pytest.approx(0.2059, abs=1e-4)
    assert all(a < b for a, b in zip(w[:-1], w[1:], strict=True)) and sequence_weights(1) == [1.0]


def test_sequence_loss_terms_and_mask():
    gt = torch.full((1, 1, 8, 8), 10.0)
    valid = torch.ones_like(gt, dtype=torch.bool)
    valid[..., 0, 0] = False
    gt[..., 0, 0] = 1000.0                        # invalid and beyond max_disparity: must not count
    gt[..., 5, 5] = 0.0                           # a valid zero disparity counts (TAO has no gt > 0 test)
    init = torch.full((1, 1, 2, 2), 2.5)          # 10 px at 1/4 resolution is 2.5 quarter-pixels
    init[..., 0, 0] = 99.0                        # sits on the invalid sample (0, 0): masked out
    preds = [gt.clone() + 2.0, gt.clone() + 1.0]
    loss, parts = stereo_sequence_loss(init, preds, gt, valid, max_disparity=64, gamma=0.9, with_parts=True)
    assert float(loss) == pytest.approx(0.9 ** 15 * 2.0 + 1.0 * 1.0)   # init term 0; n = 2 weights
    assert parts["init"] == 0.0 and parts["final_epe"] == pytest.approx(1.0) and parts["pixels"] == 63
    empty, _ = stereo_sequence_loss(init, preds, gt, torch.zeros_like(valid), max_disparity=64)
    assert float(empty) == 0.0
    with pytest.raises(ValueError, match="1/4-resolution"):
        stereo_sequence_loss(gt, preds, gt, valid, max_disparity=64)


def test_quarter_sampling_is_taos_nearest_interpolation():
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 1, 12, 20, generator=g)
    ours = gt[..., ::4, ::4]
    torch.testing.assert_close(ours, torch.nn.functional.interpolate(gt, scale_factor=0.25, mode="nearest"))


def test_sequence_loss_equals_the_boolean_index_formulation_and_its_gradients():
    """The sync-free masked means give TAO's boolean-indexed loss and gradients, inf/NaN GT outside."""
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 1, 8, 12, generator=g) * 80
    valid = torch.rand(2, 1, 8, 12, generator=g) > 0.3
    gt[~valid] = float("inf")
    gt[0, 0, 0, 0], valid[0, 0, 0, 0] = float("nan"), False
    init = (torch.rand(2, 1, 2, 3, generator=g) * 20).requires_grad_()
    preds = [(torch.rand(2, 1, 8, 12, generator=g) * 80).requires_grad_() for _ in range(3)]
    loss, _ = stereo_sequence_loss(init, preds, gt, valid, max_disparity=64, gamma=0.9)
    loss.backward()
    # TAO's SequenceLoss, written out with boolean indexing
    mask = valid & (gt.abs() < 64)
    gt04 = torch.nn.functional.interpolate(torch.nan_to_num(gt, posinf=1e9), scale_factor=0.25, mode="nearest") / 4
    mask04 = torch.nn.functional.interpolate(mask.float(), scale_factor=0.25, mode="nearest").round().bool()
    init2 = init.detach().clone().requires_grad_()
    preds2 = [p.detach().clone().requires_grad_() for p in preds]
    ref = torch.nn.functional.smooth_l1_loss(init2[mask04], gt04[mask04])
    adjusted = 0.9 ** (15 / 2)
    ref = ref + sum(adjusted ** (2 - i) * (p[mask] - gt[mask]).abs().mean() for i, p in enumerate(preds2))
    ref.backward()
    assert torch.isfinite(loss) and float(loss) == pytest.approx(float(ref), rel=1e-6)
    torch.testing.assert_close(init.grad, init2.grad)
    for a, b in zip(preds, preds2, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_the_compiled_sequence_loss_gives_the_eager_loss_and_gradients():
    """``stereo_loss_fn(compiled=True)`` (``train.compile``): the same loss and gradients as eager,
    inf/NaN ground truth outside the mask included."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor([1.5, 0.5, 2.0]))

        def forward(self, left, right, iters):
            base = (left - right).mean(dim=1, keepdim=True) * 40
            up = torch.cat([base * s for s in self.scale[:iters]])      # one batch, split as FFS does
            return base[..., ::4, ::4] * 0.1, list(up.split(left.shape[0]))

    g = torch.Generator().manual_seed(1)
    left, right = torch.rand(2, 3, 8, 12, generator=g), torch.rand(2, 3, 8, 12, generator=g)
    gt = torch.rand(2, 1, 8, 12, generator=g) * 80
    valid = torch.rand(2, 1, 8, 12, generator=g) > 0.3
    gt[~valid] = float("inf")
    grads = []
    for compiled in (False, True):
        net = Net()
        loss = stereo_loss_fn(3, 64, compiled=compiled)(net, left, right, gt, valid)
        loss.backward()
        grads.append((loss.detach(), net.scale.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    torch.testing.assert_close(grads[1][1], grads[0][1])


def test_mono_losses_are_invariant_as_documented():
    target = torch.rand(2, 1, 8, 8) + 0.5
    valid = torch.ones_like(target, dtype=torch.bool)
    expected = math.sqrt(0.5 * math.log(3.0) ** 2)  # a global scale only leaves (1 - lambda) of its log
    assert float(silog_loss(target * 3.0, target, valid)) == pytest.approx(expected, rel=1e-3)
    assert float(ssi_l1_loss(target * 2.0 + 1.0, target, valid)) < 1e-4


@pytest.mark.parametrize(
    ("name", "torch_cls", "kwargs"),
    [
        ("MultiStepLR", torch.optim.lr_scheduler.MultiStepLR, {"milestones": [5, 12], "gamma": 0.1}),
        ("StepLR", torch.optim.lr_scheduler.StepLR, {"step_size": 4, "gamma": 0.5}),
    ],
)
def test_step_schedules_match_torch(name, torch_cls, kwargs):
    cfg = OptimConfig(lr=1.0, lr_scheduler=name, lr_steps=[5, 12], lr_step_size=4,
                      lr_decay=kwargs["gamma"], warmup_steps=0, min_lr=0.0)
    ours_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ours, ref = build_scheduler(ours_opt, cfg, total_steps=20), torch_cls(ref_opt, **kwargs)
    for _ in range(20):
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])
        ours_opt.step(), ref_opt.step(), ours.step(), ref.step()


def test_warmup_cosine_and_onecycle_shapes():
    cos = LRMultiplier("CosineAnnealingLR", total_steps=110, warmup_steps=10, lr=1e-3, min_lr=1e-5)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.01 + 0.99 * 0.5) and cos(110) == pytest.approx(0.01)
    one = LRMultiplier("OneCycleLR", total_steps=100, warmup_steps=10, lr=1.0, min_lr=0.0)
    assert one(0) == pytest.approx(1 / 25) and one(10) == pytest.approx(1.0) and one(100) == pytest.approx(0.0)
    poly = LRMultiplier("PolynomialLR", total_steps=100, lr=1.0, min_lr=0.1)
    assert poly(0) == pytest.approx(1.0) and poly(100) == pytest.approx(0.1)
    assert LRMultiplier("LambdaLR", total_steps=100, warmup_steps=4)(50) == 1.0


def test_scheduler_state_is_only_the_step():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, OptimConfig(lr=1.0, lr_scheduler="CosineAnnealingLR", warmup_steps=0, min_lr=0.0), 10)
    for _ in range(5):
        opt.step(), sched.step()
    state = sched.state_dict()
    longer = build_scheduler(opt, OptimConfig(lr=1.0, lr_scheduler="CosineAnnealingLR", warmup_steps=0, min_lr=0.0), 20)
    longer.load_state_dict(state)
    assert longer.last_epoch == 5 and longer.lr_lambdas[0].total_steps == 20


def test_unique_output_names():
    paths = ["/d/teddy/im0.png", "/d/cones/im0.png", "/d/x/left/0001.png", "/e/x/left/0002.png"]
    assert unique_output_names(paths) == ["teddy_im0", "cones_im0", "0001", "0002"]
    assert unique_output_names(["/a/im0.png", "/a/im0.png"]) == ["im0_00000", "im0_00001"]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("optimizer", ["AdamW", "SGD"])
def test_optimizers_are_fused_only_on_request(optimizer, fused, monkeypatch):
    """The multi-tensor default, or PyTorch's fused step when asked (the constructor's arguments are
    recorded: CUDA parameters cannot be faked); a fused one is what Lightning refuses to clip, so
    :class:`DepthNetModule` clips for it (``test_train.py``)."""
    from lightning.fabric.plugins.precision.amp import _optimizer_handles_unscaling

    from skillbank.runtime.training.schedule import build_optimizer

    seen = {}
    cls = getattr(torch.optim, optimizer)

    class Recording(cls):
        def __init__(self, params, **kwargs):  # noqa: ANN001
            seen.update(kwargs)
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, optimizer, Recording)
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), OptimConfig(optimizer=optimizer), fused=fused)
    assert isinstance(opt, Recording) and bool(seen.get("fused")) == fused
    assert _optimizer_handles_unscaling(opt) == fused
