"""Does the compiled FFS training step (``compile_regions``, Inductor) compute what the eager one does?

Same random weights, same batch (as ``train_throughput.py``), bf16 autocast + channels_last: the
train-mode outputs (init disparity and every refinement prediction), the sequence loss and the
gradient norm, eager vs compiled, with a finiteness check of each. Written to find out why a compiled
step went non-finite on the H100 (train_throughput.json, ``earlier_calls_same_session``).

    python benchmarks/train_compile_check.py --out compile_check.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from train_throughput import build_model, make_batch


def run(model: torch.nn.Module, data, iters: int, dtype) -> dict:  # noqa: ANN001
    from skillbank.runtime.training.loss import stereo_sequence_loss

    left, right, gt, valid = data
    model.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=dtype):
        init_disp, preds = model(left, right, iters=iters)
        loss, _ = stereo_sequence_loss(init_disp, preds, gt, valid, max_disparity=192)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    gnorm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
    return {"loss": float(loss), "grad_norm": float(gnorm),
            "init_finite": bool(torch.isfinite(init_disp).all()),
            "first_nonfinite_pred": next((i for i, p in enumerate(preds) if not torch.isfinite(p).all()), None),
            "pred_means": [round(float(p.float().mean()), 4) for p in preds],
            "init": init_disp.detach().float(), "final": preds[-1].detach().float()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=736)
    parser.add_argument("--iters", type=int, default=22)
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--out", type=Path, default=Path("compile_check.json"))
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    data = make_batch(args.batch, args.height, args.width)
    model = build_model(channels_last=True)
    eager = run(model, data, args.iters, dtype)
    model.compile_regions()
    t0 = time.perf_counter()
    compiled = run(model, data, args.iters, dtype)
    build_s = time.perf_counter() - t0
    again = run(model, data, args.iters, dtype)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": args.dtype,
              "first_compiled_step_s": round(build_s, 1),
              "init_max_abs_diff": float((eager["init"] - compiled["init"]).abs().max()),
              "final_max_abs_diff": float((eager["final"] - compiled["final"]).abs().max())}
    for name, r in (("eager", eager), ("compiled", compiled), ("compiled_again", again)):
        report[name] = {k: v for k, v in r.items() if k not in ("init", "final")}
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
