"""The statements about live runners (the ``worker`` table).

Every runner process — a cron run, a worker, a Celery worker process —
has one row while it runs (`jobs.presence`): inserted when it starts,
beaten every ``beat_seconds`` (the time, and the ``[job, attempt]`` pairs
it holds now, as JSON), deleted when it stops. A row whose last beat is
older than ``lost_after_beats`` of its beats is a lost runner's; it is
kept for ``keep_lost_seconds`` to show what that runner held, then the
next runner to register deletes it. Times are the database's clock
(`UTCNow`). Plain values in, plain values out.
"""

__all__ = [
    "WorkerRow",
    "beat",
    "deregister",
    "find",
    "register",
    "request_stop",
    "state",
]

import json
from typing import Any, Iterable, Optional

from storm.expr import Select, Update
from storm.locals import Bool, Float, Int, Unicode

from jobs.database import UTCDateTime, UTCNow


class WorkerRow:
    """One runner's row.

    :ivar jobs: JSON: the ``[job id, attempt]`` pairs it held at its last
        beat.
    :ivar beat_seconds: its beat interval (a lost runner is one whose
        last beat is older than a few of them).
    """

    __storm_table__ = "worker"

    id = Int(primary=True)
    host = Unicode(allow_none=False)
    pid = Int(allow_none=False)
    kind = Unicode(allow_none=False)
    sections = Unicode(allow_none=False)
    started = UTCDateTime(allow_none=False)
    last_beat = UTCDateTime(allow_none=False)
    beat_seconds = Float(allow_none=False)
    jobs = Unicode(allow_none=False)
    stop_requested = Bool(allow_none=False)

    @property
    def held(self) -> list[tuple[int, int]]:
        """``[(job id, attempt)]`` it held at its last beat."""
        return [(job, attempt) for job, attempt in json.loads(self.jobs)]


def state(row: WorkerRow, now: Any, lost_after_beats: int) -> str:
    """``lost`` when `row`'s last beat is older than `lost_after_beats`
    of its beats at `now` (the database's clock), ``stopping`` when it
    was asked to stop, else ``live``."""
    age = (now - row.last_beat).total_seconds()
    if age > row.beat_seconds * lost_after_beats:
        return "lost"
    return "stopping" if row.stop_requested else "live"


def _held(jobs: Iterable[tuple[int, int]]) -> str:
    return json.dumps([[job, attempt] for job, attempt in jobs])


def register(store: Any, host: str, pid: int, kind: str,
             sections: Iterable[str], beat_seconds: float,
             keep_lost_seconds: float) -> int:
    """Insert a runner's row, beaten now; return its id. Delete first the
    rows whose last beat is older than `keep_lost_seconds`."""
    store.find(WorkerRow,
               WorkerRow.last_beat < UTCNow(-keep_lost_seconds)).remove()
    row = WorkerRow()
    row.host, row.pid, row.kind = host, pid, kind
    row.sections = " ".join(sections)
    row.started = row.last_beat = UTCNow()
    row.beat_seconds = float(beat_seconds)
    row.jobs = _held(())
    row.stop_requested = False
    store.add(row)
    store.flush()
    worker_id = row.id
    store.invalidate(row)
    return worker_id


def beat(store: Any, worker_id: int,
         jobs: Iterable[tuple[int, int]]) -> Optional[bool]:
    """Beat: the row's last beat is now and it holds `jobs`. Return
    whether a stop was requested, or None when the row is gone."""
    updated = store.execute(Update(
        {WorkerRow.last_beat: UTCNow(), WorkerRow.jobs: _held(jobs)},
        where=WorkerRow.id == worker_id, table=WorkerRow))
    if updated.rowcount != 1:
        return None
    row = store.execute(Select(WorkerRow.stop_requested,
                               where=WorkerRow.id == worker_id)).get_one()
    return None if row is None else bool(row[0])


def deregister(store: Any, worker_id: int) -> None:
    """Delete a stopping runner's row."""
    store.find(WorkerRow, WorkerRow.id == worker_id).remove()


def request_stop(store: Any, worker_id: int) -> bool:
    """Ask runner `worker_id` to stop at its next beat; False when there
    is no such row."""
    updated = store.execute(Update(
        {WorkerRow.stop_requested: True}, where=WorkerRow.id == worker_id,
        table=WorkerRow))
    return updated.rowcount == 1


def find(store: Any) -> list[WorkerRow]:
    """Every row, oldest runner first."""
    return list(store.find(WorkerRow).order_by(WorkerRow.id))
