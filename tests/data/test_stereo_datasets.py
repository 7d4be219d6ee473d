"""Registry, sample contract, ConcatDataset of several sources, padding collate."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset

from skillbank.runtime.data.io import encode_disparity_png, read_pfm
from skillbank.runtime.data.stereo_datasets import (
    GenericDataset,
    StereoDataset,
    build_stereo_dataset,
    get_stereo_dataset_class,
    register_stereo_dataset,
    registered_stereo_datasets,
    stereo_collate,
)


def test_registry_is_case_insensitive_and_extensible(synthetic_dir: Path, tmp_path: Path) -> None:
    assert {"FSD", "IsaacRealDataset", "Crestereo", "Middlebury", "Eth3d", "Kitti", "GenericDataset"} <= set(
        registered_stereo_datasets()
    )
    assert get_stereo_dataset_class("kItTi").encoding == "kitti"
    with pytest.raises(ValueError, match=r"unknown stereo dataset_name 'Nope'; known: Crestereo, Eth3d, FSD"):
        get_stereo_dataset_class("Nope")

    @register_stereo_dataset(name="MyCrestereoRig")
    class Rig(StereoDataset):
        encoding = "crestereo"

    # a user class reading CREStereo-encoded GT written from the synthetic PFM
    gt = read_pfm(synthetic_dir / "disparity" / "000000.pfm")
    encode_disparity_png(tmp_path / "d.png", gt, "crestereo")
    ann = tmp_path / "rig.txt"
    ann.write_text(f"{synthetic_dir}/left/000000.png {synthetic_dir}/right/000000.png d.png\n")
    split = {"data_sources": [{"dataset_name": "mycrestereorig", "data_file": str(ann)}]}
    ds = build_stereo_dataset(split, max_disparity=32, train=False)
    assert isinstance(ds, Rig)
    np.testing.assert_allclose(ds[0]["disparity"][0].numpy(), np.where(gt < 32, gt, 0), atol=1 / 64)


def test_sample_contract(synthetic_dir: Path) -> None:
    ds = GenericDataset(str(synthetic_dir / "synthetic.txt"), max_disparity=20)
    s = ds[0]
    assert s["left"].dtype == s["right"].dtype == s["disparity"].dtype == torch.float32
    assert s["left"].shape == (3, 96, 160) and s["disparity"].shape == (1, 96, 160)
    assert s["valid"].dtype == s["nocc"].dtype == torch.bool
    gt = torch.from_numpy(read_pfm(synthetic_dir / "disparity" / "000000.pfm"))[None]
    torch.testing.assert_close(s["valid"], (gt > 0) & (gt < 20))  # gt >= max_disparity is invalid
    assert torch.all(s["disparity"][~s["valid"]] == 0)
    assert not torch.any(s["nocc"] & ~s["valid"])
    assert s["orig_size"] == (96, 160) and s["left_path"].endswith("left/000000.png")
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    assert abs(float(s["left"].mean())) < 3 and float((s["left"] * 0.229 + mean).min()) >= -0.01


def test_no_gt_lines_have_no_disparity_key(synthetic_dir: Path, tmp_path: Path) -> None:
    ann = tmp_path / "infer.txt"
    ann.write_text(f"{synthetic_dir}/left/000000.png {synthetic_dir}/right/000000.png\n")
    s = GenericDataset(str(ann), max_disparity=32)[0]
    assert "disparity" not in s and "valid" not in s and s["left"].shape == (3, 96, 160)


def test_several_sources_concatenate_and_spec_objects(synthetic_dir: Path) -> None:
    ann = str(synthetic_dir / "synthetic.txt")
    split = SimpleNamespace(
        data_sources=[
            SimpleNamespace(dataset_name="GenericDataset", data_file=ann),
            SimpleNamespace(dataset_name="middlebury", data_file=ann),
        ],
        augmentation=SimpleNamespace(crop_size=[64, 96], do_flip=False),
        batch_size=2,
        workers=0,
        pin_memory=False,
    )
    ds = build_stereo_dataset(split, max_disparity=32, train=True, seed=0)
    assert isinstance(ds, ConcatDataset) and len(ds) == 8
    assert ds[5]["left"].shape == (3, 64, 96)
    with pytest.raises(ValueError, match="data_sources: empty"):
        build_stereo_dataset({"data_sources": []}, max_disparity=32, train=True)


def test_collate_pads_variable_sizes() -> None:
    def sample(h: int, w: int) -> dict:
        return {
            "left": torch.ones(3, h, w),
            "right": torch.ones(3, h, w),
            "disparity": torch.ones(1, h, w),
            "valid": torch.ones(1, h, w, dtype=torch.bool),
            "left_path": "a",
            "orig_size": (h, w),
            "index": 0,
        }

    batch = stereo_collate([sample(4, 6), sample(5, 3)])
    assert batch["left"].shape == (2, 3, 5, 6) and batch["valid"].dtype == torch.bool
    assert batch["size"] == [(4, 6), (5, 3)] and batch["orig_size"] == [(4, 6), (5, 3)]
    assert not batch["valid"][0, :, 4:].any() and not batch["valid"][1, :, :, 3:].any()
    assert batch["valid"].sum() == 4 * 6 + 5 * 3
    with_mask = {**sample(4, 6), "nocc": torch.ones(1, 4, 6, dtype=torch.bool)}
    mixed = stereo_collate([with_mask, sample(4, 6)])  # a mask on one line only: no nocc in the batch
    assert "nocc" not in mixed and mixed["valid"].shape == (2, 1, 4, 6)


def test_lead_spec_objects_and_dataloader(synthetic_dir: Path) -> None:
    specs = pytest.importorskip("skillbank.specs.dataset")
    from skillbank.runtime.data.loaders import make_loader, set_epoch

    ann = str(synthetic_dir / "synthetic.txt")
    split = specs.DatasetSplit(
        data_sources=[{"dataset_name": "GenericDataset", "data_file": ann}] * 2,
        batch_size=3,
        workers=0,
        augmentation={"crop_size": [64, 96], "do_flip": True},
    )
    ds = build_stereo_dataset(split, max_disparity=32, train=True, seed=1)
    loader = make_loader(ds, split, train=True, seed=1)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["left"].shape == (3, 3, 64, 96)  # 8 samples, drop_last
    first = ds[0]["left"].clone()
    set_epoch(ds, 3)
    assert all(part.epoch == 3 for part in ds.datasets) and not torch.equal(first, ds[0]["left"])
    val = build_stereo_dataset(split, max_disparity=32, train=False)
    batch = next(iter(make_loader(val, split, train=False)))
    assert batch["left"].shape == (3, 3, 96, 160) and batch["index"].tolist() == [0, 1, 2]


def test_size_mismatch_errors_name_the_file(synthetic_dir: Path, tmp_path: Path) -> None:
    from skillbank.runtime.data.errors import DataFileError
    from skillbank.runtime.data.io import write_pfm, write_png

    write_png(tmp_path / "small.png", np.zeros((10, 20, 3), np.uint8))
    write_pfm(tmp_path / "small.pfm", np.ones((10, 20), np.float32))
    left = f"{synthetic_dir}/left/000000.png"
    ann = tmp_path / "a.txt"
    ann.write_text(f"{left} small.png\n{left} {synthetic_dir}/right/000000.png small.pfm\n")
    ds = GenericDataset(str(ann), max_disparity=32)
    with pytest.raises(DataFileError) as err:
        ds[0]
    assert str(err.value) == f"{tmp_path / 'small.png'}: size (10, 20) differs from left image (96, 160)"
    with pytest.raises(DataFileError) as err:
        ds[1]
    assert str(err.value) == f"{tmp_path / 'small.pfm'}: size (10, 20) differs from left image (96, 160)"
