"""The skill registry: finds skill folders, parses them and answers questions about them.

Where skills come from, in order (a later folder's skill replaces an earlier one of the same name, so a
user can override one of ours with an edited copy):

1. ours, shipped as package data ``skillbank.skills``;
2. folders named in the environment variable ``SKILLBANK_SKILLS_PATH`` (``os.pathsep``-separated);
3. folders passed as ``extra`` to :meth:`Registry.load`.

Each folder is either one skill (it holds ``SKILL.md``) or a folder of skill folders. Loading reads only
``SKILL.md`` and ``references/skill_info.yaml`` per skill (fast, no spec models, no torch); a folder that
does not parse is left out and its problem kept in :attr:`Registry.problems`. Deep checks (schemas,
templates, spec keys) live in :mod:`skillbank.skill_checks` and run for ``skillbank validate``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, NamedTuple

from skillbank.skill_files import (
    INFO_FILE,
    SKILL_FILE,
    SkillFileError,
    load_yaml_mapping,
    read_text,
    split_front_matter,
)

ENV_VAR = "SKILLBANK_SKILLS_PATH"
GENERATE_HINT = "run `skillbank schemas generate`"


# Records are NamedTuples, not dataclasses: importing dataclasses (it imports inspect) costs more CPU than
# loading every skill, and the registry is the whole of `skillbank list`'s startup.


class Problem(NamedTuple):
    """One problem of a skill folder: the file, the key in it, what is wrong."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class AutomlStatus(NamedTuple):
    """Whether train can go to the AutoML workflow for a skill, and if not, why."""

    enabled: bool
    runnable: bool
    reason: str


class Skill(NamedTuple):
    """A parsed skill folder."""

    name: str
    path: Path
    meta: dict[str, Any]
    body: str
    info: dict[str, Any]
    origin: str = "builtin"

    @property
    def kind(self) -> str:
        return str(self.info.get("kind", "model"))

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))

    @property
    def metadata(self) -> dict[str, str]:
        """SKILL.md's ``metadata`` (Agent Skills: string keys to string values): TAO-style facts such as
        ``version``, ``tool``, ``network_arch`` and ``tags``."""
        raw = self.meta.get("metadata")
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    @property
    def tags(self) -> list[str]:
        """``metadata.tags``, a comma-separated string in SKILL.md, as a list."""
        return [t.strip() for t in self.metadata.get("tags", "").split(",") if t.strip()]

    @property
    def network_arch(self) -> str | None:
        """skill_info's ``network_arch`` (the planner's source), else SKILL.md's ``metadata.network_arch``."""
        return self.info.get("network_arch") or self.metadata.get("network_arch")

    @property
    def actions(self) -> list[str]:
        return list((self.info.get("actions") or {}).keys())

    @property
    def automl_enabled(self) -> bool:
        return bool(self.info.get("automl_enabled", False))

    def template_path(self, action: str) -> Path | None:
        """The spec template this skill names for ``action`` (the file may not exist yet)."""
        rel = (self.info.get("spec_templates") or {}).get(action)
        return self.path / rel if rel else None

    def schema_path(self, action: str) -> Path | None:
        """The JSON Schema file for ``action`` (named in skill_info ``schemas``, else the convention)."""
        if action not in self.actions:
            return None
        rel = (self.info.get("schemas") or {}).get(action, f"schemas/{action}.schema.json")
        return self.path / rel

    def automl_status(self) -> AutomlStatus:
        """Runnable = automl_enabled, and the train schema and train template are both present."""
        if self.kind != "model" or "train" not in self.actions:
            return AutomlStatus(False, False, f"{self.name} has no train action")
        if not self.automl_enabled:
            return AutomlStatus(False, False, f"automl_enabled is false in {self.name}/{INFO_FILE}")
        schema, template = self.schema_path("train"), self.template_path("train")
        missing = []
        if schema is None or not schema.is_file():
            missing.append(str(schema.relative_to(self.path)) if schema else "schemas/train.schema.json")
        if template is None:
            missing.append("references/spec_template_train.yaml (spec_templates.train not set)")
        elif not template.is_file():
            missing.append(str(template.relative_to(self.path)))
        if missing:
            return AutomlStatus(
                True,
                False,
                f"AutoML is enabled for {self.name} but not runnable until schemas are generated "
                f"(missing {', '.join(missing)}; {GENERATE_HINT})",
            )
        if not (self.info.get("automl") or {}).get("hyperparameters"):
            return AutomlStatus(True, False, f"AutoML is enabled for {self.name} but its automl block lists no "
                                f"hyperparameters to search ({INFO_FILE})")
        if importlib.util.find_spec("optuna") is None:  # the runner (skillbank.automl) needs the automl extra
            return AutomlStatus(True, False, f"AutoML is enabled for {self.name} but the runner needs Optuna: "
                                "pip install 'skillbank[automl]'")
        return AutomlStatus(
            True, True, f"AutoML runnable: automl_enabled and train schema + template present in {self.path}"
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (for ``skillbank list/show --json`` and agents)."""
        status = self.automl_status()
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "network_arch": self.network_arch,
            "actions": self.actions,
            "automl_enabled": status.enabled,
            "automl_runnable": status.runnable,
            "automl_reason": status.reason,
            "path": str(self.path),
            "origin": self.origin,
        }


def parse_skill(path: Path, origin: str = "builtin") -> Skill:
    """Parse one skill folder (SKILL.md + references/skill_info.yaml). Raises :class:`SkillFileError`."""
    name = path.name
    meta, body, _ = split_front_matter(read_text(path / SKILL_FILE, f"{name}/{SKILL_FILE}"), f"{name}/{SKILL_FILE}")
    info_path = path / INFO_FILE
    info = load_yaml_mapping(info_path, f"{name}/{INFO_FILE}") if info_path.exists() else {"kind": "workflow"}
    return Skill(name=str(meta.get("name") or name), path=path, meta=meta, body=body, info=info, origin=origin)


def builtin_root() -> Path:
    """Folder of the skills shipped with skillbank (package data ``skillbank.skills``).

    Found from the package's ``__file__`` rather than :mod:`importlib.resources`, which costs ~10 ms of
    imports; skills ship as plain files (no zip imports), so both give the same folder.
    """
    import skillbank.skills as package

    return Path(package.__file__).parent


def skill_roots(extra: list[str | os.PathLike[str]] | None = None) -> list[tuple[Path, str]]:
    """(folder, origin) in load order: ours, then SKILLBANK_SKILLS_PATH, then ``extra``."""
    roots: list[tuple[Path, str]] = [(builtin_root(), "builtin")]
    env = os.environ.get(ENV_VAR, "")
    roots += [(Path(p).expanduser(), ENV_VAR) for p in env.split(os.pathsep) if p.strip()]
    roots += [(Path(p).expanduser(), "argument") for p in extra or []]
    return roots


def skill_dirs(root: Path) -> list[Path]:
    """Skill folders in ``root``: the folder itself if it holds SKILL.md, else its subfolders that do
    (or that have a references/skill_info.yaml, so a folder missing SKILL.md is reported, not skipped)."""
    if (root / SKILL_FILE).is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and ((p / SKILL_FILE).exists() or (p / INFO_FILE).exists())
    )


class Registry:
    """Every skill found, by name, plus the problems of folders that could not be loaded."""

    def __init__(self, skills: dict[str, Skill] | None = None, problems: list[Problem] | None = None) -> None:
        self.skills: dict[str, Skill] = dict(skills or {})
        self.problems: list[Problem] = list(problems or [])

    def __repr__(self) -> str:
        return f"Registry(skills={sorted(self.skills)}, problems={len(self.problems)})"

    @classmethod
    def load(cls, extra: list[str | os.PathLike[str]] | None = None, *, builtin: bool = True) -> Registry:
        reg = cls()
        for root, origin in skill_roots(extra):
            if origin == "builtin" and not builtin:
                continue
            if origin != "builtin" and not root.exists():
                reg.problems.append(Problem(str(root), "", f"skill folder not found (from {origin})"))
                continue
            for path in skill_dirs(root):
                try:
                    skill = parse_skill(path, origin)
                except SkillFileError as exc:
                    reg.problems.append(Problem(exc.file, "", exc.message))
                    continue
                reg.skills[skill.name] = skill
        return reg

    def list(self) -> list[Skill]:
        return sorted(self.skills.values(), key=lambda s: (s.kind != "model", s.name))

    def get(self, name: str) -> Skill:
        try:
            return self.skills[name]
        except KeyError:
            known = ", ".join(sorted(self.skills)) or "none"
            raise KeyError(f"skill {name!r} not found (known: {known})") from None

    def actions(self, name: str) -> list[str]:
        return self.get(name).actions

    def automl_status(self, name: str) -> AutomlStatus:
        return self.get(name).automl_status()


_DEFAULT: Registry | None = None


def default_registry(refresh: bool = False) -> Registry:
    """The registry of ours + SKILLBANK_SKILLS_PATH, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None or refresh:
        _DEFAULT = Registry.load()
    return _DEFAULT


def list_skills() -> list[dict[str, Any]]:
    """SDK: every skill as a JSON-ready summary."""
    return [s.summary() for s in default_registry().list()]
