"""The update block's weight gradients: per iteration (as autograd runs them) vs once over all iterations.

A training step of FFS bp2 (320x736, batch 2, 22 iterations) runs the refinement update 22 times
with the same weights; autograd computes every layer's weight gradient once per iteration (small
GEMMs: ~20 convolutions and linears at 80x184) and adds the 22 results up. The same gradient is
one GEMM over all iterations' inputs and output gradients. This times, for the real layers of the
padded bp2 update block (their inputs captured from one bf16 channels_last forward), on random
output gradients, as CUDA graphs (GPU time, no launch overhead):

* ``per_iteration``: per layer and iteration a weight + bias gradient (``convolution_backward`` /
  ``mm``) added into an fp32 gradient (what autograd does);
* ``batched``: per layer one ``cat`` of the 22 inputs and of the 22 output gradients, one weight +
  bias gradient, one cast into the fp32 gradient;
* ``batched_no_cat``: the same without the ``cat`` (inputs already stored in one buffer).

    python benchmarks/update_wgrad.py --out benchmarks/results/update_wgrad_h200.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from cuda_timing import capture_graph, time_cuda
from torch import nn
from torch.overrides import TorchFunctionMode
from train_throughput import build_model

from skillbank.runtime.networks.deferred_weight_grads import weight_grads


class _Capture(TorchFunctionMode):
    """Records every conv2d / linear call: (kind, input, weight, bias, padding, groups)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in (F.conv2d, torch.conv2d):
            x, w = args[0], args[1]
            b = args[2] if len(args) > 2 else kwargs.get("bias")
            pad = args[4] if len(args) > 4 else kwargs.get("padding", 0)
            groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
            self.calls.append({"kind": "conv", "x": x, "w": w, "b": b, "padding": pad, "groups": groups})
        elif func is F.linear:
            x, w = args[0], args[1]
            b = args[2] if len(args) > 2 else kwargs.get("bias")
            self.calls.append({"kind": "linear", "x": x, "w": w, "b": b})
        return func(*args, **kwargs)


def capture_layers(iters: int, device: str = "cuda") -> list[dict[str, Any]]:
    """The update block's weighted layers as they run (a fused convolution as one layer with the
    concatenated weight), each with ``iters`` random inputs and output gradients of its shapes."""
    model = build_model({"cl", "pad"})
    block = model.update_block
    b, h, w = 2, 80, 184
    hidden = block.gru04.small_gru.convz.out_channels
    ctx = block.gru04.conv0[0].in_channels - block.encoder.conv.out_channels - 1
    lookup = block.encoder.convc1.in_channels
    cl = torch.channels_last
    net = torch.randn(b, hidden, h, w, device=device, dtype=torch.bfloat16).contiguous(memory_format=cl)
    inp = torch.randn(b, ctx, h, w, device=device, dtype=torch.bfloat16).contiguous(memory_format=cl)
    corr = torch.randn(b, lookup, h, w, device=device, dtype=torch.bfloat16).contiguous(memory_format=cl)
    disp = torch.rand(b, 1, h, w, device=device) * 40
    att = torch.rand(b, 1, h, w, device=device, dtype=torch.bfloat16)
    mode = _Capture()
    with torch.autocast(device, dtype=torch.bfloat16), mode:
        block(net, inp, corr, disp, att)
    layers = []
    for c in mode.calls:
        weight = c["w"].detach()
        if c["kind"] == "conv":
            layer = nn.Conv2d(weight.shape[1] * c["groups"], weight.shape[0], tuple(weight.shape[-2:]),
                              padding=c["padding"], groups=c["groups"], bias=c["b"] is not None)
        else:
            layer = nn.Linear(weight.shape[1], weight.shape[0], bias=c["b"] is not None)
        layer = layer.to(device=device, dtype=torch.bfloat16).requires_grad_(False)
        layer.weight.copy_(weight)
        x = c["x"].detach().to(torch.bfloat16)
        if c["kind"] == "conv":
            x = x.contiguous(memory_format=cl)
            y = layer(x)
        else:
            x = x.reshape(-1, x.shape[-1]).contiguous()
            y = layer(x)
        g = torch.Generator(device=device).manual_seed(len(layers))
        layers.append({
            "kind": c["kind"], "layer": layer,
            "xs": [torch.randn(x.shape, device=device, generator=g, dtype=x.dtype).contiguous(
                memory_format=cl if x.dim() == 4 else torch.contiguous_format) for _ in range(iters)],
            "dys": [torch.randn(y.shape, device=device, generator=g, dtype=y.dtype).contiguous(
                memory_format=cl if y.dim() == 4 else torch.contiguous_format) for _ in range(iters)],
        })
    return layers


def weight_grad(layer: dict[str, Any], x: torch.Tensor, dy: torch.Tensor):
    """(weight gradient, bias gradient or None), as the training computes it (:func:`weight_grads`)."""
    gw, *gb = weight_grads(layer["layer"], x, dy)
    return gw, (gb[0] if gb else None)


def batched_errors(layers: list[dict[str, Any]]) -> list[float]:
    """Per layer: the bf16 weight gradient over the concatenated iterations against the fp32 sum of
    the per-iteration ones (relative norm)."""
    errors = []
    for layer in layers:
        fp32 = copy.deepcopy(layer["layer"]).float()
        ref = sum(weight_grads(fp32, x.float(), dy.float())[0] for x, dy in zip(layer["xs"], layer["dys"], strict=True))
        got = weight_grad(layer, torch.cat(layer["xs"]), torch.cat(layer["dys"]))[0].float()
        errors.append(((got - ref).norm() / ref.norm()).item())
    return errors


def make_fns(layers: list[dict[str, Any]]):
    grads = [(torch.zeros(l_["layer"].weight.shape, device=l_["xs"][0].device),
              torch.zeros(l_["layer"].weight.shape[0], device=l_["xs"][0].device)) for l_ in layers]

    def per_iteration():
        for layer, (gw_acc, gb_acc) in zip(layers, grads, strict=True):
            for x, dy in zip(layer["xs"], layer["dys"], strict=True):
                gw, gb = weight_grad(layer, x, dy)
                gw_acc.add_(gw)
                if gb is not None:
                    gb_acc.add_(gb)

    cats = [(torch.cat(l_["xs"]), torch.cat(l_["dys"])) for l_ in layers]

    def batched(cat: bool):
        def fn():
            for layer, (gw_acc, gb_acc), (xc, dyc) in zip(layers, grads, cats, strict=True):
                if cat:
                    xc, dyc = torch.cat(layer["xs"]), torch.cat(layer["dys"])
                gw, gb = weight_grad(layer, xc, dyc)
                gw_acc.copy_(gw)
                if gb is not None:
                    gb_acc.copy_(gb)
        return fn

    return {"per_iteration": per_iteration, "batched": batched(True), "batched_no_cat": batched(False)}, grads


def time_graph(fn, repeat: int) -> float:
    """Median milliseconds of one replay of ``fn`` captured in a CUDA graph."""
    graph, _ = capture_graph(fn)
    return statistics.median(time_cuda(graph.replay, repeat, warmup=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--iters", type=int, default=22)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    layers = capture_layers(args.iters)
    fns, grads = make_fns(layers)
    results: dict[str, Any] = {}
    for name, fn in fns.items():
        results[name] = {"ms": round(time_graph(fn, args.repeat), 3)}
        print(name, results[name], flush=True)
    # per layer, per-iteration vs batched (no cat), to see where the gain is
    per_layer = []
    for i, layer in enumerate(layers):
        sub, _ = make_fns([layer])
        row = {"kind": layer["kind"], "weight": list(layer["layer"].weight.shape), "x": list(layer["xs"][0].shape),
               "groups": getattr(layer["layer"], "groups", 1)}
        for name in ("per_iteration", "batched", "batched_no_cat"):
            row[name + "_ms"] = round(time_graph(sub[name], args.repeat), 4)
        per_layer.append(row)
        print(i, row, flush=True)
    report = {"benchmark": __doc__.split("\n")[0], "layers": len(layers), "iters": args.iters,
              "input": "bp2 padded, channels_last, bf16, batch 2 at 80x184 (320x736 crops)",
              "device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "results": results, "per_layer": per_layer,
              "batched_rel_err_vs_fp32_sum": [round(c, 5) for c in batched_errors(layers)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
