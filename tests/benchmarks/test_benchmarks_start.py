"""Every maintained benchmark still starts (CPU, fast), and benchmarks/README.md lists exactly what is there.

The Python scripts are run in this process through ``runpy`` with ``--help`` (torch is imported once for
all of them): that imports each script and its helpers and builds its argument parser, which is where
a moved module or a renamed helper breaks a benchmark nobody runs on the CPU.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
README = BENCH / "README.md"
HELPERS = {"cuda_timing.py", "cpu_info.py", "automl_step_timer.py"}  # imported or started by the scripts, not run alone


def _scripts() -> list[str]:
    return sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS)


@pytest.mark.parametrize("script", _scripts())
def test_script_starts_and_prints_its_help(
    script: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their siblings (cuda_timing, train_throughput)
    monkeypatch.setattr(sys, "argv", [str(BENCH / script), "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(BENCH / script), run_name="__main__")
    assert exit_info.value.code in (0, None), f"{script} --help exited {exit_info.value.code}"
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.sh")))
def test_shell_script_parses(script: str) -> None:
    done = subprocess.run(["bash", "-n", str(BENCH / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ab_commits_rejects_an_unknown_mode_with_its_usage() -> None:
    done = subprocess.run(["bash", str(BENCH / "ab_commits.sh"), "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: ab_commits.sh prepare|run" in done.stderr


def test_readme_names_every_script_and_every_result_file() -> None:
    text = README.read_text()
    named = set(re.findall(r"`([\w.]+\.(?:py|sh))`", text))
    on_disk = {p.name for p in BENCH.iterdir() if p.suffix in (".py", ".sh")}
    assert on_disk <= named, f"not described in benchmarks/README.md: {sorted(on_disk - named)}"
    results = {p.name for p in (BENCH / "results").iterdir()}
    rows = re.findall(r"^\| `([\w.]+\.py)` .*`results/([\w.]+\.json)`", text, flags=re.M)
    cited = {result for script, result in rows if (BENCH / script).is_file()}  # rows of scripts that exist
    assert results == cited, f"results/ vs README: uncited {sorted(results - cited)}, absent {sorted(cited - results)}"


def test_one_current_result_file_per_benchmark() -> None:
    results = sorted((BENCH / "results").iterdir())
    assert all(p.is_file() for p in results), "no folders of old runs under results/"
    stale = [p.name for p in results if re.search(r"_v\d|_before|_earlier|run\d|_[0-9a-f]{7}\b", p.stem)]
    assert not stale, f"superseded or history-stamped result files: {stale}"
    owners: dict[str, list[str]] = {}
    for p in results:
        stems = [s for s in (Path(n).stem for n in _scripts()) if p.stem.startswith(s + "_")]
        assert len(stems) == 1, f"{p.name}: not named <benchmark>_<machine>.json after one script ({stems})"
        owners.setdefault(stems[0], []).append(p.name)
    several = {k: v for k, v in owners.items() if len(v) > 1}
    assert not several, f"more than one result file for a benchmark: {several}"


def _devices(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "device" and isinstance(v, str)]
        return found + [d for v in node.values() for d in _devices(v)]
    if isinstance(node, list):
        return [d for v in node for d in _devices(v)]
    return []


@pytest.mark.parametrize("result", sorted(p.name for p in (BENCH / "results").glob("*.json")))
def test_result_file_is_named_for_the_machine_it_ran_on(result: str) -> None:
    machine = Path(result).stem.rsplit("_", 1)[-1]  # h100, h200, h100x2, cpu2
    devices = _devices(json.loads((BENCH / "results" / result).read_text()))
    if machine.startswith("cpu"):
        assert not devices, f"{result}: named for a CPU but records GPU devices {sorted(set(devices))}"
        return
    gpu = machine.split("x")[0].upper()  # H100, H200
    assert devices, f"{result}: records no device"
    wrong = sorted({d for d in devices if gpu not in d.upper()})
    assert not wrong, f"{result}: named for {gpu} but holds runs on {wrong}"


@pytest.mark.slow
def test_end_to_end_benchmark_runs_a_tiny_training_on_the_cpu(tmp_path: Path) -> None:
    """A real run of the end-to-end benchmark: render, depth_net train (tiny widths, fp32), its JSON."""
    out = tmp_path / "e2e.json"
    cmd = [
        sys.executable,
        str(BENCH / "train_end_to_end.py"),
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
        "--tiny",
        "--pairs",
        "4",
        "--size",
        "64",
        "128",
        "--crop",
        "64",
        "128",
        "--epochs",
        "1",
        "--workers",
        "0",
        "--precision",
        "fp32",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["exit_code"] == 0 and report["final_status"]["status"] == "SUCCESS"
    assert [e["epoch"] for e in report["epochs"]] == [1]
