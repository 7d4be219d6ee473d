"""Training losses.

Stereo (FoundationStereo / FFS): TAO depth_net's ``SequenceLoss``, term by term::

    loss = smooth_l1(init_disp, gt_04 / 4 | valid_04) + sum_i w_i * L1(pred_i, gt | valid)
    w_i  = g ** (n - 1 - i),  g = gamma ** (15 / (n - 1))     (RAFT-Stereo's adjusted gamma; w = 1 if n = 1)

``valid`` is the data's mask with ``|gt| < max_disparity``; ``init_disp`` is the network's soft-argmin at
1/4 resolution in 1/4-resolution pixels, compared with the ground truth and the mask sampled nearest at
1/4 (every 4th row and column, from 0) and divided by 4. ``gamma`` = 0.9; for 22 iterations the first
prediction weighs 0.206 and the last 1. All terms are computed in fp32 whatever the autocast dtype.
Where we differ from TAO on purpose: with a single prediction TAO returns only the init term, as a
Python float without gradient; here the prediction term is kept (weight 1) and the loss stays
differentiable. A batch without valid pixels gives 0, not NaN.

The validation loss (``val_loss``) is TAO's too: the same loss on the final prediction alone, without
the 1/4 resampling, i.e. ``smooth_l1(pred, gt | valid)`` (:func:`stereo_val_loss`).

Mono (DepthAnythingV2):

* metric depth: the scale-invariant log loss (SiLog, lambda 0.5) of Eigen et al., as DepthAnything's
  metric fine-tuning uses: ``sqrt(mean(g ** 2) - lambda * mean(g) ** 2)``, ``g = log pred - log gt``;
* relative (affine-invariant inverse depth): per image, the prediction is aligned to the target by the
  closed-form least-squares scale and shift, then the mean absolute error is taken (MiDaS' SSI L1).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["stereo_sequence_loss", "stereo_val_loss", "stereo_loss_fn", "sequence_weights", "silog_loss",
           "ssi_l1_loss"]


def sequence_weights(n: int, gamma: float = 0.9) -> list[float]:
    """Weights of the ``n`` refinement predictions (TAO / RAFT-Stereo's adjusted gamma)."""
    if n <= 1:
        return [1.0] * n
    adjusted = gamma ** (15.0 / (n - 1))
    return [adjusted ** (n - 1 - i) for i in range(n)]


def _stereo_mask(gt: torch.Tensor, valid: torch.Tensor, max_disparity: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask, target): TAO's ``valid & |gt| < max_disparity`` and gt zeroed outside it (inf/NaN safe)."""
    gt = gt.float()
    mask = valid.bool() & (gt.abs() < max_disparity)
    return mask, torch.where(mask, gt, torch.zeros_like(gt))


def _count(mask: torch.Tensor) -> torch.Tensor:
    """Pixels in ``mask`` (at least 1, so an empty mask gives a zero mean), as a float tensor."""
    return mask.sum().clamp(min=1).float()


def _masked_mean(err: torch.Tensor, mask: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``mean(err[mask])`` without boolean indexing (no host sync); ``count`` = :func:`_count` of mask."""
    return torch.where(mask, err, torch.zeros_like(err)).sum() / count


def stereo_sequence_loss(
    init_disp: torch.Tensor,
    preds: list[torch.Tensor],
    gt: torch.Tensor,
    valid: torch.Tensor,
    *,
    max_disparity: float,
    gamma: float = 0.9,
    with_parts: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sequence loss of one batch; returns ``(loss, parts)``.

    ``init_disp`` (B,1,ceil(H/4),ceil(W/4)) in 1/4-resolution pixels; every ``preds[i]``, ``gt`` and
    ``valid`` (bool) (B,1,H,W). Means over the mask are ``sum(where(mask, err, 0)) / count``: no boolean
    indexing and no host reads, so the GPU step never waits on the CPU. Unknown GT (inf/NaN) outside the
    mask never reaches the sums. ``with_parts`` also returns ``init``, ``final_epe`` and ``pixels`` as
    floats (one host sync; for logging and tests).
    """
    mask, target = _stereo_mask(gt, valid, max_disparity)
    h4, w4 = init_disp.shape[-2:]
    mask04 = mask[..., ::4, ::4]
    target04 = target[..., ::4, ::4] / 4.0
    if tuple(mask04.shape[-2:]) != (h4, w4):
        raise ValueError(f"init_disp {tuple(init_disp.shape)} is not the 1/4-resolution map of a "
                         f"{tuple(gt.shape[-2:])} ground truth (expected {tuple(mask04.shape[-2:])})")
    init_loss = _masked_mean(F.smooth_l1_loss(init_disp.float(), target04, reduction="none"), mask04,
                             _count(mask04))
    count = _count(mask)
    seq = init_disp.new_zeros((), dtype=torch.float32)
    for weight, pred in zip(sequence_weights(len(preds), gamma), preds, strict=True):
        seq = seq + weight * _masked_mean((pred.float() - target).abs(), mask, count)
    loss = init_loss + seq
    parts: dict[str, float] = {}
    if with_parts:
        final = (_masked_mean((preds[-1].detach().float() - target).abs(), mask, count) if preds
                 else torch.tensor(float("nan")))
        parts = {"init": float(init_loss.detach()), "final_epe": float(final), "pixels": float(mask.sum())}
    return loss, parts


def stereo_val_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, *, max_disparity: float) -> torch.Tensor:
    """TAO's ``val_loss`` of one batch: smooth L1 of the final full-resolution prediction over the mask."""
    mask, target = _stereo_mask(gt, valid, max_disparity)
    return _masked_mean(F.smooth_l1_loss(pred.float(), target, reduction="none"), mask, _count(mask))


def _sequence_loss(init_disp: torch.Tensor, preds: list[torch.Tensor], gt: torch.Tensor, valid: torch.Tensor,
                   max_disparity: float) -> torch.Tensor:
    return stereo_sequence_loss(init_disp, preds, gt, valid, max_disparity=max_disparity)[0]


@functools.cache
def _compiled_sequence_loss() -> Callable[..., torch.Tensor]:
    """:func:`stereo_sequence_loss`'s loss under ``torch.compile`` (one per process, built on first use)."""
    return torch.compile(_sequence_loss, fullgraph=True, dynamic=False)


def stereo_loss_fn(iters: int, max_disparity: float, *, compiled: bool = False) -> Callable[..., torch.Tensor]:
    """The stereo training loss as ``loss_fn(model, left, right, gt, valid)``: the forward in train mode
    with ``iters`` refinement iterations, then :func:`stereo_sequence_loss`. One definition for the
    eager step and the CUDA-graphed one (:mod:`.graphed`). ``compiled`` (``train.compile``): the
    sequence loss runs under ``torch.compile``, a few fused kernels forward and backward where eager
    PyTorch launches ~7 per prediction each way (~300 for 22 iterations, each reading a
    full-resolution map); the same terms, summed in another order."""
    sequence_loss = _compiled_sequence_loss() if compiled else _sequence_loss

    def loss_fn(model: nn.Module, left: torch.Tensor, right: torch.Tensor, gt: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        init_disp, preds = model(left, right, iters=iters)
        return sequence_loss(init_disp, preds, gt, valid, max_disparity)

    return loss_fn


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
