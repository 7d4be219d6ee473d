"""The job store: one table of jobs in SQLite (embedded default) or PostgreSQL, through SQLAlchemy Core.

Embedded default: ``<workspace>/jobs.db``, WAL journal, a 30 s busy timeout, and every transaction
opened with ``BEGIN IMMEDIATE`` so several processes (submitters, executors, the CLI) can write at once
without the "database is locked" upgrade failure of deferred SQLite transactions. PostgreSQL (or any
SQLAlchemy URL) is used when a URL is given (``Store("postgresql+psycopg://user@host/db")``).

Every state change is a conditional ``UPDATE ... WHERE status = <expected>``: a PENDING job is claimed by
exactly one executor (:meth:`Store.claim`), a job finishes once, and a cancel races safely with a start.
SQLAlchemy is imported here only, so ``import skillbank`` and ``skillbank list`` never load it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("PENDING", "RUNNING", "COMPLETE", "FAILED", "CANCELED")
FINAL = ("COMPLETE", "FAILED", "CANCELED")
# Short ids people can type: lowercase letters and digits without 0/o, 1/l/i.
ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ID_LENGTH = 6


class JobError(ValueError):
    """A job operation that cannot be done as asked (one line, names the job)."""


class JobNotFoundError(JobError):
    """No job with that id."""


@dataclass
class Job:
    """One job as stored. ``spec`` is the resolved spec (YAML text); ``kpi`` the last kpi seen."""

    id: str
    skill: str
    action: str
    route: str
    automl_policy: str
    spec: str
    results_dir: str
    status: str = "PENDING"
    exit_code: int | None = None
    kpi: dict[str, Any] = field(default_factory=dict)
    parent_job_id: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    command: list[str] = field(default_factory=list)
    # bookkeeping beyond the contract
    message: str = ""
    job_dir: str = ""
    request: str = ""
    backend: str = "local"
    backend_id: str | None = None
    executor: str | None = None
    pid: int | None = None
    gpus_needed: int = 0
    gpus: str | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    artifact: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The interface contract's job object (``skillbank run --json``, MCP ``submit_job``)."""
        return {
            "id": self.id,
            "action": self.action,
            "status": self.status,
            "parent_job_id": self.parent_job_id,
            "results_dir": self.results_dir,
            "kpi": self.kpi or None,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _table(metadata: Any) -> Any:
    from sqlalchemy import JSON, Boolean, Column, Float, Integer, String, Table, Text

    return Table(
        "jobs",
        metadata,
        Column("id", String(16), primary_key=True),
        Column("skill", String(128), nullable=False),
        Column("action", String(32), nullable=False),
        Column("route", String(32), nullable=False),
        Column("automl_policy", String(8), nullable=False),
        Column("spec", Text, nullable=False),
        Column("results_dir", Text, nullable=False),
        Column("status", String(16), nullable=False, index=True),
        Column("exit_code", Integer),
        Column("kpi", JSON),
        Column("parent_job_id", String(16), index=True),
        Column("created_at", Float, nullable=False),
        Column("started_at", Float),
        Column("ended_at", Float),
        Column("command", JSON),
        Column("message", Text),
        Column("job_dir", Text),
        Column("request", Text),
        Column("backend", String(16)),
        Column("backend_id", String(64)),
        Column("executor", String(128)),
        Column("pid", Integer),
        Column("gpus_needed", Integer),
        Column("gpus", String(64)),
        Column("progress", JSON),
        Column("cancel_requested", Boolean),
        Column("artifact", Text),
        Column("options", JSON),
    )


def _sqlite_engine(path: Path) -> Any:
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """Jobs in one database. ``Store(workspace)`` = ``<workspace>/jobs.db``; ``Store(workspace, url=...)``
    keeps files (logs, results) in the workspace and the rows in the database at ``url``."""

    def __init__(self, workspace: str | Path, url: str | None = None) -> None:
        from sqlalchemy import MetaData, create_engine

        self.workspace = Path(workspace).expanduser().resolve()
        self.workspace.mkdir(parents=True, exist_ok=True)
        if url is None or url.startswith("sqlite"):
            path = self.workspace / "jobs.db" if url is None else Path(url.split("///", 1)[-1])
            self.url = f"sqlite:///{path}"
            self.engine = _sqlite_engine(path)
        else:
            self.url = url
            self.engine = create_engine(url, pool_pre_ping=True)
        self.metadata = MetaData()
        self.table = _table(self.metadata)
        self.metadata.create_all(self.engine, checkfirst=True)

    # ------------------------------------------------------------------ reading
    def _row(self, row: Any) -> Job:
        data = dict(row._mapping)
        data["kpi"] = data.get("kpi") or {}
        data["progress"] = data.get("progress") or {}
        data["options"] = data.get("options") or {}
        data["command"] = data.get("command") or []
        data["cancel_requested"] = bool(data.get("cancel_requested"))
        data["gpus_needed"] = int(data.get("gpus_needed") or 0)
        data["message"] = data.get("message") or ""
        data["job_dir"] = data.get("job_dir") or ""
        data["request"] = data.get("request") or ""
        data["backend"] = data.get("backend") or "local"
        return Job(**data)

    def get(self, job_id: str) -> Job:
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.table).where(self.table.c.id == job_id)).first()
        if row is None:
            raise JobNotFoundError(f"job {job_id!r}: no such job in {self.url}")
        return self._row(row)

    def list(
        self,
        status: str | list[str] | None = None,
        action: str | None = None,
        parent_job_id: str | None = None,
        backend: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs, oldest first, filtered by status (one or several), action, parent or backend."""
        from sqlalchemy import select

        t = self.table
        query = select(t).order_by(t.c.created_at, t.c.id)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise JobError(f"status {bad[0]!r}: expected one of {', '.join(STATUSES)}")
            query = query.where(t.c.status.in_(wanted))
        if action is not None:
            query = query.where(t.c.action == action)
        if parent_job_id is not None:
            query = query.where(t.c.parent_job_id == parent_job_id)
        if backend is not None:
            query = query.where(t.c.backend == backend)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [self._row(r) for r in conn.execute(query)]

    # ------------------------------------------------------------------ writing
    def new_id(self) -> str:
        """A short id not used yet (6 characters of :data:`ID_ALPHABET`: about 887 million of them)."""
        from sqlalchemy import select

        with self.engine.connect() as conn:
            while True:
                job_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
                if conn.execute(select(self.table.c.id).where(self.table.c.id == job_id)).first() is None:
                    return job_id

    def add(self, job: Job) -> Job:
        """Insert ``job`` (a fresh id when ``job.id`` is empty); an id already taken is an error."""
        from sqlalchemy.exc import IntegrityError

        job.created_at = job.created_at or time.time()
        job.id = job.id or self.new_id()
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(**job.to_dict()))
        except IntegrityError:
            raise JobError(f"job id {job.id!r} is taken; submit again") from None
        return job

    def update(self, job_id: str, expect: str | tuple[str, ...] | None = None, **values: Any) -> bool:
        """Set ``values`` on the job if its status is ``expect`` (any of them); True when a row changed."""
        from sqlalchemy import update

        t = self.table
        query = update(t).where(t.c.id == job_id).values(**values)
        if expect is not None:
            query = query.where(t.c.status.in_([expect] if isinstance(expect, str) else list(expect)))
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount == 1

    def claim(self, executor: str, free_gpus: int, backend: str = "local") -> Job | None:
        """Atomically move one runnable PENDING job to RUNNING for ``executor`` and return it.

        Runnable: no parent, a COMPLETE parent, or (an AutoML trial) a RUNNING parent; needs at most
        ``free_gpus`` GPUs. The conditional UPDATE makes the claim exclusive: of several executors racing
        for a job, exactly one wins.
        """
        from sqlalchemy import and_, or_, select, update

        t = self.table
        parent = t.alias("parent")
        ready = (
            select(t.c.id)
            .select_from(t.outerjoin(parent, parent.c.id == t.c.parent_job_id))
            .where(
                and_(
                    t.c.status == "PENDING",
                    t.c.backend == backend,
                    t.c.gpus_needed <= free_gpus,
                    or_(t.c.parent_job_id.is_(None), parent.c.status == "COMPLETE",
                        and_(t.c.route == "automl_trial", parent.c.status == "RUNNING")),
                )
            )
            .order_by(t.c.created_at, t.c.id)
            .limit(8)
        )
        with self.engine.connect() as conn:
            candidates = [r[0] for r in conn.execute(ready)]
        for job_id in candidates:
            with self.engine.begin() as conn:
                won = conn.execute(
                    update(t)
                    .where(and_(t.c.id == job_id, t.c.status == "PENDING"))
                    .values(status="RUNNING", executor=executor, started_at=time.time())
                ).rowcount
            if won == 1:
                return self.get(job_id)
        return None

    def finish(
        self,
        job_id: str,
        status: str,
        exit_code: int | None,
        message: str,
        kpi: dict[str, Any] | None = None,
        expect: str | tuple[str, ...] = "RUNNING",
    ) -> bool:
        """Record the end of a job once (conditional on its current status)."""
        if status not in FINAL:
            raise JobError(f"finish: {status!r} is not a final status ({', '.join(FINAL)})")
        values: dict[str, Any] = {"status": status, "exit_code": exit_code, "message": message, "ended_at": time.time()}
        if kpi:
            values["kpi"] = kpi
        return self.update(job_id, expect=expect, **values)

    def request_cancel(self, job_id: str, reason: str = "canceled by the user") -> Job:
        """PENDING -> CANCELED now; RUNNING -> flagged, the executor stops it (SIGTERM, then SIGKILL)."""
        job = self.get(job_id)
        if job.status == "PENDING" and self.finish(job_id, "CANCELED", None, reason, expect="PENDING"):
            return self.get(job_id)
        if job.status in ("PENDING", "RUNNING"):
            self.update(job_id, expect=("PENDING", "RUNNING"), cancel_requested=True, message=reason)
        return self.get(job_id)

    def children(self, job_id: str) -> list[Job]:
        return self.list(parent_job_id=job_id)

    def cancel_descendants(self, job_id: str, reason: str) -> list[str]:
        """Mark every PENDING descendant of ``job_id`` CANCELED with ``reason``; returns their ids."""
        done: list[str] = []
        stack = [job_id]
        while stack:
            for child in self.children(stack.pop()):
                if child.status == "PENDING" and self.finish(child.id, "CANCELED", None, reason, expect="PENDING"):
                    done.append(child.id)
                    stack.append(child.id)
        return done


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
