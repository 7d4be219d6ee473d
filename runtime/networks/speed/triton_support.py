"""Where this package's Triton kernels run: a GPU with Triton, or the CPU under ``TRITON_INTERPRET=1``.

Decided once, at import (Triton reads ``TRITON_INTERPRET`` when its kernels are defined), and kept in
module constants so that code traced by TorchDynamo can test it without a graph break.
"""

from __future__ import annotations

import os

import torch

try:
    import triton  # noqa: F401

    HAS_TRITON = True
except ImportError:
    HAS_TRITON = False

#: the tests run the kernels on the CPU with Triton's interpreter
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

__all__ = ["HAS_TRITON", "INTERPRET", "usable"]


def usable(t: torch.Tensor) -> bool:
    """Whether Triton kernels can run on ``t``'s device."""
    return HAS_TRITON and (t.is_cuda or INTERPRET)
