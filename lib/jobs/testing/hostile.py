"""What hostile or careless job code does, for the tests that show it
harms no other job (`DoFooJob` does it when its ``json_data`` says
``misbehave``)."""

__all__ = ["MISBEHAVIOURS", "misbehave"]

import json
import os
import signal
import socket
import sys
import threading
import time

import transaction

from jobs.database import get_store
from jobs.database.stormext import socket_fileno


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


def _ignore_alarm(job):
    """Ignore the process runner child's time limits (its alarm and its
    CPU limit's signal) and sleep a minute: only the parent's kill ends
    it."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    time.sleep(60)


def _report_session(job):
    """Write what the job's own connection is set to, as JSON, in its
    foo's note: the PostgreSQL timeouts (``SHOW``), and the TCP
    keepalive options of its socket (read from the socket itself, not
    from the connection string)."""
    store = get_store()
    found = {setting: store.execute("SHOW %s" % setting).get_one()[0]
             for setting in ("statement_timeout", "lock_timeout",
                             "idle_in_transaction_session_timeout")}
    sock = socket.socket(fileno=os.dup(socket_fileno(store)))
    try:
        found["keepalive"] = sock.getsockopt(socket.SOL_SOCKET,
                                             socket.SO_KEEPALIVE)
        found["keepalive_idle"] = sock.getsockopt(socket.IPPROTO_TCP,
                                                  socket.TCP_KEEPIDLE)
    finally:
        sock.close()
    job.context.foo.note = json.dumps(found, sort_keys=True)


def _usr1_default(job):
    # SIGUSR1's default action (death), then a long run: a cancel's
    # signal kills the process, as it would a child still setting up.
    # The file json_data's "then_touch" names says it is done.
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    open(job.context.json_data["then_touch"], "w").close()
    time.sleep(600)


MISBEHAVIOURS = {
    "sys.exit": lambda job: sys.exit(3),
    "usr1_default": _usr1_default,
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
    "ignore_alarm": _ignore_alarm,
    "report_session": _report_session,
    # A statement (after the job's ``sleep``: a test may freeze the
    # database session meanwhile).
    "query": lambda job: get_store().execute("SELECT 1").get_one(),
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
