"""Training, evaluation and inference machinery behind ``depth_net train/evaluate/inference``.

One module per job:

* :mod:`.loss`: stereo sequence loss, mono scale-invariant / affine-invariant losses;
* :mod:`.schedule`: optimiser and the per-step learning-rate multiplier (warm-up + every spec schedule);
* :mod:`.module`: the LightningModule (train/val steps, NaN guard, metrics reduced across ranks);
* :mod:`.checkpointing`: atomic CheckpointIO, periodic + interrupt checkpoints, ``dn_model_latest.pth``;
* :mod:`.callbacks`: per-epoch status.json RUNNING lines;
* :mod:`.devices`: spec -> Lightning accelerator / devices / strategy / precision;
* :mod:`.weights`: build a network and load any checkpoint kind into it (evaluate, inference, fine-tune).
"""
