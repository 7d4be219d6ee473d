"""An error raised in a DataLoader worker ends the run exactly as it does without workers: the same one
line on stderr and in status.json, the same exit code, no traceback on the terminal."""

from __future__ import annotations

import errno
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from runtime_helpers import read_status, tiny_ffs_model, write_spec
from torch.utils.data import DataLoader

from skillbank.runtime.checkpoints import CheckpointError, CheckpointNotFoundError, save_checkpoint_atomic
from skillbank.runtime.data import io
from skillbank.runtime.data.errors import AnnotationError, DataFileError
from skillbank.runtime.data.loaders import make_loader
from skillbank.runtime.data.worker_errors import WorkerError, original_error
from skillbank.runtime.errors import FileSystemError
from skillbank.runtime.runner import run_action, translate_error
from skillbank.specs import SpecError, load_spec


# ------------------------------------------------------------------------------- one loader, many errors
class NeedsTwoArguments(Exception):
    """An exception torch cannot rebuild from one string (it falls back to a RuntimeError)."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")


class Unpicklable(Exception):
    """An exception whose pickled copy would not be the same (its lambda cannot be pickled)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.callback = lambda: None


ERRORS = {
    "data_file": lambda: DataFileError("/d/0.pfm: PFM truncated: header says 450x375x1, file has 121 floats"),
    "annotation": lambda: AnnotationError(["/d/a.txt:3: 5 columns, expected 2-4", "/d/a.txt:7: no such file"], "a.txt"),
    "os_error": lambda: PermissionError(errno.EACCES, "Permission denied", "/d/left/0.png"),
    "checkpoint_missing": lambda: CheckpointNotFoundError("checkpoint file not found: /m.pth (expected a .pth file)"),
    "checkpoint": lambda: CheckpointError("cannot read checkpoint /m.pth: bad zip; expected a torch.save file"),
    "spec": lambda: SpecError(["dataset.train_dataset.batch_size: 0 is out of range; expected >= 1"]),
    "action": lambda: FileSystemError("dataset.x: gone"),
    "two_arguments": lambda: NeedsTwoArguments("odd sample", "index 1"),
    "unpicklable": lambda: Unpicklable("cannot pickle me"),
    "key": lambda: KeyError("left"),
}


class Failing:
    """Sample 1 raises ``make()``'s exception; the others are tensors."""

    def __init__(self, make) -> None:
        self.make = make

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        if index == 1:
            raise self.make()
        return {"left": torch.zeros(3, 4, 4), "right": torch.zeros(3, 4, 4)}


class _Split:
    batch_size = 1
    pin_memory = False

    def __init__(self, workers: int) -> None:
        self.workers = workers


def _raised(loader) -> BaseException:
    with pytest.raises(BaseException) as info:  # noqa: PT011 - any class: the test compares them
        for _ in loader:
            pass
    return info.value


@pytest.mark.parametrize("name", list(ERRORS))
def test_a_worker_error_is_judged_as_the_error_itself(name):
    without = _raised(make_loader(Failing(ERRORS[name]), _Split(0), train=False))
    with_workers = _raised(make_loader(Failing(ERRORS[name]), _Split(2), train=False))
    assert isinstance(with_workers, WorkerError) and "Caught WorkerError" in str(with_workers)
    original = original_error(with_workers)
    assert type(original).__name__ == type(without).__name__ and str(original) == str(without)
    assert translate_error(with_workers, "evaluate") == translate_error(without, "evaluate")


def test_what_survives_pickling_survives_whole():
    original = original_error(_raised(make_loader(Failing(ERRORS["annotation"]), _Split(2), train=False)))
    assert type(original) is AnnotationError and original.problems == ERRORS["annotation"]().problems
    original = original_error(_raised(make_loader(Failing(ERRORS["os_error"]), _Split(2), train=False)))
    assert type(original) is PermissionError and original.filename == "/d/left/0.png"
    assert translate_error(original, "train") == ("File system error: /d/left/0.png: Permission denied", 3)


def test_what_does_not_pickle_keeps_its_class_name_and_line():
    raised = _raised(make_loader(Failing(ERRORS["unpicklable"]), _Split(2), train=False))
    original = original_error(raised)
    assert (type(original).__module__, type(original).__name__) == (__name__, "Unpicklable")
    assert str(original) == "cannot pickle me"
    assert translate_error(raised, "inference") is None  # unexpected: the runner reports it as such
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):  # the premise of the test
        pickle.dumps(ERRORS["unpicklable"]())


@pytest.mark.parametrize("name", ["data_file", "two_arguments", "key", "os_error"])
def test_a_loader_without_the_wrappers_is_read_from_the_traceback(name):
    """A DataLoader built elsewhere: torch's flattened traceback is parsed back into the one line."""
    raised = _raised(DataLoader(Failing(ERRORS[name]), batch_size=1, num_workers=2, collate_fn=lambda s: s))
    assert "Original Traceback" in str(raised)
    original = original_error(raised)
    expected = ERRORS[name]()
    assert type(original).__name__ == type(expected).__name__
    assert str(original) == str(expected)
    if name == "data_file":
        assert translate_error(raised, "train") == (f"File system error: {expected}", 3)


def test_errors_of_the_main_process_are_left_alone():
    assert original_error(ValueError("plain")) is None
    assert original_error(RuntimeError("DataLoader worker (pid 7) is killed by signal: Killed.")) is None


# --------------------------------------------------------------------------- through the three actions
def _header_bytes(path: Path) -> int:
    data = path.read_bytes()
    return len(b"\n".join(data.split(b"\n", 3)[:3])) + 1


def _truncated_pfm(data: Path, monkeypatch) -> str:  # noqa: ARG001
    path = data / "disparity" / "000001.pfm"
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 3])
    floats = (path.stat().st_size - _header_bytes(path)) // 4
    return f"File system error: {path}: PFM truncated: header says 112x80x1, file has {floats} floats"


def _non_image(data: Path, monkeypatch) -> str:  # noqa: ARG001
    path = data / "left" / "000001.png"
    path.write_text("this is not an image\n", encoding="utf-8")
    return f"File system error: {path}: cannot decode image (unsupported or corrupt file)"


def _unreadable(data: Path, monkeypatch) -> str:
    """A file the user may not read (as root chmod does not stop a read, so the reader is patched)."""
    path = data / "right" / "000001.png"
    real = io.read_image_rgb

    def read_image_rgb(p):
        if Path(p) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real(p)

    monkeypatch.setattr(io, "read_image_rgb", read_image_rgb)
    return f"File system error: {path}: Permission denied"


FAULTS = {"truncated_pfm": _truncated_pfm, "non_image": _non_image, "unreadable": _unreadable}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    from skillbank.runtime.networks.factory import build_network

    torch.manual_seed(0)
    net = build_network(load_spec(None, data={"model": tiny_ffs_model()}).model)
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    return save_checkpoint_atomic({"state_dict": state, "epoch": 0, "global_step": 0}, path)


# each action and each fault once by default; every pair in the slow run
FIRST = {("train", "truncated_pfm"), ("evaluate", "non_image"), ("inference", "unreadable")}
PAIRS = [
    pytest.param(a, f, marks=() if (a, f) in FIRST else pytest.mark.slow, id=f"{a}-{f}")
    for a in ("train", "evaluate", "inference")
    for f in FAULTS
]


@pytest.mark.parametrize(("action", "fault"), PAIRS)
def test_worker_error_ends_the_action_with_its_own_line(
    action, fault, tmp_path, synthetic_pairs, tiny_spec, tiny_weights, monkeypatch, capfd
):
    data = tmp_path / "data"
    shutil.copytree(synthetic_pairs.parent, data)
    expected = FAULTS[fault](data, monkeypatch)
    annotation = data / synthetic_pairs.name
    split = {
        "data_sources": [{"dataset_name": "GenericDataset", "data_file": str(annotation)}],
        "batch_size": 1,
        "workers": 2,
        "pin_memory": False,
        "augmentation": {"crop_size": [64, 96]},
    }
    spec = dict(tiny_spec)
    spec["model"] = tiny_ffs_model()
    spec["dataset"] = {"train_dataset": {**split, "batch_size": 2}, "test_dataset": split, "infer_dataset": split}
    spec["train"] = {**spec["train"], "num_epochs": 1}
    spec["evaluate"] = {"checkpoint": str(tiny_weights), "num_gpus": 0}
    spec["inference"] = {"checkpoint": str(tiny_weights), "num_gpus": 0}
    path = write_spec(tmp_path / "spec.yaml", spec)
    capfd.readouterr()

    code = run_action(action, str(path), [])

    out, err = capfd.readouterr()
    assert code == 3
    failures = [line for line in err.splitlines() if "FAILURE" in line]
    assert failures == [f"depth_net: FAILURE: {expected}"]
    assert "Traceback" not in out + err and "Caught" not in out + err
    status = read_status(tmp_path / "results" / action)
    assert status[0]["status"] == "STARTED"
    assert [e["status"] for e in status].count("FAILURE") == 1
    assert status[-1]["status"] == "FAILURE" and status[-1]["message"] == expected
    assert not (tmp_path / "results" / action / "error.log").exists()


@pytest.mark.slow
def test_workers_zero_gives_the_same_line(tmp_path, synthetic_pairs, tiny_weights, monkeypatch, capfd):
    """The reference the worker runs are held to: the same fault read in the main process."""
    data = tmp_path / "data"
    shutil.copytree(synthetic_pairs.parent, data)
    expected = _truncated_pfm(data, monkeypatch)
    split = {
        "data_sources": [{"dataset_name": "GenericDataset", "data_file": str(data / synthetic_pairs.name)}],
        "batch_size": 1,
        "workers": 0,
    }
    path = write_spec(
        tmp_path / "spec.yaml",
        {
            "results_dir": str(tmp_path / "results"),
            "model": tiny_ffs_model(),
            "dataset": {"test_dataset": split},
            "evaluate": {"checkpoint": str(tiny_weights), "num_gpus": 0},
        },
    )
    assert run_action("evaluate", str(path), []) == 3
    assert read_status(tmp_path / "results" / "evaluate")[-1]["message"] == expected
    assert re.search(rf"^depth_net: FAILURE: {re.escape(expected)}$", capfd.readouterr().err, re.M)


def test_a_marker_inside_a_message_is_never_unpickled():
    """Only the payload our wrapper puts at the very end is read: a crafted file name cannot smuggle one."""
    import base64

    smuggled = base64.b64encode(pickle.dumps(ValueError("smuggled"))).decode()
    make = lambda: DataFileError(f"/d/[depth_net worker error {smuggled}].png: file not found")  # noqa: E731
    for loader in (
        make_loader(Failing(make), _Split(2), train=False),
        DataLoader(Failing(make), batch_size=1, num_workers=2, collate_fn=lambda s: s),
    ):
        original = original_error(_raised(loader))
        assert type(original).__name__ == "DataFileError" and str(original) == str(make())


# ------------------------------------------------------------------------- any error, through the runner
def _run_with_a_failing_loader(tmp_path, monkeypatch, make, workers: int) -> tuple[int, list[dict], Path]:
    from skillbank.runtime import actions

    def action(ctx):  # noqa: ARG001 - an action that reads a loader whose sample 1 fails
        for _ in make_loader(Failing(make), _Split(workers), train=False):
            pass

    monkeypatch.setattr(actions, "load_action", lambda name: action)
    results = tmp_path / f"w{workers}"
    path = write_spec(tmp_path / f"w{workers}.yaml", {"results_dir": str(results), "convert": {"mode": "synthetic"}})
    code = run_action("convert", str(path), [])
    return code, read_status(results / "convert"), results / "convert"


@pytest.mark.parametrize("name", ["annotation", "two_arguments", "spec", "unpicklable"])
def test_any_worker_error_ends_the_run_as_without_workers(name, tmp_path, monkeypatch, capfd):
    code0, status0, _ = _run_with_a_failing_loader(tmp_path, monkeypatch, ERRORS[name], 0)
    err0 = capfd.readouterr().err
    code2, status2, folder = _run_with_a_failing_loader(tmp_path, monkeypatch, ERRORS[name], 2)
    out, err2 = capfd.readouterr()
    assert code2 == code0 and [e["status"] for e in status2] == ["STARTED", "FAILURE"]
    line0, line2 = status0[-1]["message"], status2[-1]["message"]
    if code0 == 1:  # unexpected: the class and message survive, the traceback (the worker's too) is in error.log
        assert (
            line2 == f"Execution error: {type(ERRORS[name]()).__name__}: {ERRORS[name]()} "
            f"(traceback in {folder / 'error.log'})"
        )
        assert "Original Traceback" in (folder / "error.log").read_text()
    assert line2 == line0.replace(str(tmp_path / "w0"), str(tmp_path / "w2"))
    assert err2.strip().splitlines()[-1] == f"depth_net: FAILURE: {line2}"
    assert "Traceback" not in out + err2 + err0


def test_the_runner_s_table_names_real_exception_classes():
    import importlib

    from skillbank.runtime import runner

    for qualified in runner._KINDS:
        module, _, name = qualified.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type) and issubclass(cls, BaseException), qualified
