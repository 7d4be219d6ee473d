"""Deep validation of a skill folder: every problem as (file, key, message). Used by ``skillbank validate``.

Checks, in order:

- ``SKILL.md``: the Agent Skills specification's rules as the reference library applies them
  (:mod:`.skill_spec`: strictyaml-readable block YAML, allowed fields only, name = folder name, lengths,
  ``metadata`` string to string, body under 500 lines); ``references/...`` links in the body point at
  files that exist; ``metadata.network_arch``, when given, equals skill_info's ``network_arch``.
- ``references/skill_info.yaml`` against ``references/skill_info.schema.json`` (jsonschema), and
  ``name`` equal to the folder name, ``automl_enabled`` equal to ``automl.enabled``.
- Generated files: every action names a template and a schema; both exist and parse; the schema is a
  valid draft 2020-12 schema; the template validates against it; the manifest lists the schema.
- Spec keys: key_defaults, spec_shorthand_keys targets, spec_params, data_sources, action inputs,
  gpu_spec_key and AutoML hyperparameters are real keys of the spec models; key_defaults applied to each
  template still give a valid spec; hyperparameters are AutoML-searchable fields, inside the field's
  range, and match no ``never_search`` pattern.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from skillbank.registry import GENERATE_HINT, Problem
from skillbank.skill_files import (
    INFO_FILE,
    SKILL_FILE,
    SkillFileError,
    load_json_mapping,
    load_yaml_mapping,
    read_text,
    split_front_matter,
)
from skillbank.skill_spec import check_skill_md

_LINK_RE = re.compile(r"\]\((references/[^)#\s]+)")


@lru_cache(maxsize=1)
def skill_info_validator() -> Any:
    """jsonschema validator of skill_info.yaml (schema shipped in ``skillbank.references``)."""
    import jsonschema

    text = resources.files("skillbank.references").joinpath("skill_info.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    return jsonschema.Draft202012Validator(schema)


@lru_cache(maxsize=32)
def _schema_validator(schema_text: str) -> Any:
    """A checked validator per distinct schema (skills share the same action schemas; checking one
    against the draft 2020-12 meta-schema is the slow part of validate)."""
    import jsonschema

    schema = json.loads(schema_text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _json_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def check_front_matter(skill_dir: Path, info: dict[str, Any] | None = None) -> list[Problem]:
    """SKILL.md against the Agent Skills specification (:mod:`.skill_spec`), its ``references/`` links, and
    its ``metadata.network_arch`` against skill_info's ``network_arch``."""
    folder = skill_dir.name
    label = f"{folder}/{SKILL_FILE}"
    try:
        text = read_text(skill_dir / SKILL_FILE, label)
    except SkillFileError as exc:
        return [Problem(exc.file, "", exc.message)]
    problems = [
        Problem(f"{label}:{p.line}" if p.line else label, p.field, p.message) for p in check_skill_md(text, folder)
    ]
    try:
        meta, body, _ = split_front_matter(text, label)
    except SkillFileError:
        return problems  # the spec check above has reported why
    for rel in sorted(set(_LINK_RE.findall(body))):
        if not (skill_dir / rel).is_file():
            problems.append(Problem(label, "body", f"links to {rel}, which does not exist"))
    metadata = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
    arch = (info or {}).get("network_arch")
    if "network_arch" in metadata and arch is not None and str(metadata["network_arch"]) != arch:
        problems.append(
            Problem(label, "metadata.network_arch", f"{metadata['network_arch']!r} differs from {INFO_FILE}'s {arch!r}")
        )
    return problems


def check_skill_info(skill_dir: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    label = f"{skill_dir.name}/{INFO_FILE}"
    if not (skill_dir / INFO_FILE).exists():
        return None, [Problem(label, "", "file not found (every skill needs references/skill_info.yaml)")]
    try:
        info = load_yaml_mapping(skill_dir / INFO_FILE, label)
    except SkillFileError as exc:
        return None, [Problem(exc.file, "", exc.message)]
    problems = [
        Problem(label, _json_path(err.absolute_path) or "(top)", err.message)
        for err in sorted(skill_info_validator().iter_errors(info), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if info.get("name") != skill_dir.name:
        problems.append(Problem(label, "name", f"{info.get('name')!r} must equal the folder name {skill_dir.name!r}"))
    automl = info.get("automl")
    if isinstance(automl, dict) and "automl_enabled" in info and automl.get("enabled") != info["automl_enabled"]:
        problems.append(Problem(label, "automl.enabled", "must equal automl_enabled"))
    return info, problems


def _check_generated(skill_dir: Path, info: dict[str, Any]) -> tuple[list[Problem], dict[str, tuple[dict, Any]]]:
    """Templates and schemas per action; returns problems and {action: (template, validator)}."""
    import jsonschema

    label = f"{skill_dir.name}/{INFO_FILE}"
    problems: list[Problem] = []
    loaded: dict[str, tuple[dict, Any]] = {}
    templates = info.get("spec_templates") or {}
    schemas = info.get("schemas") or {}
    manifest_actions: dict[str, Any] | None = None
    manifest = skill_dir / "schemas" / "manifest.json"
    if manifest.exists():
        try:
            manifest_actions = load_json_mapping(manifest, f"{skill_dir.name}/schemas/manifest.json").get("actions", {})
        except SkillFileError as exc:
            problems.append(Problem(exc.file, "", exc.message))
    for action in info.get("actions") or {}:
        t_rel = templates.get(action)
        s_rel = schemas.get(action, f"schemas/{action}.schema.json")
        if t_rel is None:
            problems.append(Problem(label, f"spec_templates.{action}", "no template named for this action"))
        template: dict[str, Any] | None = None
        if t_rel is not None:
            t_label = f"{skill_dir.name}/{t_rel}"
            if not (skill_dir / t_rel).is_file():
                problems.append(Problem(t_label, f"spec_templates.{action}", f"template missing; {GENERATE_HINT}"))
            else:
                try:
                    template = load_yaml_mapping(skill_dir / t_rel, t_label)
                except SkillFileError as exc:
                    problems.append(Problem(exc.file, f"spec_templates.{action}", exc.message))
        s_label = f"{skill_dir.name}/{s_rel}"
        validator = None
        if not (skill_dir / s_rel).is_file():
            problems.append(Problem(s_label, f"schemas.{action}", f"schema missing; {GENERATE_HINT}"))
        else:
            try:
                schema = load_json_mapping(skill_dir / s_rel, s_label)
                validator = _schema_validator(json.dumps(schema, sort_keys=True))
            except SkillFileError as exc:
                problems.append(Problem(exc.file, f"schemas.{action}", exc.message))
            except jsonschema.SchemaError as exc:
                problems.append(
                    Problem(s_label, _json_path(exc.absolute_path) or "(top)", f"not a JSON Schema: {exc.message}")
                )
            if manifest_actions is not None and action not in manifest_actions:
                problems.append(Problem(f"{skill_dir.name}/schemas/manifest.json", f"actions.{action}", "not listed"))
        if template is not None and validator is not None:
            for err in validator.iter_errors(template):
                problems.append(
                    Problem(
                        f"{skill_dir.name}/{t_rel}",
                        _json_path(err.absolute_path) or "(top)",
                        f"does not match {s_rel}: {err.message}",
                    )
                )
            loaded[action] = (template, validator)
    return problems, loaded


def _check_keys(skill_dir: Path, info: dict[str, Any], loaded: dict[str, tuple[dict, Any]]) -> list[Problem]:
    from pydantic import ValidationError

    from skillbank.spec_keys import deep_merge, field_at, field_extra, unknown_key_message
    from skillbank.specs import ExperimentSpec, SpecError
    from skillbank.specs.dotted import set_dotted
    from skillbank.specs.errors import spec_error_from_validation

    label = f"{skill_dir.name}/{INFO_FILE}"
    problems: list[Problem] = []

    def key_ok(where: str, dotted: str) -> bool:
        if field_at(dotted) is None:
            problems.append(Problem(label, where, f"{dotted!r} is {unknown_key_message(dotted)}"))
            return False
        return True

    defaults = info.get("key_defaults") or {}
    for key in defaults:
        key_ok(f"key_defaults.{key}", key)
    for short, target in (info.get("spec_shorthand_keys") or {}).items():
        key_ok(f"spec_shorthand_keys.{short}", target)
    for action, params in (info.get("spec_params") or {}).items():
        for key in params or {}:
            key_ok(f"spec_params.{action}.{key}", key)
    for action, sources in (info.get("data_sources") or {}).items():
        for key in sources or {}:
            if key_ok(f"data_sources.{action}.{key}", key) and not key.endswith(".data_sources"):
                problems.append(Problem(label, f"data_sources.{action}.{key}", "must name a <split>.data_sources key"))
    for action, spec in (info.get("actions") or {}).items():
        for key in (spec or {}).get("inputs") or {}:
            key_ok(f"actions.{action}.inputs.{key}", key)
    if isinstance(info.get("gpu_spec_key"), str):
        key_ok("gpu_spec_key", info["gpu_spec_key"])
    automl = info.get("automl") or {}
    never = automl.get("never_search") or []
    for key, rng in (automl.get("hyperparameters") or {}).items():
        where = f"automl.hyperparameters.{key}"
        if not key_ok(where, key):
            continue
        extra = field_extra(key)
        if not extra.get("automl_enabled"):
            problems.append(Problem(label, where, "the spec field is not AutoML-searchable (automl_enabled false)"))
        hit = [p for p in never if fnmatch.fnmatchcase(key, p)]
        if hit:
            problems.append(Problem(label, where, f"matches never_search pattern {hit[0]!r}"))
        if isinstance(rng, dict):
            lo, hi = rng.get("valid_min"), rng.get("valid_max")
            if lo is not None and hi is not None and lo >= hi:
                problems.append(Problem(label, where, f"valid_min {lo} must be below valid_max {hi}"))
            if lo is not None and "valid_min" in extra and lo < extra["valid_min"]:
                problems.append(
                    Problem(label, where, f"valid_min {lo} is below the field's minimum {extra['valid_min']}")
                )
            if hi is not None and "valid_max" in extra and hi > extra["valid_max"]:
                problems.append(
                    Problem(label, where, f"valid_max {hi} is above the field's maximum {extra['valid_max']}")
                )
    if problems:
        return problems
    overlay: dict[str, Any] = {}
    for key, value in defaults.items():
        try:
            set_dotted(overlay, key, value)
        except SpecError as exc:
            problems.append(Problem(label, f"key_defaults.{key}", exc.problems[0]))
    if problems:
        return problems
    for action, (template, _validator) in loaded.items():
        try:
            ExperimentSpec.model_validate(deep_merge(template, overlay))
        except ValidationError as exc:
            err = spec_error_from_validation(ExperimentSpec, exc)
            problems.append(Problem(label, "key_defaults", f"template for {action} + key_defaults is invalid: {err}"))
    return problems


def check_skill_dir(skill_dir: Path) -> list[Problem]:
    """Every problem of one skill folder (empty list = valid)."""
    skill_dir = Path(skill_dir)
    if not skill_dir.is_dir():
        return [Problem(str(skill_dir), "", "not a folder")]
    info, info_problems = check_skill_info(skill_dir)
    problems = check_front_matter(skill_dir, info) + info_problems
    if info is None or info.get("kind", "model") != "model" or info_problems:
        return problems
    generated, loaded = _check_generated(skill_dir, info)
    return problems + generated + _check_keys(skill_dir, info, loaded)


def check_roots(dirs: list[Path]) -> list[Problem]:
    """Validate every skill folder in ``dirs`` (each a skill folder or a folder of skill folders)."""
    from skillbank.registry import skill_dirs

    problems: list[Problem] = []
    for root in dirs:
        found = skill_dirs(root)
        if not found:
            problems.append(Problem(str(root), "", "no skill folders found (a skill folder holds SKILL.md)"))
        for skill_dir in found:
            problems += check_skill_dir(skill_dir)
    return problems
