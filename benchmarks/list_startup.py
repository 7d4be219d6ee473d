"""Startup of ``skillbank list``: wall time of fresh processes of the installed console script.

Target: median < 300 ms on a 2-core CPU. Each run is a new process (``skillbank list``, output captured),
so it pays interpreter start, imports and registry load; the file system cache and byte-code caches are
warm (one untimed run first), as they are for an agent calling it repeatedly. Interleaved with the
console script's runs, the same count of runs of:

* ``python -c pass``: the interpreter's own start (what no change in skillbank can remove);
* the typer app's ``list`` (``skillbank.cli:main``, what the console script ran before it answered
  plain ``list`` calls itself, and what ``skillbank list --help`` and every other command still run).

The machine is shared: the 1-minute load average before and after is recorded; compare runs taken at
low load. Each command's CPU time (user + system of the child, ``cpu_median_ms``) is recorded too: it
depends much less on what else runs than the wall time does.

    python benchmarks/list_startup.py [--runs 10] [--out benchmarks/results/list_startup_cpu2.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cpu_info import cpu_model

TARGET_MS = 300.0
TYPER_LIST = "import sys; sys.argv[0] = 'skillbank'; from skillbank.cli import main; main()"


def _time_ms(cmd: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms: user + system of the child) of one fresh process of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - t0) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3
    if done.returncode != 0 or (cmd[-1] == "list" and "depth-net-fast-stereo" not in done.stdout):
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}): {done.stderr.strip()[:300]}")
    return wall, cpu


def _stats(runs: list[tuple[float, float]]) -> dict[str, object]:
    wall, cpu = [w for w, _ in runs], [c for _, c in runs]
    return {
        "median_ms": round(statistics.median(wall), 1),
        "min_ms": round(min(wall), 1),
        "max_ms": round(max(wall), 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
        "runs_ms": [round(v, 1) for v in wall],
    }


def _top_imports(cmd: list[str], n: int = 8) -> list[dict[str, object]]:
    """The ``n`` slowest top-level imports of one run (``python -X importtime``), cumulative microseconds."""
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        if parts[2].startswith(" ") and not parts[2].startswith("  "):  # top level: one space of indent
            rows.append({"module": parts[2].strip(), "cumulative_us": int(parts[1])})
    return sorted(rows, key=lambda r: -int(r["cumulative_us"]))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="Timed fresh processes per command.")
    parser.add_argument("--out", type=Path, default=None, help="Write the JSON result here.")
    args = parser.parse_args()

    script = shutil.which("skillbank", path=str(Path(sys.executable).parent)) or shutil.which("skillbank")
    if script is None:
        raise SystemExit("the skillbank console script is not installed (pip install -e .)")
    commands = {
        "skillbank_list": [script, "list"],
        "python_startup": [sys.executable, "-c", "pass"],
        "typer_app_list": [sys.executable, "-c", TYPER_LIST, "list"],
    }
    for cmd in commands.values():  # untimed: byte-code and file caches
        _time_ms(cmd)
    load_before = os.getloadavg()[0]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(_time_ms(cmd))
    load_after = os.getloadavg()[0]

    from importlib.metadata import distribution

    direct_url = distribution("skillbank").read_text("direct_url.json") or "{}"
    result = {
        "benchmark": "skillbank list startup: fresh processes of the installed console script",
        "machine": {
            "name": "2-core CPU (workplace container, shared with other engineers' jobs)",
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(load_after, 2),
        },
        "install": "editable" if json.loads(direct_url).get("dir_info", {}).get("editable") else "regular",
        "console_script": f"{script} -> skillbank.console:main",
        "target_median_ms": TARGET_MS,
        "runs": args.runs,
        "skillbank_list": _stats(times["skillbank_list"]),
        "python_startup": _stats(times["python_startup"]),
        "typer_app_list": _stats(times["typer_app_list"]),
        "slowest_imports_of_skillbank_list": _top_imports([script, "list"]),
    }
    result["meets_target"] = result["skillbank_list"]["median_ms"] < TARGET_MS
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
