"""Mono datasets: NYUDv2 encoding, metric vs relative targets, validity, builder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from skillbank.runtime.data.errors import AnnotationError
from skillbank.runtime.data.io import write_png
from skillbank.runtime.data.mono_datasets import build_mono_dataset, get_mono_dataset_class


@pytest.fixture()
def nyu_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    depth_mm = rng.integers(500, 9000, size=(40, 60)).astype(np.uint16)
    depth_mm[:5] = 0  # invalid rows
    depth_mm[5:8] = 12000  # beyond max_depth
    write_png(tmp_path / "rgb.png", rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "depth.png"), depth_mm)
    (tmp_path / "nyu.txt").write_text("rgb.png depth.png\n")
    return tmp_path


def _split(name: str, ann: Path, **aug: object) -> dict:
    return {"data_sources": [{"dataset_name": name, "data_file": str(ann)}], "augmentation": aug}


def test_nyu_metric_and_relative(nyu_dir: Path) -> None:
    expected = cv2.imread(str(nyu_dir / "depth.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000
    metric = build_mono_dataset(_split("nyudv2", nyu_dir / "nyu.txt"), min_depth=0.001, max_depth=10, train=False)[0]
    assert metric["image"].shape == (3, 40, 60) and metric["depth"].shape == (1, 40, 60)
    valid = metric["valid"][0].numpy()
    assert not valid[:8].any() and valid[8:].all()
    np.testing.assert_allclose(metric["target"][0].numpy()[valid], expected[valid], rtol=1e-6)
    rel = build_mono_dataset(
        _split("RelativeMonoDataset", nyu_dir / "nyu.txt"), min_depth=0.001, max_depth=10, train=False
    )[0]
    np.testing.assert_allclose(rel["target"][0].numpy()[valid], 1 / expected[valid], rtol=1e-5)
    assert torch.all(rel["target"][~rel["valid"]] == 0)


def test_mono_train_augmentation_crops(nyu_dir: Path) -> None:
    split = _split("NYUDv2", nyu_dir / "nyu.txt", crop_size=[32, 48], do_flip=True)
    ds = build_mono_dataset(split, min_depth=0.001, max_depth=10, train=True, seed=1)
    a, b = ds[0], ds[0]
    assert a["image"].shape == (3, 32, 48) and a["valid"].shape == (1, 32, 48)
    torch.testing.assert_close(a["image"], b["image"])


def test_nyu_needs_depth_column(nyu_dir: Path) -> None:
    (nyu_dir / "img.txt").write_text("rgb.png\n")
    with pytest.raises(AnnotationError) as err:
        get_mono_dataset_class("NYUDv2")(str(nyu_dir / "img.txt"), min_depth=0.1, max_depth=10)
    assert str(err.value) == f"{nyu_dir / 'img.txt'}:1: 1 columns, expected 2; NYUDv2 needs 'image depth' lines"
    assert (
        "depth"
        not in get_mono_dataset_class("genericmonodataset")(str(nyu_dir / "img.txt"), min_depth=0.1, max_depth=10)[0]
    )
