"""The training speed switches: train.channels_last, train.compile and train.cuda_graph.

CPU: the switches are accepted, a run with them trains to SUCCESS, and compile and CUDA graphs fall
back to the eager step with the reason logged; compiled regions run in train mode only (validation
images of any size stay eager); train.pad_channels trains like the unpadded network with TAO-shaped
checkpoints. A replayed step's backward accumulates gradients as autograd does (Python stand-ins for the graphs).
GPU (``-m gpu``, skipped without CUDA; run on the device): the graphed loss gives the
eager first loss, and the first-step gradients and five steps' losses within ten times the run-to-run
noise of two eager runs (a last batch of another shape runs eagerly), and two backwards accumulate as
eager ones do (a frozen parameter gets no gradient); the compiled + graphed step
gives the eager loss and (per compiled region) gradient in float64; dropout masks follow the per-step seed;
``depth_net train`` with every switch (bf16) succeeds.
"""

from __future__ import annotations

import logging

import pytest
import torch
from runtime_helpers import read_status, tiny_ffs_model, write_spec

from skillbank.runtime.networks.speed.channel_padding import pad_channels_
from skillbank.runtime.runner import run_action
from skillbank.runtime.training.graphed import (
    GraphedStereoLoss,
    _CapturedLoss,
    _ReplayedLoss,
    graph_unsupported_reason,
)
from skillbank.runtime.training.loss import stereo_loss_fn
from skillbank.runtime.training.module import compile_unsupported_reason

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_unsupported_reasons_are_specific():
    assert "CUDA device" in graph_unsupported_reason(torch.device("cpu"), 1, "fp32")
    assert "one GPU" in graph_unsupported_reason(torch.device("cuda", 0), 2, "bf16")
    assert "fp16" in graph_unsupported_reason(torch.device("cuda", 0), 1, "fp16")
    assert graph_unsupported_reason(torch.device("cuda", 0), 1, "bf16") is None


class _PythonGraph:
    """Stands in for a CUDA graph on the CPU: ``replay`` reruns a function over the static buffers."""

    def __init__(self, fn) -> None:  # noqa: ANN001
        self.replay = fn


def _python_captured(params: list[torch.Tensor], per_replay: list[float]) -> tuple[_CapturedLoss, list]:
    """A :class:`_CapturedLoss` whose graphs are Python: the loss is the input's sum, and the k-th
    backward replay fills every gradient buffer with ``per_replay[k] * grad_of_loss``. The forward
    replay fills the gradient buffers with NaN, as a CUDA graph's activations may (one memory pool)."""
    cap = _CapturedLoss.__new__(_CapturedLoss)
    cap.inputs, cap.loss, cap.grad_of_loss = (torch.zeros(3),), torch.zeros(()), torch.zeros(())
    cap.handed_out = False
    buffers = [torch.zeros(p.shape) for p in params]       # contiguous, whatever the parameter's layout
    values = iter(per_replay)

    def backward() -> None:
        value = next(values) * float(cap.grad_of_loss)
        for b in buffers:
            b.fill_(value)

    def forward() -> None:
        cap.loss.copy_(cap.inputs[0].sum())
        for b in buffers:
            b.fill_(float("nan"))

    cap.forward_graph = _PythonGraph(forward)
    cap.backward_graph = _PythonGraph(backward)
    cap.grads = [(p, b, b.stride() == p.stride()) for p, b in zip(params, buffers, strict=True)]
    return cap, buffers


def test_replayed_gradients_accumulate_as_autograd_does():
    """The replayed step's backward hands out gradients as autograd would: the captured buffer
    itself when ``.grad`` is unset, a sum when gradients accumulate (not the buffer the next replays
    rewrite), the new gradient after an in-place zero_grad, scaled by the incoming gradient, in the
    parameter's layout; the anchor gets none."""
    dense = torch.nn.Parameter(torch.zeros(4))
    nhwc = torch.nn.Parameter(torch.zeros(2, 3, 2, 2).to(memory_format=torch.channels_last))
    cap, buffers = _python_captured([dense, nhwc], [1.0, 2.0, 5.0, 1.0])
    anchor = torch.zeros((), requires_grad=True)
    x = torch.tensor([1.0, 2.0, 3.0])

    loss = _ReplayedLoss.apply(cap, anchor, x)
    assert float(loss) == 6.0 and loss.requires_grad
    loss.backward()
    assert dense.grad.data_ptr() == buffers[0].data_ptr()              # no copy
    assert nhwc.grad.stride() == nhwc.stride() and torch.all(nhwc.grad == 1.0)
    _ReplayedLoss.apply(cap, anchor, x).backward()                     # accumulate: 1 + 2
    assert torch.all(dense.grad == 3.0) and torch.all(nhwc.grad == 3.0)
    dense.grad.zero_()                                                 # zero_grad(set_to_none=False)
    nhwc.grad.zero_()
    _ReplayedLoss.apply(cap, anchor, x).backward()
    assert torch.all(dense.grad == 5.0) and torch.all(nhwc.grad == 5.0)
    dense.grad = nhwc.grad = None
    (3 * _ReplayedLoss.apply(cap, anchor, x)).backward()
    assert torch.all(dense.grad == 3.0) and torch.all(nhwc.grad == 3.0)
    assert anchor.grad is None


def test_compile_reasons_are_specific():
    ffs = _tiny_model("cpu")
    assert "compiled training is for CUDA" in compile_unsupported_reason(ffs, torch.device("cpu"))
    assert "Conv2d has no compiled training path" in compile_unsupported_reason(
        torch.nn.Conv2d(1, 1, 1), torch.device("cuda", 0))
    assert compile_unsupported_reason(ffs, torch.device("cuda", 0)) is None


def test_switches_on_cpu_train_eagerly_and_say_why(tmp_path, tiny_spec, caplog):
    tiny_spec["train"].update(channels_last=True, cuda_graph=True, compile=True, num_epochs=1)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    with caplog.at_level(logging.WARNING, logger="depth_net"):
        assert run_action("train", str(spec), []) == 0
    assert "train.cuda_graph: the model is on cpu" in caplog.text
    assert "train.compile: the model is on cpu; compiled training is for CUDA devices" in caplog.text
    assert read_status(tmp_path / "results" / "train")[-1]["status"] == "SUCCESS"


def test_pad_channels_skips_networks_and_strategies_it_does_not_serve(caplog):
    """Not FFS, or FFS under multi-GPU FSDP: a warning and the original widths (and under FSDP
    autograd's own weight gradients, not the deferred ones)."""
    from skillbank.runtime.training.module import DepthNetModule
    from skillbank.specs import load_spec

    fsdp = load_spec(None, data={"model": tiny_ffs_model(), "train": {
        "pad_channels": True, "distributed_strategy": "fsdp", "num_gpus": 2, "gpu_ids": [0, 1]}})
    mono = load_spec(None, data={"model": {"model_type": "MetricDepthAnything", "encoder": "vits"},
                                 "train": {"pad_channels": True}})
    with caplog.at_level(logging.WARNING, logger="depth_net"):
        for spec in (fsdp, mono):
            module = DepthNetModule(spec)
            assert not getattr(module.model, "padding_maps", None)
            if spec is fsdp:
                assert module.model.deferred_weight_grads is False
    assert "train.pad_channels: not with distributed_strategy fsdp" in caplog.text
    assert "has no padded widths (FastFoundationStereo has); training as is" in caplog.text


def test_training_only_regions_are_compiled_in_train_mode_only():
    """``compile_regions(training_only=True)`` (train.compile): compiled in train mode; validation
    (eval mode) runs the eager regions, so images of new sizes do not recompile."""
    model = _tiny_model("cpu").compile_regions(training_only=True, backend="eager")
    speed = model.speed
    assert speed.region(model, "encode") is speed.compiled["encode"]
    model.eval()
    assert speed.region(model, "encode") == model._encode and speed.region(model, "iteration") == model._iteration
    model.compile_regions(backend="eager")                     # evaluate.compile: eval mode too
    assert speed.region(model, "iteration") is speed.compiled["iteration"]


def _tiny_model(device: str) -> torch.nn.Module:
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import load_spec

    torch.manual_seed(0)
    return build_network(load_spec(None, data={"model": tiny_ffs_model()}).model).to(device).train()


def _batches(device: str, n: int, shape=(2, 3, 64, 96)) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(n):
        left = torch.randn(*shape, generator=g)
        right = torch.roll(left, -5, dims=3)
        gt = torch.full((shape[0], 1, *shape[2:]), 5.0)
        valid = torch.rand(gt.shape, generator=g) > 0.1
        out.append(tuple(t.to(device) for t in (left, right, gt, valid)))
    return out


def _train(model: torch.nn.Module, batches, graphed: bool, compiled: bool = False, keep: set[str] | None = None
           ) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Train on ``batches``; returns the losses and the gradients of the first step. ``keep``: the
    compiled regions to keep (the others run eagerly)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if compiled:
        model.compile_regions(training_only=True)
        if keep is not None:
            model.speed.compiled = {name: fn for name, fn in model.speed.compiled.items() if name in keep}
    loss_fn = stereo_loss_fn(3, 64)
    step = GraphedStereoLoss(model, loss_fn) if graphed else (lambda *b: loss_fn(model, *b))
    losses, first_grads = [], {}
    for i, batch in enumerate(batches):
        torch.manual_seed(100 + i)
        loss = step(*batch)
        loss.backward()
        if i == 0:
            first_grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
    if graphed:
        assert step.captured
    return losses, first_grads


def _no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


@pytest.mark.gpu
@cuda
def test_graphed_loss_trains_like_eager():
    """Graphed and eager training agree as closely as two eager runs agree with each other.

    GPU backward passes are not bit-reproducible (cuDNN weight gradients and the lookup's gather
    backward accumulate with atomics), so the reference tolerance is measured: a second eager run.
    Dropout is off here; its seeding is checked below.
    """
    batches = _batches("cuda", 4) + _batches("cuda", 1, shape=(1, 3, 64, 128))   # last: another shape
    eager, eager_grads = _train(_no_dropout(_tiny_model("cuda")), batches, graphed=False)
    again, again_grads = _train(_no_dropout(_tiny_model("cuda")), batches, graphed=False)
    graphed, graph_grads = _train(_no_dropout(_tiny_model("cuda")), batches, graphed=True)
    assert eager[0] > 0 and graph_grads.keys() == eager_grads.keys()
    assert abs(graphed[0] - eager[0]) <= 1e-5 * eager[0], "the first forward must match"
    noise = max(_rel(again_grads[n], eager_grads[n]) for n in eager_grads)
    worst = max(eager_grads, key=lambda n: _rel(graph_grads[n], eager_grads[n]))
    assert _rel(graph_grads[worst], eager_grads[worst]) <= max(10 * noise, 1e-4), (worst, noise)
    loss_noise = max(abs(a - b) for a, b in zip(again, eager, strict=True))
    for g, e in zip(graphed, eager, strict=True):
        assert abs(g - e) <= 10 * loss_noise + 1e-4 * e, (graphed, eager, again)


@pytest.mark.gpu
@cuda
def test_graphed_gradients_accumulate_and_skip_frozen_parameters():
    """Two graphed backwards without zeroing sum their gradients as two eager ones do; a frozen
    parameter gets no gradient."""
    batches = _batches("cuda", 2)
    grads = {}
    for graphed in (False, True):
        model = _no_dropout(_tiny_model("cuda"))
        frozen = next(model.parameters())
        frozen.requires_grad_(False)
        loss_fn = stereo_loss_fn(3, 64)
        step = GraphedStereoLoss(model, loss_fn) if graphed else (lambda *b, m=model, f=loss_fn: f(m, *b))
        for batch in batches:
            step(*batch).backward()
        assert frozen.grad is None
        grads[graphed] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads[True].keys() == grads[False].keys()
    # relative to the whole gradient: biases before a BatchNorm have mathematically zero gradients
    # (~1e-7 here) whose per-parameter relative noise between two eager runs exceeds 1
    total = torch.cat([g.flatten() for g in grads[False].values()]).norm()
    worst = max(grads[False], key=lambda n: float((grads[True][n] - grads[False][n]).norm()))
    assert float((grads[True][worst] - grads[False][worst]).norm() / total) <= 1e-3, worst


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize(("regions", "tolerance"), [("iteration", 1e-8), ("upsample", 1e-8), ("all", 1e-3)])
def test_compiled_training_gives_the_eager_gradients(regions, tolerance):
    """train.compile: the compiled regions (Inductor, CUDA-graphed) compute eager's loss and gradients.

    In float64, where only the network's fp32 islands (correlation, lookup, soft-argmin, upsampling
    weights) round; this tiny random network amplifies their rounding about a thousandfold (in fp32,
    any change of kernels moves its gradients by percents). Each refinement region compiled alone gives
    eager's first-step gradient to 1e-8 (H200: iteration 1e-13, upsampling 7e-10); the encoder alone
    moves it by 8.3e-5, as it did before this rewrite, and all regions together by 4.7e-4 (the islands'
    rounding differences meeting), so the whole step gets 1e-3. The loss agrees to 1e-6 in every case.
    """
    batches = [tuple(t.double() if t.is_floating_point() else t for t in b) for b in _batches("cuda", 1)]
    eager, eager_grads = _train(_no_dropout(_tiny_model("cuda").double()), batches, graphed=False)
    torch._dynamo.reset()
    model = _no_dropout(_tiny_model("cuda").double())
    keep = None if regions == "all" else {regions}
    comp, comp_grads = _train(model, batches, graphed=True, compiled=True, keep=keep)
    assert comp_grads.keys() == eager_grads.keys()
    flat = [torch.cat([g[n].reshape(-1) for n in sorted(eager_grads)]) for g in (comp_grads, eager_grads)]
    assert _rel(*flat) <= tolerance, _rel(*flat)
    assert abs(comp[0] - eager[0]) <= 1e-6 * eager[0], (comp, eager)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled_graphed"])
def test_deferred_weight_grads_on_the_gpu_give_autograds(compiled):
    """On CUDA the update's weight gradients run on a side stream (runtime/networks/speed/deferred_weight_grads.py),
    eagerly and inside the compiled, CUDA-graphed step: float64, the refinement regions compiled, the
    first step's gradients equal those autograd computes inside the iterations (1e-8) and the losses of
    three steps agree."""
    batches = [tuple(t.double() if t.is_floating_point() else t for t in b) for b in _batches("cuda", 3)]
    reference = _no_dropout(_tiny_model("cuda").double())
    reference.deferred_weight_grads = False
    ref, ref_grads = _train(reference, batches, graphed=False)
    torch._dynamo.reset()
    model = _no_dropout(_tiny_model("cuda").double())
    assert model.deferred_weight_grads is None            # automatic: on, on CUDA
    keep = {"update", "lookup_rows", "gather_lookup", "add_lookup_grad", "upsample"}
    got, got_grads = _train(model, batches, graphed=compiled, compiled=compiled, keep=keep)
    assert got_grads.keys() == ref_grads.keys()
    flat = [torch.cat([g[n].reshape(-1) for n in sorted(ref_grads)]) for g in (got_grads, ref_grads)]
    assert _rel(*flat) <= 1e-8, _rel(*flat)
    assert got == pytest.approx(ref, rel=1e-6), (got, ref)


@pytest.mark.gpu
@cuda
def test_graphed_dropout_follows_the_seed(monkeypatch):
    """Replays draw dropout masks from the reseeded CUDA generator: same seed, same loss; other seed,
    other masks; and the first replay matches the eager forward with the same seed. With cuDNN's
    deterministic engines only: otherwise cuDNN may pick one whose sums depend on timing, and replays
    of the same graph came out 1 ulp apart on an H100 (at any capture-stream priority)."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    batch = _batches("cuda", 1)[0]
    model = _tiny_model("cuda")
    loss_fn = stereo_loss_fn(3, 64)
    torch.manual_seed(7)
    eager = float(loss_fn(model, *batch))
    graphed = GraphedStereoLoss(model, loss_fn)
    values = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        values.append(float(graphed(*batch)))
    assert graphed.captured
    assert values[0] == values[1] and values[2] != values[0], values
    assert abs(values[0] - eager) <= 1e-5 * eager, (values, eager)


@pytest.mark.gpu
@cuda
def test_train_with_all_switches_on_one_gpu(tmp_path, tiny_spec):
    tiny_spec["train"].update(num_gpus=1, gpu_ids=[0], precision="bf16", channels_last=True, cuda_graph=True,
                              compile=True, num_epochs=2)
    tiny_spec["evaluate"]["num_gpus"] = tiny_spec["inference"]["num_gpus"] = 1
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    assert run_action("train", str(spec), []) == 0
    events = read_status(tmp_path / "results" / "train")
    assert [e["status"] for e in events] == ["STARTED", "RUNNING", "RUNNING", "SUCCESS"]
    assert torch.isfinite(torch.tensor(events[-1]["kpi"]["train_loss"]))


@pytest.mark.slow
def test_padded_training_matches_unpadded_and_keeps_checkpoint_shapes(tmp_path, tiny_spec):
    """train.pad_channels: the padded run ends at the unpadded run's weights (rounding only), its
    checkpoints have the unpadded names and shapes (optimiser moments included), and either kind of
    run resumes from either kind of checkpoint. The tolerance is ten times the difference a third,
    unpadded run makes with another thread count (its rounding noise, amplified by four steps of a
    tiny random network: ~1e-4 on some BatchNorm statistics). SGD: AdamW would turn the rounding noise of the
    (mathematically zero) gradients of conv biases before BatchNorm into full-size steps."""
    tiny_spec["dataset"].pop("val_dataset")
    tiny_spec["train"].update(num_epochs=2)
    tiny_spec["train"]["optim"].update(optimizer="SGD", lr_scheduler="MultiStepLR", lr_steps=[3], warmup_steps=2)
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec)
    plain, padded, noise = tmp_path / "plain", tmp_path / "padded", tmp_path / "noise"
    assert run_action("train", str(spec), [f"train.results_dir={plain}"]) == 0
    assert run_action("train", str(spec), [f"train.results_dir={padded}", "train.pad_channels=true"]) == 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)      # other reduction orders: the run's rounding noise
    try:
        assert run_action("train", str(spec), [f"train.results_dir={noise}"]) == 0
    finally:
        torch.set_num_threads(threads)
    a, b, c = (torch.load(d / "model_epoch_001_step_00004.pth", map_location="cpu", weights_only=False)
               for d in (plain, padded, noise))
    assert set(a["state_dict"]) == set(b["state_dict"])
    padded_model = pad_channels_(_tiny_model("cpu"), training=True)
    assert padded_model.padding_maps, "the tiny widths must exercise the padding"
    for key, value in a["state_dict"].items():
        assert b["state_dict"][key].shape == value.shape, key
        if value.is_floating_point():
            floor = (c["state_dict"][key] - value).abs().max().item()
            diff = (b["state_dict"][key] - value).abs().max().item()
            assert diff <= 10 * floor + 1e-5, (key, diff, floor)
    for i, state in a["optimizer_states"][0]["state"].items():
        for name, moment in state.items():
            assert b["optimizer_states"][0]["state"][i][name].shape == moment.shape, (i, name)
    # resume across the switch, both ways
    assert run_action("train", str(spec), [f"train.results_dir={padded}", "train.num_epochs=3"]) == 0
    assert run_action("train", str(spec), [f"train.results_dir={plain}", "train.num_epochs=3",
                                           "train.pad_channels=true"]) == 0
    for folder in (plain, padded):
        third = torch.load(folder / "model_epoch_002_step_00006.pth", map_location="cpu", weights_only=False)
        assert third["global_step"] == 6 and third["state_dict"].keys() == a["state_dict"].keys()
        for i, state in a["optimizer_states"][0]["state"].items():
            assert third["optimizer_states"][0]["state"][i]["momentum_buffer"].shape == state["momentum_buffer"].shape


@pytest.mark.parametrize("key", ["compile", "pad_channels"])
def test_a_bad_switch_value_is_one_line_naming_the_key(key):
    from skillbank.specs import load_spec
    from skillbank.specs.errors import SpecError

    with pytest.raises(SpecError, match=rf"^Configuration error: train.{key}: expected true or false, got 'maybe'$"):
        load_spec(None, data={"model": tiny_ffs_model(), "train": {key: "maybe"}})
