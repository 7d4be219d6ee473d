"""The Slurm backend (submitit) against a fake scheduler: sbatch/srun/squeue/sacct/scancel shell scripts on PATH
that run the job script on this machine the way Slurm would (SLURM_* environment, its own process group,
scancel = SIGTERM to that group)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from jobtest_helpers import convert_request

pytest.importorskip("submitit")

from skillbank.jobs.slurm import sbatch_parameters  # noqa: E402
from skillbank.jobs.store import Job  # noqa: E402
from skillbank.sdk import Client  # noqa: E402

SBATCH = r"""#!/bin/bash
dir="$FAKE_SLURM_DIR"; script="${@: -1}"
echo "sbatch $*" >> "$dir/calls.log"
id=$(( $(cat "$dir/next_id" 2>/dev/null || echo 4000) + 1 )); echo $id > "$dir/next_id"
cp "$script" "$dir/$id.sbatch"
out=$(grep -E '^#SBATCH --output=' "$script" | head -1 | sed -e 's/^#SBATCH --output=//' -e "s/%j/$id/g" -e 's/%t/0/g')
mkdir -p "$(dirname "$out")"
echo RUNNING > "$dir/$id.state"
(
  export SLURM_JOB_ID=$id SLURM_NTASKS=1 SLURM_JOB_NUM_NODES=1 SLURM_NODEID=0 SLURM_JOB_NODELIST=fakenode \
         SLURM_PROCID=0 SLURM_LOCALID=0
  setsid bash "$script" >> "$out" 2>&1 &
  pid=$!; echo $pid > "$dir/$id.pid"; wait $pid; code=$?
  if [ "$(cat "$dir/$id.state")" = RUNNING ]; then
    if [ $code = 0 ]; then echo COMPLETED; else echo FAILED; fi > "$dir/$id.state"
  fi
) > /dev/null 2>&1 &
echo "Submitted batch job $id"
"""
SACCT = r"""#!/bin/bash
dir="$FAKE_SLURM_DIR"; echo "sacct $*" >> "$dir/calls.log"
echo "JobID|State|NodeList"
while [ $# -gt 0 ]; do
  if [ "$1" = -j ]; then echo "$2|$(cat "$dir/$2.state" 2>/dev/null || echo PENDING)|fakenode"; shift; fi; shift
done
"""
SQUEUE = r"""#!/bin/bash
dir="$FAKE_SLURM_DIR"; echo "squeue $*" >> "$dir/calls.log"
echo "JOBID STATE"
for f in "$dir"/*.state; do [ -e "$f" ] && echo "$(basename "$f" .state) $(cat "$f")"; done
"""
SRUN = r"""#!/bin/bash
# one task on this node: srun --unbuffered --output OUT [--error ERR] command ...
out=/dev/stdout; err=""
while [ $# -gt 0 ]; do
  case "$1" in
    --unbuffered) shift ;;
    --output) out="${2//%t/0}"; shift 2 ;;
    --error) err="${2//%t/0}"; shift 2 ;;
    *) break ;;
  esac
done
out="${out//%j/$SLURM_JOB_ID}"; err="${err//%j/$SLURM_JOB_ID}"
mkdir -p "$(dirname "$out")"
if [ -n "$err" ]; then exec "$@" >> "$out" 2>> "$err"; else exec "$@" >> "$out" 2>&1; fi
"""
SCANCEL = r"""#!/bin/bash
dir="$FAKE_SLURM_DIR"; echo "scancel $*" >> "$dir/calls.log"
id="${@: -1}"
[ "$(cat "$dir/$id.state" 2>/dev/null)" = RUNNING ] && echo CANCELLED > "$dir/$id.state"
kill -TERM -- -"$(cat "$dir/$id.pid")" 2>/dev/null
exit 0
"""


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("sbatch", SBATCH), ("sacct", SACCT), ("squeue", SQUEUE), ("scancel", SCANCEL), ("srun", SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    monkeypatch.setenv("SKILLBANK_SLURM_PARTITION", "gpu")
    return state


def test_sbatch_parameters_come_from_the_spec() -> None:
    job = Job(
        id="k7m2qx",
        skill="s",
        action="train",
        route="direct_train",
        automl_policy="off",
        spec="",
        results_dir="/r",
        gpus_needed=8,
    )
    params = sbatch_parameters(job, {"train": {"num_nodes": 2, "num_gpus": 8}})
    assert params | {"time": 0} == {
        "job_name": "skillbank-k7m2qx",
        "nodes": 2,
        "ntasks_per_node": 8,
        "gpus_per_node": 8,
        "time": 0,
    }
    job.action, job.gpus_needed = "export", 0
    assert "gpus_per_node" not in sbatch_parameters(job, {}) and sbatch_parameters(job, {})["nodes"] == 1


def test_slurm_job_runs_through_sbatch(tmp_path: Path, fake_slurm: Path) -> None:
    client = Client(tmp_path / "ws", idle_exit_s=3)
    (job,) = client.submit(convert_request(), backend="slurm")
    done = client.wait(job.id, timeout=240)
    assert done.status == "COMPLETE", (done.message, client.logs(job.id))
    assert done.exit_code == 0 and done.backend == "slurm" and done.backend_id
    script = (fake_slurm / f"{done.backend_id}.sbatch").read_text()
    for line in (
        f"#SBATCH --job-name=skillbank-{job.id}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --partition=gpu",
        "submitit.core._submit",
    ):
        assert line in script
    assert "gpus-per-node" not in script  # a CPU spec asks for no GPU
    assert Path(done.results_dir, "synthetic.txt").is_file()
    assert "SUCCESS" in client.logs(job.id)


@pytest.mark.slow
def test_slurm_cancel_and_polling(tmp_path: Path, fake_slurm: Path, overrides: dict, synthetic_data: Path) -> None:
    client = Client(tmp_path / "ws", idle_exit_s=3)
    overrides["train"]["num_epochs"] = 50
    (job,) = client.submit(
        f"train fast stereo on {synthetic_data}/train.txt, validate on {synthetic_data}/val.txt, no HPO",
        overrides=overrides,
        backend="slurm",
    )
    deadline = time.monotonic() + 300
    while not Path(client.status(job.id).results_dir, "status.json").is_file():
        assert time.monotonic() < deadline and client.status(job.id).status in ("PENDING", "RUNNING")
        time.sleep(1)
    time.sleep(4)  # the executor polls sacct meanwhile
    client.cancel(job.id)
    done = client.wait(job.id, timeout=240)
    assert done.status == "CANCELED", done.message
    calls = (fake_slurm / "calls.log").read_text()
    assert f"sacct -o JobID,State,NodeList --parsable2 -j {done.backend_id}" in calls
    assert f"scancel {done.backend_id}" in calls
    assert (fake_slurm / f"{done.backend_id}.state").read_text().strip() == "CANCELLED"
