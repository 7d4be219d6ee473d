"""A tiny FFS exports to ONNX (opset 17) and onnxruntime reproduces PyTorch."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from ffs_configs import TINY, config

from skillbank.runtime.networks.factory import build_network

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE_PX = 1e-3     # measured ~1.5e-5 px on CPU (fp32)


class _TestMode(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, iters: int) -> None:
        super().__init__()
        self.model, self.iters = model, iters

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.model(left, right, iters=self.iters, test_mode=True)


@pytest.fixture(scope="module")
def exported() -> tuple[torch.nn.Module, bytes]:
    torch.manual_seed(0)
    model = build_network(config(TINY)).eval()
    # export() restores the wrapper's mode afterwards: keep it in eval so BatchNorm stays frozen
    wrapper = _TestMode(model, iters=3).eval()
    example = (torch.randn(1, 3, 64, 96), torch.randn(1, 3, 64, 96))
    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, example, buf, opset_version=17, dynamo=False,
                          input_names=["left", "right"], output_names=["disparity"],
                          dynamic_axes={"left": axes, "right": axes, "disparity": axes})
    return model, buf.getvalue()


def test_graph_has_no_grid_sample_and_uses_opset_17(exported):
    _, blob = exported
    graph = onnx.load_from_string(blob)
    onnx.checker.check_model(graph)
    ops = {node.op_type for node in graph.graph.node}
    assert "GridSample" not in ops and "Gather" in ops, "the lookup is a gather, not GridSample"
    assert graph.opset_import[0].version == 17


@pytest.mark.parametrize("shape", [(1, 3, 64, 96), (2, 3, 96, 128), (1, 3, 64, 224)])
def test_onnxruntime_matches_pytorch(exported, shape):
    model, blob = exported
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    left, right = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    got = session.run(None, {"left": left.numpy(), "right": right.numpy()})[0]
    with torch.no_grad():
        ref = model(left, right, iters=3, test_mode=True).numpy()
    assert got.shape == ref.shape == (shape[0], 1, shape[2], shape[3])
    assert abs(got - ref).max() < TOLERANCE_PX
