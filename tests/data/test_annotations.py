"""Annotation files: column counts, comments, relative paths, one error listing every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from skillbank.runtime.data.annotations import parse_mono_annotation, parse_stereo_annotation
from skillbank.runtime.data.errors import AnnotationError
from skillbank.runtime.data.stereo_datasets import GenericDataset, Middlebury


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


def test_comments_blank_lines_and_relative_paths(tmp_path: Path) -> None:
    _touch(tmp_path, "l/0.png", "r/0.png", "d/0.pfm", "m/0.png", "l/1.png", "r/1.png")
    ann = tmp_path / "train.txt"
    ann.write_text(
        "# left right disp mask\n\n  l/0.png r/0.png d/0.pfm m/0.png\n   # indented comment\nl/1.png\tr/1.png\n"
    )
    records = parse_stereo_annotation(ann)
    assert [r.line for r in records] == [3, 5]
    assert records[0].left == tmp_path / "l/0.png" and records[0].nocc == tmp_path / "m/0.png"
    assert records[1].disparity is None and records[1].nocc is None


def test_too_many_columns_exact_message(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    ann = tmp_path / "train.txt"
    ann.write_text("a.png b.png\n" * 16 + "a b c d e\n")
    with pytest.raises(AnnotationError) as err:
        parse_stereo_annotation(ann)
    assert str(err.value) == f"{ann}:17: 5 columns, expected 2-4"


def test_missing_right_image_exact_message(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    ann = tmp_path / "train.txt"
    ann.write_text("a.png b.png\na.png b.png\na.png missing.png\n")
    with pytest.raises(AnnotationError) as err:
        parse_stereo_annotation(ann)
    assert str(err.value) == f"{ann}:3: right image not found: {tmp_path / 'missing.png'}"


def test_all_problems_in_one_error(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    ann = tmp_path / "train.txt"
    ann.write_text("a.png b.png\nno_left.png b.png\na.png b.png c d e\na.png b.png no_disp.pfm\n")
    with pytest.raises(AnnotationError) as err:
        GenericDataset(str(ann), max_disparity=192)
    assert str(err.value).splitlines() == [
        f"3 problems in {ann}",
        f"{ann}:2: left image not found: {tmp_path / 'no_left.png'}",
        f"{ann}:3: 5 columns, expected 2-4",
        f"{ann}:4: disparity not found: {tmp_path / 'no_disp.pfm'}",
    ]
    assert len(err.value.problems) == 3


def test_dataset_specific_class_rejects_two_columns(tmp_path: Path) -> None:
    _touch(tmp_path, "a.png", "b.png")
    ann = tmp_path / "val.txt"
    ann.write_text("a.png b.png\n")
    with pytest.raises(AnnotationError) as err:
        Middlebury(str(ann), max_disparity=192)
    assert str(err.value) == (
        f"{ann}:1: 2 columns, expected 3-4; Middlebury needs ground truth: 'left right disparity [nocc_mask]'; "
        "use GenericDataset for pairs without it"
    )
    assert len(GenericDataset(str(ann), max_disparity=192)) == 1


def test_empty_and_missing_annotation_files(tmp_path: Path) -> None:
    ann = tmp_path / "empty.txt"
    ann.write_text("# nothing\n\n")
    with pytest.raises(AnnotationError, match=r"empty\.txt: no samples \(every line is blank or a # comment\)"):
        parse_stereo_annotation(ann)
    with pytest.raises(AnnotationError) as err:
        parse_stereo_annotation(tmp_path / "gone.txt")
    assert str(err.value) == f"{tmp_path / 'gone.txt'}: annotation file not found"


def test_mono_annotation(tmp_path: Path) -> None:
    _touch(tmp_path, "img.png", "depth.png")
    ann = tmp_path / "mono.txt"
    ann.write_text("img.png depth.png\nimg.png\n")
    records = parse_mono_annotation(ann)
    assert records[0].depth == tmp_path / "depth.png" and records[1].depth is None
    ann.write_text("img.png depth.png extra\nimg.png gone.png\n")
    with pytest.raises(AnnotationError) as err:
        parse_mono_annotation(ann)
    assert str(err.value).splitlines() == [
        f"2 problems in {ann}",
        f"{ann}:1: 3 columns, expected 1-2",
        f"{ann}:2: depth not found: {tmp_path / 'gone.png'}",
    ]
