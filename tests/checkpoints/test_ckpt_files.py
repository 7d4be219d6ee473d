"""Checkpoint kinds on disk, atomic saving and resolving files in a results folder."""

from __future__ import annotations

import os
import zipfile

import pytest
import torch

from skillbank.runtime.checkpoints import (
    LATEST_NAME,
    CheckpointError,
    CheckpointFormatError,
    CheckpointKind,
    CheckpointNotFoundError,
    checkpoint_name,
    load_checkpoint_file,
    resolve_checkpoint,
    save_checkpoint_atomic,
)

# ---- kinds -----------------------------------------------------------------------------------------


class ForeignConfig:
    """Stands for a config object (OmegaConf, easydict) inside a checkpoint's hyper_parameters."""

    def __init__(self) -> None:
        self.max_disparity = 192


def test_our_lightning_checkpoint(tmp_path):
    weight = torch.randn(4, 3, 3, 3)
    ckpt = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {"model.feature.conv4.weight": weight, "model.dx": torch.zeros(1, 1, 9, 1)},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4}]}],
    }
    path = tmp_path / checkpoint_name(3, 1200)
    torch.save(ckpt, path)
    state_dict, meta = load_checkpoint_file(path)
    assert meta.kind is CheckpointKind.LIGHTNING and meta.loader == "weights_only"
    assert (meta.epoch, meta.global_step, meta.lightning_version) == (3, 1200, "2.6.0")
    assert list(state_dict) == ["feature.conv4.weight", "dx"]
    assert torch.equal(state_dict["feature.conv4.weight"], weight)
    assert meta.extras["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-4
    assert "state_dict" not in meta.extras


def test_tao_lightning_checkpoint_with_foreign_hyper_parameters(tmp_path, monkeypatch):
    # The config class lives in a module that will be gone at load time (as TAO's would be for us).
    monkeypatch.setattr(ForeignConfig, "__module__", "tao_depth_net_config")
    import sys
    import types

    fake = types.ModuleType("tao_depth_net_config")
    fake.ForeignConfig = ForeignConfig
    sys.modules[fake.__name__] = fake
    try:
        ckpt = {"epoch": 9, "global_step": 500, "hyper_parameters": {"experiment_spec": ForeignConfig()},
                "state_dict": {"model.module.classifier.layers.0.weight": torch.ones(1, 28, 3, 3, 3)}}
        path = tmp_path / "tao.pth"
        torch.save(ckpt, path)
    finally:
        del sys.modules[fake.__name__]
    state_dict, meta = load_checkpoint_file(path)
    assert meta.loader == "restricted" and meta.kind is CheckpointKind.LIGHTNING
    assert list(state_dict) == ["classifier.0.weight"]
    assert meta.keys_renamed == 1
    assert meta.foreign_classes == ("tao_depth_net_config.ForeignConfig",)
    assert meta.extras["hyper_parameters"]["experiment_spec"].max_disparity == 192


def test_upstream_model_dict_and_plain_state_dict(tmp_path):
    torch.save({"model": {"module.cnet.conv04.0.bn.weight": torch.ones(60)}, "epoch": 7}, tmp_path / "fs.pth")
    state_dict, meta = load_checkpoint_file(tmp_path / "fs.pth")
    assert meta.kind is CheckpointKind.MODEL_DICT and meta.epoch == 7
    assert list(state_dict) == ["cnet.conv04.0.norm.weight"]

    torch.save({"a": torch.ones(1)}, tmp_path / "plain.pth")
    assert load_checkpoint_file(tmp_path / "plain.pth")[1].kind is CheckpointKind.STATE_DICT


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([1, 2, 3], r"top-level object is list; expected a state_dict"),
        ({"state_dict": {"w": 3}}, r"state_dict entry 'w' holds int; expected str -> tensor"),
        ({"state_dict": {}}, r"state_dict holds no tensors"),
    ],
)
def test_unsupported_layouts_are_clear_errors(tmp_path, obj, match):
    torch.save(obj, tmp_path / "x.pth")
    with pytest.raises(CheckpointFormatError, match=match):
        load_checkpoint_file(tmp_path / "x.pth")


def test_missing_corrupt_and_torchscript_files(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="checkpoint file not found"):
        load_checkpoint_file(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*junk\.pth"):
        load_checkpoint_file(tmp_path / "junk.pth")
    with zipfile.ZipFile(tmp_path / "ts.pt", "w") as archive:
        archive.writestr("ts/constants.pkl", b"")
        archive.writestr("ts/data.pkl", b"")
    with pytest.raises(CheckpointFormatError, match="TorchScript archive"):
        load_checkpoint_file(tmp_path / "ts.pt")


# ---- atomic save -----------------------------------------------------------------------------------


def test_atomic_save_writes_the_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / LATEST_NAME
    save_checkpoint_atomic({"w": torch.arange(4)}, path)
    save_checkpoint_atomic({"w": torch.arange(5)}, path)  # overwrite
    assert torch.equal(torch.load(path)["w"], torch.arange(5))
    assert os.listdir(tmp_path) == [LATEST_NAME]


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / LATEST_NAME
    save_checkpoint_atomic({"w": torch.arange(4)}, path)
    real_save = torch.save

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("pre-empted")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint_atomic({"w": torch.arange(9)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(torch.load(path)["w"], torch.arange(4))
    assert os.listdir(tmp_path) == [LATEST_NAME]


def test_atomic_save_into_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="folder .* does not exist"):
        save_checkpoint_atomic({}, tmp_path / "no" / "x.pth")


# ---- resolve ---------------------------------------------------------------------------------------


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_resolve_picks_by_epoch_then_step_not_by_name_or_time(tmp_path):
    _touch(tmp_path, checkpoint_name(9, 900), checkpoint_name(10, 1000), checkpoint_name(10, 950), LATEST_NAME,
           "model_epoch_1_step_5.pth", "notes.txt")
    assert resolve_checkpoint(tmp_path).name == "model_epoch_010_step_01000.pth"
    assert resolve_checkpoint(tmp_path, "latest").name == LATEST_NAME
    assert resolve_checkpoint(tmp_path, epoch=9).name == "model_epoch_009_step_00900.pth"
    assert resolve_checkpoint(tmp_path, step=950).name == "model_epoch_010_step_00950.pth"
    file = tmp_path / checkpoint_name(9, 900)
    assert resolve_checkpoint(file) == file


def test_resolve_bigger_than_padding_and_train_subfolder(tmp_path):
    _touch(tmp_path / "train", checkpoint_name(999, 99999), checkpoint_name(1000, 100000))
    assert resolve_checkpoint(tmp_path).name == "model_epoch_1000_step_100000.pth"


def test_resolve_errors(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing")
    with pytest.raises(CheckpointNotFoundError, match=r"no checkpoint in folder .*model_epoch_EEE_step_SSSSS"):
        resolve_checkpoint(tmp_path)
    _touch(tmp_path, LATEST_NAME)
    with pytest.raises(CheckpointNotFoundError, match="ask for prefer='latest'"):
        resolve_checkpoint(tmp_path)
    _touch(tmp_path, checkpoint_name(1, 10))
    with pytest.raises(CheckpointNotFoundError, match=r"no checkpoint for epoch=2 .*found: model_epoch_001"):
        resolve_checkpoint(tmp_path, epoch=2)
    with pytest.raises(CheckpointError, match="expected 'exact' or 'latest'"):
        resolve_checkpoint(tmp_path, "newest")  # type: ignore[arg-type]


def test_load_weights_resolves_reads_and_loads(tmp_path):
    from skillbank.runtime.training.weights import load_weights, resolve_weights

    model = torch.nn.Sequential(torch.nn.Linear(2, 3))
    weight = torch.randn(3, 2)
    save_checkpoint_atomic({"epoch": 1, "global_step": 10,
                            "state_dict": {"model.0.weight": weight, "model.0.bias": torch.zeros(3)}},
                           tmp_path / checkpoint_name(1, 10))
    text = load_weights(model, resolve_weights(str(tmp_path), "evaluate.checkpoint"), "evaluate.checkpoint")
    assert text.startswith(f"{checkpoint_name(1, 10)} (epoch 1, step 10): ")
    assert torch.equal(model[0].weight, weight)


def test_legacy_non_zip_format_and_path_objects_in_hyper_parameters(tmp_path):
    from pathlib import PurePosixPath

    ckpt = {"hyper_parameters": {"results_dir": PurePosixPath("/results/train")},
            "state_dict": {"model.proj_cmb.weight": torch.arange(6.0).view(3, 2)}}
    path = tmp_path / "legacy.pth"
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(path)
    state_dict, meta = load_checkpoint_file(path)
    assert meta.loader == "restricted"  # torch's weights_only loader refuses pathlib
    assert torch.equal(state_dict["proj_cmb.weight"], torch.arange(6.0).view(3, 2))
    assert meta.foreign_classes == ("pathlib.PurePosixPath",)
