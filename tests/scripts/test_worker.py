"""run_jobs.py --worker: real worker processes on PostgreSQL."""

import os
import signal
import subprocess
import sys
import time

import transaction
from testtools.matchers import Contains

from jobs.interfaces.job import JobStatus
from jobs.model.job import Job
from jobs.testing.executions import assert_each_ran_once
from jobs.testing.script import ROOT
from jobs.testing.testcase import DatabaseTestCase, on_each_database
from tests.scripts.test_run_jobs import BlockedRunTestCase

RUN_JOBS = os.path.join(ROOT, "cronscripts", "run_jobs.py")
# A poll interval long enough that only a NOTIFY can explain a quick start.
LONG_POLL = """
[do_foo_worker]
dbuser: dofoo
source_interface: jobs.testing.foojob.IDoFooJobSource
batch_size: 20
poll_interval: 300
grace_period: 60
"""


class WorkerMixin:

    config_extra = LONG_POLL

    def start_worker(self, *args):
        log = open(os.path.join(self.config_fixture.lock_dir + "-log-%d"
                                % len(getattr(self, "workers", []))), "w+")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [sys.executable, RUN_JOBS, "--worker", *args],
            stdout=subprocess.DEVNULL, stderr=log, text=True)
        self.addCleanup(self.stop, process)
        self.workers = getattr(self, "workers", []) + [(process, log)]
        return process, log

    def stop(self, process):
        if process.poll() is None:
            process.kill()
            process.wait(30)

    def wait_for(self, predicate, what, timeout=60):
        """Wait for an event that the test observes by checking; fail
        after `timeout` seconds (`what` may be a callable, for details)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("Timed out waiting for %s" % (
                    what() if callable(what) else what))
            time.sleep(0.02)

    def log_text(self, log):
        log.flush()
        with open(log.name) as f:
            return f.read()

    def status_of(self, job_id):
        self.store.invalidate()
        status = self.store.get(Job, job_id).status
        transaction.abort()
        return status


class TestWorkerNotify(WorkerMixin, DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def test_new_job_starts_without_waiting_for_the_poll(self):
        process, log = self.start_worker("do_foo_worker")
        self.wait_for(lambda: "Listening for new jobs" in self.log_text(log),
                      "the worker to listen")
        job = self.factory.makeDoFooJob()
        transaction.commit()
        committed = time.monotonic()
        self.wait_for(lambda: self.status_of(job.job_id)
                      is JobStatus.COMPLETED, "the job to complete",
                      timeout=30)
        # Far below the 300 s poll interval: the NOTIFY woke it.
        self.assertLess(time.monotonic() - committed, 30)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(60))
        self.assertThat(self.log_text(log), Contains("Worker stopped."))

    def test_a_chain_completes_with_results_in_a_worker(self):
        # Each outcome makes the next job ready: the worker's NOTIFY wakes
        # it, as for a new job.
        process, log = self.start_worker("do_foo_worker")
        self.wait_for(lambda: "Listening for new jobs" in self.log_text(log),
                      "the worker to listen")
        first = self.factory.makeDoFooJob(return_=[1, 2])
        second = self.factory.makeDoFooJob(depends_on=[first],
                                           return_={"two": 2})
        transaction.commit()
        self.wait_for(lambda: self.status_of(second.job_id)
                      is JobStatus.COMPLETED, "the chain to complete",
                      timeout=30)
        self.assertEqual([[1, 2], {"two": 2}], [
            self.store.get(Job, job.job_id).result
            for job in (first, second)])
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(60))

    def test_three_workers_run_each_job_exactly_once(self):
        job_ids = self.factory.makeManyDoFooJobs(10000, record=True)
        transaction.commit()
        for _ in range(3):
            self.start_worker("do_foo_worker")
        self.wait_for(
            lambda: self.store.execute(
                "SELECT count(*) FROM job WHERE status = 2").get_one()[0]
            == len(job_ids) or transaction.abort(),
            "every job to complete", timeout=600)
        transaction.abort()
        for process, _ in self.workers:
            process.send_signal(signal.SIGTERM)
        for process, log in self.workers:
            self.assertEqual(0, process.wait(60), self.log_text(log))
        pids = assert_each_ran_once(self, self.store, job_ids)
        self.assertEqual(3, len(pids))


class TestWorkerStop(WorkerMixin, BlockedRunTestCase):

    __test__ = True

    def test_sigterm_lets_the_running_job_finish_and_exits_0(self):
        blocked = self.factory.makeDoFooJob(sql=self.hold_advisory_lock())
        others = [self.factory.makeDoFooJob() for _ in range(3)]
        transaction.commit()
        process, log = self.start_worker("--batch-size", "10", "do_foo_worker")
        self.wait_for(lambda: "Running" in self.log_text(log),
                      "the worker to start the blocked job")
        self.wait_for(self.lock_awaited, "the job to wait on the lock")
        # SIGTERM while the job runs (its query waits on the lock; the
        # handler runs once the query returns).
        process.send_signal(signal.SIGTERM)
        self.release_advisory_lock()
        self.assertEqual(0, process.wait(60), self.log_text(log))
        self.assertThat(self.log_text(log), Contains("Received SIGTERM"))
        self.assertEqual(JobStatus.COMPLETED, self.status_of(blocked.job_id))
        # Claimed with it but not started: given back, attempt not counted.
        for job in others:
            self.store.invalidate()
            self.assertEqual((JobStatus.WAITING, 0),
                             (job.status, job.attempt_count))
        transaction.abort()
        self.assertThat(self.log_text(log), Contains(
            "Released 3 claimed jobs that had not started."))


@on_each_database
class TestWorkerPolls(WorkerMixin, DatabaseTestCase):
    """Without NOTIFY (SQLite) the worker polls; on both it drains."""

    config_extra = LONG_POLL.replace("poll_interval: 300",
                                     "poll_interval: 0.2")

    def test_worker_drains_and_polls(self):
        jobs = [self.factory.makeDoFooJob() for _ in range(5)]
        transaction.commit()
        process, log = self.start_worker("do_foo_worker")
        self.wait_for(lambda: all(self.status_of(job.job_id)
                                  is JobStatus.COMPLETED for job in jobs),
                      "the first jobs")
        late = self.factory.makeDoFooJob()
        transaction.commit()
        self.wait_for(lambda: self.status_of(late.job_id)
                      is JobStatus.COMPLETED, "the late job")
        process.send_signal(signal.SIGINT)
        self.assertEqual(0, process.wait(60), self.log_text(log))


class TestWorkerReconnects(WorkerMixin, DatabaseTestCase):
    """Its connections killed with pg_terminate_backend, a worker backs
    off, reconnects and carries on."""

    database_kind = "postgresql"
    __test__ = True

    def test_worker_survives_terminated_connections(self):
        import psycopg2
        from jobs.testing.fixtures import _dsn
        process, log = self.start_worker("do_foo_worker")
        self.wait_for(lambda: "Listening for new jobs" in self.log_text(log),
                      "the worker to listen")
        admin = psycopg2.connect(_dsn(self.db.uri))
        admin.autocommit = True
        self.addCleanup(admin.close)
        ours = self.store.execute("SELECT pg_backend_pid()").get_one()[0]
        transaction.abort()
        cursor = admin.cursor()
        # Every connection of the worker (store and listener), not ours.
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND pid <> %s", (ours,))
        self.assertGreaterEqual(cursor.fetchone()[0], 1)
        job = self.factory.makeDoFooJob()
        transaction.commit()
        self.wait_for(lambda: self.status_of(job.job_id)
                      is JobStatus.COMPLETED,
                      lambda: "the job to complete: " + self.log_text(log),
                      timeout=90)
        self.assertIsNone(process.poll())
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(60), self.log_text(log))


    def test_claimed_jobs_not_started_are_given_back_on_reconnecting(self):
        # The first job of the batch ends its own connection, as a
        # restart would; the four claimed after it never started.
        doomed = self.factory.makeDoFooJob(
            sql="SELECT pg_terminate_backend(pg_backend_pid())")
        others = [self.factory.makeDoFooJob(record=True) for _ in range(4)]
        transaction.commit()
        process, log = self.start_worker("do_foo_worker")
        self.wait_for(
            lambda: all(self.status_of(job.job_id) is JobStatus.COMPLETED
                        for job in others),
            lambda: "the other jobs to complete: " + self.log_text(log),
            timeout=90)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(0, process.wait(60), self.log_text(log))
        self.assertThat(self.log_text(log), Contains(
            "Reconnected: gave back 4 of the 4 claimed jobs that had not"
            " started when the database went away"))
        self.store.invalidate()
        # Their first attempt is the one that ran; the doomed job's
        # attempt counts, as after a crash, and waits for its lease.
        self.assertEqual(
            [(JobStatus.RUNNING, 1)] + [(JobStatus.COMPLETED, 1)] * 4,
            [(job.job.status, job.job.attempt_count)
             for job in [doomed] + others])


class TestListener(DatabaseTestCase):

    database_kind = "postgresql"
    __test__ = True

    def test_self_check_sees_its_own_notify_without_waiting(self):
        # The NOTIFY comes back with the command's own reply: the check
        # must look at what was already read before waiting on the socket
        # (it waited its whole timeout, 2 s, at every worker start).
        from jobs.database import dsn
        from jobs.runners.listener import Listener
        listener = Listener(dsn(self.store))
        self.addCleanup(listener.close)
        self.assertTrue(listener.check(timeout=0))
