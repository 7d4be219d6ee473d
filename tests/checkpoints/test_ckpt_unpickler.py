"""The restricted unpickler: foreign whole-module pickles load as tensors; code-running pickles are refused."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from skillbank.runtime.checkpoints import (
    CheckpointKind,
    Placeholder,
    RestrictedUnpickler,
    UnsafeCheckpointError,
    load_checkpoint_file,
    module_state_dict,
    restricted_pickle_module,
)

FOREIGN_MODULES = ("core", "core.foundation_stereo", "Utils")  # as in conftest.py


def test_foreign_module_pickle_recovers_every_tensor_exactly(foreign_module_file):
    path, expected = foreign_module_file
    assert not any(name in sys.modules for name in FOREIGN_MODULES)

    state_dict, meta = load_checkpoint_file(path, rename=False)

    assert meta.kind is CheckpointKind.PICKLED_MODULE
    assert meta.loader == "restricted"
    assert meta.root_class == "core.foundation_stereo.FastFoundationStereo"
    assert "Utils.ResBlock" in meta.foreign_classes
    assert "torch.nn.modules.conv.Conv2d" in meta.foreign_classes  # torch.nn classes are placeholders too
    assert list(state_dict) == list(expected)  # same names, same order, non-persistent buffer left out
    for key, tensor in expected.items():
        assert state_dict[key].dtype == tensor.dtype, key
        assert torch.equal(state_dict[key], tensor), key
    assert type(state_dict["scale"]) is torch.Tensor  # Parameter rebuilt as a plain tensor
    assert not any(name in sys.modules for name in FOREIGN_MODULES)  # nothing was imported back


def test_foreign_module_pickle_with_renames(foreign_module_file):
    path, expected = foreign_module_file
    state_dict, meta = load_checkpoint_file(path)
    # feature.0 is a conv block whose upstream norm is `.bn.`; classifier.layers. collapses.
    assert torch.equal(state_dict["feature.0.norm.running_mean"], expected["feature.0.bn.running_mean"])
    assert torch.equal(state_dict["classifier.0.weight"], expected["classifier.layers.0.weight"])
    assert meta.keys_renamed == sum(1 for k in expected if ".bn." in k or k.startswith("classifier.layers."))


def test_recovered_tree_keeps_non_tensor_state_inert(foreign_module_file):
    path, _ = foreign_module_file
    root = torch.load(path, weights_only=False, pickle_module=restricted_pickle_module)
    assert isinstance(root, Placeholder)
    assert root.args == {"max_disp": 192, "vit_size": "vitl"}
    assert isinstance(root.act, type) and issubclass(root.act, Placeholder)  # function -> inert class
    assert root.act.original == "torch.nn.functional.relu"
    conv = root._modules["feature"]._modules["2"]
    assert isinstance(conv, Placeholder) and not isinstance(conv, torch.nn.Module)
    assert list(module_state_dict(root))[0] == "scale"


class _Evil:
    """Pickles as a call: ``REDUCE`` of ``func(*args)`` when unpickled."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _evil_cases(marker: Path):
    cmd = f"touch {marker}"
    return {
        "os.system": _Evil(os.system, cmd),
        "builtins.eval": _Evil(eval, f"__import__('os').system({cmd!r})"),
        "builtins.exec": _Evil(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Evil(subprocess.Popen, ["touch", str(marker)]),
        "subprocess.check_output": _Evil(subprocess.check_output, ["touch", str(marker)]),
        "builtins.__import__": _Evil(__import__, "os"),
    }


@pytest.mark.parametrize("case", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                  "subprocess.check_output", "builtins.__import__"])
def test_malicious_checkpoint_is_refused_without_side_effect(tmp_path, case):
    marker = tmp_path / "pwned"
    payload = {"state_dict": {"w": torch.ones(2)}, "hyper_parameters": _evil_cases(marker)[case]}
    path = tmp_path / "evil.pth"
    torch.save(payload, path)

    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)

    message = str(info.value)
    assert "refused" in message and str(path) in message
    assert case.split(".")[0] in message or case in message
    assert "\n" not in message
    assert not marker.exists()


def test_raw_pickle_refusal_names_the_callable(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=2)
    with pytest.raises(UnsafeCheckpointError, match=r"asks for (posix|os|nt)\.system"):
        RestrictedUnpickler(io.BytesIO(data)).load()
    assert not marker.exists()


def test_placeholder_call_records_arguments_and_runs_nothing(tmp_path):
    # A foreign "function" called by REDUCE becomes an inert placeholder instance.
    data = (
        b"\x80\x02cevil_pkg.tools\nwipe_disk\nq\x00X\x01\x00\x00\x00/q\x01\x85q\x02Rq\x03."
    )
    obj = RestrictedUnpickler(io.BytesIO(data)).load()
    assert isinstance(obj, Placeholder)
    assert type(obj).original == "evil_pkg.tools.wipe_disk"
    assert obj._placeholder_args == ("/",)
    assert "evil_pkg" not in sys.modules


def test_weights_only_files_never_touch_the_restricted_path(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"a.weight": torch.arange(3.0)}, path)
    state_dict, meta = load_checkpoint_file(path)
    assert meta.loader == "weights_only"
    assert meta.kind is CheckpointKind.STATE_DICT
    assert torch.equal(state_dict["a.weight"], torch.arange(3.0))


@pytest.mark.parametrize(
    ("module", "name"),
    [("commands", "getoutput"), ("__builtin__", "eval"), ("posix", "system"), ("torch.hub", "load"),
     ("importlib", "import_module"), ("os.path", "join")],
)
def test_python2_spellings_and_submodules_are_refused_too(module, name):
    # Protocol 0: GLOBAL 'module name', a one-string tuple, REDUCE, STOP.
    data = f"c{module}\n{name}\n(S'echo pwned'\ntR.".encode()
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        RestrictedUnpickler(io.BytesIO(data)).load()


def test_getattr_bound_methods_and_partials_stay_inert():
    import functools

    payload = {"bound": "text".upper, "factory": functools.partial(int, base=2), "n": 3}
    obj = RestrictedUnpickler(io.BytesIO(pickle.dumps(payload, protocol=2))).load()
    assert isinstance(obj["bound"], Placeholder)  # pickled as getattr("text", "upper"): recorded only
    assert obj["bound"]._placeholder_args == ("text", "upper")
    assert type(obj["factory"]).original == "functools.partial"
    assert obj["n"] == 3
