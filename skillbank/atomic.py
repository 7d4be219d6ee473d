"""Atomic, durable file writes: the one way results, specs, checkpoints and artefacts reach disk.

A result is written to a temporary file in the target's folder (so the rename never crosses file
systems), flushed and ``fsync``ed, given the mode a plainly created file would have (``0o666`` less the
umask, not ``mkstemp``'s ``0o600``), ``os.replace``d over the target (atomic on POSIX) and the folder is
``fsync``ed so the rename itself survives a power cut. A reader sees the old file or the new one, never a
half-written one; on any error the temporary file is removed and the old target is left as it was.

* :func:`atomic_write`: bytes or text to a path.
* :func:`atomic_open`: a file object to write into (``torch.save``, ``yaml.safe_dump`` ...).
* :func:`atomic_copy`: a copy (or a hard link) of a finished file under a new name.
* :func:`temp_beside` + :func:`commit`: for tools that write to a path themselves (ONNX, TensorRT,
  AOTInductor) and for artefacts checked before they are kept.

``durable=False`` keeps everything but the two fsyncs: still never half a file for a reader or after the
process dies, but a power cut may lose the newest files. It is for bulk per-sample outputs that are cheap
to make again (inference images and PFMs, synthetic dataset images), where an fsync per file costs more
than the file (about 8 ms for a 300 kB file on an ext4 virtual disk, against 0.5 ms to write it).

Torch-free: the core and the runtime both use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_copy", "atomic_open", "atomic_write", "commit", "file_mode", "temp_beside"]

PathLike = str | os.PathLike[str]


def file_mode() -> int:
    """The permission bits a newly created file gets under the current umask (``0o666 & ~umask``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)  # no read-only query elsewhere; set it back at once
    os.umask(mask)
    return 0o666 & ~mask


def temp_beside(path: PathLike, suffix: str | None = None) -> Path:
    """A new empty temporary file in ``path``'s folder (created if needed), named ``.<name>.XXXX<suffix>``;
    ``suffix`` defaults to ``path``'s own so tools that look at the extension accept it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    end = path.suffix if suffix is None else suffix
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=end, dir=path.parent)
    os.close(fd)
    return Path(name)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def commit(tmp: PathLike, path: PathLike, *, durable: bool = True) -> Path:
    """Make the finished temporary file ``tmp`` the file ``path``: fsync it, give it the umask mode,
    ``os.replace`` it over ``path`` and fsync the folder. ``tmp`` must be in ``path``'s folder.
    ``durable=False`` skips both fsyncs (see the module notes)."""
    tmp, path = Path(tmp), Path(path)
    if durable:
        _fsync_path(tmp)
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)
    if durable:
        _fsync_folder(path.parent)
    return path


@contextlib.contextmanager
def atomic_open(
    path: PathLike, mode: str = "wb", encoding: str | None = None, *, durable: bool = True
) -> Iterator[IO[Any]]:
    """``with atomic_open(p, "w", encoding="utf-8") as fh: ...``: ``fh`` writes a temporary file that
    replaces ``p`` when the block ends normally and is removed when it raises."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', not {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    path = Path(path)
    tmp = temp_beside(path, ".tmp")
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
        commit(tmp, path, durable=durable)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: PathLike, data: bytes | str, encoding: str = "utf-8", *, durable: bool = True) -> Path:
    """Write ``data`` (bytes, or text encoded with ``encoding``) to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb", durable=durable) as fh:
        fh.write(data.encode(encoding) if isinstance(data, str) else data)
    return Path(path)


def atomic_copy(src: PathLike, dst: PathLike, *, link: bool = False) -> Path:
    """Put a copy of the finished file ``src`` at ``dst`` atomically; with ``link`` a hard link is tried
    first (no bytes copied; both names then share one file), a copy when the file system refuses it."""
    src, dst = Path(src), Path(dst)
    tmp = temp_beside(dst, ".tmp")
    try:
        if link:
            tmp.unlink()
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
        else:
            shutil.copyfile(src, tmp)
        commit(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst
