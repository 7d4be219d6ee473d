"""PFM / PNG / decoder / colour-map I/O."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from skillbank.runtime.data import io
from skillbank.runtime.data.errors import DataFileError


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize("channels", [1, 3])
def test_pfm_round_trip_both_endiannesses(tmp_path: Path, little_endian: bool, channels: int) -> None:
    rng = np.random.default_rng(0)
    shape = (5, 7) if channels == 1 else (5, 7, 3)
    data = rng.normal(size=shape).astype(np.float32)
    data.flat[0] = np.inf
    path = io.write_pfm(tmp_path / "x.pfm", data, little_endian=little_endian)
    raw = path.read_bytes()
    assert raw.startswith(b"Pf\n" if channels == 1 else b"PF\n")
    assert raw.split(b"\n")[2] == (b"-1.0" if little_endian else b"1.0")
    # rows are stored bottom to top: the first stored float is the bottom-left pixel
    first = np.frombuffer(raw[len(b"\n".join(raw.split(b"\n")[:3])) + 1 :][:4], "<f4" if little_endian else ">f4")
    assert first[0] == data[-1].flat[0]
    back = io.read_pfm(path)
    assert back.dtype == np.float32 and back.shape == shape
    np.testing.assert_array_equal(back, data)


def test_pfm_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pfm"
    bad.write_bytes(b"P6\n2 2\n255\n")
    with pytest.raises(DataFileError, match=r"bad\.pfm: not a PFM file"):
        io.read_pfm(bad)
    short = tmp_path / "short.pfm"
    short.write_bytes(b"Pf\n4 4\n-1.0\n" + b"\0" * 12)
    with pytest.raises(DataFileError, match=r"short\.pfm: PFM truncated: header says 4x4x1, file has 3 floats"):
        io.read_pfm(short)
    with pytest.raises(DataFileError, match=r"missing\.pfm: cannot read PFM"):
        io.read_pfm(tmp_path / "missing.pfm")


def test_png16_round_trip_and_wrong_depth(tmp_path: Path) -> None:
    data = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    path = io.write_png16(tmp_path / "d.png", data)
    np.testing.assert_array_equal(io.read_png16(path), data)
    cv2.imwrite(str(tmp_path / "u8.png"), np.zeros((3, 4), np.uint8))
    with pytest.raises(DataFileError, match=r"u8\.png: expected a 1-channel uint16 PNG, got uint8"):
        io.read_png16(tmp_path / "u8.png")


@pytest.mark.parametrize(("encoding", "step"), [("kitti", 1 / 256), ("crestereo", 1 / 32), ("fsd", 1 / 1000)])
def test_disparity_png_encodings_round_trip(tmp_path: Path, encoding: str, step: float) -> None:
    disp = np.array([[0.0, 1.5, 37.25], [np.inf, 200.125, 255.5]], np.float32)
    path = io.encode_disparity_png(tmp_path / f"{encoding}.png", disp, encoding)
    back = io.decode_disparity(path, encoding)
    known = np.isfinite(disp) & (disp > 0)
    assert np.all(back[~known] == 0)  # 0 = invalid in every PNG encoding
    np.testing.assert_allclose(back[known], disp[known], atol=step / 2 + 1e-6)


def test_png_encoding_out_of_range_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"k\.png: disparity 300\.00 exceeds the kitti range \(max 256\.00\)"):
        io.encode_disparity_png(tmp_path / "k.png", np.array([[300.0]]), "kitti")


def test_kitti_and_fsd_decoding_by_formula(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "k.png"), np.array([[0, 256, 1000]], np.uint16))
    np.testing.assert_allclose(io.decode_disparity(tmp_path / "k.png", "kitti"), [[0, 1, 1000 / 256]])
    np.testing.assert_allclose(io.decode_disparity(tmp_path / "k.png", "crestereo"), [[0, 8, 1000 / 32]])
    bgr = np.array([[[7, 2, 1]]], np.uint8)  # B=7, G=2, R=1
    cv2.imwrite(str(tmp_path / "f.png"), bgr)
    np.testing.assert_allclose(io.decode_disparity(tmp_path / "f.png", "fsd"), [[(255 * 255 + 2 * 255 + 7) / 1000]])


def test_depth_nyu_and_auto(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "depth.png"), np.array([[0, 1000, 2500]], np.uint16))
    np.testing.assert_allclose(io.decode_depth(tmp_path / "depth.png"), [[0, 1.0, 2.5]])
    np.save(tmp_path / "depth.npy", np.ones((2, 3), np.float32))
    assert io.decode_depth(tmp_path / "depth.npy").shape == (2, 3)
    with pytest.raises(DataFileError, match=r"x\.tif: cannot infer depth encoding from '\.tif'"):
        io.decode_depth(tmp_path / "x.tif")


def test_read_image_rgb_gray_rgba_and_channel_order(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((4, 5), 77, np.uint8))
    gray = io.read_image_rgb(tmp_path / "gray.png")
    assert gray.shape == (4, 5, 3) and gray.dtype == np.uint8 and np.all(gray == 77)
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 2] = 200  # red in OpenCV's BGRA order
    bgra[..., 3] = 10
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    rgb = io.read_image_rgb(tmp_path / "rgba.png")
    assert rgb.shape == (4, 5, 3) and np.all(rgb[..., 0] == 200) and np.all(rgb[..., 1:] == 0)
    cv2.imwrite(str(tmp_path / "g16.png"), np.full((2, 2), 65535, np.uint16))
    assert np.all(io.read_image_rgb(tmp_path / "g16.png") == 255)
    with pytest.raises(DataFileError, match=r"nope\.png: file not found"):
        io.read_image_rgb(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(DataFileError, match=r"junk\.png: cannot decode image"):
        io.read_image_rgb(tmp_path / "junk.png")


def test_colour_map_fixed_scale_compares_frames(tmp_path: Path) -> None:
    a = np.array([[10.0, 50.0, np.inf, 0.0]], np.float32)
    b = np.array([[10.0, 90.0, 100.0, 5.0]], np.float32)
    ca, cb = io.colorize_disparity(a, max_value=100), io.colorize_disparity(b, max_value=100)
    assert ca.shape == (1, 4, 3) and ca.dtype == np.uint8
    np.testing.assert_array_equal(ca[0, 0], cb[0, 0])  # same value, same colour under a fixed scale
    assert np.all(ca[0, 2:] == 0)  # unknown pixels are black
    turbo = cv2.applyColorMap(np.array([[255]], np.uint8), cv2.COLORMAP_TURBO)[0, 0, ::-1]
    np.testing.assert_array_equal(cb[0, 2], turbo)  # max_value maps to the top of TURBO
    path = io.write_disparity_png(tmp_path / "c.png", b, max_value=100)
    np.testing.assert_array_equal(io.read_image_rgb(path), cb)


def test_writers_replace_atomically_and_leave_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.png"
    io.write_png(path, np.zeros((2, 3), np.uint8))
    io.write_png(path, np.full((2, 3), 7, np.uint8))
    assert (io.read_image_rgb(path) == 7).all()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.png"]


def test_pfm_image_and_npy_disparity(tmp_path: Path) -> None:
    colour = np.zeros((2, 3, 3), np.float32)
    colour[..., 0] = 1.0  # red, PFM colour is RGB order
    io.write_pfm(tmp_path / "im.pfm", colour)
    rgb = io.read_image_rgb(tmp_path / "im.pfm")
    assert rgb.shape == (2, 3, 3) and np.all(rgb[..., 0] == 255) and np.all(rgb[..., 1:] == 0)
    np.save(tmp_path / "d.npy", np.full((1, 4, 5), 2.5, np.float32))
    disp = io.decode_disparity(tmp_path / "d.npy")
    assert disp.shape == (4, 5) and np.all(disp == 2.5)
    with pytest.raises(DataFileError, match=r"d\.png: unknown disparity encoding 'bogus'"):
        io.decode_disparity(tmp_path / "d.png", "bogus")
