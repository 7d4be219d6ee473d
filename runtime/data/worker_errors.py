"""Exceptions raised in DataLoader worker processes, brought back to the main process intact.

torch sends a worker's exception to the main process as its class and its formatted traceback, and
raises ``cls("Caught <cls> in DataLoader worker process N.\\nOriginal Traceback ...")`` there (a
``RuntimeError`` when ``cls`` cannot be built from one string). The one-line message the user should
see, and whatever the exception carried (a file name, a list of problems), are lost on the way.

* :class:`CarryErrors` / :func:`carry_errors` wrap a loader's dataset and collate function: an
  exception raised inside them in a worker is pickled into the message of a :class:`WorkerError`,
  so it crosses the process boundary as text;
* :func:`original_error` gives the main process the original exception back: unpickled from that
  message, or, for an exception that cannot be pickled or was raised outside the wrappers, rebuilt
  from torch's traceback text as an exception of the same class name with the same one-line message.

Nothing here imports torch (the runner imports this module before any action runs).
"""

from __future__ import annotations

import base64
import binascii
import pickle
import re
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["CarryErrors", "WorkerError", "carry_errors", "original_error"]

# The payload is the last thing in torch's text: the WorkerError line ends the formatted chain. Only that
# position is trusted; the same marker inside the original message (a crafted file name) is never read.
_PAYLOAD = re.compile(r"\[depth_net worker error ([A-Za-z0-9+/=]+)\]\s*\Z")
_CAUGHT = re.compile(r"\ACaught (\w+) (.*?)\.\nOriginal (Traceback \(most recent call last\):\n.*)\Z", re.S)


class WorkerError(Exception):
    """Raised in a worker in place of the original exception, which its message holds (pickled)."""

    @classmethod
    def holding(cls, exc: BaseException) -> WorkerError:
        return cls(f"[depth_net worker error {_encode(exc)}]")


def _encode(exc: BaseException) -> str:
    """The pickled exception, or (class module, class name, message) when pickling would change it."""
    payload: Any = (type(exc).__module__, type(exc).__qualname__, str(exc))
    try:
        data = pickle.dumps(exc)
        clone = pickle.loads(data)
        if type(clone) is type(exc) and str(clone) == str(exc):
            payload = exc
    except Exception:  # noqa: BLE001 - any failure to pickle means: send the description instead
        pass
    return base64.b64encode(pickle.dumps(payload)).decode("ascii")


def _stand_in(module: str, name: str, message: str) -> Exception:
    """An exception whose class has the original's name and module and whose message is the original's."""
    cls = type(name, (Exception,), {"__module__": module})
    return cls(message)


def _from_traceback(name: str, text: str) -> Exception:
    """Rebuild the exception torch formatted in ``text``: the last exception line(s), after the frames."""
    block = text.rsplit("Traceback (most recent call last):\n", 1)[-1]
    lines = block.splitlines()
    first = next((i for i, line in enumerate(lines) if line and not line.startswith(" ")), len(lines))
    head, rest = (lines[first], lines[first + 1 :]) if first < len(lines) else ("", [])
    qualified, _, message = head.partition(": ")
    module, _, short = qualified.rpartition(".")
    message = "\n".join([message, *rest]).strip()
    return _stand_in(module or "builtins", short or name, message)


def original_error(exc: BaseException) -> BaseException | None:
    """The exception a DataLoader worker raised, when ``exc`` is torch's re-raise of one; else None."""
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
    caught = _CAUGHT.match(text)
    found = _PAYLOAD.search(text) if isinstance(exc, WorkerError) else None
    if found:
        try:
            payload = pickle.loads(base64.b64decode(found.group(1)))  # noqa: S301 - our worker wrote it
        except (binascii.Error, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
            payload = None
        if isinstance(payload, BaseException):
            return payload
        if isinstance(payload, tuple) and len(payload) == 3:
            return _stand_in(*(str(part) for part in payload))
    if caught:
        return _from_traceback(caught.group(1), caught.group(3))
    return None


def _raise_in_worker(exc: Exception) -> NoReturn:
    from torch.utils.data import get_worker_info

    if get_worker_info() is None:  # the main process: the exception travels as it is
        raise exc
    raise WorkerError.holding(exc) from exc


class CarryErrors:
    """A map-style dataset whose items are ``dataset``'s; an exception raised in a worker travels intact."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as exc:  # noqa: BLE001 - every exception travels, none is swallowed
            _raise_in_worker(exc)


class _CarryCollate:
    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        try:
            return self.collate(samples)
        except Exception as exc:  # noqa: BLE001 - every exception travels, none is swallowed
            _raise_in_worker(exc)


def carry_errors(collate: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
    """``collate`` with the exceptions it raises in a worker carried intact (see :class:`CarryErrors`)."""
    return _CarryCollate(collate)
