"""Host cost of the CUDA-graphed step's autograd node, paid before every forward graph launch.

``train.cuda_graph`` replays the step through an autograd node. ``torch.cuda.make_graphed_callables``
builds one whose inputs are the batch and every parameter of the module (FFS bp2: 4 + 422); the node
of :mod:`runtime.training.graphed` takes the batch and one anchor tensor. This times, on the CPU
(the cost is host work; no graph is replayed: the stand-in graphs do nothing):

* ``node_all_params_us``: a node of ``make_graphed_callables``' shape (its ``Graphed`` function:
  forward over the user arguments, outputs detached) applied to the batch + FFS bp2's parameters;
* ``node_batch_anchor_us``: :class:`~runtime.training.graphed._ReplayedLoss` applied to the batch and
  the anchor (its forward's input checks included; the batch is the static buffers, so no copy);
* ``take_back_us``: :meth:`~runtime.training.graphed._CapturedLoss._take_back_gradients`, the pass
  over the parameters before a forward replay after gradients were handed out, every ``.grad`` unset
  (what a Lightning step sees after ``zero_grad(set_to_none=True)``).

    python benchmarks/graph_node_cost.py --out benchmarks/results/graph_node_cost_cpu2.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from skillbank.runtime.training.graphed import _CapturedLoss, _ReplayedLoss


def _bp2_params() -> list[torch.nn.Parameter]:
    from skillbank.runtime.networks.factory import build_network
    from skillbank.specs import ModelConfig

    torch.manual_seed(0)
    return list(build_network(ModelConfig(model_type="FastFoundationStereo")).parameters())


class _NoGraph:
    def replay(self) -> None:
        pass


def _all_params_node(batch: tuple[torch.Tensor, ...], params: list[torch.nn.Parameter]):
    """A node of ``make_graphed_callables``' shape over ``batch`` + ``params`` (no graph replayed)."""
    static_inputs, static_outputs = batch, (torch.zeros(()),)

    class Graphed(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            for i in range(len(batch)):
                if static_inputs[i].data_ptr() != inputs[i].data_ptr():
                    static_inputs[i].copy_(inputs[i])
            _NoGraph().replay()
            return tuple(o.detach() for o in static_outputs)

        @staticmethod
        def backward(ctx: Any, *grads: torch.Tensor) -> tuple[None, ...]:
            return (None,) * (len(batch) + len(params))

    def apply() -> Any:
        flat = torch.utils._pytree.arg_tree_leaves(*batch)
        return Graphed.apply(*(tuple(flat) + tuple(params)))
    return apply


def _stand_in_capture(batch: tuple[torch.Tensor, ...], params: list[torch.nn.Parameter]) -> _CapturedLoss:
    cap = _CapturedLoss.__new__(_CapturedLoss)
    cap.inputs, cap.loss, cap.grad_of_loss = batch, torch.zeros(()), torch.zeros(())
    cap.forward_graph = cap.backward_graph = _NoGraph()
    cap.grads = [(p, torch.zeros_like(p), True) for p in params if p.requires_grad]
    cap.handed_out = False
    return cap


def _median_us(fn, repeats: int, runs: int) -> float:
    for _ in range(repeats // 10):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        times.append((time.perf_counter() - t0) * 1e6 / repeats)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = _bp2_params()
    batch = (torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8))
    cap = _stand_in_capture(batch, params)
    anchor = torch.zeros((), requires_grad=True)

    def take_back() -> None:
        cap.handed_out = True
        cap._take_back_gradients()

    results = {
        "node_all_params_us": _median_us(_all_params_node(batch, params), args.repeats, args.runs),
        "node_batch_anchor_us": _median_us(lambda: _ReplayedLoss.apply(cap, anchor, *batch), args.repeats, args.runs),
        "take_back_us": _median_us(take_back, args.repeats, args.runs),
    }
    report = {
        "benchmark": __doc__.split("\n")[0],
        "machine": {"name": "2-core CPU (workplace container, shared with other jobs)", "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "torch": torch.__version__,
        "node_inputs": {"all_params": len(batch) + len(params), "batch_anchor": len(batch) + 1},
        "trainable_parameters": len(cap.grads),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    print(json.dumps(results), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
