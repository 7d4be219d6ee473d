"""Generated schemas and templates: no drift, and every template validates with jsonschema alone."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from skillbank import schemagen

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_have_not_drifted():
    stale = schemagen.drift()
    assert not stale, f"run `skillbank schemas generate`: stale {[str(p) for p in stale]}"


@pytest.mark.parametrize(
    "template",
    sorted((ROOT / "references" / "templates").glob("*/spec_template_*.yaml")),
    ids=lambda p: f"{p.parent.name}-{p.stem}",
)
def test_template_validates_against_its_schema(template):
    action = template.stem.removeprefix("spec_template_")
    schema = json.loads((ROOT / "schemas" / f"{action}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(template.read_text())))
    assert not errors, errors[0].message


def test_schema_rejects_what_the_models_reject():
    schema = json.loads((ROOT / "schemas" / "train.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    spec = yaml.safe_load((ROOT / "references/templates/FastFoundationStereo/spec_template_train.yaml").read_text())
    spec["model"].pop("gru_hidden")
    assert any("gru_hidden" in e.message for e in validator.iter_errors(spec))
    spec = yaml.safe_load((ROOT / "references/templates/FastFoundationStereo/spec_template_train.yaml").read_text())
    spec["train"]["optim"]["lr"] = 2.0
    assert list(validator.iter_errors(spec))
    assert list(validator.iter_errors({"results_dir": "/r"}))  # train needs data sources


def test_schema_carries_tao_metadata():
    schema = json.loads((ROOT / "schemas" / "train.schema.json").read_text())
    lr = schema["$defs"]["OptimConfig"]["properties"]["lr"]
    assert lr["automl_enabled"] is True and lr["valid_max"] == 1 and lr["default"] == 1e-4
    assert schema["$schema"].endswith("2020-12/schema")
    manifest = json.loads((ROOT / "schemas" / "manifest.json").read_text())
    assert set(manifest["actions"]) == {"train", "evaluate", "inference", "export", "gen_trt_engine", "convert"}
