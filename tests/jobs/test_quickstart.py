"""The quickstart's files agree: the request's overrides build the network of spec.yaml, on data.yaml's data."""

from __future__ import annotations

import yaml
from jobtest_helpers import QUICKSTART


def test_overrides_and_spec_build_the_same_network() -> None:
    spec = yaml.safe_load((QUICKSTART / "spec.yaml").read_text())
    overrides = yaml.safe_load((QUICKSTART / "overrides.yaml").read_text())
    data = yaml.safe_load((QUICKSTART / "data.yaml").read_text())
    assert {k: v for k, v in spec["model"].items() if k != "model_type"} == overrides["model"]
    assert spec["convert"] == data["convert"]
    assert overrides["train"]["checkpoint_weights_only"] is True and spec["train"]["checkpoint_weights_only"]


def test_the_request_plans_as_three_jobs(tmp_path) -> None:
    from skillbank.jobs.chain import plan_chain
    from skillbank.jobs.store import Store

    script = (QUICKSTART / "run.sh").read_text()
    request = script.split('skillbank run "', 1)[1].split('"', 1)[0].replace("$data", str(tmp_path))
    overrides = yaml.safe_load((QUICKSTART / "overrides.yaml").read_text())
    planned = plan_chain(Store(tmp_path / "ws"), request, overrides=overrides)
    assert [(p.job.action, p.job.route) for p in planned] == [
        ("train", "direct_train"),
        ("evaluate", "runtime"),
        ("export", "runtime"),
    ]
    assert planned[1].job.parent_job_id == planned[0].job.id == planned[2].job.parent_job_id
    first = yaml.safe_load(planned[0].job.spec)
    assert first["train"]["num_epochs"] == 1 and first["train"]["checkpoint_weights_only"] is True
    assert (
        yaml.safe_load(planned[1].job.spec)["dataset"]["test_dataset"]["data_sources"][0]["data_file"]
        == f"{tmp_path}/val.txt"
    )
