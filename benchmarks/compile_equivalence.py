"""Which compiled FFS region moves the first-step gradient away from eager's (GPU, float64)?

Trains the tiny test FFS (``tests/runtime/test_fast_paths.py``) one step eagerly and once per argument
with only the named regions compiled (``encode``, ``iteration``, ``upsample``; ``+`` joins several,
``all`` compiles every region), and prints the relative difference of the whole first-step gradient
and both losses. In float64 only the network's fp32 islands round, so what a region adds is rounding
that the tiny random network amplifies.

    python benchmarks/compile_equivalence.py encode iteration upsample all
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "runtime"))
import test_fast_paths as t  # noqa: E402


def main() -> None:
    batches = [tuple(x.double() if x.is_floating_point() else x for x in b) for b in t._batches("cuda", 1)]
    eager, eager_grads = t._train(t._no_dropout(t._tiny_model("cuda").double()), batches, graphed=False)
    for regions in sys.argv[1:] or ["all"]:
        torch._dynamo.reset()
        keep = None if regions == "all" else set(regions.split("+"))
        loss, grads = t._train(t._no_dropout(t._tiny_model("cuda").double()), batches, graphed=False,
                               compiled=True, keep=keep)
        flat = [torch.cat([g[n].reshape(-1) for n in sorted(eager_grads)]) for g in (grads, eager_grads)]
        print(f"{regions}: gradient rel {t._rel(*flat):.3g}, loss {loss[0]!r} (eager {eager[0]!r})", flush=True)


if __name__ == "__main__":
    main()
