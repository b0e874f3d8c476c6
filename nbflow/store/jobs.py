"""Jobs: long-running processes (scheduler, workers) that prove they are alive by heartbeating.

Every function takes the caller's session and does not commit (STYLE §10).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from nbflow.store._sql import rowcount
from nbflow.store.models import JobORM, table_of
from nbflow.store.rows import JobRow
from nbflow.utils.timezone import utcnow
from nbflow.utils.state import JobState

JOB = table_of(JobORM)


def start_job(session: Session, job_type: str, *, hostname: str | None, pid: int | None,
              at: dt.datetime | None = None) -> JobRow:
    """Record a starting job in state running; its row (the id is what later calls take)."""
    now = at or utcnow()
    stmt = insert(JOB).values(job_type=job_type, state=JobState.RUNNING, hostname=hostname, pid=pid, start_date=now,
                              latest_heartbeat=now).returning(*JOB.c)
    return JobRow.from_mapping(session.execute(stmt).mappings().one())


def heartbeat_job(session: Session, job_id: int, *, at: dt.datetime | None = None) -> bool:
    """Record that the job is alive; False when it was ended (by itself or by another process)."""
    stmt = update(JOB).where(JOB.c.id == job_id, JOB.c.state == JobState.RUNNING).values(
        latest_heartbeat=at or utcnow())
    return rowcount(session.execute(stmt)) == 1


def end_job(session: Session, job_id: int, state: str = JobState.SUCCESS, *, at: dt.datetime | None = None) -> bool:
    """Mark the job ended in `state` (success or failed); False if it had ended already."""
    stmt = update(JOB).where(JOB.c.id == job_id, JOB.c.state == JobState.RUNNING).values(
        state=state, end_date=at or utcnow())
    return rowcount(session.execute(stmt)) == 1


def get_job(session: Session, job_id: int) -> JobRow | None:
    """The job, or None."""
    found = session.execute(select(JOB).where(JOB.c.id == job_id)).mappings().first()
    return JobRow.from_mapping(found) if found else None


def is_job_alive(session: Session, job_id: int, *, grace: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Running and heartbeated within `grace` (e.g. 2.1 × heartbeat interval) before `now`."""
    job = get_job(session, job_id)
    if job is None or job.state != JobState.RUNNING or job.latest_heartbeat is None:
        return False
    return job.latest_heartbeat >= (now or utcnow()) - grace


def alive_jobs(session: Session, job_type: str, *, grace: dt.timedelta, now: dt.datetime | None = None) -> list[JobRow]:
    """Running jobs of a type that heartbeated within `grace`, newest heartbeat first."""
    cutoff = (now or utcnow()) - grace
    stmt = (select(JOB).where(JOB.c.job_type == job_type, JOB.c.state == JobState.RUNNING,
                              JOB.c.latest_heartbeat >= cutoff).order_by(JOB.c.latest_heartbeat.desc()))
    return [JobRow.from_mapping(m) for m in session.execute(stmt).mappings()]
