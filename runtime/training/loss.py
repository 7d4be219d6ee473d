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
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sequence loss of one batch; returns ``(loss, parts)`` with parts ``init``, ``final_epe``, ``pixels``.

    ``init_disp`` and every ``preds[i]`` are (B,1,H,W) full-resolution disparities; ``gt`` (B,1,H,W),
    ``valid`` bool (B,1,H,W). A batch without a single valid pixel gives a zero loss that still
    touches the graph (so DDP sees every parameter used).
    """
    gt = gt.float()
    mask = valid.bool() & (gt > 0) & (gt < max_disparity)
    if not bool(mask.any()):
        zero = init_disp.float().sum() * 0.0 + sum(p.float().sum() for p in preds) * 0.0
        return zero, {"init": 0.0, "final_epe": 0.0, "pixels": 0.0}
    target = gt[mask]
    init_loss = F.smooth_l1_loss(init_disp.float()[mask], target)
    n = len(preds)
    seq = init_disp.new_zeros((), dtype=torch.float32)
    for i, pred in enumerate(preds):
        seq = seq + gamma ** (n - 1 - i) * (pred.float()[mask] - target).abs().mean()
    final_epe = float((preds[-1].detach().float()[mask] - target).abs().mean()) if n else float("nan")
    loss = init_weight * init_loss + seq
    return loss, {"init": float(init_loss.detach()), "final_epe": final_epe, "pixels": float(mask.sum())}


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
