"""``depth_net convert``: folders of stereo pairs -> annotation files.

``convert_folders`` walks ``data_root`` with one directory pattern per role (left, right, optional
disparity and nocc mask). A pattern is a path relative to ``data_root`` and may use glob wildcards
per level (``*``, ``?``, ``[..]``; not ``**``), e.g. ``frames_cleanpass/*/*/*/left``. Files are paired
by a key made of the parts the wildcards matched plus the file's path inside the matched folder
without its extension, so

    frames_cleanpass/TRAIN/A/0000/left/0006.png  (pattern frames_cleanpass/*/*/*/left)
    disparity/TRAIN/A/0000/left/0006.pfm         (pattern disparity/*/*/*/left)

share the key ``TRAIN/A/0000/0006``. A pattern may also name files, for layouts that keep one scene
per folder: ``*/im0.png``, ``*/im1.png``, ``*/disp0GT.pfm``, ``*/mask0nocc.png`` (Middlebury) pair
by the scene folder (the key is the wildcard parts, extension dropped). A sample needs every
requested role; files left without a partner are reported, never silently paired.

With ``split_ratio`` r in (0, 1) a seeded shuffle writes ``train.txt`` (fraction r) and ``val.txt``;
with None every sample goes to ``test.txt``. Paths in the files are relative to ``out_dir`` when the
data lies under it (the folder stays relocatable), else absolute.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skillbank.atomic import atomic_write
from skillbank.runtime.data.synthetic import generate_synthetic_stereo

__all__ = ["ConvertError", "ConvertReport", "convert_folders", "make_synthetic"]

_ROLES = ("left", "right", "disparity", "nocc")
_WILDCARDS = set("*?[")


class ConvertError(ValueError):
    """Bad convert arguments: missing root, a pattern that matches no folder, no complete sample."""


@dataclass
class ConvertReport:
    """What convert wrote: samples per split, annotation files, and files without a partner."""

    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    unmatched: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line, e.g. 'converted 40 samples (train 36, val 4); unmatched: 2 left, 1 disparity'."""
        splits = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        lost = ", ".join(f"{len(v)} {k}" for k, v in self.unmatched.items() if v)
        return f"converted {self.total} samples ({splits}); unmatched: {lost or 'none'}"


def _collect(root: Path, pattern: str, exts: tuple[str, ...], role: str) -> dict[str, Path]:
    """key -> file for one role (see the module docstring for the key)."""
    parts = Path(pattern).parts
    if "**" in pattern or Path(pattern).is_absolute():
        raise ConvertError(f"{role}_dir '{pattern}': use a relative pattern with '*' per level ('**' is not supported)")
    wild = [i for i, p in enumerate(parts) if _WILDCARDS & set(p)]
    matches = sorted(Path(m) for m in glob.glob(str(root / pattern)))
    dirs = [m for m in matches if m.is_dir()]
    files = [m for m in matches if m.is_file() and m.suffix.lower() in exts]
    if not dirs and not files:
        raise ConvertError(f"{role}_dir '{pattern}' matched no folder or {'/'.join(exts)} file under {root}")
    found: dict[str, Path] = {}
    for d in dirs:
        rel_parts = d.relative_to(root).parts
        prefix = [rel_parts[i] for i in wild]
        for f in sorted(d.rglob("*")):
            if f.is_file() and f.suffix.lower() in exts and not f.name.startswith("."):
                key = "/".join([*prefix, f.relative_to(d).with_suffix("").as_posix()])
                found.setdefault(key, f)
    for f in files:  # file patterns, e.g. '*/im0.png' (Middlebury) or 'left/*.png'
        rel_parts = list(f.relative_to(root).parts)
        rel_parts[-1] = Path(rel_parts[-1]).stem
        found.setdefault("/".join(rel_parts[i] for i in wild), f)
    return found


def _relative_or_absolute(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def convert_folders(
    data_root: str | os.PathLike,
    left_dir: str,
    right_dir: str,
    disparity_dir: str | None = None,
    nocc_dir: str | None = None,
    *,
    out_dir: str | os.PathLike,
    split_ratio: float | None = None,
    seed: int = 0,
    image_exts: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".pfm"),
) -> ConvertReport:
    """Pair files of the role folders and write annotation files (see the module docstring)."""
    root = Path(data_root)
    if not root.is_dir():
        raise ConvertError(f"data_root not found: {root}")
    if split_ratio is not None and not 0.0 < split_ratio < 1.0:
        raise ConvertError(f"split_ratio: expected a number in (0, 1) or None, got {split_ratio}")
    exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in image_exts)
    patterns = dict(zip(_ROLES, (left_dir, right_dir, disparity_dir, nocc_dir), strict=True))
    by_role = {role: _collect(root, pat, exts, role) for role, pat in patterns.items() if pat is not None}
    complete = sorted(set.intersection(*(set(files) for files in by_role.values())))
    if not complete:
        counts = ", ".join(f"{len(v)} {k}" for k, v in by_role.items())
        raise ConvertError(f"no complete sample under {root} (found {counts}; keys must match by relative path/stem)")
    unmatched = {role: [files[k] for k in sorted(set(files) - set(complete))] for role, files in by_role.items()}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roles = [r for r in _ROLES if r in by_role]
    lines = [" ".join(_relative_or_absolute(by_role[r][k], out) for r in roles) for k in complete]
    if split_ratio is None:
        splits = {"test": lines}
    else:
        order = np.random.default_rng(seed).permutation(len(lines))
        n_train = int(round(len(lines) * split_ratio))
        if len(lines) >= 2:
            n_train = min(max(n_train, 1), len(lines) - 1)
        splits = {"train": [lines[i] for i in order[:n_train]], "val": [lines[i] for i in order[n_train:]]}
    report = ConvertReport(unmatched=unmatched)
    header = "# " + " ".join(roles) + f"  (written by depth_net convert from {root.resolve()})\n"
    for name, split_lines in splits.items():
        path = atomic_write(out / f"{name}.txt", (header + "".join(f"{ln}\n" for ln in split_lines)).encode())
        report.counts[name] = len(split_lines)
        report.files[name] = path
    return report


def make_synthetic(
    out_dir: str | os.PathLike,
    num_pairs: int,
    height: int,
    width: int,
    max_disparity: float,
    seed: int = 0,
    split_ratio: float | None = None,
    *,
    config=None,
    workers: int = 1,
    progress=None,
) -> ConvertReport:
    """Render synthetic pairs into ``out_dir`` (see runtime/data/synthetic/) and write
    train.txt/val.txt (``split_ratio``) or test.txt beside them, 4 columns each. ``config`` is the
    ``convert.synthetic`` section (None = defaults), ``workers`` rendering processes (0 = all cores)."""
    generate_synthetic_stereo(
        out_dir, num_pairs, height, width, max_disparity, seed, config=config, workers=workers, progress=progress
    )
    return convert_folders(
        out_dir,
        "left",
        "right",
        "disparity",
        "nocc",
        out_dir=out_dir,
        split_ratio=split_ratio,
        seed=seed,
        image_exts=(".png", ".pfm"),
    )
