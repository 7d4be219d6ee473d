"""depth_net convert: annotation files from a folder tree, or a synthetic stereo set with exact GT."""

from __future__ import annotations

from skillbank.runtime.context import ActionContext, ActionResult
from skillbank.runtime.errors import ConfigurationError


def run(ctx: ActionContext) -> ActionResult:
    from skillbank.runtime.actions.convert_impl import ConvertError

    try:
        return _convert(ctx)
    except ConvertError as exc:
        raise ConfigurationError(f"convert: {exc}") from None


def _convert(ctx: ActionContext) -> ActionResult:
    from skillbank.runtime.actions.convert_impl import convert_folders, make_synthetic

    cfg = ctx.spec.convert
    out_dir = ctx.results_dir
    if cfg.mode == "synthetic":
        report = make_synthetic(
            out_dir,
            num_pairs=cfg.num_pairs,
            height=cfg.height,
            width=cfg.width,
            max_disparity=cfg.max_disparity,
            seed=cfg.seed,
            split_ratio=cfg.split_ratio,
            config=cfg.synthetic,
            workers=cfg.workers,
            progress=_progress_bar(cfg.num_pairs),
        )
    else:
        report = convert_folders(
            cfg.data_root,
            cfg.left_dir,
            cfg.right_dir,
            cfg.disparity_dir,
            cfg.nocc_dir,
            out_dir=out_dir,
            split_ratio=cfg.split_ratio,
            seed=cfg.seed,
        )
    summary = report.summary()
    ctx.report.running(summary)
    kpi = {f"num_{name}": n for name, n in report.counts.items()}
    return ActionResult(message=summary, kpi=kpi)


def _progress_bar(total: int):
    """A tqdm bar over rendered pairs (on stderr; silent when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc="rendering", unit="pair", disable=None, leave=False)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)
        if done == _total:
            bar.close()

    return update
