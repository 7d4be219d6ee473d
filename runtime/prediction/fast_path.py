"""Which inference path evaluate/inference take, and the runner that times it.

:func:`plan_fast_path` decides from the spec section (``optimize``, ``precision``, ``compile``,
``cuda_graph``), the device and the network, without touching either, so the decision is tested on a CPU:

* a GPU, a FastFoundationStereo, ``optimize`` unset or true: the fast path: BatchNorm folded, widths
  padded, channels-last, fp16 weights, compiled regions and a CUDA graph per input shape; each of
  ``precision``, ``compile``, ``cuda_graph`` can still be set on its own;
* ``optimize: false``: eager fp32 unless the other keys ask for something;
* a CPU: eager (``optimize: true`` there folds BatchNorm and pads the widths, still eager);
* another network with ``optimize`` unset: eager, said once in the log.

:class:`Predictor` wraps the model (or a deploy engine) behind the network's call signature, replays a
CUDA graph per input shape when asked, logs the first call's cost per shape (compile + capture) and
times every call after it: :meth:`Predictor.ms_per_pair` is the median steady latency per pair.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from skillbank.runtime.errors import ConfigurationError

log = logging.getLogger("depth_net")

FAST_MODEL = "FastFoundationStereo"
#: input shapes that get their own CUDA graph; later shapes run without one (each graph holds memory)
MAX_GRAPHS = 8


@dataclass(frozen=True)
class FastPathPlan:
    optimize: bool       # fold BatchNorm, pad widths (+ channels-last on a GPU)
    precision: str       # fp32 | fp16 | bf16 weights
    compile: bool        # compiled regions
    cuda_graph: bool     # one CUDA graph per input shape
    default: bool        # the GPU default fast path (nothing set by the user)
    note: str = ""       # why a default did not apply

    @property
    def transforms(self) -> bool:
        return self.optimize or self.compile or self.precision != "fp32"

    def describe(self) -> str:
        if not (self.transforms or self.cuda_graph):
            return f"eager {self.precision}"
        parts = [p for p, on in (("folded BN + padded widths", self.optimize), (self.precision, True),
                                 ("compiled regions", self.compile), ("CUDA graph per shape", self.cuda_graph)) if on]
        return ("fast path: " if self.default else "") + ", ".join(parts)


def plan_fast_path(section: Any, *, action: str, device_type: str, model_type: str) -> FastPathPlan:
    """The path for ``section`` (evaluate/inference) on ``device_type`` for ``model_type`` (see the module doc).

    Raises :class:`ConfigurationError` naming the key for a CUDA graph asked for on a CPU."""
    gpu = device_type == "cuda"
    optimize = getattr(section, "optimize", None)
    precision = getattr(section, "precision", None)
    compile_ = getattr(section, "compile", None)
    cuda_graph = getattr(section, "cuda_graph", None)
    note = ""
    fast = gpu and optimize is not False and model_type == FAST_MODEL
    if gpu and optimize is None and model_type != FAST_MODEL:
        note = f"the GPU fast path is built for {FAST_MODEL}; {model_type} runs eager"
    if cuda_graph and not gpu:
        raise ConfigurationError(f"{action}.cuda_graph: CUDA graphs need a GPU (num_gpus >= 1 on a machine with one)")
    plan = FastPathPlan(
        optimize=bool(optimize) if optimize is not None else fast,
        precision=precision or ("fp16" if fast else "fp32"),
        compile=compile_ if compile_ is not None else fast,
        cuda_graph=cuda_graph if cuda_graph is not None else fast,
        default=fast and optimize is None,
        note=note,
    )
    return plan


class Predictor:
    """``model`` behind its own call signature, with a CUDA graph per input shape and per-call timing.

    ``call(*inputs, iters=..., test_mode=True)`` (stereo) or ``call(image)`` (mono) returns a tensor on the
    model's device. ``on_new_shape(shape)`` runs before a shape's first call (the compile cache hook)."""

    def __init__(self, model: Callable[..., torch.Tensor], *, device: torch.device, cuda_graph: bool = False,
                 warm_first_call: bool = False, on_new_shape: Callable[[tuple[int, ...]], None] | None = None,
                 after_first_call: Callable[[tuple[int, ...]], None] | None = None,
                 max_graphs: int = MAX_GRAPHS) -> None:
        self.model = model
        self.device = device
        self.cuda_graph = cuda_graph and device.type == "cuda"
        #: the first call of a shape compiles or captures: time one more call for the steady latency
        self.warm_first_call = warm_first_call or self.cuda_graph
        self.on_new_shape, self.after_first_call = on_new_shape, after_first_call
        self.max_graphs = max_graphs
        self.plan: FastPathPlan | None = None
        self.graphs: dict[tuple, tuple[Any, list[torch.Tensor], torch.Tensor]] = {}
        self.pool = None
        self.first_call_s: dict[tuple, float] = {}
        self.steady_ms_per_pair: list[float] = []

    # --------------------------------------------------------------------------------------- timing
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def ms_per_pair(self) -> float | None:
        """Median steady latency per pair (ms), ``None`` before any steady call."""
        return statistics.median(self.steady_ms_per_pair) if self.steady_ms_per_pair else None

    # ---------------------------------------------------------------------------------------- calls
    def __call__(self, *inputs: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        key = tuple(tuple(x.shape) for x in inputs) + (tuple(sorted(kwargs.items())),)
        batch = inputs[0].shape[0]
        if key in self.first_call_s:
            t0 = time.perf_counter()
            out = self._run(key, inputs, kwargs)
            self._sync()
            self.steady_ms_per_pair.append((time.perf_counter() - t0) * 1e3 / batch)
            return out
        if self.on_new_shape is not None:
            self.on_new_shape(tuple(inputs[0].shape))
        self._sync()
        t0 = time.perf_counter()
        out = self._first(key, inputs, kwargs)
        self._sync()
        self.first_call_s[key] = elapsed = time.perf_counter() - t0
        if self.after_first_call is not None:
            self.after_first_call(tuple(inputs[0].shape))
        if self.warm_first_call:
            log.info("first pair at %s: %.1f s (compile%s)", "x".join(map(str, inputs[0].shape[-2:])), elapsed,
                     " + CUDA graph capture" if key in self.graphs else "")
            t0 = time.perf_counter()
            out = self._run(key, inputs, kwargs)
            self._sync()
            self.steady_ms_per_pair.append((time.perf_counter() - t0) * 1e3 / batch)
        else:
            self.steady_ms_per_pair.append(elapsed * 1e3 / batch)
        return out

    def _run(self, key: tuple, inputs: tuple[torch.Tensor, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        graph = self.graphs.get(key)
        if graph is None:
            return self.model(*inputs, **kwargs)
        g, static_in, static_out = graph
        for dst, src in zip(static_in, inputs, strict=True):
            dst.copy_(src, non_blocking=True)
        g.replay()
        return static_out.clone()

    def _first(self, key: tuple, inputs: tuple[torch.Tensor, ...], kwargs: dict[str, Any]) -> torch.Tensor:
        if not self.cuda_graph or len(self.graphs) >= self.max_graphs:
            if self.cuda_graph:
                log.warning("more than %d input shapes: shape %s runs without a CUDA graph (set input_height/"
                            "input_width to one size)", self.max_graphs, list(inputs[0].shape))
            return self.model(*inputs, **kwargs)
        static_in = [x.clone() for x in inputs]
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):   # compiles, autotunes cuDNN, settles the allocator
                self.model(*static_in, **kwargs)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                static_out = self.model(*static_in, **kwargs)
        except Exception as exc:  # a region that cannot be captured: run this shape without a graph
            log.warning("CUDA graph capture failed for %s (%s); running without one", list(inputs[0].shape), exc)
            return self.model(*inputs, **kwargs)
        # the graph's outputs live in a pool that every graph shares: callers get a copy
        self.graphs[key] = (graph, static_in, static_out)
        return self._run(key, inputs, kwargs)
