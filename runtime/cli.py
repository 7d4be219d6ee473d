"""``depth_net``: one entry point for mono, stereo and fast stereo (TAO's command line).

    depth_net <action> -e spec.yaml [dotted.key=value ...]

``model.model_type`` picks the network. Overrides are YAML-typed (``train.optim.lr=1e-5``,
``model.hidden_dims=[128]``). Results land in ``<action>.results_dir`` or ``<results_dir>/<action>``
with ``status.json`` (JSON Lines) and ``experiment.yaml``; the exit code is 0 only on success.
"""

from __future__ import annotations

import textwrap

import typer

from skillbank.runtime.actions import ACTION_HELP, ACTION_SECTIONS

app = typer.Typer(
    name="depth_net",
    help=(
        "Depth estimation runtime (TAO depth_net compatible): train, evaluate, inference, export, "
        "gen_trt_engine, convert.\n\nUsage: depth_net ACTION -e SPEC.yaml [dotted.key=value ...]"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _keys_epilog(action: str) -> str:
    from skillbank.specs.docs import keys_for_sections

    lines = [f"Spec keys {action} reads (key = default: description):"]
    for key, default, desc in keys_for_sections(ACTION_SECTIONS[action]):
        text = f"  {key} = {default}: {desc}"
        lines += textwrap.wrap(text, 110, subsequent_indent="      ") or [text]
    return "\b\n" + "\n".join(lines)


def _make_command(action: str) -> None:
    def command(
        overrides: list[str] = typer.Argument(None, help="Spec overrides as dotted.key=value (YAML-typed)."),
        experiment_spec: str = typer.Option(
            None, "-e", "--experiment_spec", "--experiment-spec", help="Experiment spec YAML file (required)."
        ),
    ) -> None:
        from skillbank.runtime.runner import run_action

        raise typer.Exit(run_action(action, experiment_spec, list(overrides or [])))

    command.__doc__ = ACTION_HELP[action]
    app.command(name=action, help=ACTION_HELP[action], epilog=_keys_epilog(action), no_args_is_help=False)(command)


for _action in ACTION_HELP:
    _make_command(_action)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
