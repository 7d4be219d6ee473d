"""Training augmentation keeps stereo geometry; eval is deterministic; randomness is seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stereo_warp import warp_error
from torch.utils.data import DataLoader

from skillbank.runtime.data.augment import AugmentConfig, EvalTransform, StereoAugmentor, normalize
from skillbank.runtime.data.io import read_image_rgb, read_pfm
from skillbank.runtime.data.stereo_datasets import build_stereo_dataset, stereo_collate
from skillbank.runtime.data.synthetic import render_stereo_pair


def _pair(seed: int = 3) -> dict:
    p = render_stereo_pair(np.random.default_rng(seed), 96, 160, 32)
    return {
        "left": p.left,
        "right": p.right,
        "disparity": p.disparity,
        "valid": p.disparity > 0,
        "nocc": p.nocc == 255,
        "disparity_right": p.disparity_right,
    }


def _hwc(chw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chw.transpose(1, 2, 0))


STRICT = {"yjitter_prob": 0.0, "eraser_aug_prob": 0.0, "color_aug_prob": 1.0}


@pytest.mark.parametrize("strict", [True, False], ids=["no-yjitter-no-eraser", "spec-defaults"])
@pytest.mark.parametrize("seed", range(6))
def test_train_augmentation_keeps_geometry(seed: int, strict: bool) -> None:
    cfg = AugmentConfig(crop_size=[64, 128], do_flip=True, **(STRICT if strict else {}))
    out = StereoAugmentor(cfg, max_disparity=64)(_pair(), np.random.default_rng(seed))
    assert out["left"].shape == out["right"].shape == (3, 64, 128)
    assert out["disparity"].shape == out["valid"].shape == (64, 128)
    left, right, gt = _hwc(out["left"]), _hwc(out["right"]), out["disparity"]
    mask = out["nocc"] if out.get("nocc") is not None else out["valid"]
    err = warp_error(left, right, gt, mask)
    assert err < warp_error(left, right, gt + 3, mask) and err < warp_error(left, right, gt - 3, mask)


def test_horizontal_flip_swaps_views_and_uses_right_gt() -> None:
    cfg = AugmentConfig(
        crop_size=[96, 160],
        do_flip=True,
        h_flip_prob=1.0,
        v_flip_prob=0.0,
        spatial_aug_prob=0.0,
        hshift_prob=0.0,
        yjitter_prob=0.0,
        eraser_aug_prob=0.0,
        brightness=0,
        contrast=0,
        saturation=[1, 1],
        hue=[0, 0],
    )
    sample = _pair()
    out = StereoAugmentor(cfg)(sample, np.random.default_rng(0))
    mean, std = np.asarray(cfg.input_mean, np.float32), np.asarray(cfg.input_std, np.float32)
    np.testing.assert_allclose(out["left"], normalize(sample["right"][:, ::-1], mean, std), atol=1e-5)
    np.testing.assert_array_equal(out["disparity"], sample["disparity_right"][:, ::-1])
    assert "nocc" not in out or out["nocc"] is None
    # without a right-view GT the h-flip is skipped (a mirrored left GT would be a wrong target)
    sample.pop("disparity_right")
    out = StereoAugmentor(cfg)(sample, np.random.default_rng(0))
    np.testing.assert_allclose(out["left"], normalize(sample["left"], mean, std), atol=1e-5)
    np.testing.assert_array_equal(out["disparity"], sample["disparity"])


def test_scale_multiplies_disparity_by_x_factor() -> None:
    # log2 scale 1 doubles 96x160 to 192x320; the crop takes it all, so the GT range doubles exactly
    cfg = AugmentConfig(
        crop_size=[192, 320], min_scale=1.0, max_scale=1.0, stretch_prob=0.0, hshift_prob=0.0, yjitter_prob=0.0
    )
    sample = _pair()
    out = StereoAugmentor(cfg, max_disparity=1000)(sample, np.random.default_rng(0))
    assert out["disparity"].shape == (192, 320)
    np.testing.assert_allclose(out["disparity"].max(), 2 * sample["disparity"].max(), rtol=1e-6)
    np.testing.assert_allclose(out["disparity"][::2, ::2], 2 * sample["disparity"], rtol=1e-6)


def test_sparse_gt_points_move_and_are_never_duplicated() -> None:
    rng = np.random.default_rng(0)
    disp = np.zeros((96, 160), np.float32)
    ys, xs = rng.integers(0, 96, 300), rng.integers(0, 160, 300)
    disp[ys, xs] = rng.uniform(1, 30, 300).astype(np.float32)
    valid = disp > 0
    left = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    sample = {"left": left, "right": left, "disparity": disp, "valid": valid, "sparse": True}
    cfg = AugmentConfig(crop_size=[192, 320], min_scale=1.0, max_scale=1.0, stretch_prob=0.0, hshift_prob=0.0)
    out = StereoAugmentor(cfg, max_disparity=1000)(sample, np.random.default_rng(0))
    assert out["valid"].sum() == valid.sum()  # 2x upscale: every point lands on its own pixel, none copied
    np.testing.assert_allclose(np.sort(out["disparity"][out["valid"]]), np.sort(2 * disp[valid]), rtol=1e-6)
    half = EvalTransform(AugmentConfig(), size=(48, 80))(sample)
    assert 0 < half["valid"].sum() <= valid.sum()
    assert set(np.round(half["disparity"][half["valid"]], 4)) <= set(np.round(0.5 * disp[valid], 4))


def test_eval_transform_is_deterministic_and_resizes_disparity() -> None:
    sample = _pair()
    t = EvalTransform(AugmentConfig(), size=(48, 80), mode="resize")
    a, b = t(sample), t(sample)
    np.testing.assert_array_equal(a["left"], b["left"])
    assert a["left"].shape == (3, 48, 80)
    np.testing.assert_allclose(a["disparity"].max(), sample["disparity"][::2, ::2].max() * 0.5, rtol=0.05)
    crop = EvalTransform(AugmentConfig(), size=(64, 128), mode="crop")(sample)
    np.testing.assert_array_equal(crop["disparity"], sample["disparity"][16:80, 16:144])


def _train_split(ann: Path, crop: tuple[int, int] = (64, 128)) -> dict:
    aug = {"crop_size": list(crop), "do_flip": True}
    return {"data_sources": [{"dataset_name": "GenericDataset", "data_file": str(ann)}], "augmentation": aug}


def test_dataset_determinism_by_seed_and_worker_independence(synthetic_dir: Path) -> None:
    ann = synthetic_dir / "synthetic.txt"
    a = build_stereo_dataset(_train_split(ann), max_disparity=32, train=True, seed=11)
    b = build_stereo_dataset(_train_split(ann), max_disparity=32, train=True, seed=11)
    c = build_stereo_dataset(_train_split(ann), max_disparity=32, train=True, seed=12)
    torch.testing.assert_close(a[1]["left"], b[1]["left"])
    torch.testing.assert_close(a[1]["disparity"], b[1]["disparity"])
    assert not torch.equal(a[1]["left"], c[1]["left"])
    first = a[2]["left"].clone()
    a.set_epoch(1)
    assert not torch.equal(first, a[2]["left"])
    a.set_epoch(0)
    serial = [s["left"] for s in DataLoader(a, batch_size=2, num_workers=0, collate_fn=stereo_collate)]
    parallel = [s["left"] for s in DataLoader(a, batch_size=2, num_workers=2, collate_fn=stereo_collate)]
    for x, y in zip(serial, parallel, strict=True):
        torch.testing.assert_close(x, y)


def test_train_dataset_geometry_on_synthetic_files(synthetic_dir: Path) -> None:
    ann = synthetic_dir / "synthetic.txt"
    ds = build_stereo_dataset(_train_split(ann), max_disparity=32, train=True, seed=5)
    for i in range(len(ds)):
        s = ds[i]
        assert s["left"].shape == (3, 64, 128) and s["valid"].shape == (1, 64, 128)
    # the source files themselves: GT is exact
    left = read_image_rgb(synthetic_dir / "left" / "000000.png")
    right = read_image_rgb(synthetic_dir / "right" / "000000.png")
    gt = read_pfm(synthetic_dir / "disparity" / "000000.pfm")
    mask = read_image_rgb(synthetic_dir / "nocc" / "000000.png")[..., 0] == 255
    err = warp_error(left, right, gt, mask)
    assert err < warp_error(left, right, gt + 1, mask) and err < warp_error(left, right, gt - 1, mask)
