"""Loading: YAML-typed dotted overrides, per-type defaults, path resolution, cross-field checks."""

from __future__ import annotations

import pytest

from skillbank.specs import FFS_BP2_WIDTHS, SpecError, load_spec


def test_overrides_are_yaml_typed(tmp_path):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text("model: {model_type: FoundationStereo}\n")
    spec = load_spec(
        spec_file,
        ["train.optim.lr=1e-5", "model.hidden_dims=[128]", "model.n_gru_layers=1", "train.is_dry_run=true"],
    )
    assert spec.train.optim.lr == pytest.approx(1e-5)
    assert spec.model.hidden_dims == [128]
    assert spec.train.is_dry_run is True


def test_bad_override_syntax():
    with pytest.raises(SpecError, match="override must look like dotted.key=value"):
        load_spec(None, ["train.optim.lr"])


def test_ffs_gets_bp2_defaults_and_dataset_follows_model():
    spec = load_spec(None, data={"model": {"model_type": "FastFoundationStereo"}})
    assert spec.model.max_disparity == 192
    assert spec.dataset.max_disparity == 192
    assert spec.model.gwc_feature_normalize is True
    assert spec.model.valid_iters == 8
    for key, value in FFS_BP2_WIDTHS.items():
        assert getattr(spec.model, key) == value


def test_custom_ffs_widths_are_checked_for_consistency():
    widths = dict(FFS_BP2_WIDTHS, gru_hidden=64)
    with pytest.raises(
        SpecError, match=r"model\.cnet_conv04_widths: cnet_conv04_widths\[0\] = 60 must equal gru_hidden = 64"
    ):
        load_spec(None, data={"model": {"model_type": "FastFoundationStereo", **widths}})


def test_relative_paths_resolve_against_the_spec_folder(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    spec_file = folder / "s.yaml"
    spec_file.write_text(
        "results_dir: out\n"
        "dataset:\n  train_dataset:\n    data_sources: [{dataset_name: Kitti, data_file: lists/train.txt}]\n"
    )
    spec = load_spec(spec_file, [f"train.pretrained_model_path={tmp_path / 'abs.pth'}", "evaluate.checkpoint=rel.pth"])
    assert spec.results_dir == str(folder / "out")
    assert spec.dataset.train_dataset.data_sources[0].data_file == str(folder / "lists" / "train.txt")
    assert spec.train.pretrained_model_path == str(tmp_path / "abs.pth")
    # overrides typed on a command line resolve against the current folder
    import os

    assert spec.evaluate.checkpoint == os.path.abspath("rel.pth")


def test_dataset_and_model_disagreement_is_an_error():
    with pytest.raises(SpecError, match="dataset.max_disparity: 416 exceeds model.max_disparity 192"):
        load_spec(None, data={"model": {"model_type": "FastFoundationStereo"}, "dataset": {"max_disparity": 416}})


def test_mono_model_needs_mono_dataset():
    spec = load_spec(None, data={"model": {"model_type": "MetricDepthAnything"}})
    assert spec.dataset.dataset_name == "MonoDataset"
