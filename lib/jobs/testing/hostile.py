"""What hostile or careless job code does, for the tests that show it
harms no other job (`DoFooJob` does it when its ``json_data`` says
``misbehave``)."""

__all__ = ["MISBEHAVIOURS", "misbehave"]

import sys
import threading
import time

import transaction

from jobs.database import get_store


def _thread():
    """A non-daemon thread that outlives the job (and would keep a runner
    process alive for ever)."""
    threading.Thread(target=time.sleep, args=(3600,), name="left-behind",
                     daemon=False).start()


def _own_row_progress(job):
    """Update the job's own row (taking its row lock in the job's
    transaction), then report progress through another connection."""
    get_store().execute("UPDATE job SET priority = priority WHERE id = ?",
                        (job.job_id,))
    job.reportProgress(1, 2, "after locking my own row")


MISBEHAVIOURS = {
    "sys.exit": lambda job: sys.exit(3),
    "KeyboardInterrupt": lambda job: _raise(KeyboardInterrupt()),
    "GeneratorExit": lambda job: _raise(GeneratorExit()),
    "BaseException": lambda job: _raise(BaseException("bare")),
    "transaction.commit": lambda job: transaction.commit(),
    "store.commit": lambda job: get_store().commit(),
    "COMMIT": lambda job: get_store().execute("COMMIT"),
    "transaction.abort": lambda job: transaction.abort(),
    "store.rollback": lambda job: get_store().rollback(),
    "ROLLBACK": lambda job: get_store().execute("ROLLBACK"),
    "store.close": lambda job: get_store().close(),
    "thread": lambda job: _thread(),
    "own_row_progress": _own_row_progress,
}


def _raise(error):
    raise error


def misbehave(job, data):
    """Do what ``data`` (a job's json_data) asks:

    - ``misbehave``: one of `MISBEHAVIOURS`;
    - ``lock_foos``: ``[a, b]``: lock foo `a`, wait ``pause`` seconds,
      lock foo `b` (two such jobs in opposite orders deadlock);
    - ``terminate_on_attempt``: on that attempt, end the job's own
      database session (a lost connection).
    """
    # (Only then read attempt_count: it loads the job's row, a statement.)
    if "terminate_on_attempt" in data and \
            data["terminate_on_attempt"] == job.attempt_count:
        get_store().execute("SELECT pg_terminate_backend(pg_backend_pid())")
    foos = data.get("lock_foos")
    if foos:
        store = get_store()
        store.execute("UPDATE foo SET note = 'locked' WHERE id = ?",
                      (foos[0],))
        time.sleep(data.get("pause", 0.5))
        store.execute("UPDATE foo SET note = 'locked' WHERE id = ?",
                      (foos[1],))
    how = data.get("misbehave")
    if how:
        MISBEHAVIOURS[how](job)
