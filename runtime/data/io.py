"""File I/O of the data path: PFM, 16-bit PNG, disparity/depth decoders, RGB images, colour maps.

Conventions
-----------
* Images come back as RGB ``uint8`` arrays of shape (H, W, 3): grayscale is repeated to 3 channels,
  alpha is dropped, 16-bit images are scaled to 8 bit.
* Disparities come back as ``float32`` (H, W) in pixels of the left view; unknown pixels keep the
  file's own marker (``inf``/``nan`` in PFM, ``0`` in PNG encodings). The dataset classes then apply
  one validity rule: ``valid = finite & gt > 0 & gt < max_disparity``.
* Writers are atomic (:func:`skillbank.atomic.atomic_write`: temp file in the target folder, then
  ``os.replace``; a reader never sees half an image) but not fsynced one by one (``durable=False``): they
  write one file per sample, where an fsync each would cost more than the encoding.
* Every error is a :class:`DataFileError` whose message names the file.

Disparity encodings (see README.md in this folder):

========== ====================================================== =====================
encoding   decode                                                 unknown marker
========== ====================================================== =====================
pfm        float32 PFM                                            inf / nan
kitti      uint16 PNG / 256                                       0
crestereo  uint16 PNG / 32                                        0
fsd        RGB PNG, (R*255*255 + G*255 + B) / 1000                0
npy        float32 .npy                                           inf / nan / <= 0
auto       by extension: .pfm -> pfm, .npy -> npy, 16-bit .png -> kitti
========== ====================================================== =====================
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from skillbank.atomic import atomic_write
from skillbank.runtime.data.errors import DataFileError

__all__ = [
    "DISPARITY_ENCODINGS",
    "DEPTH_ENCODINGS",
    "read_pfm",
    "write_pfm",
    "read_png16",
    "write_png16",
    "write_png",
    "read_image_rgb",
    "read_mask",
    "decode_disparity",
    "decode_depth",
    "encode_disparity_png",
    "colorize_disparity",
    "write_disparity_png",
]

PathLike = str | os.PathLike

DISPARITY_ENCODINGS = ("pfm", "kitti", "crestereo", "fsd", "npy", "auto")
DEPTH_ENCODINGS = ("nyu", "pfm", "npy", "auto")


# --------------------------------------------------------------------------------------------- writers
def _encode_png(path: PathLike, array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise DataFileError(f"{path}: could not encode PNG from array {array.shape} {array.dtype}")
    return buf.tobytes()


def write_png(path: PathLike, image: np.ndarray) -> Path:
    """Write an RGB (H, W, 3) or gray (H, W) uint8/uint16 image as PNG, atomically."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise DataFileError(f"{path}: PNG needs uint8 or uint16, got {image.dtype}")
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    return atomic_write(path, _encode_png(path, image), durable=False)


# ------------------------------------------------------------------------------------------------- PFM
_PFM_HEADER = re.compile(rb"^(PF|Pf)\s+(\d+)\s+(\d+)\s+([-+0-9.eE]+)\s", re.DOTALL)


def read_pfm(path: PathLike) -> np.ndarray:
    """Read a PFM file into float32 (H, W) ('Pf', gray) or (H, W, 3) ('PF', colour).

    The scale's sign gives the byte order (negative = little-endian); rows are stored bottom to top
    and are flipped here so row 0 is the top of the image.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read PFM ({exc.strerror})") from exc
    match = _PFM_HEADER.match(data)
    if match is None:
        raise DataFileError(f"{path}: not a PFM file (expected header 'Pf' or 'PF', width height, scale)")
    kind, width, height, scale = match.group(1), int(match.group(2)), int(match.group(3)), float(match.group(4))
    channels = 3 if kind == b"PF" else 1
    dtype = "<f4" if scale < 0 else ">f4"
    count = width * height * channels
    start = match.end()
    if len(data) - start < 4 * count:
        raise DataFileError(
            f"{path}: PFM truncated: header says {width}x{height}x{channels}, "
            f"file has {(len(data) - start) // 4} floats"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start).astype(np.float32)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(np.flipud(array.reshape(shape)))


def write_pfm(path: PathLike, array: np.ndarray, *, little_endian: bool = True) -> Path:
    """Write float (H, W) or (H, W, 3) as PFM ('Pf' / 'PF'), rows bottom to top, atomically."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        kind = b"Pf"
    elif array.ndim == 3 and array.shape[2] == 3:
        kind = b"PF"
    else:
        raise DataFileError(f"{path}: PFM needs (H, W) or (H, W, 3), got shape {array.shape}")
    height, width = array.shape[:2]
    scale = b"-1.0" if little_endian else b"1.0"
    body = np.flipud(array).astype("<f4" if little_endian else ">f4").tobytes()
    header = kind + b"\n%d %d\n" % (width, height) + scale + b"\n"
    return atomic_write(path, header + body, durable=False)


# ------------------------------------------------------------------------------------------------- PNG
def _imread(path: PathLike, flags: int) -> np.ndarray:
    if not Path(path).is_file():
        raise DataFileError(f"{path}: file not found")
    array = cv2.imread(str(path), flags)
    if array is None:
        raise DataFileError(f"{path}: cannot decode image (unsupported or corrupt file)")
    return array


def read_png16(path: PathLike) -> np.ndarray:
    """Read a single-channel 16-bit PNG as uint16 (H, W); anything else is a DataFileError."""
    array = _imread(path, cv2.IMREAD_UNCHANGED)
    if array.dtype != np.uint16 or array.ndim != 2:
        raise DataFileError(f"{path}: expected a 1-channel uint16 PNG, got {array.dtype} shape {array.shape}")
    return array


def write_png16(path: PathLike, array: np.ndarray) -> Path:
    """Write uint16 (H, W) as a 16-bit PNG, atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint16 or array.ndim != 2:
        raise DataFileError(f"{path}: expected uint16 (H, W), got {array.dtype} shape {array.shape}")
    return atomic_write(path, _encode_png(path, array), durable=False)


def read_image_rgb(path: PathLike) -> np.ndarray:
    """Read any image OpenCV decodes (or a PFM) as RGB uint8 (H, W, 3).

    Gray -> 3 channels, RGBA -> RGB (alpha dropped), 16-bit -> 8-bit (>> 8), float PFM in 0..1 or
    0..255 -> uint8 (PFM colour is already RGB order).
    """
    if str(path).lower().endswith(".pfm"):
        array = read_pfm(path)
        scale = 255.0 if np.nanmax(array) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array) * scale, 0, 255).astype(np.uint8)
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB) if array.ndim == 2 else array
    array = _imread(path, cv2.IMREAD_UNCHANGED)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DataFileError(f"{path}: expected an 8- or 16-bit image, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    if array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_mask(path: PathLike) -> np.ndarray:
    """Read a mask image as uint8 (H, W) (first channel of a colour image)."""
    array = _imread(path, cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        array = array[:, :, 0]
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    return array


# -------------------------------------------------------------------------------------------- decoders
def _read_npy(path: PathLike) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{path}: cannot read .npy ({exc})") from exc
    array = np.squeeze(array)
    if array.ndim != 2:
        raise DataFileError(f"{path}: expected a 2-D array, got shape {array.shape}")
    return array.astype(np.float32)


def _single_channel_pfm(path: PathLike) -> np.ndarray:
    array = read_pfm(path)
    return array[:, :, 0] if array.ndim == 3 else array


def _resolve_encoding(path: PathLike, encoding: str, *, png: str, kind: str) -> str:
    """``encoding`` lower-cased; ``auto`` picks by extension (.pfm, .npy, and ``png`` for .png)."""
    encoding = encoding.lower()
    if encoding != "auto":
        return encoding
    suffix = Path(path).suffix.lower()
    found = {".pfm": "pfm", ".npy": "npy", ".png": png}.get(suffix)
    if found is None:
        raise DataFileError(f"{path}: cannot infer {kind} encoding from '{suffix}' (use .pfm, .npy, .png)")
    return found


def decode_disparity(path: PathLike, encoding: str = "auto") -> np.ndarray:
    """Decode a disparity file to float32 (H, W) pixels; see the module table for encodings."""
    encoding = _resolve_encoding(path, encoding, png="kitti", kind="disparity")
    if encoding == "pfm":
        return _single_channel_pfm(path)
    if encoding == "npy":
        return _read_npy(path)
    if encoding in ("kitti", "crestereo"):
        return read_png16(path).astype(np.float32) / (256.0 if encoding == "kitti" else 32.0)
    if encoding == "fsd":
        array = _imread(path, cv2.IMREAD_UNCHANGED)
        if array.ndim != 3 or array.shape[2] < 3:
            raise DataFileError(f"{path}: FSD disparity must be an RGB PNG, got shape {array.shape}")
        b, g, r = (array[:, :, i].astype(np.float64) for i in range(3))
        return ((r * 255.0 * 255.0 + g * 255.0 + b) / 1000.0).astype(np.float32)
    raise DataFileError(f"{path}: unknown disparity encoding '{encoding}' (expected one of {DISPARITY_ENCODINGS})")


def encode_disparity_png(path: PathLike, disparity: np.ndarray, encoding: str = "kitti") -> Path:
    """Write disparity (float pixels; non-finite or <= 0 = unknown) in a PNG encoding: kitti,
    crestereo (uint16 * 256 / * 32, 0 = unknown) or fsd (RGB-packed millipixels)."""
    disparity = np.asarray(disparity, dtype=np.float64)
    known = np.isfinite(disparity) & (disparity > 0)
    encoding = encoding.lower()
    if encoding in ("kitti", "crestereo"):
        factor = 256.0 if encoding == "kitti" else 32.0
        top = float(disparity[known].max(initial=0.0))
        if top * factor > 65535:
            raise DataFileError(f"{path}: disparity {top:.2f} exceeds the {encoding} range (max {65535 / factor:.2f})")
        values = np.where(known, np.clip(np.round(disparity * factor), 1, 65535), 0).astype(np.uint16)
        return write_png16(path, values)
    if encoding == "fsd":
        milli = np.where(known, np.round(disparity * 1000.0), 0).astype(np.int64)
        r, rem = np.divmod(milli, 255 * 255)
        g, b = np.divmod(rem, 255)
        if r.max(initial=0) > 255:
            raise DataFileError(f"{path}: disparity too large for the FSD encoding")
        bgr = np.stack([b, g, r], axis=-1).astype(np.uint8)
        return atomic_write(path, _encode_png(path, bgr), durable=False)
    raise DataFileError(f"{path}: unknown PNG disparity encoding '{encoding}' (kitti, crestereo, fsd)")


def decode_depth(path: PathLike, encoding: str = "auto") -> np.ndarray:
    """Decode a depth file to float32 (H, W) metres: nyu (uint16 PNG / 1000), pfm, npy; auto by extension."""
    encoding = _resolve_encoding(path, encoding, png="nyu", kind="depth")
    if encoding == "nyu":
        return read_png16(path).astype(np.float32) / 1000.0
    if encoding == "pfm":
        return _single_channel_pfm(path)
    if encoding == "npy":
        return _read_npy(path)
    raise DataFileError(f"{path}: unknown depth encoding '{encoding}' (expected one of {DEPTH_ENCODINGS})")


# ---------------------------------------------------------------------------------------- colour maps
def colorize_disparity(disparity: np.ndarray, *, max_value: float | None = None, min_value: float = 0.0) -> np.ndarray:
    """Colourise disparity with OpenCV's TURBO map: RGB uint8 (H, W, 3).

    Values map linearly from ``min_value`` (dark blue) to ``max_value`` (dark red). With
    ``max_value=None`` the frame's own 99th percentile of valid values is used (good for looking at
    one frame); pass a fixed value (e.g. max_disparity) so several frames compare. Non-finite and
    non-positive pixels are black.
    """
    disparity = np.asarray(disparity, dtype=np.float32)
    known = np.isfinite(disparity) & (disparity > 0)
    if max_value is None:
        max_value = float(np.percentile(disparity[known], 99)) if known.any() else 1.0
    span = max(max_value - min_value, 1e-6)
    scaled = np.clip((np.where(known, disparity, min_value) - min_value) / span, 0.0, 1.0)
    bgr = cv2.applyColorMap(np.round(scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    bgr[~known] = 0
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_disparity_png(
    path: PathLike, disparity: np.ndarray, *, max_value: float | None = None, min_value: float = 0.0
) -> Path:
    """Write the TURBO colourisation of ``disparity`` (see :func:`colorize_disparity`) atomically."""
    return write_png(path, colorize_disparity(disparity, max_value=max_value, min_value=min_value))
