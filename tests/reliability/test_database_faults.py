"""PostgreSQL restarted, or a runner's connections terminated, mid-run.

A worker backs off, reconnects and carries on; a cron run stops with one
clear ERROR line and a non-zero exit status. Either way no job is lost
(the interrupted jobs are reclaimed when their 2 s leases expire) and
none runs twice. The restarts happen on a PostgreSQL cluster of the
test's own, never on the shared test server.
"""

import subprocess
import sys

import psycopg2
import transaction
from testtools.matchers import Contains, Not

from jobs.testing.cluster import PrivateClusterFixture
from jobs.testing.fixtures import DatabaseFixture, _dsn
from tests.reliability.fleet import RUN_JOBS, Fleet, sections, wait_until
from tests.reliability.ledger import Ledger
from tests.scripts.test_run_jobs import BlockedRunTestCase

JOBS = 150
SECTIONS = sections([{"batch_size": 5, "lease_seconds": 2,
                      "poll_interval": 0.5}])


class TestDatabaseFaults(BlockedRunTestCase):
    """The fault strikes while the runner is inside its 31st job, which
    waits for an advisory lock the test holds: mid-run for certain."""

    __test__ = True
    config_extra = SECTIONS

    def make_database_fixture(self):
        self.cluster = self.useFixture(PrivateClusterFixture())
        return DatabaseFixture("postgresql", server=self.cluster.server)

    def setUp(self):
        super().setUp()
        self.ledger = Ledger(self.store)
        self.factory.makeManyDoFooJobs(30, record=True, sleep=0.02)
        self.factory.makeDoFooJob(sql=self.hold_advisory_lock(), record=True)
        self.factory.makeManyDoFooJobs(JOBS - 31, record=True, sleep=0.02)
        self.store.execute("UPDATE job SET max_retries = 100")
        transaction.commit()

    def inside_the_blocked_job(self):
        try:
            return self.lock_awaited()
        except psycopg2.Error:
            return False

    def restart(self):
        self.cluster.restart()

    def terminate(self):
        """End every connection to the database but the test's own and
        the lock holder's, then free the lock: the runner's connection
        dies while its job waits. (Were the holder's ended first, the job
        could commit before its own connection died, and the runner
        would reconnect without noticing: fine, but not this test.)"""
        admin = psycopg2.connect(_dsn(self.db.uri))
        try:
            admin.autocommit = True
            cursor = admin.cursor()
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database()"
                " AND pid NOT IN (pg_backend_pid(), %s)",
                (self.blocker.get_backend_pid(),))
            terminated = cursor.fetchone()[0]
        finally:
            admin.close()
        self.assertGreaterEqual(terminated, 1)
        self.release_advisory_lock()

    def check_ledger(self):
        problems, summary = self.ledger.audit()
        self.assertEqual([], problems, summary)
        self.assertEqual({"Completed": JOBS}, summary["statuses"])

    def run_worker_through(self, fault):
        fleet = self.useFixture(Fleet(["worker"]))
        fleet.start()
        fleet.run_until(self.inside_the_blocked_job, 120,
                        "the worker to reach the blocked job")
        fault()
        fleet.run_until(lambda: self.ledger.pending() == 0, 120,
                        "the worker to finish every job")
        [worker] = fleet.runners
        self.assertEqual({}, fleet.stop(), fleet.log_tails())
        log = worker.log_text()
        # One run: the worker carried on, it was not restarted.
        self.assertEqual(1, len(worker.runs), log[-3000:])
        self.assertThat(log, Contains("WARNING Lost the database"))
        self.assertThat(log, Contains("Worker stopped."))
        self.check_ledger()

    def run_cron_through(self, fault):
        process = subprocess.Popen(
            [sys.executable, RUN_JOBS, "reliable_0"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(process.kill)
        wait_until(self.inside_the_blocked_job, 120,
                   "the cron run to reach the blocked job")
        fault()
        err = process.communicate(timeout=120)[1]
        self.assertEqual(2, process.returncode, err)
        self.assertThat(err, Contains(
            "ERROR   Section reliable_0: lost the database connection ("))
        self.assertThat(err, Not(Contains("Traceback")))
        self.assertThat(err, Not(Contains("Unhandled exception")))
        # The next runs take over the interrupted jobs once their leases
        # expire.
        fleet = self.useFixture(Fleet(["cron"]))
        fleet.start()
        fleet.run_until(lambda: self.ledger.pending() == 0, 120,
                        "the next cron runs to finish every job")
        self.assertEqual({}, fleet.stop(), fleet.log_tails())
        self.check_ledger()

    def test_worker_carries_on_after_a_restart(self):
        self.run_worker_through(self.restart)

    def test_worker_carries_on_after_its_connections_are_terminated(self):
        self.run_worker_through(self.terminate)

    def test_cron_run_stops_with_a_clear_line_after_a_restart(self):
        self.run_cron_through(self.restart)

    def test_cron_run_stops_with_a_clear_line_after_termination(self):
        self.run_cron_through(self.terminate)
