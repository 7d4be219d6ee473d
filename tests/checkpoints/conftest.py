"""Shared fixtures for the checkpoint tests: the bp2 manifest and a module tree under foreign names.

``data/ffs_bp2_state_dict.tsv`` is TAO's bp2 tensor manifest (722 rows; docs/networks.md):
every tensor of TAO's FFS bp2 network with its upstream pickle name and whether its owner runs.
"""

from __future__ import annotations

import csv
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

MANIFEST = Path(__file__).parent / "data" / "ffs_bp2_state_dict.tsv"


@dataclass(frozen=True)
class ManifestRow:
    key: str
    shape: tuple[int, ...]
    dtype: str
    kind: str
    numel: int
    owner: str
    runs: bool
    upstream: str | None


def _shape(text: str) -> tuple[int, ...]:
    return () if text == "scalar" else tuple(int(s) for s in text.split("x"))


@pytest.fixture(scope="session")
def manifest() -> list[ManifestRow]:
    with MANIFEST.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        ManifestRow(
            key=r["key"],
            shape=_shape(r["shape"]),
            dtype=r["dtype"],
            kind=r["kind"],
            numel=int(r["numel"]),
            owner=r["owner_module"],
            runs=r["owner_executed_in_forward"] == "True",
            upstream=None if r["upstream_pickle_key_inferred"] == "(absent)" else r["upstream_pickle_key_inferred"],
        )
        for r in rows
    ]


@pytest.fixture(scope="session")
def bp2_expected_shapes(manifest: list[ManifestRow]) -> dict[str, tuple[int, ...]]:
    """What our FFS's state_dict holds: the manifest rows whose owner runs."""
    return {r.key: r.shape for r in manifest if r.runs}


_DTYPES = {"float32": torch.float32, "int64": torch.int64, "int8": torch.int8}


def tensors_for(rows: list[ManifestRow], *, upstream_names: bool = False) -> OrderedDict[str, torch.Tensor]:
    """A tiny-valued fake checkpoint with the manifest's shapes (zeros; shapes are what matter)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for r in rows:
        name = r.upstream if upstream_names else r.key
        if name is None:
            continue
        out[name] = torch.zeros(r.shape, dtype=_DTYPES[r.dtype])
    return out


@pytest.fixture(scope="session")
def bp2_upstream_checkpoint(manifest: list[ManifestRow]) -> OrderedDict[str, torch.Tensor]:
    """The same tensors under upstream's pickle names (721: upstream has no ``dx``)."""
    return tensors_for(manifest, upstream_names=True)


@pytest.fixture(scope="session")
def bp2_tao_checkpoint(manifest: list[ManifestRow]) -> OrderedDict[str, torch.Tensor]:
    """All 722 tensors in TAO names, as a TAO FFS checkpoint holds them (never-run ones included)."""
    return tensors_for(manifest)


# ---- a small module tree saved under upstream's package names ---------------------------------------

FOREIGN_MODULES = ("core", "core.foundation_stereo", "Utils")


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)


class _TinyStereo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feature = nn.Sequential(_Block(), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False))
        self.classifier = nn.ModuleDict({"layers": nn.Sequential(nn.Conv3d(2, 1, 3))})
        self.scale = nn.Parameter(torch.tensor([1.5, -2.0]))
        self.register_buffer("dx", torch.arange(-4, 5, dtype=torch.int8).view(1, 1, 9, 1))
        self.register_buffer("scratch", torch.ones(3), persistent=False)
        self.unused = None
        self.args = {"max_disp": 192, "vit_size": "vitl"}
        self.act = torch.nn.functional.relu


@pytest.fixture()
def foreign_module_file(tmp_path: Path) -> Iterator[tuple[Path, OrderedDict[str, torch.Tensor]]]:
    """torch.save(model) of classes living in ``core.foundation_stereo`` / ``Utils``, then removed.

    Yields the file and the model's real ``state_dict()`` for comparison. After the yield-point the
    foreign packages no longer exist, so nothing can import them back.
    """
    core = types.ModuleType("core")
    stereo = types.ModuleType("core.foundation_stereo")
    utils = types.ModuleType("Utils")
    block_cls = type("ResBlock", (_Block,), {"__module__": "Utils"})
    model_cls = type("FastFoundationStereo", (_TinyStereo,), {"__module__": "core.foundation_stereo"})
    utils.ResBlock = block_cls
    stereo.FastFoundationStereo = model_cls
    core.foundation_stereo = stereo
    sys.modules.update({"core": core, "core.foundation_stereo": stereo, "Utils": utils})
    try:
        torch.manual_seed(0)
        model = model_cls()
        model.feature[0] = block_cls()  # a submodule from the second foreign package
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p))
            model.feature[0].bn.running_mean.copy_(torch.randn(4))
        expected = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
        path = tmp_path / "model_best_bp2_serialize.pth"
        torch.save(model, path)
    finally:
        for name in FOREIGN_MODULES:
            sys.modules.pop(name, None)
    yield path, expected


@pytest.fixture()
def upstream_ffs_pickle(manifest: list[ManifestRow], tmp_path: Path) -> Iterator[tuple[Path, dict[str, torch.Tensor]]]:
    """A whole-module pickle laid out like upstream's ``model_best_bp2_serialize.pth``.

    The module tree follows every upstream key of the manifest (timm EdgeNeXt names, ``.layers.``,
    ``.bn.``, ``atts.4``, no ``dx``); all modules are instances of one class living in
    ``core.foundation_stereo``, removed again before the test loads the file. Yields the file and the
    tensors by TAO key.
    """
    stereo = types.ModuleType("core.foundation_stereo")
    core = types.ModuleType("core")
    node_cls = type("UpstreamNode", (nn.Module,), {"__module__": "core.foundation_stereo"})
    stereo.UpstreamNode = node_cls
    sys.modules.update({"core": core, "core.foundation_stereo": stereo})
    try:
        torch.manual_seed(2)
        root = node_cls()
        by_tao: dict[str, torch.Tensor] = {}
        for r in manifest:
            if r.upstream is None:
                continue
            *path, leaf = r.upstream.split(".")
            module = root
            for part in path:
                if part not in module._modules:
                    module.add_module(part, node_cls())
                module = module._modules[part]
            if r.kind == "param":
                value = torch.randn(r.shape)
                module.register_parameter(leaf, nn.Parameter(value, requires_grad=r.runs))
            else:
                value = torch.randint(0, 100, r.shape, dtype=_DTYPES[r.dtype])
                if value.is_floating_point():
                    value = value.abs() + 0.5
                module.register_buffer(leaf, value)
            by_tao[r.key] = value.detach().clone()
        root.args = {"max_disp": 192, "valid_iters": 8}
        path_out = tmp_path / "model_best_bp2_serialize.pth"
        torch.save(root, path_out)
    finally:
        sys.modules.pop("core.foundation_stereo", None)
        sys.modules.pop("core", None)
    yield path_out, by_tao
