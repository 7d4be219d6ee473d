"""depth_net convert: folders -> annotation files, glob patterns, unmatched files, synthetic."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from skillbank.runtime.actions.convert_impl import ConvertError, convert_folders, make_synthetic
from skillbank.runtime.data.stereo_datasets import GenericDataset, get_stereo_dataset_class
from skillbank.runtime.data.synthetic import generate_synthetic_stereo


def test_round_trip_synthetic_convert_generic(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_synthetic_stereo(data, 5, 48, 80, 16, seed=1)
    (data / "right" / "000004.png").unlink()  # left 4 (and its disparity, mask) lose their partner
    report = convert_folders(data, "left", "right", "disparity", "nocc", out_dir=data, split_ratio=0.75, seed=0)
    assert report.counts == {"train": 3, "val": 1}
    assert report.unmatched["left"] == [data / "left" / "000004.png"]
    assert report.unmatched["disparity"] == [data / "disparity" / "000004.pfm"]
    assert report.unmatched["right"] == []
    assert report.summary() == "converted 4 samples (train 3, val 1); unmatched: 1 left, 1 disparity, 1 nocc"
    train = GenericDataset(str(report.files["train"]), max_disparity=16)
    val = GenericDataset(str(report.files["val"]), max_disparity=16)
    stems = sorted(Path(s).stem for ds in (train, val) for s in (ds[i]["left_path"] for i in range(len(ds))))
    assert stems == ["000000", "000001", "000002", "000003"]
    s = train[0]
    assert s["nocc"].shape == (1, 48, 80) and Path(s["right_path"]).stem == Path(s["left_path"]).stem
    # seeded split: same seed, same files
    again = convert_folders(data, "left", "right", "disparity", "nocc", out_dir=tmp_path / "o", split_ratio=0.75)
    assert (
        again.files["val"].read_text().split("\n", 1)[1].split()[0].endswith("left/" + Path(val[0]["left_path"]).name)
    )


def test_glob_patterns_match_by_wildcards_and_stem(tmp_path: Path) -> None:
    src = tmp_path / "src"
    generate_synthetic_stereo(src, 2, 32, 48, 8, seed=0)
    root = tmp_path / "root"
    for seq in ("A", "B"):  # sceneflow-like: frames/<seq>/{left,right}, disp/<seq>/left; stems repeat per seq
        for role, target in (
            ("left", f"frames/{seq}/left"),
            ("right", f"frames/{seq}/right"),
            ("disparity", f"disp/{seq}/left"),
        ):
            shutil.copytree(src / role, root / target)
    report = convert_folders(root, "frames/*/left", "frames/*/right", "disp/*/left", out_dir=tmp_path / "ann")
    assert report.counts == {"test": 4}
    lines = report.files["test"].read_text().splitlines()[1:]
    assert all(ln.split()[0].replace("/frames/", "/disp/").replace(".png", ".pfm") == ln.split()[2] for ln in lines)
    ds = GenericDataset(str(report.files["test"]), max_disparity=8)
    assert len(ds) == 4 and torch.all(ds[3]["disparity"] >= 0)


def test_file_patterns_pair_one_scene_per_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    generate_synthetic_stereo(src, 3, 32, 48, 8, seed=0)
    root = tmp_path / "middlebury"
    for i, scene in enumerate(("cones", "teddy", "venus")):  # Middlebury layout: <scene>/im0.png ...
        (root / scene).mkdir(parents=True)
        for role, name in (
            ("left", "im0.png"),
            ("right", "im1.png"),
            ("disparity", "disp0GT.pfm"),
            ("nocc", "mask0nocc.png"),
        ):
            ext = ".pfm" if role == "disparity" else ".png"
            shutil.copy(src / role / f"{i:06d}{ext}", root / scene / name)
    report = convert_folders(
        root, "*/im0.png", "*/im1.png", "*/disp0GT.pfm", "*/mask0nocc.png", out_dir=root, split_ratio=None
    )
    assert report.counts == {"test": 3} and report.summary().endswith("unmatched: none")
    assert report.files["test"].read_text().splitlines()[1] == (
        "cones/im0.png cones/im1.png cones/disp0GT.pfm cones/mask0nocc.png"
    )
    ds = get_stereo_dataset_class("Middlebury")(str(report.files["test"]), max_disparity=8)
    assert len(ds) == 3 and ds[2]["nocc"].shape == (1, 32, 48)


def test_convert_errors(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="data_root not found"):
        convert_folders(tmp_path / "nope", "l", "r", out_dir=tmp_path)
    (tmp_path / "l").mkdir()
    with pytest.raises(ConvertError, match=r"right_dir 'r\*' matched no folder or \.png/\.jpg/\.jpeg/\.pfm file under"):
        convert_folders(tmp_path, "l", "r*", out_dir=tmp_path)
    with pytest.raises(ConvertError, match=r"split_ratio: expected a number in \(0, 1\) or None, got 1.5"):
        convert_folders(tmp_path, "l", "l", out_dir=tmp_path, split_ratio=1.5)
    with pytest.raises(ConvertError, match=r"'\*\*' is not supported"):
        convert_folders(tmp_path, "**/l", "l", out_dir=tmp_path)


def test_make_synthetic(tmp_path: Path) -> None:
    report = make_synthetic(tmp_path, num_pairs=4, height=32, width=64, max_disparity=12, seed=2, split_ratio=0.5)
    assert report.counts == {"train": 2, "val": 2} and report.total == 4
    assert report.files["train"].read_text().splitlines()[1].count(" ") == 3  # 4 columns, relative paths
    assert len(GenericDataset(str(report.files["val"]), max_disparity=12)) == 2
