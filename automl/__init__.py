"""AutoML runner (Optuna-backed) for AutoML-enabled skills: not built yet.

What exists today: the planner decides the route (``skillbank plan``: train + automl_policy auto +
AutoML enabled + packaged train schema and template -> route ``automl``) and carries the skill's
AutoML settings (metric, direction, allow-listed hyperparameters with ranges, algorithm, limits) in
the plan. The runner that executes trials arrives with its own issue; until then a plan routed here
says to run ``depth_net train -e <spec>`` directly (see the ``run-automl`` skill).
"""
