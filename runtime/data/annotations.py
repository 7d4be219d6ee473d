"""Annotation files: one sample a line, whitespace-separated columns.

Stereo: ``left right [disparity [nocc_mask]]`` (2, 3 or 4 columns). Mono: ``image [depth]``.
Blank lines and lines whose first non-blank character is ``#`` are skipped; a relative path is
resolved against the folder of the annotation file (so a data folder and its annotation files can
move together).

Parsing checks everything in ONE pass and raises a single :class:`AnnotationError` listing every
problem, one line each, e.g.::

    3 problems in /data/train.txt
    /data/train.txt:3: right image not found: /data/right/0003.png
    /data/train.txt:17: 5 columns, expected 2-4
    /data/train.txt:20: disparity not found: /data/disp/0020.pfm

so a typo is reported when the dataset is built, not hours into training. The file is named as the
caller gave it (absolute or relative).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from skillbank.runtime.data.errors import AnnotationError

__all__ = ["StereoRecord", "MonoRecord", "read_annotation_lines", "parse_stereo_annotation", "parse_mono_annotation"]

STEREO_ROLES = ("left image", "right image", "disparity", "nocc mask")
MONO_ROLES = ("image", "depth")


@dataclass(frozen=True)
class StereoRecord:
    """One stereo sample: absolute paths; ``disparity``/``nocc`` are None when the line lacks them."""

    left: Path
    right: Path
    disparity: Path | None = None
    nocc: Path | None = None
    line: int = 0


@dataclass(frozen=True)
class MonoRecord:
    """One mono sample: image path and optional depth path (absolute)."""

    image: Path
    depth: Path | None = None
    line: int = 0


def read_annotation_lines(path: str | os.PathLike) -> list[tuple[int, list[str]]]:
    """Return ``(line_number, columns)`` for every non-blank, non-comment line (1-based numbers)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AnnotationError([f"{path}: annotation file not found"], str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError([f"{path}: cannot read annotation file ({exc})"], str(path)) from exc
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            rows.append((number, stripped.split()))
    return rows


def _column_range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _parse(
    path: str | os.PathLike,
    roles: tuple[str, ...],
    *,
    min_columns: int,
    check_files: bool,
    hint: str,
) -> list[tuple[int, list[Path]]]:
    rows = read_annotation_lines(path)
    base = Path(path).resolve().parent
    problems: list[str] = []
    parsed: list[tuple[int, list[Path]]] = []
    for number, columns in rows:
        if not min_columns <= len(columns) <= len(roles):
            message = f"{path}:{number}: {len(columns)} columns, expected {_column_range(min_columns, len(roles))}"
            problems.append(message + (f"; {hint}" if hint and len(columns) < min_columns else ""))
            continue
        paths = [Path(os.path.normpath(base / c)) for c in columns]
        if check_files:
            problems += [
                f"{path}:{number}: {role} not found: {p}"
                for role, p in zip(roles, paths, strict=False)
                if not p.is_file()
            ]
        parsed.append((number, paths))
    if not rows:
        problems.append(f"{path}: no samples (every line is blank or a # comment)")
    if problems:
        raise AnnotationError(problems, str(path))
    return parsed


def parse_stereo_annotation(
    path: str | os.PathLike, *, min_columns: int = 2, check_files: bool = True, hint: str = ""
) -> list[StereoRecord]:
    """Parse a stereo annotation file (2-4 columns); ``min_columns=3`` demands ground truth.

    ``hint`` is appended to "too few columns" problems (dataset classes use it to suggest
    GenericDataset). With ``check_files`` every referenced file must exist.
    """
    parsed = _parse(path, STEREO_ROLES, min_columns=min_columns, check_files=check_files, hint=hint)
    return [StereoRecord(*paths, line=number) for number, paths in parsed]


def parse_mono_annotation(
    path: str | os.PathLike, *, min_columns: int = 1, check_files: bool = True, hint: str = ""
) -> list[MonoRecord]:
    """Parse a mono annotation file: ``image [depth]`` (``min_columns=2`` demands depth)."""
    parsed = _parse(path, MONO_ROLES, min_columns=min_columns, check_files=check_files, hint=hint)
    return [MonoRecord(*paths, line=number) for number, paths in parsed]
