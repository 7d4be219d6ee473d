"""Read any supported checkpoint file into ``(state_dict, meta)`` with TAO key names.

Supported kinds (:class:`CheckpointKind`):

* ``lightning``: a dict with ``state_dict`` (ours, and TAO's FFS / FS checkpoints); keys lose a leading
  ``model.`` then ``module.``; ``epoch`` / ``global_step`` / other top-level entries go to ``meta``;
* ``model_dict``: a dict whose ``model`` entry is the state_dict (upstream FoundationStereo releases);
* ``state_dict``: a plain ``{name: tensor}`` mapping;
* ``pickled_module``: a whole ``nn.Module`` saved with ``torch.save(model)`` (upstream FFS's
  ``model_best_bp2_serialize.pth``), read with the restricted unpickler and flattened.

Loading order: first ``torch.load(weights_only=True)`` (torch's own hardened unpickler); only if it
refuses a global do we re-read the file through :mod:`.restricted_unpickler`, which substitutes inert
placeholders for foreign classes and refuses code-running callables. The file's own classes are never
imported and ``torch.load`` is never run with the stock pickle module and ``weights_only=False``.
TorchScript archives are refused (torch would hand them to ``torch.jit.load``).
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch

from skillbank.runtime.checkpoints.errors import (
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)
from skillbank.runtime.checkpoints.module_tree import foreign_classes, looks_like_module, module_state_dict
from skillbank.runtime.checkpoints.renames import WRAPPER_PREFIXES, normalise_keys
from skillbank.runtime.checkpoints.restricted_unpickler import placeholder_name, restricted_pickle_module


class CheckpointKind(StrEnum):
    LIGHTNING = "lightning"
    MODEL_DICT = "model_dict"
    STATE_DICT = "state_dict"
    PICKLED_MODULE = "pickled_module"


@dataclass
class CheckpointMeta:
    """Everything about the file except the tensors.

    ``loader`` is ``"weights_only"`` or ``"restricted"``; ``foreign_classes`` lists the classes that
    were replaced by placeholders; ``extras`` holds the other top-level entries of a dict checkpoint
    (``optimizer_states``, ``hyper_parameters``, ...; placeholders where classes were foreign).
    """

    path: Path
    kind: CheckpointKind
    loader: str
    epoch: int | None = None
    global_step: int | None = None
    lightning_version: str | None = None
    root_class: str | None = None
    foreign_classes: tuple[str, ...] = ()
    keys_renamed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


def load_checkpoint_file(
    path: str | Path,
    *,
    rename: bool = True,
    prefixes: tuple[str, ...] = WRAPPER_PREFIXES,
) -> tuple[OrderedDict[str, torch.Tensor], CheckpointMeta]:
    """Read ``path`` (CPU tensors) and return its normalised state_dict and a :class:`CheckpointMeta`.

    ``rename`` applies the upstream -> TAO key renames (a no-op on TAO names); ``prefixes`` are the
    wrapper prefixes stripped from each key, in order.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint file not found: {path} (expected a .pth file)")
    _refuse_torchscript(path)
    obj, loader = _unpickle(path)
    raw, meta = _classify(obj, path, loader)
    state_dict, renamed = normalise_keys(raw, prefixes=prefixes, rename=rename)
    meta.keys_renamed = renamed
    return state_dict, meta


def _refuse_torchscript(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}; expected a torch.save zip file") from exc
    if any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names):
        raise CheckpointFormatError(
            f"{path} is a TorchScript archive; expected a torch.save checkpoint (state_dict, Lightning or module)"
        )


def _unpickle(path: Path) -> tuple[Any, str]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True), "weights_only"
    except pickle.UnpicklingError:
        pass  # a global outside torch's allow-list: retry with placeholders below
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}; expected a torch.save file") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle_module)
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}; expected a torch.save file") from exc
    return obj, "restricted"


def _classify(obj: Any, path: Path, loader: str) -> tuple[Mapping[str, torch.Tensor], CheckpointMeta]:
    foreign = tuple(foreign_classes(obj)) if loader == "restricted" else ()
    if looks_like_module(obj):
        meta = CheckpointMeta(path, CheckpointKind.PICKLED_MODULE, loader, foreign_classes=foreign)
        meta.root_class = placeholder_name(obj) or type(obj).__qualname__
        return module_state_dict(obj), meta
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        meta = CheckpointMeta(path, CheckpointKind.LIGHTNING, loader, foreign_classes=foreign)
        meta.epoch = _as_int(obj.get("epoch"))
        meta.global_step = _as_int(obj.get("global_step"))
        version = obj.get("pytorch-lightning_version")
        meta.lightning_version = version if isinstance(version, str) else None
        meta.extras = {k: v for k, v in obj.items() if k != "state_dict"}
        return _tensor_mapping(obj["state_dict"], path, "state_dict"), meta
    if isinstance(obj, Mapping) and "model" in obj and not _all_tensors(obj):
        inner = obj["model"]
        extras = {k: v for k, v in obj.items() if k != "model"}
        if looks_like_module(inner):
            meta = CheckpointMeta(path, CheckpointKind.PICKLED_MODULE, loader, foreign_classes=foreign)
            meta.root_class = placeholder_name(inner) or type(inner).__qualname__
            meta.extras = extras
            return module_state_dict(inner), meta
        if isinstance(inner, Mapping):
            meta = CheckpointMeta(path, CheckpointKind.MODEL_DICT, loader, foreign_classes=foreign, extras=extras)
            meta.epoch = _as_int(obj.get("epoch"))
            meta.global_step = _as_int(obj.get("global_step", obj.get("step")))
            return _tensor_mapping(inner, path, "model"), meta
    if isinstance(obj, Mapping) and _all_tensors(obj):
        meta = CheckpointMeta(path, CheckpointKind.STATE_DICT, loader, foreign_classes=foreign)
        return _tensor_mapping(obj, path, "top level"), meta
    keys = list(obj)[:5] if isinstance(obj, Mapping) else []
    raise CheckpointFormatError(
        f"{path}: top-level object is {placeholder_name(obj) or type(obj).__name__}"
        f"{f' with keys {keys}' if keys else ''}; expected a state_dict, a dict with 'state_dict' or "
        "'model', or a pickled nn.Module"
    )


def _all_tensors(obj: Mapping[Any, Any]) -> bool:
    return len(obj) > 0 and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _tensor_mapping(obj: Mapping[Any, Any], path: Path, where: str) -> OrderedDict[str, torch.Tensor]:
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointFormatError(
                f"{path}: {where} entry {key!r} holds {placeholder_name(value) or type(value).__name__}; "
                "expected str -> tensor"
            )
        out[key] = value
    if not out:
        raise CheckpointFormatError(f"{path}: {where} holds no tensors; expected a non-empty state_dict")
    return out


def _as_int(value: Any) -> int | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return int(value.item())
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
