"""Reading the files of a skill folder: SKILL.md front matter and YAML/JSON, with one-line errors.

A skill folder (Agent Skills format) holds ``SKILL.md`` (YAML front matter between ``---`` lines, then a
Markdown body), ``references/skill_info.yaml`` and, for model skills, generated
``references/spec_template_<action>.yaml`` and ``schemas/<action>.schema.json``. These helpers read
them fast (libyaml when present) and raise :class:`SkillFileError` naming the file (and line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml is ~10x faster; the registry must load every skill in well under 100 ms
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml built without libyaml
    _Loader = yaml.SafeLoader

SKILL_FILE = "SKILL.md"
INFO_FILE = "references/skill_info.yaml"


class SkillFileError(ValueError):
    """A skill file that is missing or does not parse. ``str()`` is '<file>[:line]: <problem>'."""

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}")


def load_yaml_text(text: str, file: str) -> Any:
    """Parse YAML ``text``; errors name ``file`` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader / SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SkillFileError(f"{file}{line}", f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SkillFileError(file, f"invalid YAML: {exc}") from None


def read_text(path: Path, label: str) -> str:
    if not path.is_file():
        raise SkillFileError(label, "file not found")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SkillFileError(label, f"cannot read: {exc}") from None


def load_yaml_mapping(path: Path, label: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping."""
    data = load_yaml_text(read_text(path, label), label)
    if not isinstance(data, dict):
        raise SkillFileError(label, f"expected a mapping at the top, got {type(data).__name__}")
    return data


def load_json_mapping(path: Path, label: str) -> dict[str, Any]:
    """A JSON file that must hold an object."""
    try:
        data = json.loads(read_text(path, label))
    except json.JSONDecodeError as exc:
        raise SkillFileError(f"{label}:{exc.lineno}", f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise SkillFileError(label, f"expected a JSON object, got {type(data).__name__}")
    return data


def split_front_matter(text: str, label: str = SKILL_FILE) -> tuple[dict[str, Any], str, int]:
    """SKILL.md text -> (front matter mapping, Markdown body, line number where the body starts)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise SkillFileError(label, "must start with a '---' line opening the YAML front matter")
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        raise SkillFileError(label, "front matter is not closed by a '---' line")
    meta = load_yaml_text("\n".join(lines[1:end]), label) or {}
    if not isinstance(meta, dict):
        raise SkillFileError(label, "front matter must be a YAML mapping")
    return meta, "\n".join(lines[end + 1 :]), end + 2
