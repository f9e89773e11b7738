"""Lease heartbeats: a runner's claimed jobs keep their leases while it
lives, and lose them soon after it dies or freezes.

A claim gives each job a lease of ``lease_seconds``. While the runner
holds the job — running it, or keeping it claimed in a batch until its
turn — its `Heartbeat` renews the lease every ``lease_seconds / 3``, on a
connection of its own (`SideConnection`), fenced on the attempt. The same
statement reads ``cancel_requested`` and whether the row is still this
attempt's, so the attempt learns within one beat that an operator asked
to cancel it (`jobs.attempt.Attempt.check_cancelled`) or that another
runner took the job over (it was frozen past its lease; the runner logs
it at WARNING when it drops the attempt's outcome, because someone must
look).

A runner that dies stops beating: its jobs are taken over one lease after
the last beat. Past a section's ``max_runtime`` an attempt's lease is no
longer renewed (the process runner kills the child at that point; the
in-process runner cannot stop its own thread, so it logs a WARNING and
lets the lease lapse).

Only where another connection can write while a job runs (PostgreSQL). On
SQLite the running job's transaction holds the database's one write lock,
which no other runner can take a job from; the runner checks each claimed
job's lease itself when the job starts.
"""

__all__ = ["Heartbeat", "SideConnection", "autocommit_twin",
           "held_attempts"]

import logging
import threading
import time
import weakref

from storm.exceptions import DatabaseError as StormDatabaseError
from storm.store import Store

from jobs.database.stormext import JobsPostgres
from jobs.model import records

# The heartbeats of this process: the attempts they watch are the jobs
# the process holds now (`held_attempts`, which jobs.presence reports).
_heartbeats = weakref.WeakSet()
_heartbeats_lock = threading.Lock()


def held_attempts():
    """``[(job_id, attempt number)]`` of the attempts this process's
    heartbeats renew now (claimed or running, not yet recorded), sorted."""
    with _heartbeats_lock:
        heartbeats = list(_heartbeats)
    return sorted({(attempt.job_id, attempt.number)
                   for heartbeat in heartbeats
                   for attempt in heartbeat.watched()
                   if not attempt.recorded and not attempt.fenced})


def autocommit_twin(database):
    """A database like `database` whose connections commit each statement
    by itself (PostgreSQL; SQLite's `database` is returned as it is).

    A runner's side connection uses it: a row lock its lease renewal takes
    then lasts one statement on the server, even if the runner is frozen
    (SIGSTOP, a swapped-out host) between two of its statements — a lock
    held across a freeze would hide the frozen runner's job from the
    runner that should take it over (claims skip locked rows).
    """
    if not isinstance(database, JobsPostgres):
        return database
    twin = type(database).__new__(type(database))
    twin.__dict__.update(database.__dict__)
    twin.autocommit = True
    return twin


class SideConnection:
    """A store of the runner's own beside the one its jobs use, on the
    same database and role: lease renewals and progress reports are
    committed at once, whatever the job's own transaction does. On
    PostgreSQL each statement commits by itself
    (`autocommit_twin`).

    Used from the heartbeat thread and the runner's thread, one call at a
    time. One per database per process (`of`).
    """

    _by_database = weakref.WeakKeyDictionary()

    def __init__(self, database):
        self.database = database
        self._store = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, store):
        """The side connection of `store`'s database (made on first use)."""
        database = store.get_database()
        side = cls._by_database.get(database)
        if side is None:
            side = cls._by_database[database] = cls(database)
        return side

    def run(self, function, *args):
        """Call ``function(store, *args)`` and commit; return its result.

        :raises storm.exceptions.DatabaseError: when the statement fails
            (rolled back; Storm reconnects at the next call).
        """
        with self._lock:
            if self._store is None:
                self._store = Store(autocommit_twin(self.database))
            store = self._store
            try:
                result = function(store, *args)
                store.commit()
                return result
            except BaseException:
                try:
                    store.rollback()
                except StormDatabaseError:
                    pass
                raise

    def write_progress(self, attempt, text):
        """Write `attempt`'s progress now; False if it must go with the
        outcome (the row is locked, or the write failed)."""
        try:
            return self.run(records.progress_update, attempt.job_id,
                            attempt.number, text)
        except StormDatabaseError:
            return False

    def close(self):
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class Heartbeat:
    """Renews the leases of the attempts it watches, in a thread.

    :param side: the `SideConnection` to write through.
    :param lease_seconds: each renewal's length.
    :param logger: where fenced and expired attempts are reported.
    :param max_runtime: seconds after an attempt's start past which its
        lease is no longer renewed (None: no limit).
    :param on_cancel: called with an attempt when a cancel is first seen
        (the process runner signals the child).
    :param interval: seconds between beats (default a third of the lease).
    """

    def __init__(self, side, lease_seconds, logger=None, max_runtime=None,
                 on_cancel=None, interval=None):
        self.side = side
        self.lease_seconds = lease_seconds
        self.logger = logger or logging.getLogger(__name__)
        self.max_runtime = max_runtime
        self.on_cancel = on_cancel
        self.interval = interval or lease_seconds / 3.0
        self._attempts = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = None
        with _heartbeats_lock:
            _heartbeats.add(self)

    def watch(self, attempts):
        """Keep the leases of `attempts` (claimed, running or not) alive
        until they are `forget` -ten; starts the thread on first use."""
        with self._lock:
            for attempt in attempts:
                self._attempts[attempt.job_id] = attempt
                attempt.progress_writer = self.side.write_progress
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name="jobs-heartbeat", daemon=True)
            self._thread.start()

    def forget(self, attempts):
        """Stop renewing `attempts` (recorded, released or given away)."""
        with self._lock:
            for attempt in attempts:
                if self._attempts.get(attempt.job_id) is attempt:
                    del self._attempts[attempt.job_id]

    def watched(self):
        """The attempts being renewed now (a list)."""
        with self._lock:
            return list(self._attempts.values())

    def stop(self):
        """Stop the thread (the watched leases then lapse)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        with self._lock:
            self._attempts.clear()

    def _run(self):
        while not self._stopping.wait(self.interval):
            try:
                self.beat()
            except Exception as e:
                # A lost connection: the next beat reconnects. Until it
                # does, the leases run down; that is what a dead runner's
                # would do too.
                self.logger.info("Lease heartbeat failed: %s",
                                 " ".join(str(e).split())
                                 or type(e).__name__)

    def beat(self):
        """Renew every watched attempt's lease once, and learn which were
        cancelled or fenced meanwhile."""
        attempts = [attempt for attempt in self.watched()
                    if not attempt.recorded and not self._expired(attempt)]
        if not attempts:
            return
        found = self.side.run(
            records.renew, [(attempt.job_id, attempt.number)
                           for attempt in attempts], self.lease_seconds)
        for attempt in attempts:
            renewed, current, cancel = found.get(
                attempt.job_id, (False, False, False))
            if attempt.recorded:
                continue  # its outcome was recorded while we looked
            if not current:
                self._fenced(attempt)
            elif cancel and not attempt.cancel_requested:
                attempt.cancel_requested = True
                self.logger.info("Job %d: cancel requested (attempt %d).",
                                 attempt.job_id, attempt.number)
                if self.on_cancel is not None:
                    self.on_cancel(attempt)

    def _fenced(self, attempt):
        if attempt.fenced:
            return
        attempt.fenced = True
        self.forget([attempt])
        # INFO: the WARNING comes when the outcome is dropped (once).
        self.logger.info(
            "Job %d: attempt %d lost its lease (this runner did not renew"
            " it in time: frozen, or cut off from the database) and another"
            " runner took the job over; this attempt's outcome will be"
            " dropped.", attempt.job_id, attempt.number)

    def _expired(self, attempt):
        """True, once logged, for an attempt past the max_runtime."""
        if attempt.expired:
            return True
        if (self.max_runtime is None or attempt.started_at is None
                or time.monotonic() - attempt.started_at < self.max_runtime):
            return False
        attempt.expired = True
        self.logger.warning(
            "Job %d has run for more than max_runtime (%s s): its lease is"
            " no longer renewed, so another runner may take it over when it"
            " expires.", attempt.job_id, self.max_runtime)
        return True
