"""skillbank.atomic: content, mode, durability (fsync of file and folder) and cleanup on failure."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from skillbank import atomic
from skillbank.atomic import atomic_copy, atomic_open, atomic_write, commit, temp_beside


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every os.fsync call, as what its descriptor is: 'file' or 'dir'."""
    calls: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        calls.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return calls


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_bytes_and_text_land_whole_with_file_and_folder_synced(tmp_path: Path, fsyncs) -> None:
    path = tmp_path / "sub" / "out.json"
    assert atomic_write(path, b"\x00\x01old") == path
    assert path.read_bytes() == b"\x00\x01old"
    fsyncs.clear()
    atomic_write(path, "néw\n")
    assert path.read_text(encoding="utf-8") == "néw\n"
    assert fsyncs == ["file", "dir"]  # the data before the rename, the rename after it
    assert _names(tmp_path / "sub") == ["out.json"]


def test_final_mode_follows_the_umask_not_mkstemp(tmp_path: Path, umask_027) -> None:
    assert atomic.file_mode() == 0o640
    path = atomic_write(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    os.umask(0o022)
    assert stat.S_IMODE(atomic_write(tmp_path / "a.txt", "y").stat().st_mode) == 0o644


def test_file_mode_matches_a_plain_open_in_a_fresh_process(tmp_path: Path) -> None:
    code = (
        "import os, stat; from skillbank.atomic import atomic_write; os.umask(0o077); "
        f"p = atomic_write({str(tmp_path / 'm')!r}, 'x'); q = open({str(tmp_path / 'plain')!r}, 'w'); q.close(); "
        f"print(oct(stat.S_IMODE(p.stat().st_mode)), oct(stat.S_IMODE(os.stat({str(tmp_path / 'plain')!r}).st_mode)))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    mine, plain = done.stdout.split()
    assert mine == plain == "0o600"


def test_an_exception_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, fsyncs) -> None:
    path = atomic_write(tmp_path / "model.pth", b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_open(path) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert _names(tmp_path) == ["model.pth"]


def test_a_failing_write_of_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "new.txt", 123)  # type: ignore[arg-type]
    assert _names(tmp_path) == []


def test_a_failing_replace_removes_the_temp(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("keeps the folder non-empty")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "taken", b"cannot replace a folder")
    assert _names(tmp_path) == ["taken"]


def test_atomic_open_text_mode_and_bad_mode(tmp_path: Path) -> None:
    with atomic_open(tmp_path / "spec.yaml", "w") as fh:
        fh.write("a: 1\n")
    assert (tmp_path / "spec.yaml").read_text(encoding="utf-8") == "a: 1\n"
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass


@pytest.mark.parametrize("link", [False, True])
def test_atomic_copy(tmp_path: Path, fsyncs, link: bool) -> None:
    src = atomic_write(tmp_path / "model_epoch_000_step_00001.pth", b"weights")
    old = atomic_write(tmp_path / "latest.pth", b"older")
    fsyncs.clear()
    assert atomic_copy(src, old, link=link) == old
    assert old.read_bytes() == b"weights"
    assert os.path.samefile(src, old) is link
    assert fsyncs == ["file", "dir"]
    assert _names(tmp_path) == ["latest.pth", "model_epoch_000_step_00001.pth"]


def test_atomic_copy_of_a_missing_file_leaves_no_temp(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "gone", tmp_path / "dst")
    assert _names(tmp_path) == []


def test_temp_beside_and_commit_for_tools_that_write_a_path(tmp_path: Path, fsyncs, umask_027) -> None:
    target = tmp_path / "out" / "model.onnx"
    tmp = temp_beside(target)
    assert tmp.parent == target.parent and tmp.name.startswith(".model.onnx.") and tmp.suffix == ".onnx"
    tmp.write_bytes(b"graph")  # what an exporter writing to a path does
    commit(tmp, target)
    assert target.read_bytes() == b"graph" and not tmp.exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert fsyncs == ["file", "dir"]
    assert _names(target.parent) == ["model.onnx"]


def test_not_durable_skips_only_the_fsyncs(tmp_path: Path, fsyncs, umask_027) -> None:
    path = atomic_write(tmp_path / "pred.png", b"old")
    fsyncs.clear()
    atomic_write(path, b"image", durable=False)
    assert path.read_bytes() == b"image" and fsyncs == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _names(tmp_path) == ["pred.png"]
