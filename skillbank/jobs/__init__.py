"""Jobs: a store, an executor, parent jobs and chains behind ``skillbank run``, the SDK and MCP tools.

Light: nothing here imports torch; SQLAlchemy is imported only when a store is opened.

API (what other code builds on):

- :class:`.store.Store` ``(workspace, url=None)``: jobs in ``<workspace>/jobs.db`` (SQLite, WAL) or at a
  SQLAlchemy URL. ``add(Job)``, ``get(id)``, ``list(status=, action=, parent_job_id=, backend=)``,
  ``claim(executor, free_gpus)`` (atomic PENDING -> RUNNING), ``update(id, expect=status, **values)``
  (conditional), ``finish(id, status, exit_code, message, kpi)``, ``request_cancel(id)``,
  ``cancel_descendants(id, reason)``.
- :class:`.store.Job`: id, skill, action, route, automl_policy, spec (resolved YAML), results_dir, status
  (PENDING, RUNNING, COMPLETE, FAILED, CANCELED), exit_code, kpi, parent_job_id, created_at,
  started_at, ended_at, command; plus message, job_dir, progress (epoch, max_epoch, eta), pid, gpus.
  ``summary()`` is the interface contract's object (id, action, status, parent_job_id, results_dir, kpi).
- :class:`.executor.Executor` ``(store, max_jobs, gpus, grace_s)``: ``run(idle_exit_s)`` / ``step()``;
  :func:`.executor.ensure_executor` starts the workspace's detached executor.
- :func:`.chain.submit_chain` ``(store, request, parent_job_id, overrides, backend)`` -> jobs of a
  request (one per action of "..., then ..."), linked by parent ids.
- :mod:`.parents`: which artefact a child takes from its parent (``resolve_parent_artefact``).
- :mod:`.status_file`: a job's status from the runner's exit code and its status.json.
- :mod:`.slurm`: the Slurm backend (submitit).
- :class:`skillbank.Client` (``skillbank/sdk.py``): the same as a small SDK.

Details and the process model: docs/jobs.md.
"""
