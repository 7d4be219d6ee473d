"""What the pruned (odd) channel widths of FFS bp2 cost: every conv at its real width vs rounded up to 8.

bp2 prunes widths to values such as 28 (3D volume), 60 (GRU hidden), 97/100 (GRU input/gating),
36 (disparity head), 12 (stem). cuDNN's tensor-core kernels want channel counts that are multiples
of 8 for fp16/bf16 channels-last tensors; other counts add ``nhwcAddPaddingKernel`` copies and may
select slower kernels. This script records every convolution FFS runs (one forward, ``--iters``
refinement iterations, hooks on the modules), then times each layer alone in half precision,
channels-last, at its real widths and with in/out channels rounded up to ``--multiple`` (zero weights
would keep the network's result exact), and sums the per-forward totals.

    python benchmarks/conv_alignment.py --out benchmarks/results/conv_alignment_h100.json

It answers "is padding the widths inside the network worth it" before anyone writes that code.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from cuda_timing import time_cuda
from torch import nn

CONV_TYPES = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def round_up(c: int, multiple: int) -> int:
    return c if c < 4 else -(-c // multiple) * multiple   # image (3) and single-plane (1) inputs stay


def record_convs(height: int, width: int, iters: int) -> OrderedDict[tuple, dict[str, Any]]:
    """Unique (module, input shape) of every conv one FFS bp2 forward runs, with call counts."""
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import ModelConfig

    model = build_network(ModelConfig(model_type="FastFoundationStereo")).cuda().eval()
    seen: OrderedDict[tuple, dict[str, Any]] = OrderedDict()

    def hook(name: str):
        def fn(mod: nn.Module, inputs: tuple, _out: torch.Tensor) -> None:
            key = (name, tuple(inputs[0].shape))
            entry = seen.setdefault(key, {"module": mod, "name": name, "shape": tuple(inputs[0].shape), "calls": 0})
            entry["calls"] += 1
        return fn

    for name, mod in model.named_modules():
        if isinstance(mod, CONV_TYPES):
            mod.register_forward_hook(hook(name))
    x = torch.randn(1, 3, height, width, device="cuda")
    with torch.inference_mode():
        model(x, x, iters=iters, test_mode=True)
    return seen


def clone_conv(mod: nn.Module, in_ch: int, out_ch: int) -> nn.Module:
    depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
    groups = in_ch if depthwise else mod.groups
    kwargs = dict(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding, dilation=mod.dilation,
                  groups=groups, bias=mod.bias is not None)
    if isinstance(mod, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
        kwargs["output_padding"] = mod.output_padding
    return type(mod)(in_ch, out_ch, **kwargs)


def time_layer(mod: nn.Module, shape: tuple, in_ch: int, out_ch: int, dtype: torch.dtype, runs: int) -> float:
    conv = clone_conv(mod, in_ch, out_ch).cuda().to(dtype)
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    conv = conv.to(memory_format=fmt)
    x = torch.randn((shape[0], in_ch, *shape[2:]), device="cuda", dtype=dtype).contiguous(memory_format=fmt)
    with torch.inference_mode():
        times = time_cuda(lambda: conv(x), runs, warmup=5)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=736)
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--multiple", type=int, default=8)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16")
    parser.add_argument("--out", type=Path, default=Path("conv_alignment.json"))
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    dtype = torch.float16 if args.dtype == "fp16" else torch.bfloat16

    rows = []
    for entry in record_convs(args.height, args.width, args.iters).values():
        mod, shape = entry["module"], entry["shape"]
        pin, pout = round_up(mod.in_channels, args.multiple), round_up(mod.out_channels, args.multiple)
        real = time_layer(mod, shape, mod.in_channels, mod.out_channels, dtype, args.runs)
        padded = real if (pin, pout) == (mod.in_channels, mod.out_channels) else \
            time_layer(mod, shape, pin, pout, dtype, args.runs)
        rows.append({"layer": entry["name"], "type": type(mod).__name__, "input": list(shape),
                     "channels": [mod.in_channels, mod.out_channels], "padded": [pin, pout],
                     "kernel": list(mod.kernel_size), "groups": mod.groups, "calls_per_forward": entry["calls"],
                     "ms_real": round(real, 4), "ms_padded": round(padded, 4)})
        print(f"{entry['name'][:44]:44s} {mod.in_channels:4d}->{mod.out_channels:<4d} x{entry['calls']} "
              f"{real * 1e3:8.1f} us -> {padded * 1e3:8.1f} us", flush=True)
    total_real = sum(r["ms_real"] * r["calls_per_forward"] for r in rows)
    total_padded = sum(r["ms_padded"] * r["calls_per_forward"] for r in rows)
    report = {
        "benchmark": "FFS bp2 convolutions alone, real widths vs widths rounded up to a multiple",
        "input": [1, 3, args.height, args.width], "iters": args.iters, "multiple": args.multiple,
        "dtype": args.dtype, "memory_format": "channels_last", "cudnn_benchmark": True,
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "total_ms_per_forward_real": round(total_real, 3),
        "total_ms_per_forward_padded": round(total_padded, 3),
        "layers": sorted(rows, key=lambda r: -(r["ms_real"] - r["ms_padded"]) * r["calls_per_forward"]),
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("device", "total_ms_per_forward_real", "total_ms_per_forward_padded")}))


if __name__ == "__main__":
    main()
