"""Hostile job code against real runner processes (issue 14, item 1):
what a job does to itself — exit, end its transaction, leave threads
behind, lose a deadlock, lose its connection, ignore its time limit,
freeze with its runner — never strands, doubles or charges another job.

The in-process cases, one misbehaviour each, are in
tests/scripts/test_hostile_jobs.py; here the runs are processes, killed
at the end of each test whatever happens.
"""

import os
import signal
import time

import fixtures
import transaction

from jobs.interfaces.job import JobStatus
from jobs.testing.testcase import on_each_database
from tests.reliability.fleet import sections, wait_until
from tests.reliability.runnercase import RunnerTestCase

S = JobStatus
LEASE = 1.0
GRACE = 5
SETTINGS = {"lease_seconds": LEASE, "poll_interval": 0.1, "batch_size": 1,
            "grace_period": GRACE}
MAX_RUNTIME = 2


def thaw(pid):
    """SIGCONT `pid`, if it still exists."""
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


class HostileTestCase(RunnerTestCase):

    config_extra = sections([SETTINGS])

    def innocents(self, count):
        return [self.make_job() for _ in range(count)]

    def assertRanOnce(self, job_ids):
        for job_id in job_ids:
            self.assertEqual((S.COMPLETED, 1), self.job_row(job_id),
                             self.logs())
            self.assertEqual([1], self.executions(job_id), self.logs())

    def oops_types(self):
        return sorted((report["job_id"], report["type"])
                      for report in self.oopses())

    def freeze(self, pid):
        """SIGSTOP `pid` (a runner, a database backend) until the test
        sends SIGCONT, or its end does."""
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(thaw, pid)

    def backend_of(self, job_id):
        """The PostgreSQL backend that runs `job_id`: its
        claimer's, or its process runner child's (``job.claimed_by`` is
        ``host:pid/backend/start``)."""
        [(claimed_by,)] = self.read(
            "SELECT claimed_by FROM job WHERE id = ?", (job_id,))
        return int(claimed_by.split("/")[1])

    def stop(self, runner, timeout=60):
        """SIGTERM `runner`; return its exit status."""
        runner.process.send_signal(signal.SIGTERM)
        return runner.process.wait(timeout)


@on_each_database
class TestMisbehavingJobsInAWorkersBatch(HostileTestCase):
    """One claimed batch of a worker holds innocent jobs around jobs that
    exit, commit, roll back and close the store: each of those fails
    with its OOPS, the innocents run once, and the worker goes on."""

    # (what the job does, the type of its OOPS)
    BAD = (({"misbehave": "sys.exit"}, "SystemExit"),
           ({"misbehave": "COMMIT"}, "TransactionMisuse"),
           ({"misbehave": "store.rollback"}, "TransactionMisuse"),
           ({"misbehave": "store.close"}, "TransactionMisuse"))

    def run_batch(self, *args):
        job_ids = []
        for behaviour, _ in self.BAD:
            job_ids.append(self.make_job())
            job_ids.append(self.make_job(**behaviour))
        job_ids.append(self.make_job())
        innocent, bad = job_ids[0::2], job_ids[1::2]
        worker = self.runner("--batch-size", "10", *args, worker=True)
        for job_id in bad:
            self.wait_for_row(job_id, (S.FAILED, 1))
        for job_id in innocent:
            self.wait_for_row(job_id, (S.COMPLETED, 1))
        self.assertRanOnce(innocent)
        self.assertEqual(
            sorted(zip(bad, [error for _, error in self.BAD])),
            self.oops_types())
        # The worker still serves the section.
        later = self.make_job()
        self.wait_for_row(later, (S.COMPLETED, 1))
        self.assertEqual(0, self.stop(worker), self.logs())

    def test_in_process(self):
        self.run_batch()

    def test_in_child_processes(self):
        self.run_batch("--processes", "1")


@on_each_database
class TestLeftBehindThreads(HostileTestCase):
    """A job that starts a non-daemon thread (sleeping an hour) does not
    keep its runner alive: the run exits once its grace period is over,
    naming the thread."""

    LINE = "Job code left 1 thread(s) running (left-behind)"

    def test_a_cron_run_exits(self):
        job_id = self.make_job(misbehave="thread")
        [innocent] = self.innocents(1)
        run = self.runner()
        self.assertEqual(0, run.process.wait(GRACE + 60), self.logs())
        self.assertRanOnce([job_id, innocent])
        self.assertIn(self.LINE, run.log_text())

    def test_a_worker_stops_on_sigterm(self):
        job_id = self.make_job(misbehave="thread")
        worker = self.runner(worker=True)
        self.wait_for_row(job_id, (S.COMPLETED, 1))
        self.assertEqual(0, self.stop(worker, GRACE + 60), self.logs())
        self.assertIn(self.LINE, worker.log_text())


@on_each_database
class TestKilledMidBatch(HostileTestCase):
    """kill -9 of a run in the first job of its claimed batch: the jobs it
    had claimed but not started are taken over as the same attempt (not
    charged, not "lost"); the started one was lost."""

    def test_unstarted_claims_are_not_charged(self):
        started = self.make_job(sleep=60)
        waiting = self.innocents(3)
        run = self.runner("--batch-size", "10")
        self.wait_for_line(run, "Running DoFooJob (ID %d)" % started)
        run.process.kill()
        run.process.wait(60)
        taker = self.runner(worker=True)
        self.wait_for_row(started, (S.FAILED, 1))
        for job_id in waiting:
            self.wait_for_row(job_id, (S.COMPLETED, 1))
        self.assertRanOnce(waiting)
        self.assertEqual([(started, "LostRunner")], self.oops_types())
        self.assertEqual(1, taker.log_text().count("by a lost runner"),
                         self.logs())


@on_each_database
class TestSigtermToACronRun(HostileTestCase):
    """SIGTERM to a cron run: the running job finishes, the claimed jobs
    that had not started are given back at once (no lease to wait out),
    the run exits 0."""

    def test_releases_unstarted_claims(self):
        first = self.make_job(sleep=1)
        rest = self.innocents(3)
        run = self.runner("--batch-size", "10")
        self.wait_for_line(run, "Running DoFooJob (ID %d)" % first)
        self.assertEqual(0, self.stop(run), self.logs())
        self.assertEqual((S.COMPLETED, 1), self.job_row(first))
        self.assertEqual([(S.WAITING, 0)] * 3,
                         [self.job_row(job_id) for job_id in rest])
        self.assertIn("Released 3 claimed jobs that had not started.",
                      run.log_text())


# poll()'s system call number on x86-64 and on arm64 (where libpq's wait
# is ppoll()).
POLL = {"x86_64": 7, "aarch64": 73}[os.uname().machine]


def waits_in_poll(pid):
    """Whether process `pid`'s main thread is in ``poll()`` (libpq's wait
    for its server), by Linux's ``/proc/PID/syscall``."""
    with open("/proc/%d/syscall" % pid) as f:
        return f.read().split()[0] == str(POLL)



class TestPostgreSQLSessions(HostileTestCase):
    """What only PostgreSQL shows: deadlocks, sessions ended or frozen."""

    database_kind = "postgresql"
    __test__ = True

    def test_a_deadlock_victim_runs_again(self):
        a, b = self.factory.makeFoo(), self.factory.makeFoo()
        transaction.commit()
        workers = [self.runner(worker=True) for _ in range(2)]
        for worker in workers:
            self.wait_for_line(worker, "Listening for new jobs")
        one = self.make_job(lock_foos=[a.id, b.id], pause=1, max_retries=3)
        two = self.make_job(lock_foos=[b.id, a.id], pause=1, max_retries=3)
        wait_until(lambda: {self.job_row(one)[0], self.job_row(two)[0]}
                   == {S.COMPLETED}, 60, "both jobs to complete",
                   details=self.logs)
        # One of them lost the deadlock (its work rolled back) and ran
        # again; no OOPS: a deadlock is the database's "try again".
        attempts = sorted([self.job_row(one)[1], self.job_row(two)[1]])
        self.assertEqual([1, 2], attempts, self.logs())
        self.assertEqual([[1], [2]], sorted(
            [self.executions(one), self.executions(two)]))
        self.assertEqual([], self.oopses())
        self.assertIn("met a transient database error (DeadlockDetected)",
                      self.logs())

    def test_a_child_whose_session_is_ended_runs_again(self):
        job_id = self.make_job(terminate_on_attempt=1, max_retries=1)
        run = self.runner("--processes", "1")
        self.assertEqual(0, run.process.wait(60), self.logs())
        self.assertEqual((S.COMPLETED, 2), self.job_row(job_id))
        self.assertEqual([2], self.executions(job_id))
        self.assertEqual([], self.oopses())

    def test_a_frozen_database_session_does_not_keep_a_worker_from_stopping(
            self):
        gate = os.path.join(self.useFixture(fixtures.TempDir()).path, "go")
        job_id = self.make_job(gate=gate, misbehave="query", max_retries=1)
        worker = self.runner(worker=True)
        self.wait_for_row(job_id, (S.RUNNING, 1))
        self.wait_for_line(worker, "Running DoFooJob (ID %d)" % job_id)
        # The job's next statement, once through the gate, waits for ever
        # on its session; the stop is asked for once the worker waits in
        # that call, where Python runs no signal handler.
        self.freeze(self.backend_of(job_id))
        open(gate, "w").close()
        wait_until(lambda: waits_in_poll(worker.process.pid), 30,
                   "the worker to wait on its frozen session",
                   details=self.logs)
        asked = time.monotonic()
        self.assertEqual(1, self.stop(worker, GRACE + 60), self.logs())
        self.assertLess(time.monotonic() - asked, GRACE + 5)
        self.assertIn("Grace period over", worker.log_text())
        thaw(self.backend_of(job_id))
        # Nothing lost: another runner takes the job over.
        self.runner(worker=True)
        self.wait_for_row(job_id, (S.COMPLETED, 2))
        self.assertEqual([2], self.executions(job_id))

    def test_the_taker_ends_a_frozen_runners_session_holding_its_locks(self):
        foo = self.factory.makeFoo()
        transaction.commit()
        job_id = self.make_job(
            sql="UPDATE foo SET note = 'mine' WHERE id = %d" % foo.id,
            sleep=2, max_retries=1)
        frozen = self.runner(worker=True)
        self.wait_for_row(job_id, (S.RUNNING, 1))
        self.wait_for_line(frozen, "Running DoFooJob (ID %d)" % job_id)
        self.freeze(frozen.process.pid)
        taker = self.runner(worker=True)
        # Attempt 2 needs the row lock attempt 1's session still holds:
        # it gets it at once, not after lock_timeout (60 s).
        started = time.monotonic()
        self.wait_for_row(job_id, (S.COMPLETED, 2))
        self.assertLess(time.monotonic() - started, 30, self.logs())
        self.assertIn("Ended the database session of the lost runner",
                      taker.log_text())
        thaw(frozen.process.pid)
        self.wait_for_line(frozen, "was fenced")
        self.assertEqual([2], self.executions(job_id))


@on_each_database
class TestProcessRunnerLimits(HostileTestCase):
    """The process runner's max_runtime holds without its parent (frozen)
    and against a job that ignores it (the parent's kill)."""

    config_extra = sections([dict(SETTINGS, max_runtime=MAX_RUNTIME)])

    def test_a_child_stops_its_job_while_its_parent_is_frozen(self):
        job_id = self.make_job(sleep=60)
        run = self.runner("--processes", "1")
        self.wait_for_line(run, "Running DoFooJob (ID %d)" % job_id)
        self.freeze(run.process.pid)
        self.wait_for_row(job_id, (S.FAILED, 1), timeout=MAX_RUNTIME + 30)
        self.assertIsNone(run.process.poll())  # still frozen
        thaw(run.process.pid)
        self.assertEqual(0, run.process.wait(60), self.logs())
        self.assertEqual([(job_id, "TimeoutError")], self.oops_types())

    def test_the_parent_kills_a_job_that_ignores_its_limits(self):
        job_id = self.make_job(misbehave="ignore_alarm")
        [innocent] = self.innocents(1)
        run = self.runner("--processes", "1")
        self.assertEqual(0, run.process.wait(MAX_RUNTIME + 60), self.logs())
        self.assertEqual((S.FAILED, 1), self.job_row(job_id))
        self.assertRanOnce([innocent])
        self.assertEqual([(job_id, "TimeoutError")], self.oops_types())
        self.assertIn("Job %d ran past its max_runtime (%s s): killing its"
                      " process." % (job_id, float(MAX_RUNTIME)),
                      run.log_text())
