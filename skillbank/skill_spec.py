"""The Agent Skills specification's rules for ``SKILL.md``, as the reference library (``skills-ref``) applies them.

An agent that loads skills through the reference library, or through a client that follows the
specification, sees a skill folder only if its ``SKILL.md`` passes these rules:

- The file starts with ``---``; the front matter is the text up to the next ``---`` (anywhere, even inside
  a line: the reference parser splits on the first one), then the Markdown body.
- The front matter is YAML that strictyaml accepts: block style only (no ``[a, b]`` or ``{k: v}``), no
  anchors/aliases, no ``!!tags``, no duplicate keys. Every scalar is read as a string.
- Fields: only ``name``, ``description``, ``license``, ``compatibility``, ``metadata``, ``allowed-tools``.
- ``name``: required; at most 64 characters; lowercase letters, digits and hyphens (Unicode letters count as
  letters, after NFKC normalisation); no leading, trailing or double hyphen; equal to the folder name.
- ``description``: required, non-empty, at most 1024 characters.
- ``compatibility``: a string of 1..500 characters. ``license`` and ``allowed-tools``: strings.
- ``metadata``: a mapping of string keys to string values.
- The body stays under 500 lines (the specification's advice; details go to ``references/``).

:func:`check_skill_md` returns every problem as a :class:`SpecProblem` (line, field, message) so that
``skillbank validate`` prints one line per problem naming the file, the line where known, and the field.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

ALLOWED_FIELDS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
MAX_COMPATIBILITY_CHARS = 500
MAX_BODY_LINES = 500

_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z0-9_][^:#]*?)\s*:(?:\s|$)")
_YAML_RULES = {
    "FlowMappingDisallowed": "flow style ('[...]' or '{...}') is not accepted by the Agent Skills parser "
    "(strictyaml): write a block list or mapping, or a quoted string",
    "AnchorTokenDisallowed": "YAML anchors and aliases (&name, *name) are not accepted by the Agent Skills "
    "parser (strictyaml)",
    "TagTokenDisallowed": "YAML type tags (!!type) are not accepted by the Agent Skills parser (strictyaml)",
    "DuplicateKeysDisallowed": "duplicate key (the Agent Skills parser, strictyaml, refuses it)",
    "InconsistentIndentationDisallowed": "inconsistent indentation (the Agent Skills parser, strictyaml, refuses it)",
}


@dataclass(frozen=True)
class SpecProblem:
    """One way a SKILL.md breaks the specification: 1-based line in the file (if known), field, message."""

    line: int | None
    field: str
    message: str


def split_reference(text: str) -> tuple[str, str] | str:
    """(front matter text, body) split as the reference parser splits, or the problem as a string.

    The front matter text starts right after the opening ``---``, so its line ``i`` (0-based) is line
    ``i + 1`` of the file.
    """
    if not text.startswith("---"):
        return "must start with '---' (YAML front matter)"
    parts = text.split("---", 2)
    if len(parts) < 3:
        return "front matter is not closed by '---'"
    return parts[1], parts[2].strip()


def field_at(lines: list[str], index: int) -> str:
    """The dotted key whose entry holds line ``index`` of block-style YAML ``lines`` ('' if none)."""
    path: list[str] = []
    indent: int | None = None
    for i in range(min(index, len(lines) - 1), -1, -1):
        m = _KEY_LINE.match(lines[i])
        if not m:
            continue
        depth = len(m.group(1))
        if indent is None or depth < indent:
            path.insert(0, m.group(2).strip())
            indent = depth
            if depth == 0:
                break
    return ".".join(path)


def parse_strict(front: str) -> tuple[Any, SpecProblem | None]:
    """The front matter as strictyaml (the reference parser) reads it, or None and the problem."""
    import strictyaml

    try:
        return strictyaml.load(front).data, None
    except strictyaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        index = mark.line if mark is not None else None
        lines = front.splitlines()
        where = field_at(lines, index) if index is not None else ""
        message = _YAML_RULES.get(type(exc).__name__) or f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        return None, SpecProblem(index + 1 if index is not None else None, where, message)
    except Exception as exc:  # noqa: BLE001 - any other failure of the parser is a parse failure too
        return None, SpecProblem(None, "", f"invalid YAML: {exc}")


def _lenient(front: str) -> Any:
    """The front matter read by PyYAML with every scalar as a string (to go on checking fields after a
    strictyaml failure); None when even that fails."""
    import yaml

    def strings(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strings(v) for v in value]
        return value if value is None or isinstance(value, str) else str(value)

    try:
        return strings(yaml.safe_load(front))
    except yaml.YAMLError:
        return None


def name_problems(name: Any, folder: str | None) -> list[str]:
    """The reference library's name rules, one message per broken rule."""
    if not isinstance(name, str) or not name.strip():
        return ["must be a non-empty string (the folder name)"]
    name = unicodedata.normalize("NFKC", name.strip())
    out = []
    if len(name) > MAX_NAME_CHARS:
        out.append(f"{name!r} is {len(name)} characters; at most {MAX_NAME_CHARS}")
    if name != name.lower():
        out.append(f"{name!r} must be lowercase")
    if name.startswith("-") or name.endswith("-"):
        out.append(f"{name!r} must not start or end with a hyphen")
    if "--" in name:
        out.append(f"{name!r} must not contain consecutive hyphens")
    if not all(c.isalnum() or c == "-" for c in name):
        out.append(f"{name!r} may hold only letters, digits and hyphens")
    if folder is not None and unicodedata.normalize("NFKC", folder) != name:
        out.append(f"{name!r} must equal the folder name {folder!r}")
    return out


def field_problems(meta: dict[str, Any], folder: str | None, lines: list[str] | None = None) -> list[SpecProblem]:
    """Every rule on the fields of a parsed front matter mapping."""
    lines = lines or []

    def line_of(key: str) -> int | None:
        for i, text in enumerate(lines):
            if text.startswith(f"{key}:"):
                return i + 1
        return None

    problems: list[SpecProblem] = []

    def bad(key: str, message: str) -> None:
        problems.append(SpecProblem(line_of(key.split(".")[0]), key, message))

    for key in meta:
        if key not in ALLOWED_FIELDS:
            hint = "; put it under metadata as a string" if key not in ("name", "description") else ""
            bad(
                str(key),
                f"not a front matter field of the Agent Skills specification (allowed: "
                f"{', '.join(ALLOWED_FIELDS)}){hint}",
            )
    if "name" not in meta:
        problems.append(SpecProblem(None, "name", "required (the folder name)"))
    else:
        for message in name_problems(meta["name"], folder):
            bad("name", message)
    desc = meta.get("description")
    if "description" not in meta:
        problems.append(SpecProblem(None, "description", "required: what the skill does and when to use it"))
    elif not isinstance(desc, str) or not desc.strip():
        bad("description", "must be a non-empty string: what the skill does and when to use it")
    elif len(desc) > MAX_DESCRIPTION_CHARS:
        bad("description", f"{len(desc)} characters; at most {MAX_DESCRIPTION_CHARS}")
    if "compatibility" in meta:
        comp = meta["compatibility"]
        if not isinstance(comp, str):
            bad("compatibility", "must be a string")
        elif not comp.strip():
            bad("compatibility", f"must not be empty (1..{MAX_COMPATIBILITY_CHARS} characters, or leave it out)")
        elif len(comp) > MAX_COMPATIBILITY_CHARS:
            bad("compatibility", f"{len(comp)} characters; at most {MAX_COMPATIBILITY_CHARS}")
    for key in ("license", "allowed-tools"):
        if key in meta and not isinstance(meta[key], str):
            bad(key, "must be a string" + (" (space-separated tool names)" if key == "allowed-tools" else ""))
    if "metadata" in meta:
        metadata = meta["metadata"]
        if not isinstance(metadata, dict):
            bad("metadata", "must be a mapping of string keys to string values")
        else:
            for key, value in metadata.items():
                if not isinstance(value, str):
                    bad(
                        f"metadata.{key}",
                        "must be a string (metadata maps strings to strings; "
                        "write a list as one string, e.g. 'a, b, c')",
                    )
    return problems


def check_skill_md(text: str, folder: str | None) -> list[SpecProblem]:
    """Every specification problem of a SKILL.md's text (``folder``: its folder's name, None to skip that
    rule). An empty list means the reference validator accepts it."""
    split = split_reference(text)
    if isinstance(split, str):
        return [SpecProblem(1, "", split)]
    front, body = split
    lines = front.splitlines()
    problems: list[SpecProblem] = []
    own = text.splitlines()
    if own and own[0].strip() == "---":
        for i, line in enumerate(own[1:], start=1):
            if line.strip() == "---":
                break
            if "---" in line:
                problems.append(
                    SpecProblem(
                        i + 1,
                        field_at(own[1 : i + 1], i - 1),
                        "contains '---', where the Agent Skills parser ends the front matter; reword it",
                    )
                )
                return problems
    meta, yaml_problem = parse_strict(front)
    if yaml_problem is not None:
        problems.append(yaml_problem)
        meta = _lenient(front)
        if not isinstance(meta, dict):
            return problems
    elif not isinstance(meta, dict):
        return [SpecProblem(None, "", "the front matter must be a YAML mapping (name: ..., description: ...)")]
    problems += field_problems(meta, folder, lines)
    n_lines = len(body.splitlines())
    if n_lines >= MAX_BODY_LINES:
        problems.append(
            SpecProblem(
                None,
                "body",
                f"{n_lines} lines; keep SKILL.md under {MAX_BODY_LINES} lines and move details to references/",
            )
        )
    return problems
