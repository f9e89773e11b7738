"""`Worker`: the long-running runner (``run_jobs.py --worker``).

It runs the ready jobs of its sections, then waits: on PostgreSQL for a
NOTIFY (a new or re-queued job starts within milliseconds of its commit),
and in any case at most `poll_interval` seconds (the fallback, and how
scheduled jobs and expired leases are noticed). SIGTERM or SIGINT stops
it gracefully: no new claims, the running job finishes (up to
`grace_period` seconds; past that the process exits and the job's lease
hands it to another runner), claimed jobs not yet started are released,
exit status 0.

Workers take no lock files: any number may serve one section, since
claims are atomic.
"""

__all__ = ["Worker"]

import os
import select

import psycopg2
import transaction
from storm.exceptions import DatabaseError as StormDatabaseError

from jobs.database import dialect, dsn, freeze_long_lived, get_store
from jobs.model import claims
from jobs.runners.listener import Listener
from jobs.stopping import GracefulStop


class Worker:
    """Serves `sections` until stopped.

    :param script: the `JobCronScript` (it runs one pass of a section).
    :param sections: names of job sections.
    :param poll_interval: seconds between polls when nothing wakes it.
    :param grace_period: seconds a running job may take after SIGTERM.
    """

    def __init__(self, script, sections, poll_interval=5.0,
                 grace_period=30.0):
        self.script = script
        self.sections = sections
        self.logger = script.logger
        self.poll_interval = poll_interval
        self.grace_period = grace_period
        self.stop = GracefulStop(self.logger, grace_period)
        self.listener = None
        # (job_id, attempt) of claims to give back once reconnected.
        self.unstarted_claims = []

    @property
    def stopping(self):
        """True once a stop was asked for (SIGTERM, SIGINT)."""
        return self.stop.stopping

    def request_stop(self, signum=None, frame=None):
        """Stop claiming; finish the running job; exit."""
        self.stop.request(signum)

    def _wakeup_pipe(self):
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        self.stop.wakeup_fd = write_fd
        return read_fd

    def _listen(self, wakeup_fd):
        store = get_store()
        if not dialect(store).notify:
            self.logger.info(
                "SQLite has no NOTIFY: polling every %s s.", self.poll_interval)
            return None
        transaction.abort()
        listener = Listener(dsn(store), wakeup_fd)
        if listener.check():
            self.logger.info("Listening for new jobs (NOTIFY %s).", "jobs_ready")
        else:
            self.logger.info(
                "A NOTIFY sent to itself did not arrive (a transaction-pooling"
                " proxy?): polling only, every %s s.", self.poll_interval)
            listener.close()
            return None
        return listener

    def run(self):
        """Serve until stopped; return the exit status."""
        # What start-up made (modules, configuration, registrations) lives
        # as long as the worker: keep it out of every garbage collection,
        # which otherwise walks it again and again (about 7% of a short
        # job's cost). Before the first job: not in a job's latency.
        freeze_long_lived()
        wakeup_fd = self.wakeup_fd = self._wakeup_pipe()
        with self.stop:
            return self._serve(wakeup_fd)

    def _serve(self, wakeup_fd):
        self.listener = self._listen(wakeup_fd)
        use_notify = self.listener is not None
        codes = set()
        backoff = 0
        try:
            while not self.stopping:
                started = 0
                try:
                    self._give_back()
                    # Periodic schedules: their due ticks (jobs.scheduler).
                    self.script.enqueue_schedules()
                    for name in self.sections:
                        if self.stopping:
                            break
                        code, count = self.script.run_section_pass(
                            name, should_stop=self.stop)
                        codes.add(code)
                        started += count
                    if use_notify and (self.listener is None
                                       or self.listener.closed):
                        self.listener = self._listen(wakeup_fd)
                except (StormDatabaseError, psycopg2.Error) as e:
                    backoff = self._lost_database(e, backoff)
                    continue
                backoff = 0
                if self.stopping:
                    break
                if 2 in codes:
                    return 2
                if started:
                    continue  # there may be more: look again at once
                self._wait()
        finally:
            if self.listener is not None:
                self.listener.close()
        self.logger.info("Worker stopped.")
        return 0

    def _give_back(self):
        """Release the jobs claimed, and not started, when the database
        went away: their attempts do not count (the job that was running
        keeps its attempt, as after a crash)."""
        if not self.unstarted_claims:
            return
        unstarted = self.unstarted_claims
        released = claims.release(get_store(), unstarted)
        transaction.commit()
        self.unstarted_claims = []
        self.logger.info(
            "Reconnected: gave back %d of the %d claimed jobs that had not"
            " started when the database went away%s.", released,
            len(unstarted), "" if released == len(unstarted) else
            " (the others had moved on: their leases expired and other"
            " runners took them)")

    def _lost_database(self, error, backoff):
        """The database went away: wait (1, 2, 4 ... 30 s), then go on.

        Storm reconnects on the next statement; the listener is opened
        again; the claimed jobs that had not started are given back then
        (`_give_back`). The job whose outcome was lost with the connection
        is reclaimed when its lease expires.
        """
        self.unstarted_claims += getattr(error, "unstarted_claims", [])
        transaction.abort()
        backoff = min(30, max(1, backoff * 2))
        self.logger.warning(
            "Lost the database (%s); retrying in %d s.",
            " ".join(str(error).split()) or type(error).__name__, backoff)
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        # A signal's wake-up byte ends the wait early.
        select.select([self.wakeup_fd], [], [], backoff)
        return backoff

    def _wait(self):
        if self.listener is not None:
            self.listener.wait(self.poll_interval)
        else:
            # A signal's wake-up byte ends the wait early.
            select.select([self.wakeup_fd], [], [], self.poll_interval)
