"""Which convolutions of the compiled FFS training step see tensors that are not channels_last.

Inductor runs a training graph's convolutions with the strides its FX graph traced (its layout
optimisation, which would make every 2D convolution channels_last, is off for graphs holding a
convolution with ``2 * out <= in`` channels, as the encoder and the iteration do). cuDNN then
copies every NCHW input, output gradient or weight of a channels_last convolution into
channels_last before it runs (``aten::contiguous < aten::convolution_backward`` in
``train_phases.py --sites``). This traces the training step's regions (forward and backward
graphs, as AOTAutograd hands them to Inductor) on the CPU and lists each ``convolution`` and
``convolution_backward`` whose input, (output) gradient or weight is neither channels_last nor
degenerate, with the FX node that made it and the model line it came from.

    python benchmarks/conv_layouts.py                 # bf16 autocast, channels_last, padded widths
    python benchmarks/conv_layouts.py --out /tmp/layouts.json

The strides are the fake-tensor strides of the trace, which follow eager PyTorch's rules for the
device (the CPU here: its convolutions pick channels_last under the same rule as cuDNN's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

import torch

#: the arguments of each convolution op that should share the convolution's memory format
ARGS = {torch.ops.aten.convolution.default: {"input": 0, "weight": 1},
        torch.ops.aten.convolution_backward.default: {"grad_output": 0, "input": 1, "weight": 2}}


def _layout(t: torch.Tensor) -> str:
    """"channels_last", "contiguous", "both" (degenerate sizes) or "strided"."""
    fmt = torch.channels_last if t.dim() == 4 else torch.channels_last_3d
    cl, nchw = t.is_contiguous(memory_format=fmt), t.is_contiguous()
    return "both" if cl and nchw else "channels_last" if cl else "contiguous" if nchw else "strided"


def _origin(node: torch.fx.Node) -> str:
    """The producer of a tensor argument: its op and the model source line it was traced from."""
    trace = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in trace.strip().splitlines() if ln.strip()]
    where = next((ln for ln in reversed(lines) if ln.startswith("File")), "")
    code = lines[-1] if lines else ""
    return f"{node.target} @ {where.split('site-packages/')[-1]} :: {code}"[:300]


def report_graph(gm: torch.fx.GraphModule, kind: str) -> list[dict[str, Any]]:
    """The convolutions of one graph whose tensors are not all channels_last (degenerate ones count as such)."""
    found = []
    for node in gm.graph.nodes:
        args = ARGS.get(node.target)
        if args is None:
            continue
        layouts = {}
        for name, i in args.items():
            arg = node.args[i]
            val = arg.meta.get("val") if isinstance(arg, torch.fx.Node) else None
            if isinstance(val, torch.Tensor) and val.dim() in (4, 5):
                layouts[name] = (_layout(val), list(val.shape), arg)
        if all(lay in ("channels_last", "both") for lay, _, _ in layouts.values()):
            continue
        found.append({
            "graph": kind, "op": str(node.target), "node": node.name,
            "tensors": {n: {"layout": lay, "shape": shape, "made_by": _origin(arg)}
                        for n, (lay, shape, arg) in layouts.items()},
            "conv_from": _origin(node),
        })
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--no-pad", action="store_true", help="pruned widths as they are")
    args = parser.parse_args()

    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from skillbank.runtime.networks.common.blocks import InstanceNorm2d, InstanceNorm3d
    from skillbank.runtime.networks.factory import build_network
    from skillbank.runtime.networks.speed.channel_padding import pad_channels_
    from skillbank.runtime.training.loss import stereo_loss_fn
    from skillbank.specs import ModelConfig

    found: list[dict[str, Any]] = []
    graphs: list[str] = []

    def compiler(kind: str):
        def compile_graph(gm: torch.fx.GraphModule, example_inputs: Any):
            graphs.append(kind)
            found.extend(report_graph(gm, f"{kind} {len(graphs)}"))
            return make_boxed_func(gm.forward)
        return compile_graph

    InstanceNorm2d.on_cpu = InstanceNorm3d.on_cpu = True    # their GPU path (the layout-keeping one)
    backend = aot_autograd(fw_compiler=compiler("forward"), bw_compiler=compiler("backward"))
    torch.manual_seed(0)
    model = build_network(ModelConfig(model_type="FastFoundationStereo"))
    if not args.no_pad:
        pad_channels_(model.eval(), training=True)
    model.train().to_channels_last().compile_regions(backend=backend)
    b, h, w = 1, args.height, args.width
    left = torch.randn(b, 3, h, w)
    right = torch.roll(left, shifts=-8, dims=3)
    gt = torch.full((b, 1, h, w), 8.0)
    valid = torch.ones_like(gt, dtype=torch.bool)
    ctx = contextlib.nullcontext() if args.fp32 else torch.autocast("cpu", dtype=torch.bfloat16)
    with ctx:
        loss = stereo_loss_fn(args.iters, 192)(model, left, right, gt, valid)
    loss.backward()
    result = {"graphs": graphs, "not_channels_last": found}
    for f in found:
        bad = {n: f"{t['layout']} {t['shape']} <- {t['made_by']}" for n, t in f["tensors"].items()
               if t["layout"] not in ("channels_last", "both")}
        print(f"[{f['graph']}] {f['node']} ({f['conv_from'][:120]})")
        for n, s in bad.items():
            print(f"    {n}: {s}")
    print(f"{len(found)} convolutions with non-channels_last tensors in {len(graphs)} graphs")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
