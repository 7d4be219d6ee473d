"""The bp2 FFS state dict matches TAO's tensor manifest (ffs_bp2_state_dict.tsv) both ways."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from ffs_configs import BP2, config

from skillbank.runtime.networks.factory import build_network

TSV = Path(__file__).resolve().parents[1] / "checkpoints" / "data" / "ffs_bp2_state_dict.tsv"  # the bp2 manifest
BP2_FORWARD_PARAMS = 14_600_541


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) if t.dim() else "scalar"


@pytest.fixture(scope="module")
def bp2_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(config(BP2))


@pytest.fixture(scope="module")
def manifest() -> dict[str, tuple[str, str]]:
    if not TSV.is_file():
        pytest.skip(f"{TSV} not present")
    with TSV.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 722, "the manifest lists 722 tensors"
    return {r["key"]: (r["shape"], r["dtype"]) for r in rows if r["owner_executed_in_forward"] == "True"}


def test_every_executed_tensor_is_built_with_its_shape(bp2_model, manifest):
    ours = {k: _shape(v) for k, v in bp2_model.state_dict().items()}
    missing = sorted(set(manifest) - set(ours))
    extra = sorted(set(ours) - set(manifest))
    wrong = {k: (manifest[k][0], ours[k]) for k in manifest.keys() & ours.keys() if manifest[k][0] != ours[k]}
    assert not missing, f"keys TAO runs but we do not build: {missing[:10]}"
    assert not extra, f"keys we build that TAO does not run: {extra[:10]}"
    assert not wrong, f"shape mismatches (tsv, ours): {dict(list(wrong.items())[:10])}"


def test_dtypes_match_manifest(bp2_model, manifest):
    sd = bp2_model.state_dict()
    for key, (_, dtype) in manifest.items():
        assert str(sd[key].dtype).removeprefix("torch.") == dtype, key


def test_forward_path_parameter_count(bp2_model):
    assert sum(p.numel() for p in bp2_model.parameters()) == BP2_FORWARD_PARAMS


def test_dx_buffer_holds_lookup_offsets(bp2_model):
    dx = bp2_model.dx
    assert dx.dtype == torch.int8 and tuple(dx.shape) == (1, 1, 9, 1)
    assert dx.flatten().tolist() == list(range(-4, 5))


def test_state_dict_round_trips_strictly(bp2_model):
    torch.manual_seed(1)
    other = build_network(config(BP2))
    result = other.load_state_dict(bp2_model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    a, b = bp2_model.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_spec_model_config_defaults_build_bp2():
    specs = pytest.importorskip("skillbank.specs")
    model = build_network(specs.ModelConfig(model_type="FastFoundationStereo"))
    assert sum(p.numel() for p in model.parameters()) == BP2_FORWARD_PARAMS
    assert model.max_disparity == 192 and model.valid_iters == 8
