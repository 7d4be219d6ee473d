"""Where compiled artefacts live between runs, so a second run of one model and shape starts fast.

Used by ``train.compile`` (the training step's compiled regions) and by the evaluate/inference fast
path. Two layers, both under one per-user folder (:func:`cache_root`: ``$DEPTH_NET_CACHE_DIR``, else
``$XDG_CACHE_HOME/skillbank``, else ``~/.cache/skillbank``):

* ``inductor/``: Inductor's own on-disk caches (FX graph, AOTAutograd, Triton autotuning), selected by
  setting ``TORCHINDUCTOR_CACHE_DIR`` unless the user (or an AutoML study, which gives its trials one
  folder) set it; torch's default is a temporary folder that does not outlive the machine's ``/tmp``.
  Inductor keys these by graph, config, device and versions.
* ``mega/<key>.bin``: torch's portable "mega-cache" (``torch.compiler.save_cache_artifacts`` /
  ``load_cache_artifacts``) saved after the first compile of a model and input shape and loaded before
  it the next time. :func:`cache_key` names it from what changes the compiled code: the network's spec,
  the precision, the input shape, the device and the torch/CUDA versions (not the weights: compiled
  regions take them as inputs).

AOTAutograd's cache (the traced and partitioned forward and backward of each compiled region) refuses
graphs that hold an autocast block or a custom ``autograd.Function``, and every FFS region holds both:
the fp32 correlations, lookup, soft-argmin and upsampling weights run in ``torch.autocast(enabled=False)``
blocks, and the lookup and the gradient-layout helpers are Functions. Without that cache a process whose
every kernel comes from disk still re-traces and re-partitions each region, forward and backward (most
of a warm process's first compiled training step: see docs/performance.md, "Compiled kernels across runs").
:func:`allow_aot_autograd_cache` lets it cache them. That is safe for these two kinds of node: an
autocast block's arguments are constants of the graph the cache key hashes, and a Function's forward
and backward are traced subgraphs of it, so editing either gives a new key (a test checks both).
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
    """Point ``TORCHINDUCTOR_CACHE_DIR`` at ``<cache_root>/inductor`` unless the user set it; returns the folder.

    Torch writes its own default folder into the environment the first time anything asks for it
    (importing ``torch._dynamo`` does), so that value counts as unset here."""
    env = os.environ if env is None else env
    current = env.get("TORCHINDUCTOR_CACHE_DIR")
    if not current or current == _torch_default_cache_dir():
        folder = cache_root(dict(env)) / "inductor"
        folder.mkdir(parents=True, exist_ok=True)
        env["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return Path(env["TORCHINDUCTOR_CACHE_DIR"])


def _torch_default_cache_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:         # another torch layout: only an unset variable counts as unset
        return None
    return os.path.abspath(default_cache_dir())


def allow_aot_autograd_cache() -> None:
    """Let AOTAutograd cache graphs with autocast blocks and custom autograd Functions (module doc)."""
    import torch

    torch._inductor.config.unsafe_marked_cacheable_functions.update(
        {f"torch.amp.autocast_mode.{name}": torch.__version__ for name in ("_enter_autocast", "_exit_autocast")})
    torch._functorch.config.autograd_cache_allow_custom_autograd_functions = True


def prepare_compile_caches(env: dict[str, str] | None = None) -> Path:
    """What every compiling action calls before its first compile: the on-disk Inductor cache folder
    (:func:`configure_inductor_cache`, returned) and AOTAutograd's cache for our regions."""
    folder = configure_inductor_cache(env)
    allow_aot_autograd_cache()
    return folder


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
