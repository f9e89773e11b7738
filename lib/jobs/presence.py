"""`Presence`: a runner's row in the ``worker`` table, kept alive.

Every runner process registers when it starts — a cron run or a worker
(`jobs.cronscript.JobCronScript`, which is also the process runner's
parent), a Celery worker process (`jobs.celery.task`) — and beats there
every ``[workers] beat_seconds``, whether it holds jobs or is idle. Each
beat writes the time (the database's clock) and the jobs the process
holds now: the attempts its lease heartbeats renew
(`jobs.heartbeat.held_attempts`).

The row is written by a thread of the presence's own, on a connection of
its own (a `jobs.heartbeat.SideConnection` of the login role that only
that thread uses: a SQLite connection belongs to the thread that made
it), committed at once whatever a job's transaction does.

The beat also reads ``stop_requested``, which ``jobs cancel --worker ID``
sets: the first time it is seen, the presence logs it and calls the
runner's ``on_stop`` (a worker stops as after SIGTERM; a cron run stops
claiming). The row is deleted when the runner stops. A runner that is
killed, frozen or cut off stops beating: after ``lost_after_beats`` beats
its row shows it lost (``jobs workers``), with the jobs it held, which
other runners take over when their leases expire, as ever.

On SQLite a beat waits for the database's one write lock, which a running
job's transaction holds: a job that runs longer than ``lost_after_beats``
beats shows its runner lost until the job ends. (The in-process runner
has no lease heartbeat there; ``jobs workers`` also lists the RUNNING
jobs whose claim, ``job.claimed_by``, names a runner's process.)
"""

__all__ = ["Presence"]

import logging
import os
import socket
import threading

from storm.exceptions import DisconnectionError

from jobs.database import get_store
from jobs.heartbeat import SideConnection, held_attempts
from jobs.model import workers


class Presence:
    """A runner's row in the ``worker`` table and the thread that beats it.

    :param kind: ``cron``, ``worker`` or ``celery``.
    :param sections: the job sections it serves.
    :param settings: the `jobs.settings.WorkerSettings`.
    :param logger: where a stop request and failed beats are logged.
    :param on_stop: called (from the beat thread) when a stop request is
        first seen.
    :ivar worker_id: its row's id, once `start` ed.
    :ivar stop_requested: True once a stop request was seen.
    """

    def __init__(self, kind, sections, settings, logger=None, on_stop=None):
        self.kind = kind
        self.sections = list(sections)
        self.settings = settings
        self.logger = logger or logging.getLogger(__name__)
        self.on_stop = on_stop
        self.worker_id = None
        self.stop_requested = False
        self._side = None
        self._thread = None
        self._started = threading.Event()
        self._error = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._beats = 0
        self._beaten = threading.Condition()

    def start(self, store=None):
        """Register (the row is beaten now) and start beating; return
        self.

        :param store: a store of the login role (default: this thread's
            ``main`` store): the presence connects to its database.
        :raises storm.exceptions.DatabaseError: when the row cannot be
            written.
        """
        self._side = SideConnection((store or get_store()).get_database())
        self._thread = threading.Thread(
            target=self._run, name="jobs-presence", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _run(self):
        try:
            self._register()
        except Exception as e:
            self._error = e
            self._side.close()
            return
        finally:
            self._started.set()
        try:
            while not self._stopping.is_set():
                self._wake.wait(self.settings.beat_seconds)
                self._wake.clear()
                if self._stopping.is_set():
                    break
                try:
                    self.beat()
                except Exception as e:
                    # The next beat tries again; meanwhile the row ages,
                    # as a lost runner's would.
                    self.logger.info("Worker %s: beat failed: %s",
                                     self.worker_id, " ".join(str(e).split())
                                     or type(e).__name__)
                with self._beaten:
                    self._beats += 1
                    self._beaten.notify_all()
        finally:
            self._deregister()
            self._side.close()

    def _register(self):
        arguments = (socket.gethostname(), os.getpid(), self.kind,
                     self.sections, self.settings.beat_seconds,
                     self.settings.keep_lost_seconds)
        try:
            self.worker_id = self._side.run(workers.register, *arguments)
        except DisconnectionError:
            # The connection died since its last use (a database
            # restart): Storm reconnects at the next statement.
            self.worker_id = self._side.run(workers.register, *arguments)

    def beat(self):
        """Write the time and the jobs held now; act on a stop request.
        (The beat thread's; `beat_now` asks it for one.)"""
        stop = self._side.run(workers.beat, self.worker_id, held_attempts())
        if stop is None:
            # Deleted as lost (frozen past keep_lost_seconds): a new row.
            previous = self.worker_id
            self._register()
            self.logger.info(
                "Worker %s: its row was deleted as a lost runner's;"
                " registered again as worker %s.", previous, self.worker_id)
        elif stop and not self.stop_requested:
            self.stop_requested = True
            self.logger.info(
                "Worker %s: stop requested (jobs cancel --worker): stopping"
                " as after SIGTERM.", self.worker_id)
            if self.on_stop is not None:
                self.on_stop()

    def beat_now(self, timeout=60):
        """Have the beat thread beat at once; return once it has."""
        with self._beaten:
            done = self._beats
            self._wake.set()
            self._beaten.wait_for(lambda: self._beats > done, timeout)

    def _deregister(self):
        try:
            self._side.run(workers.deregister, self.worker_id)
        except Exception as e:
            # The row then ages, and shows the runner lost.
            self.logger.info("Worker %s: could not delete its row: %s",
                             self.worker_id, " ".join(str(e).split()))

    def stop(self):
        """Stop beating and delete the row (a stopped runner is not
        lost)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None
