"""AutoML runner (Optuna) for AutoML-enabled skills: ``skillbank automl run|status|worker``.

Modules, one job each:

- :mod:`.settings`: the spec's ``automl`` section over the model skill's defaults -> :class:`StudySettings`.
- :mod:`.space`: the search space (skill allow-list inside the spec fields' ranges) and Optuna suggestions.
- :mod:`.algorithms`: TAO's algorithm names as Optuna samplers and pruners.
- :mod:`.launch`: how a trial's ``depth_net`` run starts and stops (child process, or a job of the job store).
- :mod:`.trials`: one trial: its spec and folder, the metric read from status.json, pruning, the verdict.
- :mod:`.baseline`: ``depth_net evaluate`` of the starting weights before the first trial.
- :mod:`.storage`: the RDB storage, heartbeats and retries, the fixed budget of queued trials.
- :mod:`.runner`: the loop (baseline, concurrent trials, progress) for ``run`` and ``worker``.
- :mod:`.summary`, :mod:`.report`, :mod:`.status`: summary.json, best/, report.html, ``status``.

Nothing here is imported by ``skillbank list``; Optuna and torch load only when a study runs. See
docs/automl.md.
"""
