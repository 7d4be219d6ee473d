"""Every real sample in ../shared/data/stereo (skipped when absent) and skimage's Motorcycle read
through the dataset classes; warping the right view by the GT must beat warping by GT +- 3 px,
which proves the sign and the scale of each decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stereo_warp import warp_error

from skillbank.runtime.data import io
from skillbank.runtime.data.stereo_datasets import StereoDataset, build_stereo_dataset


def _check_dataset(ds: StereoDataset, expect_nocc: bool) -> None:
    assert len(ds) > 0
    for i in range(len(ds)):
        sample = ds[i]
        h, w = sample["orig_size"]
        assert sample["left"].shape == sample["right"].shape == (3, h, w)
        assert sample["left"].dtype == torch.float32
        assert sample["disparity"].shape == sample["valid"].shape == (1, h, w)
        assert sample["valid"].dtype == torch.bool and sample["valid"].any()
        assert torch.all(sample["disparity"][~sample["valid"]] == 0)
        assert ("nocc" in sample) == expect_nocc
        raw = ds.load(i)
        mask = raw.get("nocc", raw["valid"])
        gt = raw["disparity"]
        err = warp_error(raw["left"], raw["right"], gt, mask)
        worse = [warp_error(raw["left"], raw["right"], gt + s, mask) for s in (3.0, -3.0)]
        assert err < min(worse), f"{sample['left_path']}: GT error {err:.3f} vs shifted {worse}"


def _split(dataset_name: str, data_file: Path) -> dict:
    return {"data_sources": [{"dataset_name": dataset_name, "data_file": str(data_file)}], "augmentation": {}}


def test_middlebury(stereo_root: Path, tmp_path: Path) -> None:
    scenes = sorted((stereo_root / "middlebury").iterdir())
    lines = [f"{s}/im0.png {s}/im1.png {s}/disp0GT.pfm {s}/mask0nocc.png" for s in scenes if s.is_dir()]
    ann = tmp_path / "middlebury.txt"
    ann.write_text("\n".join(lines) + "\n")
    ds = build_stereo_dataset(_split("middlebury", ann), max_disparity=192, train=False)
    assert len(ds) == 4
    _check_dataset(ds, expect_nocc=True)


def test_kitti(stereo_root: Path, tmp_path: Path) -> None:
    base = stereo_root / "kitti2015" / "training"
    lines = [
        f"{base}/image_2/{p.name} {base}/image_3/{p.name} {p}" for p in sorted((base / "disp_occ_0").glob("*.png"))
    ]
    ann = tmp_path / "kitti.txt"
    ann.write_text("\n".join(lines) + "\n")
    ds = build_stereo_dataset(_split("KITTI", ann), max_disparity=192, train=False)
    assert len(ds) == 2
    _check_dataset(ds, expect_nocc=False)
    assert 0.05 < ds[0]["valid"].float().mean() < 0.6  # sparse LiDAR GT, 0 = invalid


def test_sceneflow_generic(stereo_root: Path, tmp_path: Path) -> None:
    root = stereo_root / "sceneflow"
    lines = []
    for left in sorted((root / "frames_cleanpass").glob("*/*/*/left/*.png")):
        rel = left.relative_to(root / "frames_cleanpass")
        right = left.parent.parent / "right" / left.name
        disp = (root / "disparity" / rel).with_suffix(".pfm")
        lines.append(f"{left} {right} {disp}")
    ann = tmp_path / "sceneflow.txt"
    ann.write_text("\n".join(lines) + "\n")
    ds = build_stereo_dataset(_split("genericdataset", ann), max_disparity=416, train=False)
    assert len(ds) == 4
    _check_dataset(ds, expect_nocc=False)


def test_skimage_motorcycle(tmp_path: Path) -> None:
    skdata = pytest.importorskip("skimage.data")
    try:
        left, right, disp = skdata.stereo_motorcycle()
    except Exception as exc:  # pooch cache missing and no network
        pytest.skip(f"stereo_motorcycle unavailable: {exc}")
    io.write_png(tmp_path / "im0.png", left)
    io.write_png(tmp_path / "im1.png", right)
    io.write_pfm(tmp_path / "disp0.pfm", disp.astype(np.float32))  # NaN = unknown stays non-finite
    (tmp_path / "moto.txt").write_text("im0.png im1.png disp0.pfm\n")
    ds = build_stereo_dataset(_split("Middlebury", tmp_path / "moto.txt"), max_disparity=416, train=False)
    assert ds[0]["orig_size"] == left.shape[:2]
    _check_dataset(ds, expect_nocc=False)


def test_convert_real_layouts(stereo_root: Path, tmp_path: Path) -> None:
    from skillbank.runtime.actions.convert_impl import convert_folders

    cases = [
        ("sceneflow", ("frames_cleanpass/*/*/*/left", "frames_cleanpass/*/*/*/right", "disparity/*/*/*/left"), 4),
        ("kitti2015", ("training/image_2", "training/image_3", "training/disp_occ_0"), 2),
        ("middlebury", ("*/im0.png", "*/im1.png", "*/disp0GT.pfm", "*/mask0nocc.png"), 4),
    ]
    for name, patterns, expected in cases:
        report = convert_folders(stereo_root / name, *patterns, out_dir=tmp_path / name)
        assert report.counts == {"test": expected}, report.summary()
        assert not any(report.unmatched.values()), report.summary()
        dataset = {"sceneflow": "GenericDataset", "kitti2015": "Kitti", "middlebury": "Middlebury"}[name]
        ds = build_stereo_dataset(_split(dataset, report.files["test"]), max_disparity=416, train=False)
        assert len(ds) == expected and ds[0]["valid"].any()
