"""A pickle unpickler that recovers tensors from foreign pickles without running their code.

Why: upstream Fast-FoundationStereo ships ``model_best_bp2_serialize.pth``, a whole ``nn.Module`` saved with
``torch.save(model)``. Unpickling it normally imports upstream's packages (``core``, ``Utils``,
``depth_anything``, ``dinov2``, ``dpt``) and calls whatever callables the file names: a pickle is a small
program, and ``REDUCE`` calls any global it can reach. We only want the tensors.

How: :class:`RestrictedUnpickler` overrides ``find_class``, the one door through which a pickle reaches a
Python global. Three outcomes:

* **allowed** (an explicit list): tensor rebuild functions (wrapped so they return plain tensors and drop
  any Python state), torch dtypes / ``torch.Size`` / ``torch.device`` / storage classes,
  ``collections.OrderedDict``, a few inert builtins (``set``, ``dict``, ``int``, ...) and
  ``_codecs.encode`` (protocol 2 stores ``bytes`` through it);
* **refused** (:class:`UnsafeCheckpointError`): anything from modules that can run code or touch the
  system (``os``, ``subprocess``, ``sys``, ``builtins.eval``, ``importlib``, ``socket``, ...);
* **placeholder** (everything else, including ``torch.nn.*`` modules and upstream classes): a fresh
  :class:`Placeholder` subclass named after the original. Calling it, ``__new__``-ing it, ``BUILD``-ing
  it or filling it like a list / dict only *records* the arguments and state; it has no behaviour.

The module named in the pickle is never imported. :data:`restricted_pickle_module` packages the unpickler
as a ``pickle_module`` for ``torch.load`` (whose zip reader then supplies the tensor storages).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import pickle
import types
from typing import Any, ClassVar

import torch

from skillbank.runtime.checkpoints.errors import UnsafeCheckpointError

# Modules whose globals can execute code, reach the OS or re-enter the import / pickle machinery.
# A name from one of these (or a submodule) is refused outright rather than replaced by a placeholder,
# so a malicious file fails loudly instead of loading "successfully" with a hole in it.
DENIED_MODULE_ROOTS: frozenset[str] = frozenset(
    {
        "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "sys", "shutil", "socket", "importlib",
        "runpy", "code", "codeop", "ctypes", "pty", "marshal", "pickle", "_pickle", "cPickle", "copyreg",
        "shelve", "types", "webbrowser", "multiprocessing", "asyncio", "signal", "io", "_io", "operator",
        "_operator", "functools", "inspect", "timeit", "pdb", "bdb", "trace", "threading", "_thread",
        "urllib", "http", "ftplib", "smtplib", "telnetlib", "requests", "tempfile", "glob",
        "zipimport", "sysconfig", "distutils", "setuptools", "pip", "ensurepip", "platform", "ssl",
        "select", "selectors", "mmap", "resource", "gc", "weakref", "ast", "dis", "compileall",
        "py_compile", "pkgutil", "site", "builtins", "__builtin__", "numpy.testing",
        "torch.hub", "torch.jit", "torch.package", "torch.ops", "torch._ops", "torch.utils.cpp_extension",
        "torch.distributed", "torch.multiprocessing", "torch.serialization", "torch.cuda",
    }
)

# Names from refused modules that ordinary checkpoints contain as *data* (a training script's args
# namespace, a partial stored as a layer factory): they become placeholders like any foreign class.
INERT_IN_DENIED_MODULES: frozenset[tuple[str, str]] = frozenset(
    {("functools", "partial"), ("types", "SimpleNamespace")}
)

# Inert builtins a checkpoint may legitimately use (containers and scalars). ``getattr`` is mapped to an
# inert record (see BoundAttribute); everything else from ``builtins`` (eval, exec, open, __import__,
# compile, ...) is refused.
_ALLOWED_BUILTINS: dict[str, Any] = {
    "set": set, "frozenset": frozenset, "list": list, "dict": dict, "tuple": tuple, "int": int,
    "float": float, "bool": bool, "complex": complex, "str": str, "bytes": bytes, "bytearray": bytearray,
    "slice": slice, "range": range, "object": object,
}


class Placeholder:
    """Inert stand-in for a class (or function) the unpickler would not import.

    Subclasses are made on the fly, one per foreign global; ``original`` holds its dotted name. The
    instance keeps what the pickle gave it: constructor arguments in ``_placeholder_args`` /
    ``_placeholder_kwargs``, a dict state merged into ``__dict__`` (so an ``nn.Module``'s
    ``_parameters`` / ``_buffers`` / ``_modules`` stay reachable), any other state in
    ``_placeholder_state``, list items in ``_placeholder_items`` and dict items in ``_placeholder_map``.
    """

    original: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        obj = object.__new__(cls)
        obj.__dict__["_placeholder_args"] = args
        obj.__dict__["_placeholder_kwargs"] = kwargs
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Accept and ignore: ``__new__`` already recorded the arguments."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
            merged: dict[Any, Any] = {}
            for part in state:
                merged.update(part or {})
            state = merged
        if isinstance(state, dict) and all(isinstance(k, str) for k in state):
            self.__dict__.update(state)
        else:
            self.__dict__["_placeholder_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("_placeholder_map", {})[key] = value

    def append(self, item: Any) -> None:
        self.__dict__.setdefault("_placeholder_items", []).append(item)

    def extend(self, items: Any) -> None:
        self.__dict__.setdefault("_placeholder_items", []).extend(items)

    def __repr__(self) -> str:
        return f"<placeholder {self.original}>"


def placeholder_name(obj: object) -> str | None:
    """Dotted name of the foreign class an object stands in for, or None for ordinary objects."""
    if isinstance(obj, Placeholder):
        return type(obj).original
    return None


# ---- safe wrappers around torch's tensor rebuild functions -------------------------------------------


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> torch.Tensor:
    """``nn.Parameter`` in the file -> its plain tensor (no hooks, no Parameter subclass)."""
    return _require_tensor(data, "torch._utils._rebuild_parameter")


def _rebuild_parameter_with_state(
    data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None
) -> torch.Tensor:
    """Like :func:`_rebuild_parameter`; the Python state torch would ``setattr`` is dropped."""
    return _require_tensor(data, "torch._utils._rebuild_parameter_with_state")


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> torch.Tensor:
    """Tensor (sub)class wrapper: call the (already vetted) rebuild ``func``; ignore type and state."""
    if not callable(func) or isinstance(func, type) and issubclass(func, Placeholder):
        raise UnsafeCheckpointError(
            f"tensor rebuild asked for {func!r}; expected one of torch's tensor rebuild functions"
        )
    return _require_tensor(func(*args), "torch._tensor._rebuild_from_type_v2")


def _require_tensor(value: Any, where: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise UnsafeCheckpointError(f"{where} got {type(value).__name__}; expected a tensor")
    return value.detach()


class BoundAttribute(Placeholder):
    """What ``getattr(obj, name)`` in a pickle becomes: a record of (obj, name), never a lookup.

    Pickle stores bound methods as ``getattr(instance, "method")``; resolving it for real would let a
    file walk from an allowed object to any attribute reachable from it.
    """

    original = "builtins.getattr"


def _inert_getattr(obj: Any, name: Any, *default: Any) -> BoundAttribute:
    return BoundAttribute(obj, name, *default)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """Protocol 0/1 object rebuild (``copyreg._reconstructor``), restricted to placeholders."""
    if isinstance(cls, type) and issubclass(cls, Placeholder):
        obj = cls.__new__(cls)
        if state is not None:
            obj.__dict__["_placeholder_state"] = state
        return obj
    raise UnsafeCheckpointError(
        f"copyreg._reconstructor for {cls!r}; expected a plain recorded object"
    )


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The explicit allow-list: (module, name) -> the object ``find_class`` returns."""
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): codecs.encode,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "getattr"): _inert_getattr,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): torch.Tensor,
        ("torch._tensor", "Tensor"): torch.Tensor,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("torch.serialization", "_get_layout"): torch.serialization._get_layout,
    }
    if hasattr(torch._utils, "_rebuild_tensor_v3"):
        allowed[("torch._utils", "_rebuild_tensor_v3")] = torch._utils._rebuild_tensor_v3
    for name in dir(torch):
        value = getattr(torch, name, None)
        is_dtype_like = isinstance(value, (torch.dtype, torch.layout, torch.memory_format))
        is_storage_class = name.endswith("Storage") and isinstance(value, type)
        if is_dtype_like or is_storage_class:
            allowed[("torch", name)] = value
    for name, value in _ALLOWED_BUILTINS.items():
        allowed[("builtins", name)] = value
        allowed[("__builtin__", name)] = value
    return allowed


_ALLOWED: dict[tuple[str, str], Any] = _allowed_globals()


def is_denied(module: str) -> bool:
    """True when ``module`` (or a parent package of it) is on the refuse list."""
    parts = module.split(".")
    return any(".".join(parts[:i]) in DENIED_MODULE_ROOTS for i in range(1, len(parts) + 1))


def python3_name(module: str, name: str) -> tuple[str, str]:
    """Undo protocol-2 pickles' Python 2 spellings (``commands.Popen`` is ``subprocess.Popen``).

    The stock ``find_class`` does this mapping itself; an override must too, or the deny-list could
    be dodged by the old name. Applied whatever the protocol: the mapping only ever renames to the
    module the name really lives in.
    """
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` allows, refuses or substitutes a placeholder.

    ``placeholders`` maps each foreign dotted name seen to its placeholder class (for reporting).
    """

    def __init__(self, file: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(file, *args, **kwargs)
        self.placeholders: dict[str, type[Placeholder]] = {}

    def find_class(self, module: str, name: str) -> Any:
        raw_module = module
        module, name = python3_name(module, name)
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        denied = module == "builtins" or is_denied(module) or is_denied(raw_module)
        if denied and (module, name) not in INERT_IN_DENIED_MODULES:
            raise UnsafeCheckpointError(
                f"checkpoint pickle asks for {module}.{name}, which could run code; refused "
                "(a checkpoint needs only tensors and plain data; foreign classes load as inert placeholders)"
            )
        dotted = f"{module}.{name}"
        cls = self.placeholders.get(dotted)
        if cls is None:
            safe_name = name if name.isidentifier() else "Placeholder"
            cls = type(safe_name, (Placeholder,), {"original": dotted, "__module__": "placeholder." + module})
            self.placeholders[dotted] = cls
        return cls


def _load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


def _loads(data: bytes, **kwargs: Any) -> Any:
    return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


# A stand-in "pickle module" for ``torch.load(pickle_module=...)``: torch subclasses ``Unpickler`` (to
# map storage class names) and calls ``load`` for the legacy format's header records.
restricted_pickle_module = types.ModuleType("skillbank_restricted_pickle")
restricted_pickle_module.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle_module.load = _load  # type: ignore[attr-defined]
restricted_pickle_module.loads = _loads  # type: ignore[attr-defined]
restricted_pickle_module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
restricted_pickle_module.__doc__ = "Restricted pickle module: see skillbank.runtime.checkpoints."

__all__ = [
    "DENIED_MODULE_ROOTS",
    "Placeholder",
    "RestrictedUnpickler",
    "is_denied",
    "placeholder_name",
    "restricted_pickle_module",
]
