"""report.html: Optuna's optimisation history, parameter importances and intermediate values (plotly).

One self-contained file (plotly.js inlined once; nothing is fetched when it is opened). A plot Optuna
cannot draw yet (e.g. importances before two trials completed) is replaced by a line saying why.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

PLOTS = [
    ("Optimisation history", "plot_optimization_history"),
    ("Intermediate values (validation metric per epoch)", "plot_intermediate_values"),
    ("Parameter importances", "plot_param_importances"),
    ("Parallel coordinates", "plot_parallel_coordinate"),
]


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _row(trial: dict[str, Any]) -> str:
    value = "" if trial["value"] is None else _fmt(trial["value"])
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial["params"].items())
    return (
        f"<tr><td>{trial['number']}</td><td>{trial['state']}</td><td>{value}</td><td>{trial['epochs']}</td>"
        f"<td>{html.escape(params)}</td></tr>"
    )


def render(study: Any, summary: dict[str, Any]) -> str:
    import optuna.visualization as vis

    parts: list[str] = []
    include_js: Any = True
    for title, name in PLOTS:
        try:
            fig = getattr(vis, name)(study)
            fig.update_layout(title=title)
            parts.append(fig.to_html(full_html=False, include_plotlyjs=include_js))
            include_js = False
        except Exception as exc:  # Optuna refuses some plots on too few trials: say so instead
            parts.append(f"<p><b>{html.escape(title)}</b>: not available ({html.escape(str(exc))})</p>")
    best = summary.get("best") or {}
    rows = "".join(_row(t) for t in summary.get("trials", []))
    baseline = summary.get("baseline") or {}
    base_text = (
        f"{baseline['value']:.6g}"
        if baseline.get("value") is not None
        else html.escape(str(baseline.get("skipped") or baseline.get("failed") or "not run"))
    )
    best_text = f"trial {best['trial']}: {summary['metric']} {best['value']:.6g}" if best else "no completed trial"
    head = (
        f"<h1>AutoML study {html.escape(summary['study'])}</h1>"
        f"<p>algorithm {summary['algorithm']}, metric {html.escape(summary['metric'])} ({summary['direction']}); "
        f"baseline: {base_text}; best: {best_text}</p>"
        "<table border=1 cellpadding=3><tr><th>trial</th><th>state</th><th>value</th><th>epochs</th>"
        f"<th>params</th></tr>{rows}</table>"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>AutoML report</title></head><body>"
        + head
        + "".join(parts)
        + "</body></html>\n"
    )


def write_report(study: Any, summary: dict[str, Any], path: Path) -> Path:
    from skillbank.atomic import atomic_write

    atomic_write(path, render(study, summary))
    return path
