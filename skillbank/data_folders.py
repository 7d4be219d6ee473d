"""Data folders named for inference: is the annotation file there, can ``convert`` make it, or must we ask.

A skill's ``data_sources`` say which annotation file a data folder holds (``<folder>/infer.txt`` for
inference). A folder of images has none, and the planner must not pretend it does:

- the folder is on this machine and holds the file, or the folder is not on this machine and the words
  do not call it images: the file is used (:attr:`FolderCheck.kind` ``"ok"``);
- stereo skills (they have ``convert``): when the left/right layout is known (subfolders ``left``/``right``,
  KITTI's ``image_2``/``image_3``, Middlebury's ``*/im0.png``/``*/im1.png``, or words that say left/right
  folders), plan ``convert`` first (``"convert"``, with the left/right patterns);
- otherwise ask (``"ask"``, with the question): which annotation file, or where the left/right images are.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from skillbank.registry import Skill

#: (left pattern, right pattern) layouts convert understands, tried in order on a folder that exists here.
STEREO_LAYOUTS: list[tuple[str, str]] = [
    ("left", "right"),
    ("image_2", "image_3"),
    ("image_02", "image_03"),
    ("*/im0.png", "*/im1.png"),
    ("cam0", "cam1"),
]
_IMAGE_WORDS = re.compile(
    r"\b(?:images?|photos?|pictures?|pics|frames|jpe?gs?|pngs?|snapshots?|(?:folder|directory|dir)\s+of)\b", re.I
)
_LEFT_RIGHT_WORDS = re.compile(r"\bleft\s*(?:/|and|&|\+)\s*right\b|\bleft\s+(?:images?|folders?)\b", re.I)


@dataclass
class FolderCheck:
    kind: str  # ok | convert | ask
    question: str = ""
    overrides: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def annotation_name(skill: Skill, action: str) -> str | None:
    """The annotation file a data folder holds for ``action`` (``infer.txt``, ``test.txt``, ...)."""
    for source in ((skill.info.get("data_sources") or {}).get(action) or {}).values():
        return str(source.get("path"))
    return None


def _layout(folder: str) -> tuple[str, str] | None:
    import glob

    for left, right in STEREO_LAYOUTS:
        if glob.glob(os.path.join(folder, left)) and glob.glob(os.path.join(folder, right)):
            return left, right
    return None


def check_inference_folder(skill: Skill, folder: str, words: str) -> FolderCheck:
    """What to do with ``folder`` given as inference data (see the module docstring)."""
    name = annotation_name(skill, "inference") or "infer.txt"
    if folder.endswith(".txt"):
        return FolderCheck("ok")
    path = os.path.abspath(os.path.expanduser(folder))
    here = os.path.isdir(path)
    if here and os.path.isfile(os.path.join(path, name)):
        return FolderCheck("ok")
    if not here and not _IMAGE_WORDS.search(words) and not _LEFT_RIGHT_WORDS.search(words):
        return FolderCheck("ok", notes=[f"inference data: {folder}/{name} (the folder is not on this machine)"])
    has_convert = "convert" in skill.actions
    if not has_convert:
        return FolderCheck(
            "ask",
            f"{skill.name} inference reads an annotation file listing the images (one path per line), e.g. "
            f"{folder}/{name}; {folder} {'has none' if here else 'is not on this machine'} and {skill.name} has no "
            f"convert action. Which annotation file should it read (write one with e.g. `ls {folder}/*.png > "
            f"{folder}/{name}`)?",
        )
    layout = _layout(path) if here else (("left", "right") if _LEFT_RIGHT_WORDS.search(words) else None)
    if layout is None:
        where = f"{folder} holds no {name} and no left/right folders" if here else f"{folder} is not on this machine"
        return FolderCheck(
            "ask",
            f"{skill.name} inference reads left/right pairs from an annotation file ('left right' per line); "
            f"{where}. Give the annotation file, or the folders of left and right images to convert "
            f"(convert.left_dir / convert.right_dir).",
        )
    notes = [] if here else [f"convert: assumes {folder}/left and {folder}/right (set convert.left_dir/right_dir)"]
    return FolderCheck(
        "convert",
        overrides={
            "convert.data_root": folder,
            "convert.left_dir": layout[0],
            "convert.right_dir": layout[1],
            "convert.split_ratio": None,
        },
        notes=[f"{folder} has no {name}: convert writes one (test.txt) first, then inference reads it", *notes],
    )


def missing_annotation_files(data_inputs: dict[str, object]) -> list[str]:
    """'<key>: <file> not found ...' for data_sources entries whose folder is here but lacks the file."""
    missing = []
    for key, entries in data_inputs.items():
        if not key.endswith("data_sources") or not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            data_file = str(entry.get("data_file", "")) if isinstance(entry, dict) else ""
            folder = os.path.dirname(data_file)
            if data_file and os.path.isdir(folder) and not os.path.exists(data_file):
                missing.append(
                    f"{key}[{i}].data_file: {data_file} not found ({folder} holds no "
                    f"{os.path.basename(data_file)}: give the annotation file, or run convert on the folder first)"
                )
    return missing
