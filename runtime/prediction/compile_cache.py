"""Where compiled inference artefacts live between runs, so a second run of one model and shape starts fast.

Two layers, both under one per-user folder (:func:`cache_root`: ``$DEPTH_NET_CACHE_DIR``, else
``$XDG_CACHE_HOME/skillbank``, else ``~/.cache/skillbank``):

* ``inductor/``: Inductor's own on-disk caches (FX graph, AOTAutograd, Triton autotuning), selected by
  setting ``TORCHINDUCTOR_CACHE_DIR`` unless the user set it (torch's default is a temporary folder that
  does not outlive the machine's ``/tmp``). Inductor keys these by graph, config, device and versions.
* ``mega/<key>.bin``: torch's portable "mega-cache" (``torch.compiler.save_cache_artifacts`` /
  ``load_cache_artifacts``) saved after the first compile of a model and input shape and loaded before
  it the next time. :func:`cache_key` names it from what changes the compiled code: the network's spec,
  the precision, the input shape, the device and the torch/CUDA versions (not the weights: compiled
  regions take them as inputs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("depth_net")


def cache_root(env: dict[str, str] | None = None) -> Path:
    """The per-user cache folder (see the module doc)."""
    env = dict(os.environ) if env is None else env
    if env.get("DEPTH_NET_CACHE_DIR"):
        return Path(env["DEPTH_NET_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "skillbank"


def configure_inductor_cache(env: dict[str, str] | None = None) -> Path:
    """Point ``TORCHINDUCTOR_CACHE_DIR`` at ``<cache_root>/inductor`` unless already set; returns the folder."""
    env = os.environ if env is None else env
    if not env.get("TORCHINDUCTOR_CACHE_DIR"):
        folder = cache_root(dict(env)) / "inductor"
        folder.mkdir(parents=True, exist_ok=True)
        env["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return Path(env["TORCHINDUCTOR_CACHE_DIR"])


def cache_key(model_spec: dict[str, Any], *, precision: str, shapes: list[tuple[int, ...]], device: str,
              versions: dict[str, str]) -> str:
    """A stable name for the compiled artefacts of one network, precision, input shape set and device."""
    payload = json.dumps({"model": model_spec, "precision": precision, "shapes": [list(s) for s in shapes],
                          "device": device, "versions": versions}, sort_keys=True, default=str)
    model_type = str(model_spec.get("model_type", "model"))
    shape = "x".join(str(d) for d in shapes[0]) if shapes else "any"
    return f"{model_type}-{precision}-{shape}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


def runtime_versions() -> dict[str, str]:
    import torch

    versions = {"torch": torch.__version__, "cuda": str(torch.version.cuda)}
    if torch.cuda.is_available():
        versions["gpu"] = torch.cuda.get_device_name()
    return versions


def mega_path(key: str) -> Path:
    return cache_root() / "mega" / f"{key}.bin"


def load_mega_cache(key: str) -> bool:
    """Load the saved artefacts of ``key`` into torch's caches; ``True`` when there were any."""
    import torch

    path = mega_path(key)
    if not path.is_file():
        return False
    try:
        torch.compiler.load_cache_artifacts(path.read_bytes())
    except Exception as exc:  # a cache from another torch version or a torn file: compile from scratch
        log.warning("compile cache %s not used (%s)", path, exc)
        return False
    return True


def save_mega_cache(key: str) -> Path | None:
    """Save what this process compiled so far under ``key`` (atomic); ``None`` when torch had nothing."""
    import torch

    from skillbank.atomic import atomic_write

    try:
        saved = torch.compiler.save_cache_artifacts()
    except Exception as exc:
        log.warning("compile cache not saved (%s)", exc)
        return None
    if not saved:
        return None
    path = mega_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, saved[0])
    return path
