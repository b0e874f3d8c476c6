"""UtcDateTime: whatever zone goes in, an aware UTC datetime comes out, on SQLite and Postgres."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from nbflow.store.engine import make_engine, make_session_factory, session_scope
from nbflow.store.jobs import get_job, start_job
from nbflow.store.models import JobORM

from .conftest import Db

UTC = dt.timezone.utc


def test_aware_datetime_in_another_zone_reads_back_as_the_same_instant_in_utc(db: Db) -> None:
    kolkata = dt.datetime(2025, 3, 9, 1, 30, 15, 123456, tzinfo=ZoneInfo("Asia/Kolkata"))
    with db.tx() as s:
        job_id = start_job(s, "scheduler", hostname="h", pid=1, at=kolkata).id
    with db.tx() as s:
        job = get_job(s, job_id)
    assert job is not None and job.start_date == kolkata
    assert job.start_date.tzinfo is UTC
    assert job.start_date == dt.datetime(2025, 3, 8, 20, 0, 15, 123456, tzinfo=UTC)


def test_naive_datetime_is_taken_as_utc(db: Db) -> None:
    with db.tx() as s:
        job_id = start_job(s, "scheduler", hostname="h", pid=1, at=dt.datetime(2025, 1, 2, 3, 4, 5)).id
    with db.tx() as s:
        job = get_job(s, job_id)
    assert job is not None and job.start_date == dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert job.start_date.tzinfo is UTC


def test_values_stay_utc_when_the_postgres_session_uses_another_zone(db: Db) -> None:
    moment = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with db.tx() as s:
        job_id = start_job(s, "scheduler", hostname="h", pid=1, at=moment).id
    if db.backend == "postgresql":
        engine = make_engine(db.url.replace("options=", "options=-ctimezone%3DAmerica/New_York%20"))
        try:
            with session_scope(make_session_factory(engine)) as s:
                assert s.scalar(text("SHOW TIME ZONE")) == "America/New_York"
                value = s.scalar(select(JobORM.__table__.c.start_date).where(JobORM.__table__.c.id == job_id))
        finally:
            engine.dispose()
    else:
        with db.tx() as s:
            value = s.scalar(select(JobORM.__table__.c.start_date).where(JobORM.__table__.c.id == job_id))
    assert value == moment and value.tzinfo is UTC


def test_comparisons_in_sql_use_utc(db: Db) -> None:
    """A filter given in another zone selects by instant (SQLite compares text, so all values must be UTC)."""
    with db.tx() as s:
        start_job(s, "scheduler", hostname="h", pid=1, at=dt.datetime(2025, 1, 1, 23, 30, tzinfo=UTC))
    plus_two = dt.timezone(dt.timedelta(hours=2))
    with db.tx() as s:
        later = s.scalars(select(JobORM.__table__.c.id).where(
            JobORM.__table__.c.start_date > dt.datetime(2025, 1, 2, 1, 0, tzinfo=plus_two))).all()
        earlier = s.scalars(select(JobORM.__table__.c.id).where(
            JobORM.__table__.c.start_date < dt.datetime(2025, 1, 2, 1, 29, tzinfo=plus_two))).all()
    assert len(later) == 1 and len(earlier) == 0
