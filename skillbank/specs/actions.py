"""Sections of the non-train actions: evaluate, inference, export, gen_trt_engine, convert, wandb."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from skillbank.specs.base import SpecSection
from skillbank.specs.fields import spec_field
from skillbank.specs.synthetic import SyntheticConfig


class EvaluateConfig(SpecSection):
    """``evaluate``: metrics on dataset.test_dataset."""

    checkpoint: str | None = spec_field(None, "Checkpoint to evaluate (a PyTorch run).", path=True)
    trt_engine: str | None = spec_field(
        None, "Deployed engine to run instead of a checkpoint: .engine (TensorRT), .onnx (onnxruntime) or .pt2 "
        "(AOTInductor).", path=True
    )
    results_dir: str | None = spec_field(None, "Results folder (default: <results_dir>/evaluate).", path=True)
    batch_size: int = spec_field(1, "Pairs per batch.", ge=1, le=256)
    input_height: int | None = spec_field(
        None, "Evaluate at this height (resized; GT disparity scaled). Unset = native size.", ge=32
    )
    input_width: int | None = spec_field(None, "Evaluate at this width. Unset = native size.", ge=32)
    num_gpus: int = spec_field(1, "GPUs (0 = CPU).", ge=0, le=64)
    gpu_ids: list[int] = spec_field(default_factory=lambda: [0], description="GPU indices.")
    optimize: bool | None = spec_field(
        None, "FastFoundationStereo fast path. Unset or true on a GPU: BatchNorm folded, pruned widths zero-padded to "
        "multiples of 8, channels_last, fp16 weights, compiled regions and a CUDA graph per input shape (each "
        "overridable below). false: eager fp32. On a CPU unset = eager; true = folded BatchNorm and padded widths."
    )
    precision: Literal["fp32", "fp16", "bf16"] | None = spec_field(
        None, "Network weights and activations (FastFoundationStereo; fp16/bf16 need a GPU). Unset: fp16 on the GPU "
        "fast path, else fp32. The correlation, lookup and upsampling stay fp32.", options=["fp32", "fp16", "bf16"]
    )
    compile: bool | None = spec_field(
        None, "torch.compile the encoder and one refinement iteration (FastFoundationStereo). Unset: on with the GPU "
        "fast path. Compiles once per input size (cached on disk): set input_height/input_width for mixed sizes."
    )
    cuda_graph: bool | None = spec_field(
        None, "Replay the network as a CUDA graph, one per input shape (GPU only). Unset: on with the GPU fast path."
    )

    @model_validator(mode="after")
    def _check_hw(self) -> EvaluateConfig:
        if (self.input_height is None) != (self.input_width is None):
            raise ValueError("input_height: set input_height and input_width together, or neither")
        return self


class InferenceConfig(EvaluateConfig):
    """``inference``: disparity/depth maps for dataset.infer_dataset."""

    results_dir: str | None = spec_field(None, "Results folder (default: <results_dir>/inference).", path=True)
    save_raw_pfm: bool = spec_field(False, "Also write the raw float prediction as PFM beside the colour PNG.")


class ExportConfig(SpecSection):
    """``export``: an fp32 ONNX graph (precision is chosen when the engine is built) or an AOTInductor package."""

    checkpoint: str | None = spec_field(None, "Checkpoint to export.", path=True)
    format: Literal["onnx", "aoti"] = spec_field(
        "onnx", "'onnx': fp32 ONNX graph (for gen_trt_engine / onnxruntime); 'aoti': AOTInductor package (.pt2), "
        "compiled for this machine's GPU (CPU with on_cpu or without a GPU).", options=["onnx", "aoti"]
    )
    onnx_file: str | None = spec_field(None, "Output ONNX file (default: <results_dir>/<model_type>.onnx).", path=True)
    aoti_file: str | None = spec_field(
        None, "Output AOTInductor package, format aoti (default: <results_dir>/<model_type>.pt2).", path=True
    )
    results_dir: str | None = spec_field(None, "Results folder (default: <results_dir>/export).", path=True)
    input_height: int = spec_field(480, "Input height (multiple of 32).", ge=32)
    input_width: int = spec_field(736, "Input width (multiple of 32).", ge=32)
    input_channel: int = spec_field(3, "Input channels.", ge=3, le=3)
    opset_version: int = spec_field(17, "ONNX opset (17 recommended; GridSample-free graph).", ge=13, le=20)
    batch_size: int = spec_field(1, "Batch size (-1 = dynamic batch axis).", ge=-1, le=256)
    dynamic_hw: bool = spec_field(False, "Dynamic height/width axes (ONNX, FastFoundationStereo only).")
    on_cpu: bool = spec_field(False, "Trace on the CPU (format aoti: compile for the CPU).")
    valid_iters: int | None = spec_field(
        None, "Refinement iterations baked into the graph (default model.valid_iters).", ge=1
    )
    precision: Literal["fp32", "fp16", "bf16"] = spec_field(
        "fp32", "Format aoti: weights and activations (fp16/bf16 need a GPU). ONNX graphs are always fp32.",
        options=["fp32", "fp16", "bf16"]
    )
    optimize: bool = spec_field(
        True, "Format aoti, FastFoundationStereo: fold BatchNorm and zero-pad the pruned widths before compiling."
    )
    autotune: bool = spec_field(
        False, "Format aoti: Inductor max-autotune (benchmarks kernel choices; builds take many minutes longer)."
    )
    max_drift_px: float = spec_field(
        0.05, "Largest |artefact - PyTorch| accepted on the drift pair (pixels of disparity; mono: depth units).", gt=0
    )
    drift_left: str | None = spec_field(
        None, "Drift check: left image (mono: the image), resized to the export size. Unset: a synthetic pair "
        "rendered at the export size.", path=True
    )
    drift_right: str | None = spec_field(None, "Drift check: right image (stereo, with drift_left).", path=True)

    @model_validator(mode="after")
    def _check(self) -> ExportConfig:
        if self.format == "onnx" and self.precision != "fp32":
            raise ValueError("precision: ONNX graphs are fp32 (choose the engine precision in gen_trt_engine), "
                             "or set format: aoti")
        if self.drift_right and not self.drift_left:
            raise ValueError("drift_right: set drift_left too")
        if self.batch_size == 0:
            raise ValueError("batch_size: must be >= 1, or -1 for a dynamic batch axis")
        for key in ("input_height", "input_width"):
            if getattr(self, key) % 32:
                raise ValueError(f"{key}: {getattr(self, key)} must be a multiple of 32")
        return self


class TensorRTConfig(SpecSection):
    """``gen_trt_engine.tensorrt``: builder settings."""

    data_type: Literal["FP32", "FP16", "BF16"] = spec_field(
        "FP16", "Engine precision (FP16/BF16 allow those kernels; FP32 layers remain where faster or required).",
        options=["FP32", "FP16", "BF16"]
    )
    workspace_size: int = spec_field(8, "Builder workspace, GiB.", ge=1, le=1024)
    min_batch_size: int = spec_field(1, "Dynamic batch: minimum.", ge=1)
    opt_batch_size: int = spec_field(1, "Dynamic batch: optimum.", ge=1)
    max_batch_size: int = spec_field(1, "Dynamic batch: maximum.", ge=1)
    layers_precision: list[str] = spec_field(
        default_factory=list, description="Per-layer precision overrides, 'layer_name:fp32'."
    )

    @model_validator(mode="after")
    def _check(self) -> TensorRTConfig:
        if not self.min_batch_size <= self.opt_batch_size <= self.max_batch_size:
            raise ValueError("opt_batch_size: need min_batch_size <= opt_batch_size <= max_batch_size")
        return self


class GenTrtEngineConfig(SpecSection):
    """``gen_trt_engine``: build a TensorRT engine from the exported ONNX."""

    onnx_file: str | None = spec_field(None, "Input ONNX file.", path=True)
    trt_engine: str | None = spec_field(None, "Output engine (default: <results_dir>/model.engine).", path=True)
    timing_cache: str | None = spec_field(None, "Timing cache file (read and updated).", path=True)
    results_dir: str | None = spec_field(None, "Results folder (default: <results_dir>/gen_trt_engine).", path=True)
    batch_size: int = spec_field(1, "Batch size (-1 = dynamic).", ge=-1, le=256)
    tensorrt: TensorRTConfig = spec_field(default_factory=TensorRTConfig, description="Builder settings.")
    min_height: int | None = spec_field(None, "Dynamic H/W engines: min height.", ge=32)
    opt_height: int | None = spec_field(None, "Dynamic H/W engines: opt height.", ge=32)
    max_height: int | None = spec_field(None, "Dynamic H/W engines: max height.", ge=32)
    min_width: int | None = spec_field(None, "Dynamic H/W engines: min width.", ge=32)
    opt_width: int | None = spec_field(None, "Dynamic H/W engines: opt width.", ge=32)
    max_width: int | None = spec_field(None, "Dynamic H/W engines: max width.", ge=32)
    max_drift_px: float = spec_field(
        0.05, "Largest |engine - reference| accepted on the drift pair (the ONNX graph under onnxruntime, fp32).",
        gt=0
    )
    drift_left: str | None = spec_field(
        None, "Drift check: left image (mono: the image). Unset: a synthetic pair at the engine's size.", path=True
    )
    drift_right: str | None = spec_field(None, "Drift check: right image (stereo, with drift_left).", path=True)


class ConvertConfig(SpecSection):
    """``convert``: annotation files from a folder tree, or a synthetic stereo set with exact GT."""

    mode: Literal["folders", "synthetic"] = spec_field(
        "folders",
        "'folders': index data_root; 'synthetic': render pairs with exact disparity.",
        options=["folders", "synthetic"],
    )
    results_dir: str | None = spec_field(None, "Output folder (default: <results_dir>/convert).", path=True)
    data_root: str | None = spec_field(None, "Folders mode: root of the data.", path=True)
    left_dir: str = spec_field("left", "Folders mode: left-image folder (glob pattern relative to data_root).")
    right_dir: str = spec_field("right", "Folders mode: right-image folder pattern.")
    disparity_dir: str | None = spec_field(None, "Folders mode: disparity folder pattern (none = no GT).")
    nocc_dir: str | None = spec_field(None, "Folders mode: non-occlusion mask folder pattern.")
    split_ratio: float | None = spec_field(
        None, "Fraction for train.txt (rest val.txt); unset = one test.txt.", gt=0, lt=1
    )
    seed: int = spec_field(0, "Shuffle / generator seed.", ge=0)
    num_pairs: int = spec_field(64, "Synthetic mode: pairs to render.", ge=1, le=100000)
    height: int = spec_field(320, "Synthetic mode: image height.", ge=32, le=4096)
    width: int = spec_field(736, "Synthetic mode: image width.", ge=32, le=8192)
    max_disparity: int = spec_field(192, "Synthetic mode: disparities stay below this (px).", ge=2, le=416)
    workers: int = spec_field(0, "Synthetic mode: rendering processes (0 = one per CPU core).", ge=0, le=256)
    synthetic: SyntheticConfig = spec_field(
        default_factory=SyntheticConfig, description="Synthetic mode: scene, texture and photometry knobs."
    )


class WandbConfig(SpecSection):
    """``wandb``: Weights & Biases logging (off by default; needs the wandb package and network)."""

    enable: bool = spec_field(False, "Log to Weights & Biases.")
    project: str | None = spec_field(None, "Project.")
    entity: str | None = spec_field(None, "Entity.")
    name: str | None = spec_field(None, "Run name.")
    tags: list[str] = spec_field(default_factory=list, description="Tags.")


ActionName = Literal["train", "evaluate", "inference", "export", "gen_trt_engine", "convert"]
