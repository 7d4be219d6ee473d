"""The skill commands of the CLI, and the light-core promise: import, list and plan never import torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from skilltest_helpers import FFS, edit
from typer.testing import CliRunner

from skillbank.cli import app

runner = CliRunner()


def test_plan_json_has_the_contract_keys() -> None:
    result = runner.invoke(app, ["plan", "fine-tune fast stereo on /data/kitti, no HPO, results in /runs/x", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"skill", "action", "route", "automl_policy", "policy_source", "message", "spec"} <= set(data)
    assert (data["skill"], data["action"], data["route"], data["automl_policy"]) == (
        FFS,
        "train",
        "direct_train",
        "off",
    )
    assert data["policy_source"] == 'request: "no HPO"'
    assert data["spec"]["model"]["max_disparity"] == 192


def test_plan_json_tool_call_and_policy_flag() -> None:
    call = json.dumps({"skill": FFS, "action": "train", "inputs": {"train_datasets": "/d", "results_dir": "/r"}})
    data = json.loads(runner.invoke(app, ["plan", call, "--json"]).output)
    assert (data["route"], data["automl_policy"]) == ("automl", "auto")
    data = json.loads(runner.invoke(app, ["plan", call, "--json", "--automl-policy", "off"]).output)
    assert (data["route"], data["policy_source"]) == ("direct_train", 'explicit: "off"')


def test_unplannable_request_prints_a_question_and_exits_2() -> None:
    result = runner.invoke(app, ["plan", "make it better", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["kind"] == "unsupported" and set(json.loads(result.output)) == {"question", "kind"}
    result = runner.invoke(app, ["plan", '{"skill": "depth-net-mono", "action": "train", "oops": 1}'])
    assert result.exit_code == 2 and "oops" in json.loads(result.output)["question"]
    assert json.loads(result.output)["kind"] == "bad_request"
    result = runner.invoke(app, ["plan", "train on /d/train.txt, no HPO", "--json"])
    assert result.exit_code == 2 and json.loads(result.output)["kind"] == "which_model"


def test_plan_writes_the_spec_and_names_it_in_the_command(tmp_path: Path) -> None:
    import yaml

    out = tmp_path / "specs" / "eval.yaml"
    result = runner.invoke(
        app,
        [
            "plan",
            "evaluate stereo checkpoint /c/model_epoch_001_step_00010.pth on /data/mb, results in /o",
            "--write-spec",
            str(out),
            "--json",
        ],
    )
    data = json.loads(result.output)
    assert data["command"] == f"depth_net evaluate -e {out}"
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == data["spec"]


def test_list_and_show() -> None:
    result = runner.invoke(app, ["list", "--json"])
    names = [row["name"] for row in json.loads(result.output)]
    assert names[:3] == ["depth-net-fast-stereo", "depth-net-mono", "depth-net-stereo"]
    assert {"run-automl", "depth-net-deploy"} <= set(names)
    shown = runner.invoke(app, ["show", FFS])
    assert (
        shown.exit_code == 0
        and "metric val/epe (minimize), searches: train.optim.lr, train.optim.lr_decay" in shown.output
    )
    assert runner.invoke(app, ["show", "nope"]).exit_code == 1


def test_import_list_and_plan_import_no_torch() -> None:
    code = (
        "import json, sys\n"
        "import skillbank\n"
        "from skillbank.registry import list_skills\n"
        "from skillbank.policy import resolve_automl_policy\n"
        "from skillbank.router import plan\n"
        "names = [s['name'] for s in list_skills()]\n"
        "policy = resolve_automl_policy(None, 'train fast stereo, disable AutoML').policy\n"
        "p = plan('fine-tune fast stereo on /data/kitti, no HPO, results in /r')\n"
        "from skillbank.cli import app\n"
        "print(json.dumps({'torch': sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')),\n"
        "                  'route': p.route, 'policy': policy, 'n': len(names)}))\n"
    )
    out = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert out == {"torch": [], "route": "direct_train", "policy": "off", "n": out["n"]} and out["n"] >= 5


def test_console_list_imports_neither_torch_nor_the_cli_framework() -> None:
    """``skillbank list`` (the console script's plain form) loads only the registry: no torch, and no
    typer/pydantic/jsonschema/rich (the startup budget, benchmarks/list_startup.py)."""
    code = (
        "import io, json, sys, contextlib\n"
        "from skillbank.console import main\n"
        "sys.argv = ['skillbank', 'list', '--json']\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    main()\n"
        "heavy = ('torch', 'typer', 'click', 'pydantic', 'jsonschema', 'rich', 'strictyaml')\n"
        "print(json.dumps({'loaded': sorted(m for m in sys.modules if m.split('.')[0] in heavy),\n"
        "                  'names': [row['name'] for row in json.loads(buf.getvalue())]}))\n"
    )
    out = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert out["loaded"] == []
    assert out["names"][:3] == [FFS, "depth-net-mono", "depth-net-stereo"]


def test_console_script_is_the_fast_entry() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "skillbank"]
    assert script.value == "skillbank.console:main"


@pytest.mark.parametrize("extra", [[], ["--json"], ["--skills-path", "{copy}", "--skills-path={broken}"]])
def test_console_list_prints_what_the_typer_command_prints(skill_copy, tmp_path: Path, capsys, extra) -> None:
    from skillbank.console import fast_list

    copy = skill_copy(FFS, "my-stereo")
    edit(copy / "SKILL.md", f"name: {FFS}", "name: my-stereo")
    broken = tmp_path / "broken" / "bad-skill"
    (broken / "references").mkdir(parents=True)
    (broken / "references" / "skill_info.yaml").write_text("name: bad-skill\n", encoding="utf-8")
    args = ["list", *(a.format(copy=copy.parent, broken=broken.parent) for a in extra)]
    assert fast_list(args) is True
    fast = capsys.readouterr()
    typed = CliRunner().invoke(app, args)
    assert typed.exit_code == 0
    assert (fast.out, fast.err) == (typed.stdout, typed.stderr)
    if extra[:1] == ["--skills-path"]:
        assert "my-stereo" in fast.out and "skipped: " in fast.err and "bad-skill" in fast.err


@pytest.mark.parametrize(
    "args", [[], ["list", "-h"], ["list", "--help"], ["list", "--jsn"], ["list", "--skills-path"], ["show", FFS]]
)
def test_console_leaves_other_calls_to_the_typer_app(args: list[str], capsys) -> None:
    from skillbank.console import fast_list

    assert fast_list(args) is False
    assert capsys.readouterr().out == ""
