"""Training losses.

Stereo (FoundationStereo / FFS), following upstream's sequence loss::

    loss = smooth_l1(init_disp, gt) + sum_i gamma ** (n - 1 - i) * L1(pred_i, gt)

over the pixels where ``valid & 0 < gt < max_disparity``; ``gamma`` = 0.9 weights the last
refinement iteration most. All terms are computed in fp32 whatever the autocast dtype.

Mono (DepthAnythingV2):

* metric depth: the scale-invariant log loss (SiLog, lambda 0.5) of Eigen et al., as DepthAnything's
  metric fine-tuning uses: ``sqrt(mean(g ** 2) - lambda * mean(g) ** 2)``, ``g = log pred - log gt``;
* relative (affine-invariant inverse depth): per image, the prediction is aligned to the target by the
  closed-form least-squares scale and shift, then the mean absolute error is taken (MiDaS' SSI L1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["stereo_sequence_loss", "silog_loss", "ssi_l1_loss"]


def stereo_sequence_loss(
    init_disp: torch.Tensor,
    preds: list[torch.Tensor],
    gt: torch.Tensor,
    valid: torch.Tensor,
    *,
    max_disparity: float,
    gamma: float = 0.9,
    init_weight: float = 1.0,
    with_parts: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sequence loss of one batch; returns ``(loss, parts)``.

    ``init_disp`` and every ``preds[i]`` are (B,1,H,W) full-resolution disparities; ``gt`` (B,1,H,W),
    ``valid`` bool (B,1,H,W). Means over the mask are ``sum(where(mask, err, 0)) / count``: no boolean
    indexing and no host reads, so the GPU step never waits on the CPU (a boolean index is a device-to-
    host sync, 2 + iterations of them per step otherwise). Unknown GT (inf/NaN) outside the mask never
    reaches the sums. A batch without a single valid pixel gives a zero loss that still touches the graph
    (so DDP sees every parameter used). ``with_parts`` also returns ``init``, ``final_epe`` and ``pixels``
    as floats (one host sync; for logging and tests).
    """
    gt = gt.float()
    mask = valid.bool() & (gt > 0) & (gt < max_disparity)
    count = mask.sum().clamp(min=1).float()
    target = torch.where(mask, gt, torch.zeros_like(gt))

    def masked_mean(err: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, err, torch.zeros_like(err)).sum() / count

    init_loss = masked_mean(F.smooth_l1_loss(init_disp.float(), target, reduction="none"))
    n = len(preds)
    seq = init_disp.new_zeros((), dtype=torch.float32)
    for i, pred in enumerate(preds):
        seq = seq + gamma ** (n - 1 - i) * masked_mean((pred.float() - target).abs())
    loss = init_weight * init_loss + seq
    parts: dict[str, float] = {}
    if with_parts:
        final = masked_mean((preds[-1].detach().float() - target).abs()) if n else torch.tensor(float("nan"))
        parts = {"init": float(init_loss.detach()), "final_epe": float(final), "pixels": float(mask.sum())}
    return loss, parts


def silog_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *, lambd: float = 0.5,
               eps: float = 1e-6) -> torch.Tensor:
    """Scale-invariant log loss over valid pixels (metric depth, metres)."""
    mask = valid.bool() & (target > eps)
    if not bool(mask.any()):
        return pred.float().sum() * 0.0
    g = torch.log(pred.float()[mask].clamp(min=eps)) - torch.log(target.float()[mask])
    return torch.sqrt((g.pow(2).mean() - lambd * g.mean().pow(2)).clamp(min=eps))


def ssi_l1_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Scale-and-shift-invariant L1 (per image least-squares alignment), mean over images with pixels."""
    losses = []
    for p, t, m in zip(pred.float(), target.float(), valid.bool(), strict=True):
        if int(m.sum()) < 2:
            continue
        x, y = p[m], t[m]
        a00, a01, a11 = (x * x).sum(), x.sum(), torch.tensor(float(x.numel()), device=x.device)
        b0, b1 = (x * y).sum(), y.sum()
        det = (a00 * a11 - a01 * a01).clamp(min=1e-12)
        scale = (a11 * b0 - a01 * b1) / det
        shift = (a00 * b1 - a01 * b0) / det
        losses.append((scale * x + shift - y).abs().mean())
    if not losses:
        return pred.float().sum() * 0.0
    return torch.stack(losses).mean()
