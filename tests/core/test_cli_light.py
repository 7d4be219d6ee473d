"""The CLIs answer --help, and the agent-facing core never imports torch."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def test_depth_net_help_lists_actions():
    out = _run(sys.executable, "-m", "skillbank.runtime.cli", "--help").stdout
    for action in ("train", "evaluate", "inference", "export", "gen_trt_engine", "convert"):
        assert action in out


def test_action_help_lists_spec_keys():
    out = _run(sys.executable, "-m", "skillbank.runtime.cli", "train", "--help").stdout
    assert "train.optim.lr = 0.0001" in out
    assert "dataset.train_dataset.data_sources" in out
    assert "evaluate.checkpoint" not in out


def test_core_import_and_cli_help_do_not_import_torch():
    code = (
        "import sys, skillbank, skillbank.specs, skillbank.schemagen, skillbank.runtime.cli, skillbank.cli;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
