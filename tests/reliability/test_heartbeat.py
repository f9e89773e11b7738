"""Lease heartbeats, with real runner processes: a job longer than its
lease runs once while another runner polls; a dead runner's job is taken
over one lease later; a frozen runner's attempt is fenced; a cancel
request reaches a running job within one beat; a claimed batch keeps its
leases until each job's turn.

The section's lease is 1 s (the shortest allowed), so every job here
outlives its lease several times over.
"""

import os
import signal
import time

import transaction

from jobs.interfaces.job import JobStatus
from jobs.model.job import Job
from jobs.testing.testcase import on_each_database
from tests.reliability.fleet import sections, wait_until
from tests.reliability.runnercase import RunnerTestCase

LEASE = 1.0
POLL = 0.1
SECTION = sections([{"lease_seconds": LEASE, "poll_interval": POLL,
                     "batch_size": 1, "grace_period": 5}])


class HeartbeatTestCase(RunnerTestCase):

    config_extra = SECTION


@on_each_database
class TestLongJobRunsOnce(HeartbeatTestCase):
    """A job that runs for 3.5 leases, while a second runner polls the
    section the whole time, runs once: attempt 1, no second execution,
    and with the default max_retries of 0 it is never failed as lost."""

    def long_job_runs_once(self, *args, worker=False):
        job_id = self.make_job(sleep=3.5 * LEASE)
        first = self.runner(*args, worker=worker)
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        second = self.runner(worker=True)
        self.wait_for_row(job_id, (JobStatus.COMPLETED, 1))
        self.assertEqual([1], self.executions(job_id), self.logs())
        self.assertEqual([], self.oopses())
        self.assertNotIn("lost", second.log_text())
        return first

    def test_in_process(self):
        first = self.long_job_runs_once()
        first.process.wait(60)
        self.assertEqual(0, first.process.returncode, self.logs())

    def test_in_child_processes(self):
        self.long_job_runs_once("--processes", "1")

    def test_in_a_worker(self):
        self.long_job_runs_once(worker=True)


@on_each_database
class TestClaimedBatch(HeartbeatTestCase):
    """A worker claims 5 jobs of 1 s each with a 1 s lease while another
    worker polls: the jobs waiting in the claimed batch keep their leases
    until their turn, and each runs once."""

    def test_each_job_of_a_claimed_batch_runs_once(self):
        job_ids = [self.make_job(sleep=LEASE) for _ in range(5)]
        self.runner("--batch-size", "5", worker=True)
        wait_until(lambda: all(self.job_row(job_id)[0] is JobStatus.RUNNING
                               for job_id in job_ids), 60,
                   "the batch to be claimed", details=self.logs)
        self.runner(worker=True)
        for job_id in job_ids:
            self.wait_for_row(job_id, (JobStatus.COMPLETED, 1))
        self.assertEqual([[1]] * 5, [self.executions(job_id)
                                     for job_id in job_ids], self.logs())


class TestRunnerDeath(HeartbeatTestCase):
    """PostgreSQL (on SQLite the running job's transaction holds the one
    write lock: no other runner can take its job while it lives, and the
    kernel releases it when it dies)."""

    database_kind = "postgresql"
    __test__ = True

    def test_killed_runner_is_taken_over_within_a_lease_and_a_poll(self):
        job_id = self.make_job(sleep=3.5 * LEASE, max_retries=1)
        first = self.runner(worker=True)
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        second = self.runner(worker=True)
        # The clock starts once the second runner polls (its start-up
        # took 7 s on a loaded machine).
        self.wait_for_line(second, "Listening for new jobs")
        first.process.kill()
        killed = time.monotonic()
        self.wait_for_row(job_id, (JobStatus.RUNNING, 2))
        taken_over = time.monotonic() - killed
        # One lease after the last beat (which came before the kill), and
        # one poll; a second of slack for a loaded machine.
        self.assertLess(taken_over, LEASE + POLL + 1.0, self.logs())
        self.wait_for_row(job_id, (JobStatus.COMPLETED, 2))
        self.assertEqual([2], self.executions(job_id))

    def test_frozen_runner_is_fenced_and_its_writes_dropped(self):
        job_id = self.make_job(sleep=2 * LEASE, max_retries=1)
        first = self.runner(worker=True)
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        time.sleep(0.3)  # past the job's INSERT of its execution row
        os.kill(first.process.pid, signal.SIGSTOP)
        self.runner(worker=True)
        # Frozen past its lease: the second runner takes the job over.
        self.wait_for_row(job_id, (JobStatus.COMPLETED, 2))
        os.kill(first.process.pid, signal.SIGCONT)
        wait_until(lambda: "was fenced" in first.log_text(), 60,
                   "the first runner to find its attempt fenced",
                   details=self.logs)
        # The first attempt's INSERT was rolled back with its outcome.
        self.assertEqual([2], self.executions(job_id), self.logs())
        self.assertEqual((JobStatus.COMPLETED, 2), self.job_row(job_id))
        self.assertIn("WARNING DoFooJob (ID %d): attempt 1 was fenced"
                      % job_id, first.log_text())
        # Someone must look: the WARNING is an OOPS report, the only one.
        [report] = self.oopses()
        self.assertEqual("LogMessage", report["type"])
        self.assertIn("attempt 1 was fenced", report["value"])

    def test_lease_renewed_while_the_job_holds_a_key_share_lock(self):
        # A job whose transaction references its own job row (inserting a
        # row with a foreign key to it, or as here, FOR KEY SHARE) holds a
        # KEY SHARE lock on it for the whole attempt: the heartbeat's lock
        # (NO KEY UPDATE) must not conflict with it.
        foo = self.factory.makeFoo()
        job_id = self.make_job(
            foo=foo, sleep=4 * LEASE,
            sql="SELECT id FROM job WHERE id = (SELECT job FROM foo_job"
            " WHERE foo = %d) FOR KEY SHARE" % foo.id)
        self.runner(worker=True)
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        for _ in range(3):
            time.sleep(LEASE)  # a lease, for the heartbeat to miss
            [(left,)] = self.read(
                "SELECT extract(epoch FROM lease_expires -"
                " statement_timestamp()) FROM job WHERE id = ?", (job_id,))
            self.assertGreater(left, 0, self.logs())
        self.wait_for_row(job_id, (JobStatus.COMPLETED, 1))

    def test_cancel_reaches_a_running_job_within_one_beat(self):
        job_id = self.make_job(until_cancelled=60)
        self.runner()
        self.wait_for_row(job_id, (JobStatus.RUNNING, 1))
        self.store.get(Job, job_id).cancel()
        transaction.commit()
        requested = time.monotonic()
        self.wait_for_row(job_id, (JobStatus.CANCELLED, 1))
        # One beat is a third of the lease; a second of slack.
        self.assertLess(time.monotonic() - requested, LEASE / 3 + 1.0)
        self.assertEqual([], self.oopses())
        # The job's own work was rolled back with it.
        self.assertEqual([], self.executions(job_id))
