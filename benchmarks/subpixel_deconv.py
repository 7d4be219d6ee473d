"""FFS bp2's transposed convolutions: cuDNN's transposed kernels against a convolution + pixel shuffle.

A transposed convolution with stride ``s`` writes each output phase ``a`` (the output index modulo
``s``, per dimension) from a fixed subset of its taps: output ``s*m + a`` reads input ``m + d``
through tap ``t = a + p - s*d``. So it equals one ordinary stride-1 convolution at the input's
resolution with ``s**n`` times the output channels (one group per phase, zeros for the taps a phase
does not use), whose outputs are then interleaved (a pixel shuffle); each tap lands in exactly one
phase and offset, so values and gradients are exact up to the summation order (``--check``, float64).
cuDNN runs that convolution with Hopper forward kernels where the transposed one is a data-gradient
kernel, which looked like a saving for the upsampling head (~0.7 ms for each of its two).

Measured (``results/subpixel_deconv_h100.json``, H100): the forward is faster under ``torch.compile``
for the two large 2D ones (0.39 vs 0.47, 0.93 vs 1.23 ms), but forward + backward is not (1.12 vs
0.90, 2.16 vs 2.12 ms) and the 3D ones are slower either way; a whole training step with every
transposed convolution swapped took 72.63 against 72.17 ms. Not used by the networks.

This times both, forward and forward + backward (input, weight and bias gradients), bf16
channels_last, eager launches timed with CUDA events (each a few hundred microseconds: launch
overhead is small beside them), on the shapes of a 320x736 batch-2 training step (channel-padded
widths): the upsampling head's two (22 iterations' batch of 44) and the hourglass's three.
``subpixel_compiled`` is the sub-pixel function under ``torch.compile`` (as in the compiled regions).

    python benchmarks/subpixel_deconv.py --check
    python benchmarks/subpixel_deconv.py --out benchmarks/results/subpixel_deconv_h100.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ConvTranspose = nn.ConvTranspose2d | nn.ConvTranspose3d


#: name -> (module arguments, input shape)
SHAPES = {
    "spx_2_gru.conv1 (2D 32->32, 4x4/2)": ((2, 32, 32, 4, 2, 1, 0), (44, 32, 80, 184)),
    "spx_gru (2D 32->16, 4x4/2)": ((2, 32, 16, 4, 2, 1, 0), (44, 32, 160, 368)),
    "conv1_up (3D 64->32, 4/2)": ((3, 64, 32, 4, 2, 1, 0), (2, 64, 24, 40, 92)),
    "post16_to_8 (3D 128->64, 4/2)": ((3, 128, 64, 4, 2, 1, 0), (2, 128, 12, 20, 46)),
    "post32_to_16 (3D 192->128, 3/2 op 1)": ((3, 192, 128, 3, 2, 1, 1), (2, 192, 6, 10, 23)),
}


def _offsets(k: int, s: int, p: int) -> tuple[int, int]:
    """The input offsets ``d`` any phase reads: (smallest, largest)."""
    ds = [(a + p - t) // s for a in range(s) for t in range(k) if (a + p - t) % s == 0]
    return min(ds), max(ds)


def _tap_index(kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]) -> list[list[int]]:
    """``index[phase][j]``: the flat transposed-kernel tap that conv tap ``j`` of ``phase`` uses, or
    ``prod(kernel)`` (a zero) where the phase uses none. Phases and taps row-major over dimensions."""
    spans = [_offsets(k, s, p) for k, s, p in zip(kernel, stride, padding, strict=True)]
    sizes = [hi - lo + 1 for lo, hi in spans]
    zero = 1
    for k in kernel:
        zero *= k
    index = []
    for phase in itertools.product(*(range(s) for s in stride)):
        row = []
        for taps in itertools.product(*(range(n) for n in sizes)):
            flat = 0
            for a, j, (lo, _), k, s, p in zip(phase, taps, spans, kernel, stride, padding, strict=True):
                t = a + p - s * (j + lo)
                if not 0 <= t < k:
                    flat = zero
                    break
                flat = flat * k + t
            row.append(flat)
        index.append(row)
    return index


def subpixel_weight(weight: torch.Tensor, stride: tuple[int, ...], padding: tuple[int, ...]) -> torch.Tensor:
    """The ordinary convolution's weight ``(C_out * S, C_in, *K)`` for a transposed convolution's
    ``(C_in, C_out, *k)``; output channel ``c * S + phase`` (``S = prod(stride)``)."""
    c_in, c_out, *kernel = weight.shape
    index = torch.tensor(_tap_index(tuple(kernel), stride, padding), device=weight.device)
    sizes = [hi - lo + 1 for lo, hi in (_offsets(k, s, p) for k, s, p in zip(kernel, stride, padding, strict=True))]
    flat = torch.cat([weight.flatten(2), weight.new_zeros(c_in, c_out, 1)], dim=2)
    w = flat[:, :, index]                                        # (C_in, C_out, S, prod(K))
    return w.permute(1, 2, 0, 3).reshape(c_out * index.shape[0], c_in, *sizes)


def subpixel_conv_transpose(x: torch.Tensor, module: ConvTranspose) -> torch.Tensor:
    """``module(x)`` computed as a convolution and a pixel shuffle (see the module docstring); the
    output keeps ``x``'s memory format (channels_last in, channels_last out)."""
    n = x.dim() - 2
    stride, padding = tuple(module.stride), tuple(module.padding)
    spans = [_offsets(k, s, p) for k, s, p in zip(module.kernel_size, stride, padding, strict=True)]
    weight = subpixel_weight(module.weight, stride, padding)
    phases = weight.shape[0] // module.out_channels
    bias = None if module.bias is None else module.bias.repeat_interleave(phases)
    if all(-lo == hi for lo, hi in spans):
        y = _conv(n)(x, weight, bias, padding=[hi for _, hi in spans])
    else:
        pads = [v for lo, hi in reversed(spans) for v in (-lo, hi)]
        y = _conv(n)(F.pad(x, pads), weight, bias)
    return _shuffle(y, stride, channels_last=_is_channels_last(x))


def _conv(n: int):  # noqa: ANN202
    return F.conv2d if n == 2 else F.conv3d


def _is_channels_last(x: torch.Tensor) -> bool:
    fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    return x.shape[1] > 1 and x.is_contiguous(memory_format=fmt) and not x.is_contiguous()


def _shuffle(y: torch.Tensor, stride: tuple[int, ...], channels_last: bool) -> torch.Tensor:
    """``(B, C * S, *size)`` with channel ``c * S + phase`` -> ``(B, C, *(size * stride))``."""
    b, cs, *size = y.shape
    n = len(size)
    c = cs // len(list(itertools.product(*(range(s) for s in stride))))
    out_size = [v * s for v, s in zip(size, stride, strict=True)]
    if channels_last:
        # physically (B, *size, C, *stride) -> (B, size_1, stride_1, ..., C): one copy, channels_last
        phys = y.permute(0, *range(2, n + 2), 1).reshape(b, *size, c, *stride)
        order = [0] + [v for i in range(n) for v in (1 + i, n + 2 + i)] + [n + 1]
        out = phys.permute(*order).reshape(b, *out_size, c)
        return out.permute(0, n + 1, *range(1, n + 1))
    grouped = y.reshape(b, c, *stride, *size)
    order = [0, 1] + [v for i in range(n) for v in (2 + n + i, 2 + i)]
    return grouped.permute(*order).reshape(b, c, *out_size)


def check() -> None:
    """Outputs and gradients equal the transposed convolution's in float64 (NCHW and channels_last)."""
    for (dims, _, _, k, s, p, op), _shape in SHAPES.values():
        for channels_last in (False, True):
            cls = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
            torch.manual_seed(0)
            m = cls(5, 3, k, stride=s, padding=p, output_padding=op).double()
            x = torch.randn(2, 5, *([4, 6, 7][-dims:]), dtype=torch.float64)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
            x.requires_grad_()
            ref = m(x)
            dy = torch.randn_like(ref)
            got = subpixel_conv_transpose(x, m)
            for g, r in zip((got, *torch.autograd.grad(got, (x, m.weight, m.bias), dy)),
                            (ref, *torch.autograd.grad(ref, (x, m.weight, m.bias), dy)), strict=True):
                torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)
    print("sub-pixel: outputs and input, weight and bias gradients equal the transposed convolutions' (float64)")


def _time(fn, m: nn.Module, x: torch.Tensor, dy: torch.Tensor, ref: list[torch.Tensor], runs: int) -> dict:
    from cuda_timing import time_cuda

    def both():
        y = fn(x, m)
        return (y, *torch.autograd.grad(y, (x, m.weight, m.bias), dy))

    out = both()
    err = [float((o.float() - r).abs().max() / r.abs().max()) for o, r in zip(out, ref, strict=True)]
    with torch.no_grad():
        forward = statistics.median(time_cuda(lambda: fn(x, m), runs, warmup=3))
    return {"ms_forward": round(forward, 4),
            "ms_forward_backward": round(statistics.median(time_cuda(both, runs, warmup=3)), 4),
            "max_rel_diff_vs_transposed": dict(zip(("out", "grad_x", "grad_w", "grad_b"), err, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--check", action="store_true", help="CPU float64 equivalence only")
    args = parser.parse_args()
    if args.check:
        check()
        return
    from cuda_timing import gpu_report, write_report

    torch.backends.cudnn.benchmark = True
    compiled = torch.compile(subpixel_conv_transpose, fullgraph=True, dynamic=False)
    variants = {"transposed": lambda x, m: m(x), "subpixel": subpixel_conv_transpose, "subpixel_compiled": compiled}
    results = {}
    for name, ((dims, cin, cout, k, s, p, op), shape) in SHAPES.items():
        cls = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
        torch.manual_seed(0)
        m = cls(cin, cout, k, stride=s, padding=p, output_padding=op).cuda().to(torch.bfloat16)
        m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        x = torch.randn(shape, device="cuda", dtype=torch.bfloat16).contiguous(memory_format=fmt).requires_grad_()
        dy = torch.randn_like(m(x)).contiguous(memory_format=fmt)
        ref = [t.float() for t in (m(x), *torch.autograd.grad(m(x), (x, m.weight, m.bias), dy))]
        row = {}
        for variant, fn in variants.items():
            try:
                row[variant] = _time(fn, m, x, dy, ref, args.runs)
            except Exception as exc:  # noqa: BLE001 - a variant that fails to run is a result too
                row[variant] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            print(name, variant, json.dumps(row[variant]), flush=True)
        results[name] = {"input": list(shape), "out_channels": cout, **row}
    report = gpu_report("transposed convolution vs convolution + pixel shuffle, bf16 channels_last, forward and "
                        "forward + backward (CUDA events, median of --runs calls)", results)
    write_report(args.out, report)


if __name__ == "__main__":
    main()
